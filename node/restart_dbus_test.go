package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// startBus runs a private dbus-daemon and returns its socket path.
func startBus(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		if os.Getenv("MOAT_REQUIRE_E2E") == "1" {
			t.Fatalf("dbus-daemon is missing (%v): run .ci/install.d/31-dbus.sh", err)
		}
		t.Skipf("dbus-daemon is missing (%v); MOAT_REQUIRE_E2E=1 makes this a failure", err)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "system_bus_socket")
	conf := filepath.Join(dir, "bus.conf")
	os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=`+sock+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`), 0o644)
	cmd := exec.Command(bin, "--config-file="+conf, "--nofork", "--nopidfile")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("dbus-daemon did not create its socket")
	return ""
}

// systemdOnBus stands in for systemd's manager on a real bus: RestartUnit
// stops the supervised containerd (its supervisor starts it again, as
// systemd would) and keeps a job object until containerd answers over CRI,
// with the method names, signatures and objects systemd uses.
type systemdOnBus struct {
	conn     *dbus.Conn
	ctd      *supervisedContainerd
	mu       sync.Mutex
	restarts []string
	jobs     int
}

func (s *systemdOnBus) RestartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	if name != "containerd.service" || mode != "replace" {
		return "", dbus.NewError("org.freedesktop.systemd1.NoSuchUnit", []any{"Unit " + name + " not found."})
	}
	s.mu.Lock()
	s.jobs++
	job := dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", s.jobs))
	s.restarts = append(s.restarts, name)
	s.mu.Unlock()
	if _, err := prop.Export(s.conn, job, prop.Map{systemdJob: {"State": {Value: "running"}}}); err != nil {
		return "", dbus.MakeFailedError(err)
	}
	pid, err := SignalRestarter{Socket: s.ctd.Socket}.Pid()
	if err != nil {
		return "", dbus.MakeFailedError(err)
	}
	go func() {
		SignalRestarter{Socket: s.ctd.Socket, Timeout: 30 * time.Second}.Restart(context.Background())
		for {
			if p, err := (SignalRestarter{Socket: s.ctd.Socket}).Pid(); err == nil && p != pid {
				if rt, err := DialCRI(s.ctd.Socket); err == nil {
					rt.Close()
					break
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		s.conn.Export(nil, job, "org.freedesktop.DBus.Properties")
	}()
	return job, nil
}

func (s *systemdOnBus) GetUnit(name string) (dbus.ObjectPath, *dbus.Error) {
	if name != "containerd.service" {
		return "", dbus.NewError("org.freedesktop.systemd1.NoSuchUnit", []any{"Unit " + name + " not loaded."})
	}
	return "/org/freedesktop/systemd1/unit/containerd_2eservice", nil
}

func TestDBusRestarterOverSystemBus(t *testing.T) {
	sock := startBus(t)
	ctd := startContainerd(t, func(base, _ string) string { return base })
	conn, err := dbus.Connect("unix:path=" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sd := &systemdOnBus{conn: conn, ctd: ctd}
	if err := conn.Export(sd, systemdPath, systemdManager); err != nil {
		t.Fatal(err)
	}
	if _, err := prop.Export(conn, "/org/freedesktop/systemd1/unit/containerd_2eservice", prop.Map{
		"org.freedesktop.systemd1.Unit": {"ActiveState": {Value: "active"}},
	}); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName(systemdDest, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: %v %v", systemdDest, reply, err)
	}

	starts := ctd.Starts()
	r := DBusRestarter{Socket: sock, Unit: "containerd.service", Timeout: time.Minute}
	if !strings.Contains(r.String(), sock) {
		t.Errorf("String() = %q", r.String())
	}
	if err := r.Restart(context.Background()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	// Restart returns only once the job is done: containerd already runs
	// again and answers.
	if got := ctd.Starts() - starts; got != 1 {
		t.Fatalf("%d containerd starts, want 1", got)
	}
	rt := dialWait(t, ctd.Socket)
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, _, err := rt.Version(ctx); err != nil {
		t.Fatalf("containerd not answering right after Restart returned: %v", err)
	}
	if !slices.Equal(sd.restarts, []string{"containerd.service"}) {
		t.Errorf("restarts %v", sd.restarts)
	}

	bad := DBusRestarter{Socket: sock, Unit: "nonexistent.service", Timeout: 10 * time.Second}
	if err := bad.Restart(context.Background()); err == nil || !strings.Contains(err.Error(), "NoSuchUnit") && !strings.Contains(err.Error(), "not found") {
		t.Errorf("restart of an unknown unit: %v", err)
	}
	if err := (DBusRestarter{Socket: sock, Unit: "--evil"}).Restart(context.Background()); err == nil {
		t.Error("bad unit name accepted")
	}
	if err := (DBusRestarter{Socket: filepath.Join(t.TempDir(), "none"), Unit: "containerd.service"}).Restart(context.Background()); err == nil || !strings.Contains(err.Error(), "connect to systemd") {
		t.Errorf("missing socket: %v", err)
	}
}
