package syscalls

import (
	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/kernel"
)

// Calls whose effect in a sandbox is nothing or a setting: they validate
// their arguments as Linux does and succeed.
func init() {
	register(abi.SYS_FADVISE64, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		if a.Args[3] > 5 || int64(a.Args[2]) < 0 {
			return 0, unix.EINVAL
		}
		st, err := f.Stat(t.Ctx())
		if err == nil && st.Type() == unix.S_IFIFO {
			return 0, unix.ESPIPE
		}
		return 0, nil
	})
	register(abi.SYS_READAHEAD, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		f.DecRef(t.Ctx())
		return 0, nil
	})
	register(abi.SYS_SETHOSTNAME, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if t.Creds().Caps&(1<<abi.CAP_SYS_ADMIN) == 0 {
			return 0, unix.EPERM
		}
		if a.Args[1] > 64 {
			return 0, unix.EINVAL
		}
		b := make([]byte, a.Args[1])
		if _, err := t.CopyIn(a.Args[0], b); err != nil {
			return 0, unix.EFAULT
		}
		t.Kernel().SetHostname(string(b))
		return 0, nil
	})
	register(abi.SYS_SETDOMAINNAME, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if t.Creds().Caps&(1<<abi.CAP_SYS_ADMIN) == 0 {
			return 0, unix.EPERM
		}
		if a.Args[1] > 64 {
			return 0, unix.EINVAL
		}
		b := make([]byte, a.Args[1])
		if _, err := t.CopyIn(a.Args[0], b); err != nil {
			return 0, unix.EFAULT
		}
		t.Kernel().SetDomainname(string(b))
		return 0, nil
	})
	register(abi.SYS_SCHED_SETSCHEDULER, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if int32(a.Args[0]) < 0 || a.Args[2] == 0 {
			return 0, unix.EINVAL
		}
		switch a.Args[1] &^ 0x40000000 { // SCHED_RESET_ON_FORK
		case 0, 3, 5: // SCHED_OTHER, SCHED_BATCH, SCHED_IDLE
			return 0, nil
		case 1, 2: // SCHED_FIFO, SCHED_RR need CAP_SYS_NICE
			if t.Creds().Caps&(1<<abi.CAP_SYS_NICE) == 0 {
				return 0, unix.EPERM
			}
			return 0, nil
		}
		return 0, unix.EINVAL
	})
	register(abi.SYS_SCHED_SETPARAM, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if int32(a.Args[0]) < 0 || a.Args[1] == 0 {
			return 0, unix.EINVAL
		}
		return 0, nil
	})
	register(abi.SYS_SCHED_RR_GET_INTERVAL, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, copyOutTimespec(t, a.Args[1], abi.Timespec{Nsec: 100_000_000})
	})
	register(abi.SYS_IOPRIO_GET, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if a.Args[0] < 1 || a.Args[0] > 3 {
			return 0, unix.EINVAL
		}
		return 4, nil // IOPRIO_CLASS_NONE, level 4
	})
	register(abi.SYS_IOPRIO_SET, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if a.Args[0] < 1 || a.Args[0] > 3 {
			return 0, unix.EINVAL
		}
		return 0, nil
	})
	register(abi.SYS_MLOCK2, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if a.Args[2]&^1 != 0 {
			return 0, unix.EINVAL
		}
		return 0, nil
	})
	register(abi.SYS_UNSHARE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		// PID namespaces are the sentry's own; the other namespaces and
		// the mounts belong to the sandbox, not to its programs.
		f := a.Args[0]
		switch {
		case f == 0:
			return 0, nil
		case f == abi.CLONE_NEWPID:
			return 0, t.UnsharePIDNamespace()
		}
		return 0, unix.EPERM
	})
	// Namespaces and mounts belong to the sandbox, not to its programs.
	// Namespaces belong to the sandbox, not to its programs; mount and
	// umount2 (sys_mount.go) change only the sandbox's own mount table.
	for _, nr := range []uint64{abi.SYS_SETNS, abi.SYS_PIVOT_ROOT,
		abi.SYS_SWAPON, abi.SYS_SWAPOFF, abi.SYS_REBOOT, abi.SYS_SETTIMEOFDAY, abi.SYS_CLOCK_SETTIME,
		abi.SYS_ADJTIMEX, abi.SYS_CLOCK_ADJTIME, abi.SYS_ACCT, abi.SYS_IOPL, abi.SYS_IOPERM, abi.SYS_INIT_MODULE,
		abi.SYS_FINIT_MODULE, abi.SYS_DELETE_MODULE, abi.SYS_KEXEC_LOAD, abi.SYS_KEXEC_FILE_LOAD, abi.SYS_PTRACE,
		abi.SYS_PERF_EVENT_OPEN, abi.SYS_BPF, abi.SYS_SYSLOG, abi.SYS_QUOTACTL, abi.SYS_VHANGUP} {
		register(nr, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return 0, unix.EPERM })
	}
}
