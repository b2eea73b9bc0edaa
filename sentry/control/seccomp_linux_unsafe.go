package control

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// deniedSyscalls are host system calls a confined sentry never makes:
// changing mounts or namespaces, loading kernel code, tracing or reading
// other processes, the kernel's keyring, time and machine control. The
// filter answers them EPERM. (An allowlist of what the sentry makes is
// the next step; this list stops the calls that would undo confinement.)
var deniedSyscalls = []uintptr{
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_CHROOT,
	unix.SYS_FSOPEN, unix.SYS_FSMOUNT, unix.SYS_FSCONFIG, unix.SYS_FSPICK,
	unix.SYS_MOVE_MOUNT, unix.SYS_OPEN_TREE, unix.SYS_MOUNT_SETATTR,
	unix.SYS_SETNS, unix.SYS_UNSHARE,
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV, unix.SYS_KCMP,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, unix.SYS_INIT_MODULE,
	unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE, unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY, unix.SYS_USERFAULTFD,
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT,
	unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_REBOOT, unix.SYS_ACCT, unix.SYS_QUOTACTL,
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX,
	unix.SYS_IOPL, unix.SYS_IOPERM, unix.SYS_SYSLOG, unix.SYS_VHANGUP, unix.SYS_PERSONALITY,
}

const (
	auditArchX8664 = 0xc000003e
	x32SyscallBit  = 0x40000000
	seccompRetKill = 0x80000000 // SECCOMP_RET_KILL_PROCESS
	seccompRetErr  = 0x00050000 // SECCOMP_RET_ERRNO
	seccompRetOK   = 0x7fff0000 // SECCOMP_RET_ALLOW
)

// seccompFilter builds the classic BPF program of the filter.
func seccompFilter() []unix.SockFilter {
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jump := func(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
	}
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
	)
	n := len(deniedSyscalls)
	// Layout: [0] load arch, [1] arch check, [2] load nr, [3] x32 check,
	// [4..4+n) denied, [4+n] allow, [5+n] deny, [6+n] kill.
	prog := []unix.SockFilter{
		stmt(ldAbs, 4),                           // seccomp_data.arch
		jump(jeq, auditArchX8664, 0, uint8(n+4)), // other arch: kill
		stmt(ldAbs, 0),                           // seccomp_data.nr
		jump(jge, x32SyscallBit, uint8(n+1), 0),  // x32 ABI: deny
	}
	for i, nr := range deniedSyscalls {
		prog = append(prog, jump(jeq, uint32(nr), uint8(n-i), 0))
	}
	prog = append(prog,
		stmt(ret, seccompRetOK),
		stmt(ret, seccompRetErr|uint32(unix.EPERM)),
		stmt(ret, seccompRetKill),
	)
	return prog
}

// installSeccomp applies the filter to every thread of the sentry (TSYNC).
// The process must have no_new_privs or CAP_SYS_ADMIN.
func installSeccomp() error {
	f := seccompFilter()
	prog := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(f)
	if e != 0 {
		return fmt.Errorf("install the sentry's seccomp filter: %w", e)
	}
	return nil
}
