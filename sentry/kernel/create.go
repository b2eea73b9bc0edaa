package kernel

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/vfs"
)

// ProcessSpec describes a process started from outside the sandbox: a
// container's init, or an exec into a running container.
type ProcessSpec struct {
	Argv []string
	Envv []string
	// Path of the program; Argv[0] when empty (looked up in PATH by the
	// caller, not here).
	Path string
	Cwd  string
	Creds
	Umask uint32
	// Stdio are the files for descriptors 0, 1 and 2 (nil: none). The
	// process takes its own references.
	Stdio [3]*vfs.File
	// Init makes the process the sandbox's init, whose exit ends it,
	// and the init (PID 1) of its PID namespace.
	Init bool
	// PIDNamespace is the namespace the process is made in (nil: the
	// sandbox's root one). The first process of a namespace other than
	// the root becomes its init (PID 1 there).
	PIDNamespace *PIDNamespace
	Container    string
	// OnExit is called with the exit status once the process is gone.
	OnExit func(WaitStatus)
	// Rlimits override the defaults.
	Rlimits map[int]abi.Rlimit
	// Root is the process's root directory (a container's root
	// filesystem); the VFS root when not set. The process takes its own
	// reference.
	Root vfs.VirtualDentry
	// Seccomp, if set, is the process's first seccomp filter (the
	// container's profile), installed whatever the credentials, as a
	// runtime does before it executes the container's program.
	Seccomp *SeccompFilter
}

// CreateProcess starts a process.
func (k *Kernel) CreateProcess(spec ProcessSpec) (*ThreadGroup, error) {
	ctx := context.Background()
	creds := spec.Creds
	creds.Groups = append([]uint32(nil), creds.Groups...)
	creds.complete()
	if spec.Path == "" && len(spec.Argv) > 0 {
		spec.Path = spec.Argv[0]
	}
	if spec.Path == "" {
		return nil, fmt.Errorf("create process: no program given")
	}
	root := spec.Root
	if root.Ok() {
		root.IncRef()
	} else {
		root = k.VFS.Root()
	}
	fsc := &FSContext{root: root, umask: spec.Umask, refs: 1}
	fsc.cwd = fsc.root
	fsc.cwd.IncRef()
	t := &Task{
		k: k, fds: NewFDTable(), fs: fsc, creds: &creds,
		interrupt: make(chan struct{}, 1),
	}
	t.ctx = contextWithTask(ctx, t)
	fail := func(err error) (*ThreadGroup, error) {
		t.fds.DecRef(ctx)
		fsc.decRef(ctx)
		return nil, err
	}
	if spec.Seccomp != nil {
		s, err := stackFilter(nil, *spec.Seccomp)
		if err != nil {
			return fail(fmt.Errorf("create process: seccomp filter: %w", err))
		}
		t.seccomp.Store(s)
	}
	if spec.Cwd != "" && spec.Cwd != "/" {
		pop, done, err := t.PathOp(abi.AT_FDCWD, spec.Cwd, true)
		if err != nil {
			return fail(err)
		}
		vd, err := k.VFS.GetDirectoryAt(ctx, creds.VFSCreds(), pop)
		done()
		if err != nil {
			return fail(fmt.Errorf("working directory %s: %w", spec.Cwd, err))
		}
		fsc.SetCwd(ctx, vd)
	}
	for i, f := range spec.Stdio {
		if f != nil {
			if _, err := t.fds.New(f, int32(i), false, 1<<20); err != nil {
				return fail(err)
			}
		}
	}
	// A bootstrap address space lets load use the task's path lookups.
	img, err := t.load(ExecArgs{Path: spec.Path, DirFD: abi.AT_FDCWD, Argv: spec.Argv, Envv: spec.Envv})
	if err != nil {
		return fail(fmt.Errorf("exec %s: %w", spec.Path, err))
	}
	t.mm = img.mm
	// The first program of a process goes through execve's credential
	// rules, as a runtime's exec of the container's process does.
	t.creds = img.creds
	t.fp = k.M.NewFPState()
	t.regs.RIP, t.regs.RSP, t.regs.RFLAGS = img.entry, img.sp, 0x202
	t.regs.CS, t.regs.SS = 0x33, 0x2b
	t.name = img.name
	if len(t.name) > 15 {
		t.name = t.name[:15]
	}

	ns := spec.PIDNamespace
	if ns == nil {
		ns = k.rootNS
	}
	k.mu.Lock()
	if spec.Init && (k.init != nil || ns.init != nil) {
		k.mu.Unlock()
		t.mm.DecUsers(ctx)
		return fail(fmt.Errorf("create process: the sandbox or its PID namespace already has an init"))
	}
	if len(k.tasks) >= k.maxTasks {
		k.mu.Unlock()
		t.mm.DecUsers(ctx)
		return fail(fmt.Errorf("create process: the sandbox's task limit (%d) is reached: %w", k.maxTasks, unix.EAGAIN))
	}
	tid, err := k.allocIDLocked(ns)
	if err != nil {
		k.mu.Unlock()
		t.mm.DecUsers(ctx)
		if err == unix.ENOMEM {
			return fail(fmt.Errorf("create process: the PID namespace has ended with its init: %w", err))
		}
		return fail(fmt.Errorf("create process: PID namespace: %w", err))
	}
	t.tid = tid
	g := &ThreadGroup{
		k: k, pid: t.tid, ns: ns, leader: t, tasks: map[*Task]struct{}{t: {}},
		children: map[*ThreadGroup]struct{}{}, handlers: &SignalHandlers{},
		childEvent: make(chan struct{}), rlimits: map[int]abi.Rlimit{},
		start: time.Now(), Container: spec.Container, onExit: spec.OnExit,
	}
	for r, l := range spec.Rlimits {
		g.rlimits[r] = l
	}
	g.pgid, g.sid = g.pid, g.pid
	t.tg = g
	if spec.Init {
		k.init = g
	}
	if spec.Init || (ns != k.rootNS && ns.init == nil) {
		ns.init = g
	}
	k.groups[g.pid] = g
	k.tasks[t.tid] = t
	k.liveTasks.Add(1)
	k.mu.Unlock()
	go t.run()
	return g, nil
}

// Init returns the sandbox's init process.
func (k *Kernel) Init() *ThreadGroup {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.init
}
