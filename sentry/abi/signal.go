package abi

import "strconv"

// Signal is a Linux signal number, 1..64.
type Signal int32

// Signal numbers of x86-64 (arch/x86/include/uapi/asm/signal.h).
const (
	SIGHUP    Signal = 1
	SIGINT    Signal = 2
	SIGQUIT   Signal = 3
	SIGILL    Signal = 4
	SIGTRAP   Signal = 5
	SIGABRT   Signal = 6
	SIGIOT    Signal = 6
	SIGBUS    Signal = 7
	SIGFPE    Signal = 8
	SIGKILL   Signal = 9
	SIGUSR1   Signal = 10
	SIGSEGV   Signal = 11
	SIGUSR2   Signal = 12
	SIGPIPE   Signal = 13
	SIGALRM   Signal = 14
	SIGTERM   Signal = 15
	SIGSTKFLT Signal = 16
	SIGCHLD   Signal = 17
	SIGCONT   Signal = 18
	SIGSTOP   Signal = 19
	SIGTSTP   Signal = 20
	SIGTTIN   Signal = 21
	SIGTTOU   Signal = 22
	SIGURG    Signal = 23
	SIGXCPU   Signal = 24
	SIGXFSZ   Signal = 25
	SIGVTALRM Signal = 26
	SIGPROF   Signal = 27
	SIGWINCH  Signal = 28
	SIGIO     Signal = 29
	SIGPOLL   Signal = SIGIO
	SIGPWR    Signal = 30
	SIGSYS    Signal = 31
	SIGUNUSED Signal = 31

	// SIGRTMIN and SIGRTMAX bound the real-time signals as the kernel sees
	// them. The C library reserves the first few for itself and shows
	// programs a higher SIGRTMIN.
	SIGRTMIN Signal = 32
	SIGRTMAX Signal = 64

	// NSIG is one more than the highest signal number, as the C library
	// defines it (the kernel's _NSIG is 64, the number of signals).
	NSIG = 65
)

var signalNames = [...]string{
	SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL",
	SIGTRAP: "SIGTRAP", SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE",
	SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1", SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2",
	SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM", SIGSTKFLT: "SIGSTKFLT",
	SIGCHLD: "SIGCHLD", SIGCONT: "SIGCONT", SIGSTOP: "SIGSTOP", SIGTSTP: "SIGTSTP",
	SIGTTIN: "SIGTTIN", SIGTTOU: "SIGTTOU", SIGURG: "SIGURG", SIGXCPU: "SIGXCPU",
	SIGXFSZ: "SIGXFSZ", SIGVTALRM: "SIGVTALRM", SIGPROF: "SIGPROF", SIGWINCH: "SIGWINCH",
	SIGIO: "SIGIO", SIGPWR: "SIGPWR", SIGSYS: "SIGSYS",
}

// Valid reports whether s is a signal number (1..64).
func (s Signal) Valid() bool { return s >= 1 && s <= SIGRTMAX }

// IsRealtime reports whether s is a real-time signal (32..64), which queue
// rather than merge.
func (s Signal) IsRealtime() bool { return s >= SIGRTMIN && s <= SIGRTMAX }

// Name returns "SIGSEGV", "SIGRTMIN+3" or "SIGRTMAX" for real-time signals, or
// "signal N" for a number that is not a signal.
func (s Signal) Name() string {
	switch {
	case s >= 1 && int(s) < len(signalNames):
		return signalNames[s]
	case s == SIGRTMIN:
		return "SIGRTMIN"
	case s == SIGRTMAX:
		return "SIGRTMAX"
	case s.IsRealtime():
		return "SIGRTMIN+" + strconv.Itoa(int(s-SIGRTMIN))
	}
	return "signal " + strconv.Itoa(int(s))
}

// String returns Name.
func (s Signal) String() string { return s.Name() }

// SignalAction is what the kernel does with a signal whose handler is SIG_DFL.
type SignalAction int

// Default actions (signal(7)).
const (
	ActionTerm   SignalAction = iota // terminate the process
	ActionCore                       // terminate and dump core
	ActionIgnore                     // discard the signal
	ActionStop                       // stop the process
	ActionCont                       // continue a stopped process
)

func (a SignalAction) String() string {
	switch a {
	case ActionTerm:
		return "term"
	case ActionCore:
		return "core"
	case ActionIgnore:
		return "ignore"
	case ActionStop:
		return "stop"
	case ActionCont:
		return "cont"
	}
	return "action " + strconv.Itoa(int(a))
}

// DefaultAction returns what SIG_DFL does for s. Real-time signals and
// numbers outside the table terminate.
func DefaultAction(s Signal) SignalAction {
	switch s {
	case SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV,
		SIGXCPU, SIGXFSZ, SIGSYS:
		return ActionCore
	case SIGCHLD, SIGURG, SIGWINCH:
		return ActionIgnore
	case SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU:
		return ActionStop
	case SIGCONT:
		return ActionCont
	}
	return ActionTerm
}

// SignalSet is a set of signals as the kernel's sigset_t holds it on x86-64:
// bit s-1 stands for signal s.
type SignalSet uint64

// SignalSetSize is the size of the kernel's sigset_t, the sigsetsize argument
// rt_sigprocmask and friends require.
const SignalSetSize = 8

// SignalSetOf returns the set holding the given signals.
func SignalSetOf(sigs ...Signal) SignalSet {
	var set SignalSet
	for _, s := range sigs {
		if s.Valid() {
			set |= 1 << uint(s-1)
		}
	}
	return set
}

// Has reports whether s is in the set.
func (set SignalSet) Has(s Signal) bool { return s.Valid() && set&(1<<uint(s-1)) != 0 }

// UnblockableSignals can be neither blocked, caught nor ignored.
var UnblockableSignals = SignalSetOf(SIGKILL, SIGSTOP)

// Special handler values of sigaction.
const (
	SIG_DFL = 0
	SIG_IGN = 1
)

// sigaction flags (sa_flags).
const (
	SA_NOCLDSTOP      = 0x00000001
	SA_NOCLDWAIT      = 0x00000002
	SA_SIGINFO        = 0x00000004
	SA_UNSUPPORTED    = 0x00000400
	SA_EXPOSE_TAGBITS = 0x00000800
	SA_RESTORER       = 0x04000000
	SA_ONSTACK        = 0x08000000
	SA_RESTART        = 0x10000000
	SA_NODEFER        = 0x40000000
	SA_RESETHAND      = 0x80000000
)

// rt_sigprocmask how.
const (
	SIG_BLOCK   = 0
	SIG_UNBLOCK = 1
	SIG_SETMASK = 2
)

// sigaltstack flags (ss_flags) and sizes.
const (
	SS_ONSTACK    = 1
	SS_DISABLE    = 2
	SS_AUTODISARM = 0x80000000
	MINSIGSTKSZ   = 2048
	SIGSTKSZ      = 8192
)

// si_code values any signal may carry (include/uapi/asm-generic/siginfo.h).
// A value <= 0 means user space sent the signal.
const (
	SI_USER     = 0
	SI_KERNEL   = 0x80
	SI_QUEUE    = -1
	SI_TIMER    = -2
	SI_MESGQ    = -3
	SI_ASYNCIO  = -4
	SI_SIGIO    = -5
	SI_TKILL    = -6
	SI_DETHREAD = -7
	SI_ASYNCNL  = -60
)

// si_code values of SIGILL.
const (
	ILL_ILLOPC   = 1
	ILL_ILLOPN   = 2
	ILL_ILLADR   = 3
	ILL_ILLTRP   = 4
	ILL_PRVOPC   = 5
	ILL_PRVREG   = 6
	ILL_COPROC   = 7
	ILL_BADSTK   = 8
	ILL_BADIADDR = 9
)

// si_code values of SIGFPE.
const (
	FPE_INTDIV   = 1
	FPE_INTOVF   = 2
	FPE_FLTDIV   = 3
	FPE_FLTOVF   = 4
	FPE_FLTUND   = 5
	FPE_FLTRES   = 6
	FPE_FLTINV   = 7
	FPE_FLTSUB   = 8
	FPE_FLTUNK   = 14
	FPE_CONDTRAP = 15
)

// si_code values of SIGSEGV.
const (
	SEGV_MAPERR = 1
	SEGV_ACCERR = 2
	SEGV_BNDERR = 3
	SEGV_PKUERR = 4
	SEGV_CPERR  = 10
)

// si_code values of SIGBUS.
const (
	BUS_ADRALN    = 1
	BUS_ADRERR    = 2
	BUS_OBJERR    = 3
	BUS_MCEERR_AR = 4
	BUS_MCEERR_AO = 5
)

// si_code values of SIGTRAP.
const (
	TRAP_BRKPT  = 1
	TRAP_TRACE  = 2
	TRAP_BRANCH = 3
	TRAP_HWBKPT = 4
	TRAP_UNK    = 5
	TRAP_PERF   = 6
)

// si_code values of SIGCHLD.
const (
	CLD_EXITED    = 1
	CLD_KILLED    = 2
	CLD_DUMPED    = 3
	CLD_TRAPPED   = 4
	CLD_STOPPED   = 5
	CLD_CONTINUED = 6
)

// si_code values of SIGIO/SIGPOLL.
const (
	POLL_IN  = 1
	POLL_OUT = 2
	POLL_MSG = 3
	POLL_ERR = 4
	POLL_PRI = 5
	POLL_HUP = 6
)

// si_code values of SIGSYS. The headers call them SYS_SECCOMP and
// SYS_USER_DISPATCH; the SI_ prefix keeps them apart from the system call
// numbers.
const (
	SI_SYS_SECCOMP       = 1
	SI_SYS_USER_DISPATCH = 2
)

// sigevent notify values (struct sigevent's sigev_notify).
const (
	SIGEV_SIGNAL    = 0
	SIGEV_NONE      = 1
	SIGEV_THREAD    = 2
	SIGEV_THREAD_ID = 4
)
