package abi

// clone(2) and clone3(2) flags (include/uapi/linux/sched.h). The low byte of
// clone(2)'s flags (CSIGNAL) is the signal sent to the parent on exit.
const (
	CSIGNAL              = 0x000000ff
	CLONE_NEWTIME        = 0x00000080
	CLONE_VM             = 0x00000100
	CLONE_FS             = 0x00000200
	CLONE_FILES          = 0x00000400
	CLONE_SIGHAND        = 0x00000800
	CLONE_PIDFD          = 0x00001000
	CLONE_PTRACE         = 0x00002000
	CLONE_VFORK          = 0x00004000
	CLONE_PARENT         = 0x00008000
	CLONE_THREAD         = 0x00010000
	CLONE_NEWNS          = 0x00020000
	CLONE_SYSVSEM        = 0x00040000
	CLONE_SETTLS         = 0x00080000
	CLONE_PARENT_SETTID  = 0x00100000
	CLONE_CHILD_CLEARTID = 0x00200000
	CLONE_DETACHED       = 0x00400000
	CLONE_UNTRACED       = 0x00800000
	CLONE_CHILD_SETTID   = 0x01000000
	CLONE_NEWCGROUP      = 0x02000000
	CLONE_NEWUTS         = 0x04000000
	CLONE_NEWIPC         = 0x08000000
	CLONE_NEWUSER        = 0x10000000
	CLONE_NEWPID         = 0x20000000
	CLONE_NEWNET         = 0x40000000
	CLONE_IO             = 0x80000000

	// Only clone3(2) takes these.
	CLONE_CLEAR_SIGHAND = 0x100000000
	CLONE_INTO_CGROUP   = 0x200000000
)

// wait4(2)/waitid(2) options.
const (
	WNOHANG    = 0x00000001
	WUNTRACED  = 0x00000002
	WSTOPPED   = WUNTRACED
	WEXITED    = 0x00000004
	WCONTINUED = 0x00000008
	WNOWAIT    = 0x01000000
	WNOTHREAD  = 0x20000000 // __WNOTHREAD
	WALL       = 0x40000000 // __WALL
	WCLONE     = 0x80000000 // __WCLONE
)

// waitid(2) id types.
const (
	P_ALL   = 0
	P_PID   = 1
	P_PGID  = 2
	P_PIDFD = 3
)

// Wait statuses as wait4(2) reports them.

// WaitStatusExited is the status of a process that exited with code.
func WaitStatusExited(code int) uint32 { return uint32(code&0xff) << 8 }

// WaitStatusSignaled is the status of a process killed by sig, with core
// set when it dumped core.
func WaitStatusSignaled(sig Signal, core bool) uint32 {
	s := uint32(sig) & 0x7f
	if core {
		s |= 0x80
	}
	return s
}

// WaitStatusStopped is the status of a process stopped by sig.
func WaitStatusStopped(sig Signal) uint32 { return uint32(sig&0xff)<<8 | 0x7f }

// WaitStatusContinued is the status of a process continued by SIGCONT.
const WaitStatusContinued = 0xffff

// futex(2) operations and flags (include/uapi/linux/futex.h).
const (
	FUTEX_WAIT            = 0
	FUTEX_WAKE            = 1
	FUTEX_FD              = 2
	FUTEX_REQUEUE         = 3
	FUTEX_CMP_REQUEUE     = 4
	FUTEX_WAKE_OP         = 5
	FUTEX_LOCK_PI         = 6
	FUTEX_UNLOCK_PI       = 7
	FUTEX_TRYLOCK_PI      = 8
	FUTEX_WAIT_BITSET     = 9
	FUTEX_WAKE_BITSET     = 10
	FUTEX_WAIT_REQUEUE_PI = 11
	FUTEX_CMP_REQUEUE_PI  = 12
	FUTEX_LOCK_PI2        = 13

	FUTEX_PRIVATE_FLAG   = 128
	FUTEX_CLOCK_REALTIME = 256
	FUTEX_CMD_MASK       = ^(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)

	FUTEX_BITSET_MATCH_ANY = 0xffffffff

	// Bits of a robust or PI futex word.
	FUTEX_WAITERS    = 0x80000000
	FUTEX_OWNER_DIED = 0x40000000
	FUTEX_TID_MASK   = 0x3fffffff

	// ROBUST_LIST_LIMIT bounds the walk of a robust list at exit.
	ROBUST_LIST_LIMIT = 2048

	// FUTEX_WAKE_OP operations and comparisons.
	FUTEX_OP_SET         = 0
	FUTEX_OP_ADD         = 1
	FUTEX_OP_OR          = 2
	FUTEX_OP_ANDN        = 3
	FUTEX_OP_XOR         = 4
	FUTEX_OP_OPARG_SHIFT = 8
	FUTEX_OP_CMP_EQ      = 0
	FUTEX_OP_CMP_NE      = 1
	FUTEX_OP_CMP_LT      = 2
	FUTEX_OP_CMP_LE      = 3
	FUTEX_OP_CMP_GT      = 4
	FUTEX_OP_CMP_GE      = 5
)

// prctl(2) options (include/uapi/linux/prctl.h).
const (
	PR_SET_PDEATHSIG             = 1
	PR_GET_PDEATHSIG             = 2
	PR_GET_DUMPABLE              = 3
	PR_SET_DUMPABLE              = 4
	PR_GET_UNALIGN               = 5
	PR_SET_UNALIGN               = 6
	PR_GET_KEEPCAPS              = 7
	PR_SET_KEEPCAPS              = 8
	PR_GET_FPEMU                 = 9
	PR_SET_FPEMU                 = 10
	PR_GET_FPEXC                 = 11
	PR_SET_FPEXC                 = 12
	PR_GET_TIMING                = 13
	PR_SET_TIMING                = 14
	PR_SET_NAME                  = 15
	PR_GET_NAME                  = 16
	PR_GET_ENDIAN                = 19
	PR_SET_ENDIAN                = 20
	PR_GET_SECCOMP               = 21
	PR_SET_SECCOMP               = 22
	PR_CAPBSET_READ              = 23
	PR_CAPBSET_DROP              = 24
	PR_GET_TSC                   = 25
	PR_SET_TSC                   = 26
	PR_GET_SECUREBITS            = 27
	PR_SET_SECUREBITS            = 28
	PR_SET_TIMERSLACK            = 29
	PR_GET_TIMERSLACK            = 30
	PR_TASK_PERF_EVENTS_DISABLE  = 31
	PR_TASK_PERF_EVENTS_ENABLE   = 32
	PR_MCE_KILL                  = 33
	PR_MCE_KILL_GET              = 34
	PR_SET_MM                    = 35
	PR_SET_CHILD_SUBREAPER       = 36
	PR_GET_CHILD_SUBREAPER       = 37
	PR_SET_NO_NEW_PRIVS          = 38
	PR_GET_NO_NEW_PRIVS          = 39
	PR_GET_TID_ADDRESS           = 40
	PR_SET_THP_DISABLE           = 41
	PR_GET_THP_DISABLE           = 42
	PR_MPX_ENABLE_MANAGEMENT     = 43
	PR_MPX_DISABLE_MANAGEMENT    = 44
	PR_SET_FP_MODE               = 45
	PR_GET_FP_MODE               = 46
	PR_CAP_AMBIENT               = 47
	PR_GET_SPECULATION_CTRL      = 52
	PR_SET_SPECULATION_CTRL      = 53
	PR_SET_IO_FLUSHER            = 57
	PR_GET_IO_FLUSHER            = 58
	PR_SET_SYSCALL_USER_DISPATCH = 59
	PR_SCHED_CORE                = 62
	PR_SET_MDWE                  = 65
	PR_GET_MDWE                  = 66
	PR_SET_VMA                   = 0x53564d41
	PR_SET_PTRACER               = 0x59616d61

	PR_CAP_AMBIENT_IS_SET    = 1
	PR_CAP_AMBIENT_RAISE     = 2
	PR_CAP_AMBIENT_LOWER     = 3
	PR_CAP_AMBIENT_CLEAR_ALL = 4

	// TASK_COMM_LEN is the size of a task's name, with its NUL
	// (PR_SET_NAME, /proc/pid/comm).
	TASK_COMM_LEN = 16
)

// arch_prctl(2) codes of x86-64 (arch/x86/include/uapi/asm/prctl.h).
const (
	ARCH_SET_GS               = 0x1001
	ARCH_SET_FS               = 0x1002
	ARCH_GET_FS               = 0x1003
	ARCH_GET_GS               = 0x1004
	ARCH_GET_CPUID            = 0x1011
	ARCH_SET_CPUID            = 0x1012
	ARCH_GET_XCOMP_SUPP       = 0x1021
	ARCH_GET_XCOMP_PERM       = 0x1022
	ARCH_REQ_XCOMP_PERM       = 0x1023
	ARCH_GET_XCOMP_GUEST_PERM = 0x1024
	ARCH_REQ_XCOMP_GUEST_PERM = 0x1025
	ARCH_MAP_VDSO_X32         = 0x2001
	ARCH_MAP_VDSO_32          = 0x2002
	ARCH_MAP_VDSO_64          = 0x2003
)

// Resource limits (include/uapi/asm-generic/resource.h).
const (
	RLIMIT_CPU        = 0
	RLIMIT_FSIZE      = 1
	RLIMIT_DATA       = 2
	RLIMIT_STACK      = 3
	RLIMIT_CORE       = 4
	RLIMIT_RSS        = 5
	RLIMIT_NPROC      = 6
	RLIMIT_NOFILE     = 7
	RLIMIT_MEMLOCK    = 8
	RLIMIT_AS         = 9
	RLIMIT_LOCKS      = 10
	RLIMIT_SIGPENDING = 11
	RLIMIT_MSGQUEUE   = 12
	RLIMIT_NICE       = 13
	RLIMIT_RTPRIO     = 14
	RLIMIT_RTTIME     = 15
	RLIM_NLIMITS      = 16

	RLIM_INFINITY uint64 = ^uint64(0)
)

// getrusage(2) who.
const (
	RUSAGE_SELF     = 0
	RUSAGE_CHILDREN = -1
	RUSAGE_BOTH     = -2
	RUSAGE_THREAD   = 1
)

// Clock ids (include/uapi/linux/time.h).
const (
	CLOCK_REALTIME           = 0
	CLOCK_MONOTONIC          = 1
	CLOCK_PROCESS_CPUTIME_ID = 2
	CLOCK_THREAD_CPUTIME_ID  = 3
	CLOCK_MONOTONIC_RAW      = 4
	CLOCK_REALTIME_COARSE    = 5
	CLOCK_MONOTONIC_COARSE   = 6
	CLOCK_BOOTTIME           = 7
	CLOCK_REALTIME_ALARM     = 8
	CLOCK_BOOTTIME_ALARM     = 9
	CLOCK_TAI                = 11

	TIMER_ABSTIME = 1
)

// Interval timers (setitimer(2)).
const (
	ITIMER_REAL    = 0
	ITIMER_VIRTUAL = 1
	ITIMER_PROF    = 2
)
