package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Client drives one sentry process.
type Client struct {
	rpc *rpc.Client
	fdc *net.UnixConn
	cmd *exec.Cmd

	fdMu  sync.Mutex // orders descriptor messages
	token atomic.Uint64

	exited chan struct{}
	// exitErr is how the process ended; valid once exited is closed.
	exitErr error
}

// Launch starts a sentry process: argv runs the sentry's main (for
// example the shim binary in its hidden sentry mode) and is given cfg as
// its last argument. Its stderr (the sentry's log) goes to logw.
func Launch(argv []string, cfg Config, logw io.Writer) (*Client, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	ctlA, ctlB, err := SocketPair(unix.SOCK_STREAM)
	if err != nil {
		return nil, err
	}
	fdA, fdB, err := SocketPair(unix.SOCK_SEQPACKET)
	if err != nil {
		ctlA.Close()
		ctlB.Close()
		return nil, err
	}
	cmd := exec.Command(argv[0], append(argv[1:], string(b))...)
	cmd.Stdin = nil
	cmd.Stdout = logw
	cmd.Stderr = logw
	cmd.ExtraFiles = []*os.File{ctlB, fdB} // fds 3 and 4
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if cfg.Confine {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNS
	}
	if cfg.NewNetNS {
		if cfg.NetNS != "" {
			ctlA.Close()
			ctlB.Close()
			fdA.Close()
			fdB.Close()
			return nil, fmt.Errorf("start sentry: both a network namespace path (%s) and a new network namespace", cfg.NetNS)
		}
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWNET
	}
	err = startIn(cmd, cfg.NetNS)
	ctlB.Close()
	fdB.Close()
	if err != nil {
		ctlA.Close()
		fdA.Close()
		return nil, fmt.Errorf("start sentry %s: %w", argv[0], err)
	}
	c, err := newClient(ctlA, fdA)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	c.cmd = cmd
	go func() {
		c.exitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func newClient(ctl, fds *os.File) (*Client, error) {
	cc, err := net.FileConn(ctl)
	ctl.Close()
	if err != nil {
		fds.Close()
		return nil, fmt.Errorf("sentry control socket: %w", err)
	}
	fdc, err := unixConn(fds)
	if err != nil {
		cc.Close()
		return nil, fmt.Errorf("sentry descriptor socket: %w", err)
	}
	return &Client{rpc: jsonrpc.NewClient(cc), fdc: fdc, exited: make(chan struct{})}, nil
}

// Pid is the host pid of the sentry process.
func (c *Client) Pid() int {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Exited is closed when the sentry process has ended.
func (c *Client) Exited() <-chan struct{} { return c.exited }

// ExitError is how the sentry process ended (nil: exit code 0); valid
// once Exited is closed. A death by its seccomp filter says so.
func (c *Client) ExitError() error {
	if SeccompKilled(c.exitErr) {
		return fmt.Errorf("%w: killed by its seccomp filter for a host system call outside its allowlist (the kernel log names it: audit type=1326)", c.exitErr)
	}
	return c.exitErr
}

func (c *Client) call(method string, args, reply any) error {
	if err := c.rpc.Call(ServiceName+"."+method, args, reply); err != nil {
		if errors.Is(err, rpc.ErrShutdown) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("sentry %s: %w: %v", method, ErrSentryGone, err)
		}
		return fmt.Errorf("sentry %s: %w", method, err)
	}
	return nil
}

// ErrSentryGone is returned by calls once the sentry process has died.
var ErrSentryGone = errors.New("sentry process is gone")

// IsNotFound, IsExists and IsFinished classify a call's error.
func IsNotFound(err error) bool {
	return err != nil && strings.Contains(err.Error(), ErrNotFound.Error())
}
func IsExists(err error) bool { return err != nil && strings.Contains(err.Error(), ErrExists.Error()) }
func IsFinished(err error) bool {
	return err != nil && strings.Contains(err.Error(), ErrFinished.Error())
}

// AddContainer attaches a container's filesystem: dirs are the root and
// then the directory of each mount with FromFD (the caller keeps its own
// descriptors).
func (c *Client) AddContainer(a AddContainerArgs, dirs []*os.File) error {
	fds := make([]int, len(dirs))
	for i, f := range dirs {
		fds[i] = int(f.Fd())
	}
	if err := c.sendFDs(&a.FDToken, fds); err != nil {
		return fmt.Errorf("sentry AddContainer %s: %w", a.ID, err)
	}
	return c.call("AddContainer", a, &Empty{})
}

// sendFDs sends fds under a fresh token, stored in *token.
func (c *Client) sendFDs(token *uint64, fds []int) error {
	*token = c.token.Add(1)
	c.fdMu.Lock()
	defer c.fdMu.Unlock()
	return SendFDs(c.fdc, *token, fds)
}

// RemoveContainer forgets a container, killing what still runs in it.
func (c *Client) RemoveContainer(id string) error {
	return c.call("RemoveContainer", ContainerArgs{ID: id}, &Empty{})
}

// RemoveProcess forgets an exec that has ended.
func (c *Client) RemoveProcess(id, execID string) error {
	return c.call("RemoveProcess", ProcessArgs{ID: id, ExecID: execID}, &Empty{})
}

// Start starts a process; stdio are host descriptors for stdin, stdout
// and stderr (nil: none), sent to the sentry (the caller keeps its own).
func (c *Client) Start(a StartArgs, stdio [3]*os.File) (int32, error) {
	var fds []int
	for i, f := range stdio {
		if f == nil {
			continue
		}
		fds = append(fds, int(f.Fd()))
		switch i {
		case 0:
			a.Stdin = true
		case 1:
			a.Stdout = true
		case 2:
			a.Stderr = true
		}
	}
	if len(fds) > 0 {
		if err := c.sendFDs(&a.StdioToken, fds); err != nil {
			return 0, fmt.Errorf("sentry Start %s/%s: %w", a.ID, a.ExecID, err)
		}
	}
	var r StartReply
	if err := c.call("Start", a, &r); err != nil {
		return 0, err
	}
	return r.Pid, nil
}

// Wait waits for a process to end.
func (c *Client) Wait(id, execID string) (WaitReply, error) {
	var r WaitReply
	err := c.call("Wait", ProcessArgs{ID: id, ExecID: execID}, &r)
	return r, err
}

// Signal signals a process, or with all every process of the container.
func (c *Client) Signal(id, execID string, sig int, all bool) error {
	return c.call("Signal", SignalArgs{ID: id, ExecID: execID, Signal: sig, All: all}, &Empty{})
}

// Pids lists a container's processes.
func (c *Client) Pids(id string) ([]int32, error) {
	var r PidsReply
	err := c.call("Pids", ContainerArgs{ID: id}, &r)
	return r.Pids, err
}

// Stats returns a container's figures.
func (c *Client) Stats(id string) (StatsReply, error) {
	var r StatsReply
	err := c.call("Stats", ContainerArgs{ID: id}, &r)
	return r, err
}

// PodStats returns the figures of the whole sandbox (sandboxID names its
// sandbox container).
func (c *Client) PodStats(sandboxID string) (StatsReply, error) {
	var r StatsReply
	err := c.call("Stats", ContainerArgs{ID: sandboxID, Pod: true}, &r)
	return r, err
}

// Pause freezes a container's processes, or with pod every process of
// the sandbox; Resume thaws them; FreezeState reports where they are.
func (c *Client) Pause(id string, pod bool) (FreezeReply, error) {
	var r FreezeReply
	err := c.call("Pause", ContainerArgs{ID: id, Pod: pod}, &r)
	return r, err
}

// Resume thaws what Pause froze.
func (c *Client) Resume(id string, pod bool) (FreezeReply, error) {
	var r FreezeReply
	err := c.call("Resume", ContainerArgs{ID: id, Pod: pod}, &r)
	return r, err
}

// FreezeState reports whether a container (with pod, the sandbox) is
// frozen and whether all its tasks have stopped.
func (c *Client) FreezeState(id string, pod bool) (FreezeReply, error) {
	var r FreezeReply
	err := c.call("FreezeState", ContainerArgs{ID: id, Pod: pod}, &r)
	return r, err
}

// Update changes the sandbox's resources.
func (c *Client) Update(a UpdateArgs) (UpdateReply, error) {
	var r UpdateReply
	err := c.call("Update", a, &r)
	return r, err
}

// Shutdown ends the sentry and waits for its process to exit.
func (c *Client) Shutdown() error {
	err := c.call("Shutdown", Empty{}, &Empty{})
	<-c.exited
	c.Close()
	return err
}

// Kill ends the sentry process at once.
func (c *Client) Kill() {
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Kill()
	}
}

// Close releases the connections.
func (c *Client) Close() {
	c.rpc.Close()
	c.fdc.Close()
}

// maxBindFile bounds the content of a bind-mounted file sent by value.
const maxBindFile = 1 << 20

// PrepareContainer opens, on the caller's side, what the sentry of a
// container needs: the root directory and the directories of bind mounts
// as O_PATH descriptors, the content of bind-mounted files. It returns
// the AddContainer arguments and the descriptors (the caller closes them
// once AddContainer returned).
func PrepareContainer(id, rootfs string, readOnly bool, mounts []Mount) (AddContainerArgs, []*os.File, error) {
	a := AddContainerArgs{ID: id, RootFS: rootfs, ReadOnly: readOnly}
	var files []*os.File
	fail := func(err error) (AddContainerArgs, []*os.File, error) {
		for _, f := range files {
			f.Close()
		}
		return AddContainerArgs{}, nil, err
	}
	open := func(p string) error {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", p, err)
		}
		files = append(files, os.NewFile(uintptr(fd), p))
		return nil
	}
	if err := open(rootfs); err != nil {
		return fail(fmt.Errorf("container %s root: %w", id, err))
	}
	for _, m := range mounts {
		if isBind(m) {
			st, err := os.Stat(m.Source)
			if err != nil {
				return fail(fmt.Errorf("container %s mount %s: %w", id, m.Destination, err))
			}
			if st.IsDir() {
				openDir := open
				if privatePropagation(m.Options) {
					openDir = func(p string) error {
						f, err := openPrivateTree(p)
						if err != nil {
							return err
						}
						files = append(files, f)
						return nil
					}
				}
				if err := openDir(m.Source); err != nil {
					return fail(fmt.Errorf("container %s mount %s: %w", id, m.Destination, err))
				}
				m.FromFD = true
			} else {
				if st.Size() > maxBindFile {
					return fail(fmt.Errorf("container %s mount %s: file %s is larger than %d bytes", id, m.Destination, m.Source, maxBindFile))
				}
				data, err := os.ReadFile(m.Source)
				if err != nil {
					return fail(fmt.Errorf("container %s mount %s: %w", id, m.Destination, err))
				}
				if data == nil {
					data = []byte{}
				}
				m.Data = data
			}
		}
		a.Mounts = append(a.Mounts, m)
	}
	if len(files) > maxFDs {
		return fail(fmt.Errorf("container %s: %d directories to attach, at most %d", id, len(files), maxFDs))
	}
	return a, files, nil
}

// privatePropagation says whether a bind mount asks for private
// propagation (rprivate, private): mounts the host makes under its
// source later must not appear in the container. Without such an option
// (rslave, rshared, or none, runc's rslave default) the container sees
// the source's host mounts as they come and go.
func privatePropagation(opts []string) bool {
	private := false
	for _, o := range opts {
		switch o {
		case "private", "rprivate":
			private = true
		case "slave", "rslave", "shared", "rshared":
			private = false
		}
	}
	return private
}

// openPrivateTree returns a descriptor of a private copy of the mount
// tree at dir (open_tree(OPEN_TREE_CLONE|AT_RECURSIVE), made private
// recursively): the container sees the mounts under dir as they are now,
// and none the host adds or removes later (a descriptor of dir itself
// would follow the host's mounts, as path walks cross the mounts of the
// mount a descriptor belongs to). The copy is dissolved when the last
// descriptor into it closes.
func openPrivateTree(dir string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return nil, fmt.Errorf("copy the mounts at %s (open_tree): %w", dir, err)
	}
	attr := unix.MountAttr{Propagation: unix.MS_PRIVATE}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("make the copy of the mounts at %s private: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return nil, fmt.Errorf("copy of the mounts at %s: not a directory (%v)", dir, err)
	}
	return os.NewFile(uintptr(fd), dir), nil
}

func isBind(m Mount) bool {
	if m.Type == "bind" || m.Type == "rbind" {
		return true
	}
	if m.Type != "" && m.Type != "none" {
		return false
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// startIn starts cmd in the network namespace at netns ("" : the
// caller's). One locked OS thread enters the namespace, forks the process
// and goes back to the caller's namespace before it serves other
// goroutines. (The thread must live on: the sentry's parent-death signal
// follows the thread that forked it.)
func startIn(cmd *exec.Cmd, netns string) error {
	if netns == "" {
		return cmd.Start()
	}
	return InNetNS(netns, cmd.Start)
}

// InNetNS runs f on a locked OS thread that has entered the network
// namespace at path netns, and returns that thread to the caller's
// namespace before it serves other goroutines. Should the return fail,
// the thread stays locked and ends with its goroutine rather than serve
// others in the wrong namespace.
func InNetNS(netns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		back, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open the caller's network namespace: %w", err)
			return
		}
		defer unix.Close(back)
		fd, err := unix.Open(netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open network namespace %s: %w", netns, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", netns, err)
			return
		}
		ferr := f()
		if err := unix.Setns(back, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("return from network namespace %s: %w", netns, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
