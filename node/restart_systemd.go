package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/godbus/dbus/v5"
)

// RestartNsenter runs systemctl in the host's namespaces; the image needs
// nsenter (the Dockerfile's image has it, the engine-free one does not).
const RestartNsenter = "nsenter"

// DBusRestarter restarts a systemd unit by asking systemd over D-Bus:
// through systemd's private socket (/run/systemd/private, a direct
// connection) or the system bus socket (/run/dbus/system_bus_socket). The
// pod mounts the socket's directory; it needs neither hostPID nor nsenter.
type DBusRestarter struct {
	Socket  string        // default /run/systemd/private
	Unit    string        // e.g. containerd.service
	Timeout time.Duration // how long the restart job may take
}

func (d DBusRestarter) socket() string {
	if d.Socket == "" {
		return "/run/systemd/private"
	}
	return d.Socket
}

func (d DBusRestarter) String() string {
	return fmt.Sprintf("systemd unit %s over D-Bus (%s)", d.Unit, d.socket())
}

const (
	systemdDest    = "org.freedesktop.systemd1"
	systemdPath    = dbus.ObjectPath("/org/freedesktop/systemd1")
	systemdManager = "org.freedesktop.systemd1.Manager"
	systemdJob     = "org.freedesktop.systemd1.Job"
)

func (d DBusRestarter) connect(ctx context.Context) (*dbus.Conn, error) {
	sock := d.socket()
	if !filepath.IsAbs(sock) {
		return nil, fmt.Errorf("systemd D-Bus socket %q: must be an absolute path", sock)
	}
	conn, err := dbus.Dial("unix:path="+sock, dbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("connect to systemd at %s: %w", sock, err)
	}
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("authenticate to systemd at %s: %w", sock, err)
	}
	// systemd's private socket is a direct connection to systemd; a bus
	// daemon's socket wants a Hello first.
	if filepath.Base(sock) != "private" {
		if err := conn.Hello(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("hello to the system bus at %s: %w", sock, err)
		}
	}
	return conn, nil
}

func (d DBusRestarter) Restart(ctx context.Context) error {
	if !validUnit(d.Unit) {
		return fmt.Errorf("systemd unit %q: not a unit name", d.Unit)
	}
	timeout := d.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := d.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var job dbus.ObjectPath
	if err := conn.Object(systemdDest, systemdPath).CallWithContext(ctx, systemdManager+".RestartUnit", 0, d.Unit, "replace").Store(&job); err != nil {
		return fmt.Errorf("systemd RestartUnit %s: %w", d.Unit, err)
	}
	// The job object exists until the restart has finished (for
	// Type=notify, until containerd says it is ready).
	for {
		var state dbus.Variant
		err := conn.Object(systemdDest, job).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, systemdJob, "State").Store(&state)
		var derr dbus.Error
		if errors.As(err, &derr) && jobGone[derr.Name] {
			break
		}
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("wait for systemd job %s (restart %s): %w", job, d.Unit, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("systemd did not finish restarting %s within %v", d.Unit, timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
	var active dbus.Variant
	unitPath, err := d.unitPath(ctx, conn)
	if err != nil {
		return err
	}
	if err := conn.Object(systemdDest, unitPath).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, "org.freedesktop.systemd1.Unit", "ActiveState").Store(&active); err != nil {
		return fmt.Errorf("read the state of %s: %w", d.Unit, err)
	}
	if s, _ := active.Value().(string); s != "active" {
		return fmt.Errorf("systemd restarted %s but it is %q: see `journalctl -u %s`", d.Unit, s, d.Unit)
	}
	return nil
}

// jobGone are the errors that say a job object no longer exists: systemd
// answers UnknownObject; other D-Bus implementations say it in their ways.
var jobGone = map[string]bool{
	"org.freedesktop.DBus.Error.UnknownObject":    true,
	"org.freedesktop.DBus.Error.NoSuchObject":     true,
	"org.freedesktop.DBus.Error.UnknownInterface": true,
	"org.freedesktop.DBus.Error.UnknownMethod":    true,
	"org.freedesktop.systemd1.NoSuchJob":          true,
}

func (d DBusRestarter) unitPath(ctx context.Context, conn *dbus.Conn) (dbus.ObjectPath, error) {
	var p dbus.ObjectPath
	if err := conn.Object(systemdDest, systemdPath).CallWithContext(ctx, systemdManager+".GetUnit", 0, d.Unit).Store(&p); err != nil {
		return "", fmt.Errorf("systemd GetUnit %s: %w", d.Unit, err)
	}
	return p, nil
}
