package node

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A pid file that names anything but containerd is refused: a stale pid
// must not make the agent kill another process.
func TestSignalRestarterRefusesOtherProcesses(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		strconv.Itoa(os.Getpid()): "not containerd",
		"1":                       "not a pid",
		"garbage":                 "not a pid",
		"":                        "not a pid",
	} {
		p := filepath.Join(dir, "containerd.pid")
		os.WriteFile(p, []byte(content+"\n"), 0o644)
		err := SignalRestarter{PidFile: p}.Restart(context.Background())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("pid file %q: %v, want an error saying %q", content, err, want)
		}
	}
	if err := (SignalRestarter{PidFile: filepath.Join(dir, "missing")}).Restart(context.Background()); err == nil {
		t.Error("missing pid file accepted")
	}
	if _, err := (SignalRestarter{Socket: filepath.Join(dir, "nobody-listens.sock")}).Pid(); err == nil || !strings.Contains(err.Error(), "no process listens") {
		t.Errorf("socket without a listener: %v", err)
	}
	if err := (NsenterRestarter{Unit: "-x"}).Restart(context.Background()); err == nil {
		t.Error("bad unit accepted")
	}
	if err := (NoRestarter{}).Restart(context.Background()); err == nil || !strings.Contains(err.Error(), "restart containerd") {
		t.Errorf("NoRestarter: %v", err)
	}
}

// The running containerd is found by its socket and by a pid file.
func TestSignalRestarterFindsContainerd(t *testing.T) {
	ctd := startContainerd(t, func(base, _ string) string { return base })
	pid, err := SignalRestarter{Socket: ctd.Socket}.Pid()
	if err != nil {
		t.Fatal(err)
	}
	ctd.mu.Lock()
	want := ctd.cmd.Process.Pid
	ctd.mu.Unlock()
	if pid != want {
		t.Fatalf("found pid %d by the socket, containerd is %d", pid, want)
	}
	pf := filepath.Join(t.TempDir(), "containerd.pid")
	os.WriteFile(pf, []byte(strconv.Itoa(want)), 0o644)
	starts := ctd.Starts()
	if err := (SignalRestarter{PidFile: pf}).Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	dialWait(t, ctd.Socket).Close()
	if ctd.Starts() != starts+1 {
		t.Fatalf("restart by pid file: %d starts", ctd.Starts()-starts)
	}
}
