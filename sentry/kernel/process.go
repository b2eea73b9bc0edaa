package kernel

import (
	"context"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/platform"
)

// ThreadGroup is a process.
type ThreadGroup struct {
	k   *Kernel
	pid int32 // in the root PID namespace
	// ns is the PID namespace the process belongs to (fixed).
	ns *PIDNamespace

	// Guarded by k.mu.
	leader     *Task
	tasks      map[*Task]struct{}
	parent     *ThreadGroup
	children   map[*ThreadGroup]struct{}
	pgid, sid  int32
	handlers   *SignalHandlers
	pending    sigQueue
	exitSignal abi.Signal // sent to the parent at exit
	exiting    bool
	exited     bool // zombie: all tasks gone, not yet reaped
	status     WaitStatus
	termSignal abi.Signal
	coreDump   bool
	oomKilled  bool
	groupExit  bool
	// childEvent is closed and replaced when a child changes state.
	childEvent  chan struct{}
	rlimits     map[int]abi.Rlimit
	start       time.Time
	childCPU    time.Duration
	exitedCPU   time.Duration
	realTimer   realTimer
	posixTimers posixTimers
	// Job control: a stopped process's tasks wait for contCh to close.
	stopped    bool
	stopSig    abi.Signal
	contCh     chan struct{}
	stopReport bool // a stop the parent has not waited for yet
	contReport bool // a continue the parent has not waited for yet
	// Container is the name of the container the process belongs to
	// (set for a container's init, inherited).
	Container string
	// zombieName keeps the leader's comm for /proc once the leader is
	// gone.
	zombieName string
	// oomScoreAdj is /proc/[pid]/oom_score_adj (inherited by children).
	oomScoreAdj int32
	// OnExit, if set on a process, runs when it is reaped or exits with
	// no one to reap it.
	onExit func(WaitStatus)
}

// PID returns the process ID in the sandbox's root PID namespace (the ID
// the sentry and its control API use; a process sees its own numbering
// through Task.LocalPID).
func (g *ThreadGroup) PID() int32 { return g.pid }

// Leader returns the main thread (nil once it has exited).
func (g *ThreadGroup) Leader() *Task {
	g.k.mu.Lock()
	defer g.k.mu.Unlock()
	return g.leader
}

// Tasks returns the live threads.
func (g *ThreadGroup) Tasks() []*Task {
	g.k.mu.Lock()
	defer g.k.mu.Unlock()
	out := make([]*Task, 0, len(g.tasks))
	for t := range g.tasks {
		out = append(out, t)
	}
	return out
}

// PPID returns the parent's PID (0 for init).
func (g *ThreadGroup) PPID() int32 {
	g.k.mu.Lock()
	defer g.k.mu.Unlock()
	if g.parent == nil {
		return 0
	}
	return g.parent.pid
}

// PGID and SID return the process group and session.
func (g *ThreadGroup) PGID() int32 {
	g.k.mu.Lock()
	defer g.k.mu.Unlock()
	return g.pgid
}

// SID returns the session ID.
func (g *ThreadGroup) SID() int32 {
	g.k.mu.Lock()
	defer g.k.mu.Unlock()
	return g.sid
}

// Zombie reports whether the process has exited and awaits its parent.
func (g *ThreadGroup) Zombie() bool {
	g.k.mu.Lock()
	defer g.k.mu.Unlock()
	return g.exited
}

// Rlimit returns resource limit res.
func (g *ThreadGroup) Rlimit(res int) abi.Rlimit {
	g.k.mu.Lock()
	defer g.k.mu.Unlock()
	if l, ok := g.rlimits[res]; ok {
		return l
	}
	return defaultRlimit(res)
}

// SetRlimit sets resource limit res.
func (g *ThreadGroup) SetRlimit(res int, l abi.Rlimit) {
	g.k.mu.Lock()
	defer g.k.mu.Unlock()
	g.rlimits[res] = l
}

func defaultRlimit(res int) abi.Rlimit {
	inf := ^uint64(0)
	switch res {
	case abi.RLIMIT_NOFILE:
		return abi.Rlimit{Cur: 1048576, Max: 1048576}
	case abi.RLIMIT_STACK:
		return abi.Rlimit{Cur: 8 << 20, Max: inf}
	case abi.RLIMIT_CORE:
		return abi.Rlimit{Cur: 0, Max: inf}
	case abi.RLIMIT_NPROC, abi.RLIMIT_SIGPENDING:
		return abi.Rlimit{Cur: 63536, Max: 63536}
	case abi.RLIMIT_MEMLOCK:
		return abi.Rlimit{Cur: 8 << 20, Max: 8 << 20}
	case abi.RLIMIT_MSGQUEUE:
		return abi.Rlimit{Cur: 819200, Max: 819200}
	}
	return abi.Rlimit{Cur: inf, Max: inf}
}

// notifyChildLocked wakes waiters in g's wait4.
func (g *ThreadGroup) notifyChildLocked() {
	close(g.childEvent)
	g.childEvent = make(chan struct{})
}

// killGroupLocked makes every thread of g exit with sig.
// Preconditions: k.mu is held.
func (k *Kernel) killGroupLocked(g *ThreadGroup, sig abi.Signal) {
	if g.exiting {
		return
	}
	g.exiting = true
	g.groupExit = true
	if g.termSignal == 0 {
		g.termSignal = sig
	}
	for t := range g.tasks {
		t.exiting = true
		t.wakeLocked()
	}
}

// ExitGroup makes the whole process exit with status code.
func (t *Task) ExitGroup(code int) {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if !t.tg.exiting {
		t.tg.status = Exited(code)
	}
	k.killGroupLocked(t.tg, 0)
}

// Exit ends the calling thread (exit(2)); the last thread ends the process.
func (t *Task) Exit(code int) {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	t.exiting = true
	t.exitStatus = Exited(code)
	if len(t.tg.tasks) == 1 && !t.tg.exiting {
		t.tg.status = Exited(code)
	}
}

// finishExit runs on the task goroutine when it leaves the run loop.
func (t *Task) finishExit() {
	k := t.k
	ctx := t.ctx
	// clear_child_tid: zero it and wake a futex waiter (pthread_join).
	if t.clearChildTID != 0 && t.mm != nil {
		var zero [4]byte
		if _, err := t.mm.CopyOut(ctx, t.clearChildTID, zero[:]); err == nil {
			k.Futexes().Wake(t, t.clearChildTID, false, 1, ^uint32(0))
		}
	}
	t.releaseRobustList()
	k.mu.Lock()
	g := t.tg
	delete(g.tasks, t)
	delete(k.tasks, t.tid)
	k.releaseIDLocked(t.tid)
	g.exitedCPU += t.CPUTime()
	used := CPUUsage{User: t.HostUserTime(), System: t.SysTime()}
	k.exitedCPU[g.Container] = k.exitedCPU[g.Container].add(used)
	k.exitedCPUAll = k.exitedCPUAll.add(used)
	if g.leader == t && len(g.tasks) > 0 {
		// The leader's PID lives on while other threads run.
	}
	if t.vforkDone != nil {
		close(t.vforkDone)
		t.vforkDone = nil
	}
	last := len(g.tasks) == 0
	if last {
		g.exiting = true
		if g.termSignal != 0 && g.status == 0 {
			g.status = Signaled(g.termSignal, g.coreDump)
		}
	}
	k.mu.Unlock()

	t.fds.DecRef(ctx)
	t.fs.decRef(ctx)
	t.mm.DecUsers(ctx)
	if last {
		k.processExited(g)
	}
}

// processExited turns g into a zombie, reparents its children and tells
// its parent.
func (k *Kernel) processExited(g *ThreadGroup) {
	g.stopTimers()
	k.mu.Lock()
	defer k.mu.Unlock()
	g.exited = true
	if g.leader != nil {
		g.zombieName = g.leader.name
	}
	g.leader = nil
	// Orphans go to the init of g's PID namespace (or of the nearest
	// namespace above whose init lives), which reaps them.
	reaper := k.reaperLocked(g)
	for c := range g.children {
		delete(g.children, c)
		if reaper != nil {
			c.parent = reaper
			reaper.children[c] = struct{}{}
			if c.exited {
				reaper.notifyChildLocked()
			}
		} else {
			c.parent = nil
			if c.exited {
				k.reapLocked(c)
			}
		}
	}
	if g.ns.init == g || g == k.init {
		// A PID namespace ends with its init: everything else in it
		// (and below) is killed, and nothing new may enter. The
		// sandbox ends with its init: everything is killed.
		g.ns.dead = true
		for _, o := range k.groups {
			if o != g && (g.ns.contains(o.ns) || g == k.init) {
				k.killGroupLocked(o, abi.SIGKILL)
			}
		}
	}
	p := g.parent
	if p == nil {
		k.reapLocked(g)
		return
	}
	autoReap := p.handlers.actions[abi.SIGCHLD].Handler == abi.SIG_IGN ||
		p.handlers.actions[abi.SIGCHLD].Flags&abi.SA_NOCLDWAIT != 0
	if g.exitSignal.Valid() {
		var info abi.SignalInfo
		info.SetSigno(g.exitSignal)
		info.SetPID(p.ns.idLocked(g.pid))
		if sig := g.status.Signal(); sig != 0 {
			info.SetCode(abi.CLD_KILLED)
			info.SetStatus(int32(sig))
		} else {
			info.SetCode(abi.CLD_EXITED)
			info.SetStatus(int32(g.status.ExitCode()))
		}
		k.sendGroupLocked(p, &info, false)
	}
	p.notifyChildLocked()
	if autoReap {
		k.reapLocked(g)
	}
}

// reapLocked removes a zombie for good.
func (k *Kernel) reapLocked(g *ThreadGroup) {
	if g.parent != nil {
		delete(g.parent.children, g)
		g.parent.childCPU += g.cpuTimeLocked()
	}
	delete(k.groups, g.pid)
	k.releaseIDLocked(g.pid)
	k.releaseIDLocked(g.pgid)
	k.releaseIDLocked(g.sid)
	if g.onExit != nil {
		g.onExit(g.status)
		g.onExit = nil
	}
	if g == k.init {
		k.initStatus = g.status
		close(k.initExit)
	}
}

// reaperLocked returns the process that adopts the orphans of g: the
// init of g's namespace, or of the nearest one above it whose init lives.
// Preconditions: k.mu is held.
func (k *Kernel) reaperLocked(g *ThreadGroup) *ThreadGroup {
	for n := g.ns; n != nil; n = n.parent {
		if r := n.init; r != nil && r != g && !r.exited {
			return r
		}
	}
	return nil
}

func (g *ThreadGroup) cpuTimeLocked() time.Duration { return g.exitedCPU + g.childCPU }

// ChildrenCPUTime is the CPU time of the reaped children (RUSAGE_CHILDREN).
func (g *ThreadGroup) ChildrenCPUTime() time.Duration {
	g.k.mu.Lock()
	defer g.k.mu.Unlock()
	return g.childCPU
}

// WaitOptions are wait4/waitid's.
type WaitOptions struct {
	// PID: >0 that child; -1 any; 0 own process group; <-1 group -PID
	// (IDs of the caller's PID namespace).
	PID       int32
	NoHang    bool
	NoWait    bool // WNOWAIT: leave the child as it is
	Exited    bool
	Stopped   bool // WUNTRACED / WSTOPPED
	Continued bool // WCONTINUED
}

// WaitResult is what wait found.
type WaitResult struct {
	PID    int32
	Status WaitStatus
	UID    uint32
	// Code is the siginfo code: CLD_EXITED, CLD_KILLED, CLD_STOPPED or
	// CLD_CONTINUED.
	Code int32
}

// Wait waits for a child to change state (wait4, waitid).
func (t *Task) Wait(o WaitOptions) (*WaitResult, error) {
	k := t.k
	for {
		k.mu.Lock()
		g := t.tg
		found := false
		ns := g.ns
		want := o.PID
		switch {
		case want > 0:
			want = ns.rootIDLocked(want)
		case want < -1:
			want = -ns.rootIDLocked(-want)
		}
		for c := range g.children {
			if want == 0 && o.PID != 0 || !matches(c, want, g) {
				continue
			}
			found = true
			cpid := ns.idLocked(c.pid)
			if c.exited && o.Exited {
				res := &WaitResult{PID: cpid, Status: c.status, Code: abi.CLD_EXITED}
				if c.status.Signal() != 0 {
					res.Code = abi.CLD_KILLED
				}
				if !o.NoWait {
					k.reapLocked(c)
				}
				k.mu.Unlock()
				return res, nil
			}
			if c.stopReport && o.Stopped && !c.exited {
				if !o.NoWait {
					c.stopReport = false
				}
				k.mu.Unlock()
				return &WaitResult{PID: cpid, Status: WaitStatus(c.stopSig)<<8 | 0x7f, Code: abi.CLD_STOPPED}, nil
			}
			if c.contReport && o.Continued && !c.exited {
				if !o.NoWait {
					c.contReport = false
				}
				k.mu.Unlock()
				return &WaitResult{PID: cpid, Status: 0xffff, Code: abi.CLD_CONTINUED}, nil
			}
		}
		ev := g.childEvent
		k.mu.Unlock()
		if !found {
			return nil, unix.ECHILD
		}
		if o.NoHang {
			return nil, nil
		}
		if err := t.Block(ev, time.Time{}); err != nil {
			return nil, ErrRestartSys
		}
	}
}

func matches(c *ThreadGroup, pid int32, self *ThreadGroup) bool {
	switch {
	case pid > 0:
		return c.pid == pid
	case pid == -1:
		return true
	case pid == 0:
		return c.pgid == self.pgid
	default:
		return c.pgid == -pid
	}
}

// CloneOptions are clone(2)'s.
type CloneOptions struct {
	Flags      uint64
	Stack      uint64
	TLS        uint64
	ParentTID  uint64
	ChildTID   uint64
	ExitSignal abi.Signal
}

// Clone creates a thread or a process (clone, fork, vfork, clone3).
func (t *Task) Clone(o CloneOptions) (int32, error) {
	k := t.k
	f := o.Flags
	if f&abi.CLONE_SIGHAND != 0 && f&abi.CLONE_VM == 0 {
		return 0, unix.EINVAL
	}
	if f&abi.CLONE_THREAD != 0 && f&abi.CLONE_SIGHAND == 0 {
		return 0, unix.EINVAL
	}
	if f&abi.CLONE_NEWPID != 0 && f&abi.CLONE_THREAD != 0 {
		return 0, unix.EINVAL
	}
	if f&abi.CLONE_PARENT != 0 && t.tg.ns.Init() == t.tg {
		// An init makes no siblings (they would have no reaper).
		return 0, unix.EINVAL
	}
	if f&abi.CLONE_NEWPID != 0 && !t.HasCapability(capSysAdmin) {
		return 0, unix.EPERM
	}
	if f&(abi.CLONE_NEWNS|abi.CLONE_NEWUSER|abi.CLONE_NEWNET|abi.CLONE_NEWIPC|abi.CLONE_NEWUTS|abi.CLONE_NEWCGROUP) != 0 {
		return 0, unix.EPERM
	}
	// The child's namespace: the caller's, or the one unshare made for
	// its children, or a new one below the caller's.
	ns := t.tg.ns
	if t.childNS != nil {
		if f&(abi.CLONE_NEWPID|abi.CLONE_THREAD) != 0 {
			return 0, unix.EINVAL
		}
		ns = t.childNS
	}
	if f&abi.CLONE_NEWPID != 0 {
		n, err := k.NewPIDNamespace(ns)
		if err != nil {
			return 0, err
		}
		ns = n
	}
	if o.TLS != 0 && f&abi.CLONE_SETTLS != 0 && o.TLS >= platform.UserTop {
		return 0, unix.EPERM
	}
	ctx := t.ctx
	// Memory.
	nmm := t.mm
	if f&abi.CLONE_VM != 0 {
		t.mm.IncUsers()
	} else {
		var err error
		if nmm, err = t.mm.Fork(ctx, k.M); err != nil {
			return 0, unix.ENOMEM
		}
	}
	fp, err := t.fp.Fork()
	if err != nil {
		nmm.DecUsers(ctx)
		return 0, unix.ENOMEM
	}
	fds := t.fds
	if f&abi.CLONE_FILES != 0 {
		fds.IncRef()
	} else {
		fds = fds.Fork()
	}
	fsc := t.fs
	if f&abi.CLONE_FS != 0 {
		fsc.mu.Lock()
		fsc.refs++
		fsc.mu.Unlock()
	} else {
		fsc = fsc.fork()
	}

	nt := &Task{
		k: k, mm: nmm, fp: fp, fds: fds, fs: fsc, creds: t.creds,
		interrupt: make(chan struct{}, 1),
	}
	nt.ctx = contextWithTask(context.Background(), nt)
	nt.regs = t.regs
	nt.regs.RAX = 0
	if o.Stack != 0 {
		nt.regs.RSP = o.Stack
	}
	if f&abi.CLONE_SETTLS != 0 {
		nt.regs.FSBase = o.TLS
	}
	if f&abi.CLONE_CHILD_CLEARTID != 0 {
		nt.clearChildTID = o.ChildTID
	}

	k.mu.Lock()
	if t.tg.exiting || len(k.tasks) >= k.maxTasks {
		full := !t.tg.exiting
		k.mu.Unlock()
		nt.fds.DecRef(ctx)
		nt.fs.decRef(ctx)
		nt.mm.DecUsers(ctx)
		if full {
			// The sandbox's task limit (a pod's pids limit): a fork
			// bomb stops here, not on the host.
			return 0, unix.EAGAIN
		}
		return 0, ErrRestartNoIntr
	}
	tid, err := k.allocIDLocked(ns)
	if err != nil {
		k.mu.Unlock()
		nt.fds.DecRef(ctx)
		nt.fs.decRef(ctx)
		nt.mm.DecUsers(ctx)
		return 0, err
	}
	nt.tid = tid
	nt.name = t.name
	nt.seccomp.Store(t.seccomp.Load())
	nt.sigMask = t.sigMask
	nt.altStack = t.altStack
	if f&abi.CLONE_VM != 0 && f&abi.CLONE_VFORK == 0 {
		nt.altStack = abi.SignalStack{Flags: abi.SS_DISABLE}
	}
	if f&abi.CLONE_THREAD != 0 {
		nt.tg = t.tg
	} else {
		handlers := t.tg.handlers
		if f&abi.CLONE_SIGHAND == 0 {
			handlers = handlers.copy()
		}
		parent := t.tg
		if f&abi.CLONE_PARENT != 0 && t.tg.parent != nil {
			parent = t.tg.parent
		}
		g := &ThreadGroup{
			k: k, pid: nt.tid, ns: ns, leader: nt, tasks: map[*Task]struct{}{},
			parent: parent, children: map[*ThreadGroup]struct{}{},
			pgid: t.tg.pgid, sid: t.tg.sid, handlers: handlers,
			exitSignal: o.ExitSignal, childEvent: make(chan struct{}),
			rlimits: copyRlimits(t.tg.rlimits), start: time.Now(),
			Container: t.tg.Container, oomScoreAdj: t.tg.oomScoreAdj,
		}
		if ns != t.tg.ns && ns.init == nil {
			// The first process of a namespace is its init.
			ns.init = g
		}
		parent.children[g] = struct{}{}
		k.groups[g.pid] = g
		nt.tg = g
	}
	// The parent sees the child numbered in its own namespace; the
	// child sees itself in its own.
	parentTID := t.tg.ns.idLocked(nt.tid)
	childTID := ns.idLocked(nt.tid)
	nt.tg.tasks[nt] = struct{}{}
	k.tasks[nt.tid] = nt
	var vfork chan struct{}
	if f&abi.CLONE_VFORK != 0 {
		vfork = make(chan struct{})
		nt.vforkDone = vfork
	}
	k.mu.Unlock()

	put := func(m interface {
		CopyOut(context.Context, uint64, []byte) (int, error)
	}, addr uint64, id int32) {
		v := uint32(id)
		b := [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
		m.CopyOut(ctx, addr, b[:])
	}
	if f&abi.CLONE_PARENT_SETTID != 0 {
		put(t.mm, o.ParentTID, parentTID)
	}
	if f&abi.CLONE_CHILD_SETTID != 0 {
		put(nmm, o.ChildTID, childTID)
	}
	k.liveTasks.Add(1)
	go nt.run()
	if vfork != nil {
		// The parent sleeps until the child execs or exits.
		for {
			if err := t.Block(vfork, time.Time{}); err == nil {
				break
			}
			if t.hasExitPending() {
				break
			}
			t.clearInterrupt()
			// Signals wait until the child lets go of the memory.
			time.Sleep(time.Millisecond)
		}
	}
	return parentTID, nil
}

func (t *Task) hasExitPending() bool {
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	return t.exiting
}

func copyRlimits(m map[int]abi.Rlimit) map[int]abi.Rlimit {
	n := make(map[int]abi.Rlimit, len(m))
	for k, v := range m {
		n[k] = v
	}
	return n
}

// Setpgid and friends manage process groups and sessions.
func (k *Kernel) Setpgid(caller *ThreadGroup, pid, pgid int32) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	target := caller
	if pid < 0 {
		return unix.EINVAL
	}
	if pid != 0 {
		target = k.groups[caller.ns.rootIDLocked(pid)]
	}
	if target != caller {
		if target == nil || target.parent != caller {
			return unix.ESRCH
		}
		if target.sid != caller.sid {
			return unix.EPERM
		}
	}
	if pgid < 0 {
		return unix.EINVAL
	}
	if pgid == 0 {
		pgid = target.pid
	} else if pgid = caller.ns.rootIDLocked(pgid); pgid == 0 {
		return unix.EPERM
	}
	if target.sid == target.pid {
		return unix.EPERM
	}
	if pgid != target.pid {
		ok := false
		for _, g := range k.groups {
			if g.pgid == pgid && g.sid == target.sid {
				ok = true
				break
			}
		}
		if !ok {
			return unix.EPERM
		}
	}
	old := target.pgid
	target.pgid = pgid
	k.releaseIDLocked(old)
	return nil
}

// Setsid makes the caller a session and group leader.
func (k *Kernel) Setsid(g *ThreadGroup) (int32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, o := range k.groups {
		if o.pgid == g.pid {
			return 0, unix.EPERM
		}
	}
	oldSID, oldPGID := g.sid, g.pgid
	g.sid, g.pgid = g.pid, g.pid
	k.releaseIDLocked(oldSID)
	k.releaseIDLocked(oldPGID)
	return g.ns.idLocked(g.pid), nil
}

// Kill implements kill(2)'s targeting, in the caller's PID namespace.
func (t *Task) Kill(pid int32, sig abi.Signal) error {
	k := t.k
	if sig != 0 && !sig.Valid() {
		return unix.EINVAL
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	ns := t.tg.ns
	var targets []*ThreadGroup
	switch {
	case pid > 0:
		g := k.groups[ns.rootIDLocked(pid)]
		if g == nil {
			return unix.ESRCH
		}
		if g.exited && sig != 0 {
			return nil
		}
		targets = []*ThreadGroup{g}
	case pid == 0 || pid < -1:
		pg := t.tg.pgid
		if pid < -1 {
			if pg = ns.rootIDLocked(-pid); pg == 0 {
				return unix.ESRCH
			}
		}
		for _, g := range k.groups {
			if g.pgid == pg && !g.exited && ns.contains(g.ns) {
				targets = append(targets, g)
			}
		}
	default: // -1: everyone the caller sees but its namespace's init and itself
		for _, g := range k.groups {
			if g != ns.init && g != k.init && g != t.tg && !g.exited && ns.contains(g.ns) {
				targets = append(targets, g)
			}
		}
	}
	if len(targets) == 0 {
		return unix.ESRCH
	}
	permitted := 0
	for _, g := range targets {
		if !t.maySignalLocked(g, sig) {
			continue
		}
		permitted++
		if sig == 0 {
			continue
		}
		info := SignalInfoKill(sig, abi.SI_USER, g.ns.idLocked(t.tg.pid), t.creds.RUID)
		k.sendGroupLocked(g, info, t.tg.ns != g.ns)
	}
	if permitted == 0 {
		return unix.EPERM
	}
	return nil
}

// maySignalLocked applies kill(2)'s permission rule: CAP_KILL, or the
// sender's real or effective user is the target's real or saved user
// (SIGCONT within a session is always allowed).
// Preconditions: k.mu is held.
func (t *Task) maySignalLocked(g *ThreadGroup, sig abi.Signal) bool {
	if g == t.tg || t.creds.HasCap(capKill) {
		return true
	}
	if sig == abi.SIGCONT && g.sid == t.tg.sid {
		return true
	}
	var tc *Creds
	if g.leader != nil {
		tc = g.leader.creds
	} else {
		for o := range g.tasks {
			tc = o.creds
			break
		}
	}
	if tc == nil {
		return true // a zombie: nothing to protect
	}
	c := t.creds
	return c.EUID == tc.RUID || c.EUID == tc.SUID || c.RUID == tc.RUID || c.RUID == tc.SUID
}

// Tgkill sends sig to thread tid of process tgid (tgid <= 0: any), both
// numbered in the caller's PID namespace.
func (t *Task) Tgkill(tgid, tid int32, sig abi.Signal, code int32) error {
	k := t.k
	if sig != 0 && !sig.Valid() || tid <= 0 {
		return unix.EINVAL
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	ns := t.tg.ns
	target := k.tasks[ns.rootIDLocked(tid)]
	if target == nil || (tgid > 0 && target.tg.pid != ns.rootIDLocked(tgid)) {
		return unix.ESRCH
	}
	if !t.maySignalLocked(target.tg, sig) {
		return unix.EPERM
	}
	if sig == 0 {
		return nil
	}
	k.sendTaskLocked(target, SignalInfoKill(sig, code, target.tg.ns.idLocked(t.tg.pid), t.creds.RUID))
	return nil
}

// CPUTime is the time the process's threads have spent running user code
// (those that exited included).
func (g *ThreadGroup) CPUTime() time.Duration {
	g.k.mu.Lock()
	defer g.k.mu.Unlock()
	d := g.exitedCPU
	for t := range g.tasks {
		d += t.CPUTime()
	}
	return d
}

// groupStopLocked stops process g with sig (SIGSTOP, SIGTSTP, SIGTTIN,
// SIGTTOU) and tells its parent.
// Preconditions: k.mu is held.
func (k *Kernel) groupStopLocked(g *ThreadGroup, sig abi.Signal) {
	if g.stopped || g.exiting {
		return
	}
	g.stopped = true
	g.stopSig = sig
	g.contCh = make(chan struct{})
	g.stopReport = true
	g.contReport = false
	for t := range g.tasks {
		t.wakeLocked()
	}
	k.notifyParentJobLocked(g, abi.CLD_STOPPED, int32(sig))
}

// groupContinueLocked resumes a stopped process (SIGCONT).
// Preconditions: k.mu is held.
func (k *Kernel) groupContinueLocked(g *ThreadGroup) {
	if !g.stopped {
		return
	}
	g.stopped = false
	close(g.contCh)
	g.stopReport = false
	g.contReport = true
	k.notifyParentJobLocked(g, abi.CLD_CONTINUED, int32(abi.SIGCONT))
}

func (k *Kernel) notifyParentJobLocked(g *ThreadGroup, code, status int32) {
	p := g.parent
	if p == nil {
		return
	}
	p.notifyChildLocked()
	if p.handlers.actions[abi.SIGCHLD].Flags&abi.SA_NOCLDSTOP != 0 {
		return
	}
	var info abi.SignalInfo
	info.SetSigno(abi.SIGCHLD)
	info.SetPID(g.pid)
	info.SetCode(code)
	info.SetStatus(status)
	k.sendGroupLocked(p, &info, false)
}

// Stopped reports whether the process is stopped by job control.
func (g *ThreadGroup) Stopped() bool {
	g.k.mu.Lock()
	defer g.k.mu.Unlock()
	return g.stopped
}
