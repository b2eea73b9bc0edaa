package shim

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/fifo"
	"github.com/creack/pty"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"moat.dev/moat/cri"
	"moat.dev/moat/sentry/control"
	"moat.dev/moat/sentry/seccomp"
)

// container is one containerd task: the pod's sandbox (pause) container
// or an application container.
type container struct {
	id      string
	bundle  string
	sandbox bool // the pod's sandbox container: its init is the pod's init
	info    *cri.Info
	spec    *specs.Spec
	limits  limits
	mounted bool // bundle/rootfs was mounted by the shim
	// seccomp is the container's seccomp profile (nil: none).
	seccomp *seccomp.Profile

	init  *process
	execs map[string]*process

	// Guarded by service.mu: pausing while Pause runs, frozen once the
	// sentry froze the container (for the sandbox container: the pod).
	pausing, frozen bool
}

// process is a container's init or one of its execs.
type process struct {
	id     string // container id
	execID string // "" for the init
	spec   *specs.Process
	stdin  string
	stdout string
	stderr string
	tty    bool

	// console is the host pty master of a terminal process; the shim
	// copies between it and containerd's FIFOs. ioDone is closed when
	// the output copy has ended.
	console *os.File
	ioDone  chan struct{}
	// stdinFifo is containerd's stdin FIFO, read by the shim into a pipe
	// the process reads (closed with the process).
	stdinFifo io.Closer

	mu         sync.Mutex
	status     task.Status
	pid        uint32 // the sentry's host pid once started
	exitStatus uint32
	exitedAt   time.Time
	done       chan struct{} // closed once stopped
}

func newProcess(id, execID string, spec *specs.Process, stdin, stdout, stderr string, tty bool) *process {
	return &process{id: id, execID: execID, spec: spec, stdin: stdin, stdout: stdout, stderr: stderr,
		tty: tty, status: task.Status_CREATED, done: make(chan struct{})}
}

func (p *process) state() (task.Status, uint32, uint32, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status, p.pid, p.exitStatus, p.exitedAt
}

// setExited records the end of the process; false if it had ended already.
func (p *process) setExited(status int, at time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status == task.Status_STOPPED {
		return false
	}
	p.status = task.Status_STOPPED
	p.exitStatus = uint32(status)
	p.exitedAt = at
	close(p.done)
	return true
}

// openTerminal gives a terminal process a host pty: the process gets the
// pty's slave as stdin, stdout and stderr (the sentry forwards its
// terminal ioctls), and the shim copies containerd's stdin FIFO to the
// master and the master to the stdout FIFO. closeSlave is called once the
// sentry holds its own copies of the slave.
func (p *process) openTerminal(ctx context.Context) (files [3]*os.File, closeSlave func(), err error) {
	master, slave, err := pty.Open()
	if err != nil {
		return files, nil, fmt.Errorf("open a pty: %w", err)
	}
	fail := func(err error) ([3]*os.File, func(), error) {
		master.Close()
		slave.Close()
		return [3]*os.File{}, nil, err
	}
	var out *os.File
	if p.stdout != "" {
		if out, err = os.OpenFile(p.stdout, os.O_RDWR, 0); err != nil {
			return fail(fmt.Errorf("open output %s: %w", p.stdout, err))
		}
	}
	var in io.ReadCloser
	if p.stdin != "" {
		if in, err = fifo.OpenFifo(context.WithoutCancel(ctx), p.stdin, syscall.O_RDONLY|syscall.O_NONBLOCK, 0); err != nil {
			if out != nil {
				out.Close()
			}
			return fail(fmt.Errorf("open stdin %s: %w", p.stdin, err))
		}
		p.mu.Lock()
		p.stdinFifo = in
		p.mu.Unlock()
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.console, p.ioDone = master, done
	p.mu.Unlock()
	go func() {
		defer close(done)
		if out != nil {
			defer out.Close()
			io.Copy(out, master) // ends with EIO once every slave is closed
		}
	}()
	if in != nil {
		go io.Copy(master, in) // until the FIFO's writer or closeIO closes it
	}
	return [3]*os.File{slave, slave, slave}, func() { slave.Close() }, nil
}

// resize sets the terminal size of a terminal process.
func (p *process) resize(width, height uint32) error {
	p.mu.Lock()
	c := p.console
	p.mu.Unlock()
	if c == nil {
		return nil
	}
	return pty.Setsize(c, &pty.Winsize{Cols: uint16(width), Rows: uint16(height)})
}

// closeIO waits a little for a terminal's output to drain, then releases
// the pty.
func (p *process) closeIO() {
	p.mu.Lock()
	c, done, in := p.console, p.ioDone, p.stdinFifo
	p.stdinFifo = nil
	p.mu.Unlock()
	if in != nil {
		in.Close()
	}
	if c == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	c.Close()
}

// openStdio opens containerd's FIFOs for the process. Output FIFOs are
// opened read-write so the open never waits for a reader (containerd has
// its readers open already); stdin is copied from its FIFO into a pipe.
func (p *process) openStdio(ctx context.Context) (files [3]*os.File, err error) {
	closeAll := func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}
	if p.stdin != "" {
		// As the runc shim: the FIFO is opened without waiting for its
		// writer and copied into a pipe; the process reads the pipe and
		// sees the end of input when the writer closes the FIFO.
		in, err := fifo.OpenFifo(context.WithoutCancel(ctx), p.stdin, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return files, fmt.Errorf("open stdin %s: %w", p.stdin, err)
		}
		r, w, err := os.Pipe()
		if err != nil {
			in.Close()
			return files, fmt.Errorf("stdin pipe: %w", err)
		}
		p.mu.Lock()
		p.stdinFifo = in
		p.mu.Unlock()
		go func() {
			io.Copy(w, in)
			w.Close()
		}()
		files[0] = r
	}
	for i, path := range []string{p.stdout, p.stderr} {
		if path == "" {
			continue
		}
		if i == 1 && p.tty {
			// A terminal has one output stream.
			continue
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			closeAll()
			return [3]*os.File{}, fmt.Errorf("open output %s: %w", path, err)
		}
		files[i+1] = f
	}
	if p.tty && files[2] == nil && files[1] != nil {
		files[2] = files[1]
	}
	return files, nil
}

// startArgs turns an OCI process into the sentry's StartArgs.
func startArgs(id, execID string, p *specs.Process) (control.StartArgs, error) {
	a := control.StartArgs{ID: id, ExecID: execID}
	if p == nil {
		return a, fmt.Errorf("container %s: the spec has no process", id)
	}
	if len(p.Args) == 0 {
		return a, fmt.Errorf("container %s: the process has no args", id)
	}
	a.Argv = p.Args
	a.Env = p.Env
	a.Cwd = p.Cwd
	a.UID, a.GID = p.User.UID, p.User.GID
	a.Groups = p.User.AdditionalGids
	a.NoNewPrivs = p.NoNewPrivileges
	a.Umask = 0o022
	if p.User.Umask != nil {
		a.Umask = *p.User.Umask & 0o777
	}
	if c := p.Capabilities; c != nil {
		// All five sets, applied as runc applies them before it execs
		// the process; the sentry then runs execve's rules.
		a.CapSets = true
		for _, s := range []struct {
			names []string
			dst   *uint64
		}{{c.Effective, &a.Caps}, {c.Permitted, &a.Permitted}, {c.Inheritable, &a.Inheritable}, {c.Bounding, &a.Bounding}, {c.Ambient, &a.Ambient}} {
			m, err := capMask(s.names)
			if err != nil {
				return a, fmt.Errorf("container %s: %w", id, err)
			}
			*s.dst = m
		}
	}
	return a, nil
}

// capNames are the Linux capabilities by OCI name.
var capNames = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
	"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
	"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
	"CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
	"CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
	"CAP_CHECKPOINT_RESTORE": 40,
}

// capMask turns OCI capability names into a bit set. An unknown name is
// an error (a newer capability this sentry does not know).
func capMask(names []string) (uint64, error) {
	var m uint64
	for _, n := range names {
		b, ok := capNames[n]
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
		m |= 1 << b
	}
	return m, nil
}

// signalName is for logs.
func signalName(sig uint32) string { return unix.SignalName(syscall.Signal(sig)) }
