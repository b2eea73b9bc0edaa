package kernel

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/seccomp"
)

// A task's seccomp state is immutable once made and shared by the tasks
// that inherit it (fork, clone, execve keep it); installing a filter
// makes a new one. Every system call of a task with a state is checked
// before it is dispatched; a task without one pays one atomic load.

// seccompState is a task's seccomp mode and its stack of filters.
type seccompState struct {
	mode int // abi.SECCOMP_MODE_STRICT or SECCOMP_MODE_FILTER
	// top is the most recently installed filter.
	top *seccompFilter
	// count is the number of filters; insns their instructions with
	// Linux's penalty of 4 per filter.
	count, insns int
}

type seccompFilter struct {
	prog *seccomp.Program
	// log: SECCOMP_FILTER_FLAG_LOG (log every action but ALLOW).
	log  bool
	prev *seccompFilter
}

// maxSeccompInsns bounds the instructions a system call runs through
// all of a task's filters (Linux's MAX_INSNS_PER_PATH).
const maxSeccompInsns = 32768

// SeccompFilter is a checked filter to install.
type SeccompFilter struct {
	Program *seccomp.Program
	// Log asks for every action but ALLOW to be logged.
	Log bool
}

// Seccomp returns the task's seccomp mode (abi.SECCOMP_MODE_*) and how
// many filters it has, for /proc/[pid]/status and PR_GET_SECCOMP.
func (t *Task) Seccomp() (mode, filters int) {
	s := t.seccomp.Load()
	if s == nil {
		return abi.SECCOMP_MODE_DISABLED, 0
	}
	return s.mode, s.count
}

// MayInstallSeccomp reports whether the task may install a filter.
func (t *Task) MayInstallSeccomp() bool { return mayInstallSeccomp(t.Creds()) }

// mayInstallSeccomp is the permission to install a filter: no_new_privs
// or CAP_SYS_ADMIN, as Linux asks.
func mayInstallSeccomp(c *Creds) bool {
	return c.NoNewPrivs || c.Caps&(1<<abi.CAP_SYS_ADMIN) != 0
}

// SetSeccompStrict puts the task in strict mode (read, write, exit and
// rt_sigreturn only). A task with filters cannot switch (EINVAL).
func (t *Task) SetSeccompStrict() error {
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	cur := t.seccomp.Load()
	if cur != nil && cur.mode != abi.SECCOMP_MODE_STRICT {
		return unix.EINVAL
	}
	t.seccomp.Store(&seccompState{mode: abi.SECCOMP_MODE_STRICT})
	return nil
}

// InstallSeccomp adds f to the task's filters (seccomp(2) with
// SECCOMP_SET_MODE_FILTER). It needs no_new_privs or CAP_SYS_ADMIN
// (EACCES); the filters' total length is bounded (ENOMEM). With tsync, every
// thread of the process gets the same filters; a thread whose filters are
// not an ancestor of the caller's makes the call fail with that thread's
// ID as the result (or ESRCH with tsyncESRCH).
func (t *Task) InstallSeccomp(f SeccompFilter, tsync, tsyncESRCH bool) (uint64, error) {
	if !mayInstallSeccomp(t.Creds()) {
		return 0, unix.EACCES
	}
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	cur := t.seccomp.Load()
	next, err := stackFilter(cur, f)
	if err != nil {
		return 0, err
	}
	if tsync {
		for o := range t.tg.tasks {
			if o == t || o.exiting {
				continue
			}
			if !seccompAncestor(o.seccomp.Load(), cur) {
				if tsyncESRCH {
					return 0, unix.ESRCH
				}
				return uint64(o.tid), nil
			}
		}
		for o := range t.tg.tasks {
			if !o.exiting {
				o.seccomp.Store(next)
			}
		}
	}
	t.seccomp.Store(next)
	return 0, nil
}

// stackFilter returns cur with f on top.
func stackFilter(cur *seccompState, f SeccompFilter) (*seccompState, error) {
	if f.Program == nil {
		return nil, unix.EINVAL
	}
	next := &seccompState{mode: abi.SECCOMP_MODE_FILTER, count: 1, insns: f.Program.Len()}
	if cur != nil {
		if cur.mode != abi.SECCOMP_MODE_FILTER {
			return nil, unix.EINVAL
		}
		next.count += cur.count
		next.insns += cur.insns + 4
		next.top = cur.top
	}
	if next.insns > maxSeccompInsns {
		return nil, unix.ENOMEM
	}
	next.top = &seccompFilter{prog: f.Program, log: f.Log, prev: next.top}
	return next, nil
}

// seccompAncestor reports whether o's filters are cur's or an older part
// of them (what TSYNC may replace).
func seccompAncestor(o, cur *seccompState) bool {
	if o == nil || o.top == nil {
		return o == nil || o.mode == abi.SECCOMP_MODE_DISABLED
	}
	if o.mode != abi.SECCOMP_MODE_FILTER || cur == nil {
		return false
	}
	for f := cur.top; f != nil; f = f.prev {
		if f == o.top {
			return true
		}
	}
	return false
}

// strictAllowed are the system calls of strict mode.
func strictAllowed(nr uint64) bool {
	switch nr {
	case abi.SYS_READ, abi.SYS_WRITE, abi.SYS_EXIT, abi.SYS_RT_SIGRETURN:
		return true
	}
	return false
}

// seccompCheck runs the task's filters on the system call a. It returns
// skip when the call must not run, with the value for RAX.
func (t *Task) seccompCheck(s *seccompState, a *SyscallArgs) (rv uint64, skip bool) {
	if s.mode == abi.SECCOMP_MODE_STRICT {
		if strictAllowed(a.Nr) {
			return 0, false
		}
		t.k.Log.Warn("seccomp strict mode: killing the thread", "pid", t.tg.pid, "tid", t.tid,
			"comm", t.Name(), "syscall", syscallName(a.Nr))
		t.seccompKill(abi.SIGKILL, false)
		return a.Nr, true
	}
	d := seccomp.Data{Nr: int32(a.Nr), Arch: abi.AUDIT_ARCH_X86_64, IP: t.regs.RIP, Args: a.Args}
	res := uint32(abi.SECCOMP_RET_ALLOW)
	var by *seccompFilter
	for f := s.top; f != nil; f = f.prev {
		r := f.prog.Run(&d)
		if by == nil || seccomp.MoreRestrictive(r, res) {
			res, by = r, f
		}
	}
	action, data := seccomp.ActionOf(res)
	if !seccomp.Known(action) {
		action = abi.SECCOMP_RET_KILL_PROCESS
	}
	switch action {
	case abi.SECCOMP_RET_ALLOW:
		return 0, false
	case abi.SECCOMP_RET_LOG:
		t.seccompLog(a, action, data)
		return 0, false
	case abi.SECCOMP_RET_ERRNO:
		if by.log {
			t.seccompLog(a, action, data)
		}
		return uint64(-int64(min(uint32(data), abi.MaxErrno))), true
	case abi.SECCOMP_RET_TRACE, abi.SECCOMP_RET_USER_NOTIF:
		// No tracer can attach and no listener exists: the call fails
		// with ENOSYS, as on Linux without one.
		if by.log {
			t.seccompLog(a, action, data)
		}
		return negErrno(unix.ENOSYS), true
	case abi.SECCOMP_RET_TRAP:
		if by.log {
			t.seccompLog(a, action, data)
		}
		var info abi.SignalInfo
		info.SetSigno(abi.SIGSYS)
		info.SetErrno(int32(data))
		info.SetCode(abi.SI_SYS_SECCOMP)
		info.SetCallAddr(t.regs.RIP)
		info.SetSyscall(int32(a.Nr))
		info.SetArch(abi.AUDIT_ARCH_X86_64)
		t.forceSignalInfo(&info)
		// The handler sees the registers as at the call (RAX: the
		// system call number).
		return a.Nr, true
	}
	// KILL_THREAD, KILL_PROCESS.
	t.k.Log.Warn("seccomp: killing", "action", action.String(), "pid", t.tg.pid, "tid", t.tid,
		"comm", t.Name(), "syscall", syscallName(a.Nr))
	t.seccompKill(abi.SIGSYS, action == abi.SECCOMP_RET_KILL_PROCESS)
	return a.Nr, true
}

// seccompKill ends the thread with sig, or the whole process when
// process is set or the thread is its last: the process then dies of
// sig as by an uncatchable signal (SIGSYS dumps core), even the init.
func (t *Task) seccompKill(sig abi.Signal, process bool) {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if t.tg.exiting {
		t.exiting = true
		return
	}
	if process || len(t.tg.tasks) == 1 {
		k.killGroupLocked(t.tg, sig)
		t.tg.termSignal = sig
		t.tg.coreDump = abi.DefaultAction(sig) == abi.ActionCore
		return
	}
	t.exiting = true
	t.exitStatus = Signaled(sig, false)
}

// seccompLog logs an action, at most seccompLogBurst times a second per
// sandbox.
func (t *Task) seccompLog(a *SyscallArgs, action seccomp.Action, data uint16) {
	if !t.k.seccompLogs.allow() {
		return
	}
	t.k.Log.Info("seccomp", "action", action.String(), "data", data, "pid", t.tg.pid, "tid", t.tid,
		"comm", t.Name(), "syscall", syscallName(a.Nr), "nr", a.Nr)
}

func syscallName(nr uint64) string {
	if n := abi.SyscallName(nr); n != "" {
		return n
	}
	return fmt.Sprintf("syscall_%d", nr)
}

const seccompLogBurst = 20

// logLimiter lets seccompLogBurst messages through per second.
type logLimiter struct {
	mu     sync.Mutex
	window time.Time
	n      int
}

func (l *logLimiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.window) >= time.Second {
		l.window, l.n = now, 0
	}
	l.n++
	return l.n <= seccompLogBurst
}
