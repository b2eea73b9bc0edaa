package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Restarter restarts containerd so it reads its configuration again.
type Restarter interface {
	// Restart asks containerd to restart and returns once the old process is
	// gone (or the service manager has restarted it). The caller then waits
	// for the CRI API to answer again.
	Restart(ctx context.Context) error
	String() string
}

// Restart strategies, as the chart's containerd.restart value names them.
const (
	RestartSystemd = "systemd" // ask systemd over D-Bus (DBusRestarter)
	RestartSignal  = "signal"  // SIGTERM to the containerd process; a supervisor starts it again
	RestartNone    = "none"    // never restart; the operator does it
)

// NsenterRestarter restarts a systemd unit from inside the agent's pod by
// running systemctl in the namespaces of the host's pid 1 (the pod needs
// hostPID and privileges, the image needs nsenter).
type NsenterRestarter struct {
	Unit    string   // e.g. containerd.service
	Command []string // the command run; empty means nsenter into pid 1 and systemctl restart Unit
}

func (s NsenterRestarter) String() string { return "systemd unit " + s.Unit + " through nsenter" }

func (s NsenterRestarter) Restart(ctx context.Context) error {
	if !validUnit(s.Unit) {
		return fmt.Errorf("systemd unit %q: not a unit name", s.Unit)
	}
	argv := s.Command
	if len(argv) == 0 {
		argv = []string{"nsenter", "--target", "1", "--mount", "--uts", "--ipc", "--net", "--pid", "--", "systemctl", "restart", s.Unit}
	}
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("restart %s with %q: %w: %s", s.Unit, strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func validUnit(u string) bool {
	if u == "" || len(u) > 256 || strings.HasPrefix(u, "-") {
		return false
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":-_.@\\", r)) {
			return false
		}
	}
	return true
}

// SignalRestarter stops containerd with SIGTERM and relies on whatever
// supervises it (systemd's Restart=always, a supervisor script, s6, …) to
// start it again. It finds the process by a pid file, or else by the unix
// socket it listens on (the pod needs hostPID and hostNetwork for that).
type SignalRestarter struct {
	PidFile string        // containerd's pid file, "" to find it by Socket
	Socket  string        // containerd's gRPC socket, e.g. /run/containerd/containerd.sock
	Proc    string        // the procfs to search, default /proc
	Timeout time.Duration // how long to wait for the process to exit
}

func (s SignalRestarter) String() string {
	if s.PidFile != "" {
		return "signal to the pid in " + s.PidFile
	}
	return "signal to the process listening on " + s.Socket
}

func (s SignalRestarter) proc() string {
	if s.Proc == "" {
		return "/proc"
	}
	return s.Proc
}

// Pid finds containerd's process id.
func (s SignalRestarter) Pid() (int, error) {
	if s.PidFile != "" {
		b, err := os.ReadFile(s.PidFile)
		if err != nil {
			return 0, fmt.Errorf("read containerd pid file: %w", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			return 0, fmt.Errorf("containerd pid file %s: %q is not a pid", s.PidFile, strings.TrimSpace(string(b)))
		}
		return pid, nil
	}
	return socketOwner(s.proc(), s.Socket)
}

func (s SignalRestarter) Restart(ctx context.Context) error {
	pid, err := s.Pid()
	if err != nil {
		return err
	}
	if err := checkIsContainerd(s.proc(), pid); err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal containerd (pid %d): %w", pid, err)
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	deadline := time.Now().Add(timeout)
	for {
		if gone(s.proc(), pid) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd (pid %d) still runs %v after SIGTERM", pid, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// gone reports whether pid has exited (a zombie counts as exited: only its
// parent can reap it).
func gone(proc string, pid int) bool {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		st := s[i+2]
		return st == 'Z' || st == 'X'
	}
	return false
}

// checkIsContainerd refuses to signal a process that is not containerd, so a
// stale pid file cannot make the agent kill something else.
func checkIsContainerd(proc string, pid int) error {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "comm"))
	if err != nil {
		return fmt.Errorf("containerd pid %d: %w", pid, err)
	}
	if comm := strings.TrimSpace(string(b)); comm != "containerd" {
		return fmt.Errorf("pid %d is %q, not containerd: refusing to signal it", pid, comm)
	}
	return nil
}

// socketOwner finds the process that listens on the unix socket at path: the
// socket's inode from <proc>/net/unix, then the process holding an fd on it.
func socketOwner(proc, path string) (int, error) {
	if path == "" {
		return 0, errors.New("find containerd: neither a pid file nor a socket given")
	}
	// With hostPID, pid 1's view is the host's network namespace, where
	// containerd listens; the agent's own view serves a shared namespace.
	inodes := map[string]bool{}
	var readErr error
	for _, table := range []string{filepath.Join(proc, "1", "net", "unix"), filepath.Join(proc, "net", "unix")} {
		if err := listeningInodes(table, path, inodes); err != nil {
			readErr = err
		}
	}
	if len(inodes) == 0 && readErr != nil {
		return 0, fmt.Errorf("find containerd by its socket: %w", readErr)
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no process listens on %s (is containerd running, and does the agent share the host's pid namespace, hostPID?)", path)
	}
	ents, err := os.ReadDir(proc)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", proc, err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 {
			continue
		}
		fdDir := filepath.Join(proc, e.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && inodes[l] {
				if checkIsContainerd(proc, pid) == nil {
					return pid, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no containerd process holds the socket %s (does the agent share the host's pid namespace?)", path)
}

// listeningInodes adds to inodes the socket inodes of the unix sockets
// listening on path in a /proc/.../net/unix table.
func listeningInodes(table, path string, inodes map[string]bool) error {
	f, err := os.Open(table)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path
		fields := strings.Fields(sc.Text())
		if len(fields) >= 8 && fields[7] == path && fields[3] == "00010000" { // __SO_ACCEPTCON: listening
			inodes["socket:["+fields[6]+"]"] = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	return nil
}

// NoRestarter never restarts containerd.
type NoRestarter struct{}

func (NoRestarter) String() string { return "none" }

func (NoRestarter) Restart(context.Context) error {
	return errors.New("containerd must restart to load the moat runtime handler, and the restart strategy is \"none\": restart containerd on this node")
}
