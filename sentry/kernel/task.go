package kernel

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/mm"
	"moat.dev/moat/sentry/platform"
	"moat.dev/moat/sentry/vfs"
)

// Creds are a task's credentials: user and group ids, the five
// capability sets of capabilities(7) and no_new_privs. The sentry's
// permission checks look at the effective set (Caps).
type Creds struct {
	RUID, EUID, SUID, FSUID uint32
	RGID, EGID, SGID, FSGID uint32
	Groups                  []uint32
	// Caps is the effective capability set.
	Caps auth.CapSet
	// Permitted, Inheritable, Bounding and Ambient are the other sets.
	// A Creds whose four are all empty while Caps is not (a caller that
	// knows only one set) is completed by CreateProcess: permitted and
	// bounding then equal Caps.
	Permitted, Inheritable, Bounding, Ambient auth.CapSet
	NoNewPrivs                                bool
	// KeepCaps is PR_SET_KEEPCAPS: leaving uid 0 keeps the permitted
	// set (execve clears it).
	KeepCaps bool
}

// VFSCreds returns what the VFS checks permissions with: the
// filesystem ids and the effective set (which setfsuid and the setuid
// family adjust as Linux does).
func (c *Creds) VFSCreds() *auth.Credentials {
	return &auth.Credentials{UID: c.FSUID, GID: c.FSGID, Groups: c.Groups, Effective: c.Caps}
}

// FSContext is a task's root, working directory and umask (shared with
// CLONE_FS).
type FSContext struct {
	mu    sync.Mutex
	root  vfs.VirtualDentry
	cwd   vfs.VirtualDentry
	umask uint32
	refs  int
}

// Task is one thread.
type Task struct {
	// oomRetries counts the faults past the memory limit this task has
	// retried since its last resolved fault, while another process
	// chosen by the OOM killer gives its memory back.
	oomRetries int
	k          *Kernel
	tg         *ThreadGroup
	tid        int32

	// Owned by the task goroutine.
	mm    *mm.MM
	regs  platform.Registers
	fp    platform.FPState
	cpu   platform.CPU
	slot  bool // holds a scheduler slot
	fds   *FDTable
	fs    *FSContext
	creds *Creds
	// childNS is the PID namespace unshare(CLONE_NEWPID) made for the
	// task's children (nil: its own).
	childNS *PIDNamespace
	ctx     context.Context
	// restart says the syscall just returned a restart error.
	restart error

	// Guarded by k.mu.
	name          string
	sigMask       abi.SignalSet
	savedMask     *abi.SignalSet // rt_sigsuspend/pselect restore this
	sigWaiting    abi.SignalSet  // the set rt_sigtimedwait waits for
	pending       sigQueue
	altStack      abi.SignalStack
	exiting       bool
	exitStatus    WaitStatus
	clearChildTID uint64
	robustList    uint64
	vforkDone     chan struct{}
	// interrupt is signalled when a signal needs the task's attention.
	interrupt chan struct{}
	// running is the CPU while in Switch (for kicks).
	running platform.CPU
	start   time.Time
	// cpuTime is the time the task has held a vCPU in user mode, what
	// the guest's own clocks (CLOCK_THREAD_CPUTIME_ID, getrusage) show;
	// userSince is when it entered user mode (Unix nanoseconds, 0
	// outside), so that a task computing without trapping has its time
	// counted while it runs.
	cpuTime   atomic.Int64
	userSince atomic.Int64
	// The host's count, for the container's and pod's usage (a cgroup's
	// cpu.stat): the CPU time of the host thread holding the task's vCPU
	// (CLOCK_THREAD_CPUTIME_ID, guest time included), so time the host
	// gave to something else is not counted. hostUser is that time in
	// user mode; userTID is the thread while the task runs user code (0
	// outside) and userBase its CPU time then. sysTime is the thread's
	// CPU time for the task outside user mode while it held its vCPU:
	// serving its syscalls and faults, delivering its signals; sysBase is
	// the thread's CPU time when that began (0: not counting); vcpuTID is
	// the thread holding the vCPU.
	hostUser atomic.Int64
	userTID  atomic.Int32
	userBase atomic.Int64
	sysTime  atomic.Int64
	sysBase  int64
	vcpuTID  int32
	// parked says the task holds no CPU and waits (blocked in a syscall,
	// stopped, frozen, or queued for a CPU): the freezer counts it as
	// stopped.
	parked atomic.Bool
	// seccomp is the task's seccomp state (nil: none); see seccomp.go.
	seccomp atomic.Pointer[seccompState]
}

// TID returns the task's thread ID.
func (t *Task) TID() int32 { return t.tid }

// ThreadGroup returns the task's process.
func (t *Task) ThreadGroup() *ThreadGroup { return t.tg }

// Kernel returns the task's kernel.
func (t *Task) Kernel() *Kernel { return t.k }

// MM returns the task's address space.
func (t *Task) MM() *mm.MM { return t.mm }

// Regs returns the task's user registers (valid inside a syscall).
func (t *Task) Regs() *platform.Registers { return &t.regs }

// FP returns the task's FP state.
func (t *Task) FP() platform.FPState { return t.fp }

// FDs returns the task's file descriptor table.
func (t *Task) FDs() *FDTable { return t.fds }

// FS returns the task's filesystem context.
func (t *Task) FS() *FSContext { return t.fs }

// Creds returns the task's credentials (do not modify; use SetCreds).
func (t *Task) Creds() *Creds { return t.creds }

// SetCreds replaces the task's credentials. Other goroutines (/proc)
// read them under the kernel's lock.
func (t *Task) SetCreds(c *Creds) {
	t.k.mu.Lock()
	t.creds = c
	t.k.mu.Unlock()
}

// Ctx is the context the task's VFS calls run with.
func (t *Task) Ctx() context.Context { return t.ctx }

// Name returns the task's comm.
func (t *Task) Name() string {
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	return t.name
}

// SetName sets the comm (at most 15 bytes).
func (t *Task) SetName(n string) {
	if len(n) > 15 {
		n = n[:15]
	}
	t.k.mu.Lock()
	t.name = n
	t.k.mu.Unlock()
}

// CopyIn, CopyOut and CopyInString access the task's user memory.
func (t *Task) CopyIn(addr uint64, b []byte) (int, error) {
	n, err := t.mm.CopyIn(t.ctx, addr, b)
	t.checkCopyOOM(err)
	return n, err
}

// CopyOut copies b to user address addr.
func (t *Task) CopyOut(addr uint64, b []byte) (int, error) {
	n, err := t.mm.CopyOut(t.ctx, addr, b)
	t.checkCopyOOM(err)
	return n, err
}

// checkCopyOOM OOM-kills the task's process when a copy to or from its
// memory on its behalf (a read(2) into a buffer never touched before)
// hit the memory limit: the call's partial result never reaches it.
func (t *Task) checkCopyOOM(err error) {
	if err != nil && mm.IsOOM(err) {
		t.oomKill()
	}
}

// CopyInString reads a NUL-terminated string of at most max bytes.
func (t *Task) CopyInString(addr uint64, max int) (string, error) {
	s, err := t.mm.CopyInString(t.ctx, addr, max)
	t.checkCopyOOM(err)
	return s, err
}

// Root and Cwd return references the caller must DecRef.
func (f *FSContext) Root() vfs.VirtualDentry {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.root.IncRef()
	return f.root
}

// Cwd returns a reference to the working directory.
func (f *FSContext) Cwd() vfs.VirtualDentry {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cwd.IncRef()
	return f.cwd
}

// SetCwd replaces the working directory, taking over the reference.
func (f *FSContext) SetCwd(ctx context.Context, vd vfs.VirtualDentry) {
	f.mu.Lock()
	old := f.cwd
	f.cwd = vd
	f.mu.Unlock()
	old.DecRef(ctx)
}

// SetRoot replaces the root (chroot), taking over the reference.
func (f *FSContext) SetRoot(ctx context.Context, vd vfs.VirtualDentry) {
	f.mu.Lock()
	old := f.root
	f.root = vd
	f.mu.Unlock()
	old.DecRef(ctx)
}

// Umask returns the umask; SwapUmask sets it and returns the old one.
func (f *FSContext) Umask() uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.umask
}

// SwapUmask sets the umask, returning the old value.
func (f *FSContext) SwapUmask(m uint32) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.umask
	f.umask = m & 0o777
	return old
}

func (f *FSContext) fork() *FSContext {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.root.IncRef()
	f.cwd.IncRef()
	return &FSContext{root: f.root, cwd: f.cwd, umask: f.umask, refs: 1}
}

func (f *FSContext) decRef(ctx context.Context) {
	f.mu.Lock()
	f.refs--
	last := f.refs == 0
	f.mu.Unlock()
	if last {
		f.root.DecRef(ctx)
		f.cwd.DecRef(ctx)
	}
}

// PathOp builds a VFS path operation relative to dirfd (AT_FDCWD for the
// working directory).
func (t *Task) PathOp(dirfd int32, path string, follow bool) (vfs.PathOperation, func(), error) {
	root := t.fs.Root()
	var start vfs.VirtualDentry
	if strings.HasPrefix(path, "/") {
		root.IncRef()
		start = root
	} else if dirfd == abi.AT_FDCWD {
		start = t.fs.Cwd()
	} else {
		f := t.fds.Get(dirfd)
		if f == nil {
			root.DecRef(t.ctx)
			return vfs.PathOperation{}, nil, unix.EBADF
		}
		start = f.VirtualDentry() // carries its own reference
		f.DecRef(t.ctx)
	}
	done := func() {
		root.DecRef(t.ctx)
		start.DecRef(t.ctx)
	}
	return vfs.PathOperation{Root: root, Start: start, Path: path, FollowFinal: follow}, done, nil
}

// acquireCPU takes a scheduler slot and a CPU, unless the task holds them.
func (t *Task) acquireCPU() bool {
	if t.cpu != nil {
		return true
	}
	if !t.slot {
		t.parked.Store(true)
		ok := t.k.sched.acquire(t.interruptCh())
		t.parked.Store(false)
		if !ok {
			return false
		}
		t.slot = true
	}
	t.cpu = t.k.M.Acquire()
	t.vcpuTID = int32(unix.Gettid()) // Acquire locked the goroutine to it
	return true
}

// releaseCPU gives the CPU and the scheduler slot back.
func (t *Task) releaseCPU() {
	if t.sysBase != 0 {
		if t.cpu != nil {
			t.sysTime.Add(max(threadCPU()-t.sysBase, 0))
		}
		t.sysBase = 0
	}
	if t.cpu != nil {
		t.k.M.Release(t.cpu)
		t.cpu = nil
	}
	if t.slot {
		t.k.sched.release()
		t.slot = false
	}
}

func (t *Task) interruptCh() <-chan struct{} { return t.interrupt }

// ErrInterrupted is returned by Block when a signal needs the task.
var ErrInterrupted = errors.New("interrupted")

// Block waits until ch is ready, the deadline passes (zero: none) or a
// signal interrupts the task. It gives up the CPU meanwhile. It returns
// nil, unix.ETIMEDOUT or ErrInterrupted.
func (t *Task) Block(ch <-chan struct{}, deadline time.Time) error {
	if t.interrupted() {
		return ErrInterrupted
	}
	t.releaseCPU()
	var timer <-chan time.Time
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return unix.ETIMEDOUT
		}
		tm := time.NewTimer(d)
		defer tm.Stop()
		timer = tm.C
	}
	t.parked.Store(true)
	defer t.parked.Store(false)
	select {
	case <-ch:
		return nil
	case <-t.interrupt:
		// Leave the token so later checks see it too.
		t.raiseInterrupt()
		return ErrInterrupted
	case <-timer:
		return unix.ETIMEDOUT
	}
}

// Sleep blocks for d or until interrupted.
func (t *Task) Sleep(d time.Duration) error {
	return t.Block(nil, time.Now().Add(d))
}

// interrupted reports whether a signal or exit needs the task now.
func (t *Task) interrupted() bool {
	select {
	case <-t.interrupt:
		t.raiseInterrupt()
		return true
	default:
		return false
	}
}

// raiseInterrupt makes the task notice pending work: a blocked task wakes,
// a running one is kicked out of user mode.
func (t *Task) raiseInterrupt() {
	select {
	case t.interrupt <- struct{}{}:
	default:
	}
}

// clearInterrupt consumes the interrupt token.
func (t *Task) clearInterrupt() {
	select {
	case <-t.interrupt:
	default:
	}
}

// wake interrupts t for a signal or exit.
// Preconditions: k.mu is held.
func (t *Task) wakeLocked() {
	t.raiseInterrupt()
	if t.running != nil {
		t.running.Kick()
	}
}

// run is the task goroutine: run user code, serve what it traps for.
func (t *Task) run() {
	defer t.k.liveTasks.Done()
	t.start = time.Now()
	for {
		if t.handlePending() {
			break
		}
		if !t.acquireCPU() {
			continue
		}
		t.k.mu.Lock()
		t.running = t.cpu
		t.k.mu.Unlock()
		t.clearInterrupt()
		if t.hasWork() {
			t.k.mu.Lock()
			t.running = nil
			t.k.mu.Unlock()
			continue
		}
		before := threadCPU()
		if t.sysBase != 0 {
			t.sysTime.Add(max(before-t.sysBase, 0))
		}
		t.userBase.Store(before)
		t.userTID.Store(t.vcpuTID)
		entered := time.Now()
		t.userSince.Store(entered.UnixNano())
		exit, err := t.cpu.Switch(t.mm.AddressSpace(), &t.regs, t.fp)
		t.cpuTime.Add(int64(time.Since(entered)))
		t.userSince.Store(0)
		after := threadCPU()
		t.userTID.Store(0)
		t.hostUser.Add(max(after-before, 0))
		t.sysBase = after
		t.k.mu.Lock()
		t.running = nil
		t.k.mu.Unlock()
		if err != nil {
			t.k.Log.Error("CPU failure; killing the process", "pid", t.tg.pid, "tid", t.tid, "comm", t.Name(), "err", err)
			t.k.mu.Lock()
			t.k.killGroupLocked(t.tg, abi.SIGKILL)
			t.k.mu.Unlock()
			continue
		}
		switch exit.Kind {
		case platform.ExitSyscall:
			t.syscall()
		case platform.ExitPageFault:
			t.pageFault(exit)
		case platform.ExitException:
			t.exception(exit)
		case platform.ExitInterrupted:
			if t.k.sched.contended() {
				// Time slice over: let a waiting task run.
				t.releaseCPU()
			}
		}
	}
	t.releaseCPU()
	t.finishExit()
}

// hasWork reports whether a signal or exit awaits the task.
func (t *Task) hasWork() bool {
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	return t.exiting || t.deliverableLocked() != 0 || t.k.frozenLocked(t.tg)
}

func (t *Task) syscall() {
	r := &t.regs
	nr := r.RAX
	r.OrigRAX = nr
	a := SyscallArgs{Nr: nr, Args: [6]uint64{r.RDI, r.RSI, r.RDX, r.R10, r.R8, r.R9}}
	var (
		rv  uint64
		err error
	)
	if s := t.seccomp.Load(); s != nil {
		if rv, skip := t.seccompCheck(s, &a); skip {
			t.restart = nil
			r.RAX = rv
			t.traceSyscall(&a, rv, nil)
			return
		}
	}
	if nr < uint64(len(t.k.syscalls)) && t.k.syscalls[nr] != nil {
		rv, err = t.callSyscall(nr, &a)
	} else {
		t.k.logUnimplemented(t, nr)
		err = unix.ENOSYS
	}
	if err == ErrNoReturn {
		// rt_sigreturn and execve set every register themselves.
		t.traceSyscall(&a, 0, nil)
		return
	}
	t.restart = nil
	if err != nil {
		switch {
		case err == ErrRestartSys || err == ErrRestartNoHand || err == ErrRestartNoIntr:
			t.restart = err
			rv = negErrno(unix.EINTR)
		case errors.Is(err, ErrInterrupted):
			t.restart = ErrRestartSys
			rv = negErrno(unix.EINTR)
		default:
			rv = errnoReturn(err)
		}
	}
	r.RAX = rv
	t.traceSyscall(&a, rv, err)
}

// Errors a syscall returns to be restarted (Linux's ERESTART*).
var (
	// ErrRestartSys restarts after a handler with SA_RESTART, or when no
	// handler runs; else the call fails with EINTR.
	ErrRestartSys = errors.New("restart syscall")
	// ErrRestartNoHand restarts only when no handler runs.
	ErrRestartNoHand = errors.New("restart syscall unless a handler runs")
	// ErrRestartNoIntr always restarts.
	ErrRestartNoIntr = errors.New("restart syscall always")
	// ErrNoReturn: the syscall set the registers itself.
	ErrNoReturn = errors.New("no return value")
)

// errnoReturn converts an error to a negative errno for RAX.
func errnoReturn(err error) uint64 {
	var ae abi.Errno
	if errors.As(err, &ae) {
		return -uint64(ae)
	}
	var ue unix.Errno
	if errors.As(err, &ue) {
		return -uint64(ue)
	}
	var fe *mm.FaultError
	if errors.As(err, &fe) {
		return negErrno(unix.EFAULT)
	}
	// An internal error with no errno: say EIO rather than lie.
	return negErrno(unix.EIO)
}

func (t *Task) traceSyscall(a *SyscallArgs, rv uint64, err error) {
	if t.k.Strace == nil {
		return
	}
	if t.k.straceFn != nil {
		fmt.Fprintf(t.k.Strace, "[%d] %s\n", t.tid, t.k.straceFn(t, a, rv, err))
		return
	}
	name := abi.SyscallName(a.Nr)
	if name == "" {
		name = fmt.Sprintf("syscall_%d", a.Nr)
	}
	res := fmt.Sprintf("= %d", int64(rv))
	if int64(rv) < 0 && int64(rv) > -4096 {
		res = fmt.Sprintf("= -1 %s", abi.Errno(-int64(rv)).Name())
	}
	if err == ErrNoReturn {
		res = "= ?"
	}
	fmt.Fprintf(t.k.Strace, "[%d] %s(%#x, %#x, %#x, %#x, %#x, %#x) %s\n", t.tid, name,
		a.Args[0], a.Args[1], a.Args[2], a.Args[3], a.Args[4], a.Args[5], res)
}

func (t *Task) pageFault(e platform.Exit) {
	err := t.mm.HandleFault(t.ctx, e.Addr, e.Write, e.Exec)
	if err == nil {
		t.oomRetries = 0
		return
	}
	var fe *mm.FaultError
	if !errors.As(err, &fe) {
		t.k.Log.Error("page fault failed", "pid", t.tg.pid, "addr", fmt.Sprintf("%#x", e.Addr), "err", err)
		t.forceSignal(abi.SIGSEGV, abi.SEGV_MAPERR, e.Addr)
		return
	}
	switch {
	case fe.OOM:
		if t.oom() {
			// Another process was chosen and is giving its memory
			// back: fault again shortly.
			time.Sleep(oomRetryDelay)
		}
	case fe.Bus:
		t.forceSignal(abi.SIGBUS, abi.BUS_ADRERR, e.Addr)
	default:
		t.forceSignal(abi.SIGSEGV, fe.Code, e.Addr)
	}
}

// oomKill kills the task's process for running out of the sandbox's
// memory (once: a process already killed is not counted again).
func (t *Task) oomKill() {
	name := t.Name()
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	t.oomKillLocked(name)
}

// oomKillLocked is oomKill with k.mu held; name is the task's.
func (t *Task) oomKillLocked(name string) {
	t.k.oomKillGroupLocked(t.tg, name)
}

// oomKillGroupLocked kills g for running out of memory (once).
func (k *Kernel) oomKillGroupLocked(g *ThreadGroup, name string) {
	if g.oomKilled {
		return
	}
	k.oomKills.Add(1)
	k.Log.Warn("out of memory: killing process", "pid", g.pid, "comm", name)
	g.oomKilled = true
	k.oomByContainer[g.Container]++
	k.killGroupLocked(g, abi.SIGKILL)
}

const (
	// oomRetryDelay and oomMaxRetries bound how long a task whose fault
	// hit the memory limit waits for the OOM killer's victim to give
	// memory back before it is killed itself.
	oomRetryDelay = time.Millisecond
	oomMaxRetries = 2000
)

// oom handles a page fault of t past the memory limit as a memory
// cgroup's OOM killer does: the process of t's container with the most
// resident memory, weighed by oom_score_adj (-1000: never), is killed,
// which need not be t's. It reports whether t should fault again (the
// victim is another process, or one chosen before still exits).
func (t *Task) oom() (retry bool) {
	name := t.Name()
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if t.tg.oomKilled || t.tg.exiting || t.oomRetries >= oomMaxRetries {
		t.oomKillLocked(name)
		return false
	}
	t.oomRetries++
	for _, g := range k.groups {
		if g != t.tg && g.oomKilled && !g.exited && g.Container == t.tg.Container {
			return true // a victim still gives its memory back
		}
	}
	v, vname := k.oomVictimLocked(t.tg.Container)
	if v == nil || v == t.tg {
		t.oomKillLocked(name)
		return false
	}
	k.oomKillGroupLocked(v, vname)
	return true
}

// oomVictimLocked is the process of container the OOM killer ends, and
// its name: the one with the highest badness (resident pages plus
// oom_score_adj thousandths of the limit), as Linux's oom_badness.
func (k *Kernel) oomVictimLocked(container string) (*ThreadGroup, string) {
	_, _, limit := k.Frames.Usage()
	var best *ThreadGroup
	var bestName string
	var bestScore int64
	for _, g := range k.groups {
		if g.Container != container || g.exited || g.exiting || g.oomScoreAdj <= -1000 {
			continue
		}
		var m *mm.MM
		var name string
		for t := range g.tasks {
			m, name = t.mm, t.name
			break
		}
		if m == nil {
			continue
		}
		score := int64(m.Resident()/4096) + int64(g.oomScoreAdj)*int64(limit/4096)/1000
		if best == nil || score > bestScore {
			best, bestName, bestScore = g, name, score
		}
	}
	return best, bestName
}

func (t *Task) exception(e platform.Exit) {
	switch e.Vector {
	case 0: // #DE
		t.forceSignal(abi.SIGFPE, abi.FPE_INTDIV, t.regs.RIP)
	case 1, 3: // #DB, #BP
		t.forceSignal(abi.SIGTRAP, abi.SI_KERNEL, 0)
	case 4, 5, 13, 10, 11, 12: // #OF, #BR, #GP, #TS, #NP, #SS
		t.forceSignal(abi.SIGSEGV, abi.SI_KERNEL, 0)
	case 6: // #UD
		t.forceSignal(abi.SIGILL, abi.ILL_ILLOPN, t.regs.RIP)
	case 7: // #NM
		t.forceSignal(abi.SIGFPE, abi.SI_KERNEL, t.regs.RIP)
	case 16, 19: // #MF, #XM
		t.forceSignal(abi.SIGFPE, abi.FPE_FLTDIV, t.regs.RIP)
	case 17: // #AC
		t.forceSignal(abi.SIGBUS, abi.BUS_ADRALN, t.regs.RIP)
	default:
		t.forceSignal(abi.SIGSEGV, abi.SI_KERNEL, 0)
	}
}

// negErrno is the RAX value of a failed syscall.
func negErrno(e unix.Errno) uint64 { return uint64(-int64(e)) }

// CPUTime is the time the task has held a vCPU in user mode (what the
// guest's clocks and getrusage show).
func (t *Task) CPUTime() time.Duration {
	d := time.Duration(t.cpuTime.Load())
	if since := t.userSince.Load(); since != 0 {
		d += time.Duration(max(time.Now().UnixNano()-since, 0))
	}
	return d
}

// HostUserTime is the host CPU time of the task's user code: the vCPU
// thread's CPU time while it ran it, read live while it runs.
func (t *Task) HostUserTime() time.Duration {
	d := time.Duration(t.hostUser.Load())
	if tid := t.userTID.Load(); tid != 0 {
		if now, ok := threadCPUOf(tid); ok {
			d += time.Duration(max(now-t.userBase.Load(), 0))
		}
	}
	return d
}

// threadCPU is the calling thread's CPU time in nanoseconds.
func threadCPU() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return ts.Nano()
}

// threadCPUOf is the CPU time of thread tid of this process (its
// per-thread CPU clock, as pthread_getcpuclockid gives).
func threadCPUOf(tid int32) (int64, bool) {
	var ts unix.Timespec
	clock := (^tid)<<3 | 6 // CPUCLOCK_SCHED | CPUCLOCK_PERTHREAD_MASK
	if unix.ClockGettime(clock, &ts) != nil {
		return 0, false
	}
	return ts.Nano(), true
}

// SysTime is the host CPU time the sentry has spent for the task while
// it held its vCPU outside user mode (its syscalls, faults, signals).
func (t *Task) SysTime() time.Duration { return time.Duration(t.sysTime.Load()) }

// errSentryBug marks a syscall whose implementation failed internally.
var errSentryBug = errors.New("sentry bug")

// callSyscall runs one handler. A panic in it is a bug of the sentry, not
// the guest's doing: it is logged with its stack and kills the calling
// process, not the sandbox.
func (t *Task) callSyscall(nr uint64, a *SyscallArgs) (rv uint64, err error) {
	defer func() {
		if p := recover(); p != nil {
			t.k.Log.Error("syscall implementation failed; killing the process", "syscall", abi.SyscallName(nr),
				"pid", t.tg.pid, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			t.k.mu.Lock()
			t.k.killGroupLocked(t.tg, abi.SIGKILL)
			t.k.mu.Unlock()
			rv, err = 0, errSentryBug
		}
	}()
	return t.k.syscalls[nr](t, a)
}
