package syscalls

import (
	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/seccomp"
)

func init() {
	register(abi.SYS_SECCOMP, sysSeccomp)
}

// seccompFlags are the SECCOMP_SET_MODE_FILTER flags the sentry takes.
// NEW_LISTENER (and WAIT_KILLABLE_RECV, which needs it) is refused with
// EINVAL, as by a kernel without user notification: there is no
// listener to hand out.
const seccompFlags = abi.SECCOMP_FILTER_FLAG_TSYNC | abi.SECCOMP_FILTER_FLAG_LOG |
	abi.SECCOMP_FILTER_FLAG_SPEC_ALLOW | abi.SECCOMP_FILTER_FLAG_TSYNC_ESRCH

// sysSeccomp is seccomp(op, flags, uargs).
func sysSeccomp(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	op, flags, uargs := a.Args[0], a.Args[1], a.Args[2]
	switch op {
	case abi.SECCOMP_SET_MODE_STRICT:
		if flags != 0 || uargs != 0 {
			return 0, unix.EINVAL
		}
		return 0, t.SetSeccompStrict()
	case abi.SECCOMP_SET_MODE_FILTER:
		return seccompSetFilter(t, flags, uargs)
	case abi.SECCOMP_GET_ACTION_AVAIL:
		if flags != 0 {
			return 0, unix.EINVAL
		}
		var b [4]byte
		if _, err := t.CopyIn(uargs, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		switch le.Uint32(b[:]) {
		case abi.SECCOMP_RET_KILL_PROCESS, abi.SECCOMP_RET_KILL_THREAD, abi.SECCOMP_RET_TRAP,
			abi.SECCOMP_RET_ERRNO, abi.SECCOMP_RET_TRACE, abi.SECCOMP_RET_LOG, abi.SECCOMP_RET_ALLOW:
			return 0, nil
		}
		// USER_NOTIF included: no listener can be made.
		return 0, unix.EOPNOTSUPP
	}
	// SECCOMP_GET_NOTIF_SIZES too: user notification is not offered.
	return 0, unix.EINVAL
}

// seccompSetFilter reads a struct sock_fprog at uargs, checks the program
// and installs it.
func seccompSetFilter(t *kernel.Task, flags, uargs uint64) (uint64, error) {
	if flags&^seccompFlags != 0 {
		return 0, unix.EINVAL
	}
	var fp [abi.SockFprogSize]byte
	if _, err := t.CopyIn(uargs, fp[:]); err != nil {
		return 0, unix.EFAULT
	}
	n := uint64(le.Uint16(fp[0:]))
	addr := le.Uint64(fp[8:])
	if n == 0 || n > abi.BPF_MAXINSNS {
		return 0, unix.EINVAL
	}
	if !t.MayInstallSeccomp() {
		return 0, unix.EACCES
	}
	b := make([]byte, n*abi.SockFilterSize)
	if _, err := t.CopyIn(addr, b); err != nil {
		return 0, unix.EFAULT
	}
	prog, err := seccomp.Check(seccomp.Decode(b))
	if err != nil {
		return 0, unix.EINVAL
	}
	return t.InstallSeccomp(kernel.SeccompFilter{Program: prog, Log: flags&abi.SECCOMP_FILTER_FLAG_LOG != 0},
		flags&abi.SECCOMP_FILTER_FLAG_TSYNC != 0, flags&abi.SECCOMP_FILTER_FLAG_TSYNC_ESRCH != 0)
}

// prctlSeccomp is PR_SET_SECCOMP and PR_GET_SECCOMP.
func prctlSeccomp(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a.Args[0] == abi.PR_GET_SECCOMP {
		mode, _ := t.Seccomp()
		return uint64(mode), nil
	}
	switch a.Args[1] {
	case abi.SECCOMP_MODE_STRICT:
		return 0, t.SetSeccompStrict()
	case abi.SECCOMP_MODE_FILTER:
		return seccompSetFilter(t, 0, a.Args[2])
	}
	return 0, unix.EINVAL
}
