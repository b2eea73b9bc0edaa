package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/hostio"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/mm"
	"moat.dev/moat/sentry/sandbox"
	"moat.dev/moat/sentry/seccomp"
	"moat.dev/moat/sentry/vfs"
)

// Errors a caller branches on; they travel as text over net/rpc, so the
// client matches them by their message (see IsNotFound).
var (
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrFinished     = errors.New("process already finished")
	ErrInvalidInput = errors.New("invalid argument")
)

// fdTimeout bounds how long a call waits for the descriptors it names.
const fdTimeout = 10 * time.Second

type procKey struct{ id, exec string }

// proc is a process started through the control API.
type proc struct {
	container string
	exec      string
	tg        *kernel.ThreadGroup
	// oomBase is the container's OOM kill count when the process started.
	oomBase uint64
	done    chan struct{}
	reply   WaitReply
	killed  bool // by SIGKILL
}

// Sentry is the net/rpc service that drives one sandbox. Its exported
// methods are the control API.
type Sentry struct {
	sb  *sandbox.Sandbox
	log *slog.Logger
	fds *fdInbox
	ctx context.Context

	// stop is closed by Shutdown.
	stop     chan struct{}
	stopOnce sync.Once

	mu sync.Mutex
	// procs are the started processes, by container and exec id.
	procs map[procKey]*proc
}

// NewSentry returns the control service of sb.
func NewSentry(sb *sandbox.Sandbox, log *slog.Logger) *Sentry {
	return &Sentry{
		sb: sb, log: log, fds: newFDInbox(), ctx: context.Background(),
		stop: make(chan struct{}), procs: map[procKey]*proc{},
	}
}

// Serve answers calls on ctl and takes descriptors from fdc until ctl
// closes or Shutdown is called.
func (s *Sentry) Serve(ctl net.Conn, fdc *net.UnixConn) {
	go s.fds.run(fdc)
	srv := rpc.NewServer()
	if err := srv.RegisterName(ServiceName, s); err != nil {
		panic(err) // a programming error: the method set is fixed
	}
	done := make(chan struct{})
	go func() {
		srv.ServeCodec(jsonrpc.NewServerCodec(ctl))
		close(done)
	}()
	select {
	case <-done:
		s.log.Info("control connection closed")
	case <-s.stop:
		// Let the reply of Shutdown leave before the connection goes.
		time.Sleep(50 * time.Millisecond)
		ctl.Close()
	}
	fdc.Close()
}

// Stopped is closed once Shutdown was called.
func (s *Sentry) Stopped() <-chan struct{} { return s.stop }

// AddContainer attaches a container's root filesystem and mounts from
// the descriptors its message brought.
func (s *Sentry) AddContainer(a AddContainerArgs, _ *Empty) error {
	fds, err := s.fds.take(a.FDToken, fdTimeout)
	if err != nil {
		return fmt.Errorf("add container %s: %w", a.ID, err)
	}
	if err := s.sb.SetSysctls(a.Sysctls); err != nil {
		closeAll(fds)
		return fmt.Errorf("add container %s: %w: %v", a.ID, ErrInvalidInput, err)
	}
	want := 1
	for _, m := range a.Mounts {
		if m.FromFD {
			want++
		}
	}
	if len(fds) != want {
		closeAll(fds)
		return fmt.Errorf("add container %s: %d descriptors arrived, %d expected: %w", a.ID, len(fds), want, ErrInvalidInput)
	}
	spec := sandbox.ContainerSpec{RootFS: a.RootFS, RootFD: fds[0], ReadOnly: a.ReadOnly,
		MaskedPaths: a.MaskedPaths, ReadonlyPaths: a.ReadonlyPaths}
	switch a.PIDNamespace {
	case "", PIDNamespaceContainer:
		spec.PIDMode = sandbox.PIDContainer
	case PIDNamespacePod:
		spec.PIDMode = sandbox.PIDPod
	case PIDNamespaceSandbox:
		spec.PIDMode = sandbox.PIDSandbox
	default:
		closeAll(fds)
		return fmt.Errorf("add container %s: PID namespace %q: %w", a.ID, a.PIDNamespace, ErrInvalidInput)
	}
	next := 1
	for _, m := range a.Mounts {
		sm := sandbox.Mount{Destination: m.Destination, Type: m.Type, Source: m.Source, Options: m.Options, Data: m.Data, FD: -1}
		if m.FromFD {
			sm.FD = fds[next]
			next++
		}
		spec.Mounts = append(spec.Mounts, sm)
	}
	root, err := s.sb.AddContainer(s.ctx, a.ID, spec)
	if err != nil {
		return err
	}
	root.DecRef(s.ctx)
	return nil
}

// RemoveContainer forgets a container: its processes are killed and
// waited for, then its filesystem is detached (releasing the host's
// directories).
func (s *Sentry) RemoveContainer(a ContainerArgs, _ *Empty) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		gs := s.groups(a.ID)
		if len(gs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove container %s: %d processes did not end", a.ID, len(gs))
		}
		for _, g := range gs {
			s.sb.Kernel.SendSignalFromHost(g, abi.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	for k := range s.procs {
		if k.id == a.ID {
			delete(s.procs, k)
		}
	}
	s.mu.Unlock()
	s.sb.Kernel.ForgetContainer(a.ID)
	return s.sb.RemoveContainer(s.ctx, a.ID)
}

// RemoveProcess forgets an exec that has ended.
func (s *Sentry) RemoveProcess(a ProcessArgs, _ *Empty) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := procKey{a.ID, a.ExecID}
	p, ok := s.procs[k]
	if !ok {
		return fmt.Errorf("process %s/%s: %w", a.ID, a.ExecID, ErrNotFound)
	}
	select {
	case <-p.done:
	default:
		return fmt.Errorf("process %s/%s is running", a.ID, a.ExecID)
	}
	delete(s.procs, k)
	return nil
}

// Start starts a process.
func (s *Sentry) Start(a StartArgs, r *StartReply) (err error) {
	k := procKey{a.ID, a.ExecID}
	stdio, err := s.stdio(a)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range stdio {
			if f != nil {
				f.DecRef(s.ctx)
			}
		}
	}()
	s.mu.Lock()
	if _, ok := s.procs[k]; ok {
		s.mu.Unlock()
		return fmt.Errorf("process %s/%s: %w", a.ID, a.ExecID, ErrExists)
	}
	p := &proc{container: a.ID, exec: a.ExecID, done: make(chan struct{}), oomBase: s.sb.Kernel.ContainerOOMKills(a.ID)}
	s.procs[k] = p
	s.mu.Unlock()
	onExit := func(ws kernel.WaitStatus) {
		// Called with the kernel's lock held: only record.
		p.reply = WaitReply{ExitStatus: ws.ExitCode(), ExitedAt: time.Now()}
		p.killed = ws.Signal() == abi.SIGKILL
		close(p.done)
	}
	var g *kernel.ThreadGroup
	if a.PodInit {
		g, err = s.sb.StartPodInit(s.ctx, a.ID, stdio, onExit)
	} else {
		g, err = s.startContainerProcess(a, stdio, onExit)
	}
	if err != nil {
		s.mu.Lock()
		delete(s.procs, k)
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	p.tg = g
	s.mu.Unlock()
	r.Pid = g.PID()
	s.log.Debug("process started", "container", a.ID, "exec", a.ExecID, "pid", r.Pid, "argv", a.Argv)
	return nil
}

func (s *Sentry) startContainerProcess(a StartArgs, stdio [3]*vfs.File, onExit func(kernel.WaitStatus)) (*kernel.ThreadGroup, error) {
	if len(a.Argv) == 0 {
		return nil, fmt.Errorf("start %s/%s: no command: %w", a.ID, a.ExecID, ErrInvalidInput)
	}
	root, ok := s.sb.ContainerRoot(a.ID)
	if !ok {
		return nil, fmt.Errorf("start %s/%s: container %w", a.ID, a.ExecID, ErrNotFound)
	}
	defer root.DecRef(s.ctx)
	prog, err := s.sb.LookPath(s.ctx, root, a.Argv[0], a.Env)
	if err != nil {
		return nil, fmt.Errorf("start %s/%s: %w", a.ID, a.ExecID, err)
	}
	creds := kernel.Creds{
		RUID: a.UID, EUID: a.UID, SUID: a.UID, FSUID: a.UID,
		RGID: a.GID, EGID: a.GID, SGID: a.GID, FSGID: a.GID,
		Groups: a.Groups, Caps: auth.CapSet(a.Caps), NoNewPrivs: a.NoNewPrivs,
	}
	if a.CapSets {
		creds.Permitted, creds.Inheritable = auth.CapSet(a.Permitted), auth.CapSet(a.Inheritable)
		creds.Bounding, creds.Ambient = auth.CapSet(a.Bounding), auth.CapSet(a.Ambient)
	}
	ns, ok := s.sb.ContainerPIDNamespace(a.ID)
	if !ok {
		return nil, fmt.Errorf("start %s/%s: container %w", a.ID, a.ExecID, ErrNotFound)
	}
	cwd := a.Cwd
	if cwd == "" {
		cwd = "/"
	}
	var filter *kernel.SeccompFilter
	if a.Seccomp != nil {
		c, err := seccomp.Compile(a.Seccomp)
		if err != nil {
			return nil, fmt.Errorf("start %s/%s: %w: %v", a.ID, a.ExecID, ErrInvalidInput, err)
		}
		if len(c.Ignored) > 0 {
			s.log.Debug("seccomp profile: system calls unknown to the sentry are ignored", "container", a.ID, "names", c.Ignored)
		}
		filter = &kernel.SeccompFilter{Program: c.Program, Log: a.Seccomp.Log()}
	}
	g, err := s.sb.Kernel.CreateProcess(kernel.ProcessSpec{
		Argv: a.Argv, Envv: a.Env, Path: prog, Cwd: cwd, Creds: creds, Umask: a.Umask,
		Stdio: stdio, Container: a.ID, OnExit: onExit, Root: root, PIDNamespace: ns, Seccomp: filter,
	})
	if err != nil {
		return nil, fmt.Errorf("start %s/%s: %w", a.ID, a.ExecID, err)
	}
	return g, nil
}

// stdio turns the descriptors a.StdioToken names into files.
func (s *Sentry) stdio(a StartArgs) (out [3]*vfs.File, err error) {
	if a.StdioToken == 0 {
		return out, nil
	}
	fds, err := s.fds.take(a.StdioToken, fdTimeout)
	if err != nil {
		return out, fmt.Errorf("start %s/%s: stdio: %w", a.ID, a.ExecID, err)
	}
	want := []bool{a.Stdin, a.Stdout, a.Stderr}
	n := 0
	for _, w := range want {
		if w {
			n++
		}
	}
	if n != len(fds) {
		closeAll(fds)
		return out, fmt.Errorf("start %s/%s: stdio: %d descriptors arrived, %d expected: %w", a.ID, a.ExecID, len(fds), n, ErrInvalidInput)
	}
	flags := []uint32{unix.O_RDONLY, unix.O_WRONLY, unix.O_WRONLY}
	j := 0
	for i, w := range want {
		if !w {
			continue
		}
		f, err := hostio.New(s.ctx, s.sb.VFS, fds[j], flags[i])
		j++
		if err != nil {
			closeAll(fds[j:])
			for _, o := range out {
				if o != nil {
					o.DecRef(s.ctx)
				}
			}
			return [3]*vfs.File{}, fmt.Errorf("start %s/%s: stdio %d: %w", a.ID, a.ExecID, i, err)
		}
		out[i] = f
	}
	return out, nil
}

func (s *Sentry) proc(a ProcessArgs) (*proc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.procs[procKey{a.ID, a.ExecID}]
	if !ok {
		return nil, fmt.Errorf("process %s/%s: %w", a.ID, a.ExecID, ErrNotFound)
	}
	return p, nil
}

// Wait waits for a process to end.
func (s *Sentry) Wait(a ProcessArgs, r *WaitReply) error {
	p, err := s.proc(a)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
		*r = p.reply
		// As with a cgroup's OOM events: a container's first process
		// reports an OOM kill of any process of the container during its
		// life; an exec reports its own death by an OOM kill.
		if oom := s.sb.Kernel.ContainerOOMKills(p.container) > p.oomBase; oom && (p.exec == "" || p.killed) {
			r.OOM = true
		}
		return nil
	case <-s.stop:
		return fmt.Errorf("wait %s/%s: sentry shutting down", a.ID, a.ExecID)
	}
}

// Signal sends a signal to a process or, with All, to every process of
// its container.
func (s *Sentry) Signal(a SignalArgs, _ *Empty) error {
	sig := abi.Signal(a.Signal)
	if a.Signal < 1 || a.Signal > 64 {
		return fmt.Errorf("signal %d: %w", a.Signal, ErrInvalidInput)
	}
	if a.All {
		for _, g := range s.groups(a.ID) {
			s.sb.Kernel.SendSignalFromHost(g, sig)
		}
		return nil
	}
	p, err := s.proc(ProcessArgs{a.ID, a.ExecID})
	if err != nil {
		return err
	}
	select {
	case <-p.done:
		return fmt.Errorf("signal %s/%s: %w", a.ID, a.ExecID, ErrFinished)
	default:
	}
	s.mu.Lock()
	g := p.tg
	s.mu.Unlock()
	if g == nil {
		return fmt.Errorf("signal %s/%s: not started: %w", a.ID, a.ExecID, ErrNotFound)
	}
	s.sb.Kernel.SendSignalFromHost(g, sig)
	return nil
}

// groups returns the live processes of container id.
func (s *Sentry) groups(id string) []*kernel.ThreadGroup {
	var out []*kernel.ThreadGroup
	for _, g := range s.sb.Kernel.ThreadGroups() {
		if g.Container == id && !g.Zombie() {
			out = append(out, g)
		}
	}
	return out
}

// Pids lists the processes of a container.
func (s *Sentry) Pids(a ContainerArgs, r *PidsReply) error {
	for _, g := range s.groups(a.ID) {
		r.Pids = append(r.Pids, g.PID())
	}
	return nil
}

// Stats reports a container's CPU time and memory and the sandbox's;
// with Pod, the whole sandbox's.
func (s *Sentry) Stats(a ContainerArgs, r *StatsReply) error {
	scope := a.ID
	if a.Pod {
		scope = ""
	}
	frames := map[uint64]struct{}{}
	mms := map[*mm.MM]bool{}
	var groups int
	for _, g := range s.sb.Kernel.ThreadGroups() {
		if g.Zombie() || (scope != "" && g.Container != scope) {
			continue
		}
		groups++
		for _, t := range g.Tasks() {
			if m := t.MM(); m != nil && !mms[m] {
				mms[m] = true
				m.AddFrames(frames)
			}
		}
	}
	u := s.sb.Kernel.CPUUsage(scope)
	r.UserNanos, r.SystemNanos = uint64(u.User), uint64(u.System)
	r.CPUNanos = r.UserNanos + r.SystemNanos
	r.Pids = uint64(groups)
	r.SandboxMemoryBytes, r.SandboxMemoryPeak, r.SandboxMemoryLimit = s.sb.Kernel.Frames.Usage()
	r.MemoryBytes = uint64(len(frames)) * pageSize
	if a.Pod {
		r.MemoryBytes = r.SandboxMemoryBytes
		r.OOMKills = s.sb.Kernel.OOMKills()
	} else {
		r.OOMKills = s.sb.Kernel.ContainerOOMKills(a.ID)
	}
	return nil
}

const pageSize = 4096

// pauseSettle bounds how long Pause waits for the tasks to stop: a task
// busy in a long syscall stops when it returns, and the container is
// reported pausing until then.
const pauseSettle = 2 * time.Second

// Pause freezes a container's processes, or with Pod the whole
// sandbox's, and waits a while for them to stop.
func (s *Sentry) Pause(a ContainerArgs, r *FreezeReply) error {
	scope, err := s.freezeScope(a)
	if err != nil {
		return err
	}
	k := s.sb.Kernel
	k.Freeze(scope)
	deadline := time.Now().Add(pauseSettle)
	for {
		r.Frozen, r.Settled = k.FreezeState(scope)
		if r.Settled || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	s.log.Info("paused", "container", a.ID, "pod", a.Pod, "settled", r.Settled)
	return nil
}

// Resume thaws what Pause froze.
func (s *Sentry) Resume(a ContainerArgs, r *FreezeReply) error {
	scope, err := s.freezeScope(a)
	if err != nil {
		return err
	}
	s.sb.Kernel.Thaw(scope)
	r.Frozen, r.Settled = s.sb.Kernel.FreezeState(scope)
	s.log.Info("resumed", "container", a.ID, "pod", a.Pod)
	return nil
}

// FreezeState reports whether a container (with Pod, the sandbox) is
// frozen and whether its tasks have all stopped.
func (s *Sentry) FreezeState(a ContainerArgs, r *FreezeReply) error {
	scope, err := s.freezeScope(a)
	if err != nil {
		return err
	}
	r.Frozen, r.Settled = s.sb.Kernel.FreezeState(scope)
	return nil
}

// freezeScope is the kernel's name of what a names: "" for the sandbox.
func (s *Sentry) freezeScope(a ContainerArgs) (string, error) {
	if a.Pod {
		return "", nil
	}
	if !sandbox.ValidID(a.ID) {
		return "", fmt.Errorf("container %q: %w", a.ID, ErrInvalidInput)
	}
	if root, ok := s.sb.ContainerRoot(a.ID); ok {
		root.DecRef(s.ctx)
		return a.ID, nil
	}
	// The pod's sandbox container has no root of its own: its init.
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.procs {
		if k.id == a.ID {
			return a.ID, nil
		}
	}
	return "", fmt.Errorf("container %s: %w", a.ID, ErrNotFound)
}

// Update changes the sandbox's vCPU count and memory limit.
func (s *Sentry) Update(a UpdateArgs, r *UpdateReply) error {
	if a.CPUs < 0 {
		return fmt.Errorf("update: %d vCPUs: %w", a.CPUs, ErrInvalidInput)
	}
	if a.CPUs > 0 {
		if err := s.sb.Kernel.SetCPUs(a.CPUs); err != nil {
			return fmt.Errorf("update: %d vCPUs: %w", a.CPUs, err)
		}
		s.log.Info("vCPUs changed", "cpus", a.CPUs)
	}
	switch {
	case a.NoMemoryLimit:
		s.sb.Kernel.Frames.SetLimit(0)
	case a.Memory > 0:
		s.sb.Kernel.Frames.SetLimit(a.Memory)
	}
	r.CPUs = s.sb.Kernel.CPUs()
	_, _, r.Memory = s.sb.Kernel.Frames.Usage()
	return nil
}

// Shutdown ends the sandbox: every process is killed and the sentry
// exits once the reply is sent.
func (s *Sentry) Shutdown(_ Empty, _ *Empty) error {
	s.stopOnce.Do(func() { close(s.stop) })
	return nil
}
