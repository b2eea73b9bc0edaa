package syscalls

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/platform"
)

func init() {
	register(abi.SYS_EXIT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		t.Exit(int(a.Args[0]))
		return 0, kernel.ErrNoReturn
	})
	register(abi.SYS_EXIT_GROUP, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		t.ExitGroup(int(a.Args[0]))
		return 0, kernel.ErrNoReturn
	})
	register(abi.SYS_GETPID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return uint64(t.LocalPID()), nil
	})
	register(abi.SYS_GETTID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return uint64(t.LocalTID()), nil
	})
	register(abi.SYS_GETPPID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return uint64(t.LocalPPID()), nil
	})
	register(abi.SYS_GETPGRP, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		pg, err := t.LocalPGID(0)
		return uint64(pg), err
	})
	register(abi.SYS_GETPGID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		pg, err := t.LocalPGID(int32(a.Args[0]))
		return uint64(pg), err
	})
	register(abi.SYS_SETPGID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, t.Kernel().Setpgid(t.ThreadGroup(), int32(a.Args[0]), int32(a.Args[1]))
	})
	register(abi.SYS_GETSID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		s, err := t.LocalSID(int32(a.Args[0]))
		return uint64(s), err
	})
	register(abi.SYS_SETSID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		s, err := t.Kernel().Setsid(t.ThreadGroup())
		return uint64(s), err
	})
	register(abi.SYS_CLONE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		// x86-64: clone(flags, stack, parent_tid, child_tid, tls).
		f := a.Args[0]
		tid, err := t.Clone(kernel.CloneOptions{Flags: f &^ 0xff, Stack: a.Args[1], ParentTID: a.Args[2],
			ChildTID: a.Args[3], TLS: a.Args[4], ExitSignal: abi.Signal(f & 0xff)})
		return uint64(tid), err
	})
	register(abi.SYS_CLONE3, sysClone3)
	register(abi.SYS_FORK, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		tid, err := t.Clone(kernel.CloneOptions{ExitSignal: abi.SIGCHLD})
		return uint64(tid), err
	})
	register(abi.SYS_VFORK, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		tid, err := t.Clone(kernel.CloneOptions{Flags: abi.CLONE_VM | abi.CLONE_VFORK, ExitSignal: abi.SIGCHLD})
		return uint64(tid), err
	})
	register(abi.SYS_EXECVE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return execve(t, abi.AT_FDCWD, a.Args[0], a.Args[1], a.Args[2], 0)
	})
	register(abi.SYS_EXECVEAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return execve(t, int32(a.Args[0]), a.Args[1], a.Args[2], a.Args[3], uint32(a.Args[4]))
	})
	register(abi.SYS_WAIT4, sysWait4)
	register(abi.SYS_WAITID, sysWaitid)
	register(abi.SYS_KILL, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, t.Kill(int32(a.Args[0]), abi.Signal(a.Args[1]))
	})
	register(abi.SYS_TGKILL, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, t.Tgkill(int32(a.Args[0]), int32(a.Args[1]), abi.Signal(a.Args[2]), abi.SI_TKILL)
	})
	register(abi.SYS_TKILL, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, t.Tgkill(0, int32(a.Args[0]), abi.Signal(a.Args[1]), abi.SI_TKILL)
	})
	register(abi.SYS_SET_TID_ADDRESS, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		t.SetClearChildTID(a.Args[0])
		return uint64(t.LocalTID()), nil
	})
	register(abi.SYS_SET_ROBUST_LIST, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if a.Args[1] != 24 {
			return 0, unix.EINVAL
		}
		t.SetRobustList(a.Args[0])
		return 0, nil
	})
	register(abi.SYS_GET_ROBUST_LIST, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if a.Args[0] != 0 && int32(a.Args[0]) != t.LocalTID() {
			return 0, unix.EPERM
		}
		if err := copyOutU64(t, a.Args[1], t.RobustList()); err != nil {
			return 0, err
		}
		return 0, copyOutU64(t, a.Args[2], 24)
	})
	register(abi.SYS_ARCH_PRCTL, sysArchPrctl)
	register(abi.SYS_UNAME, sysUname)
	register(abi.SYS_SCHED_YIELD, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		runtime.Gosched()
		return 0, nil
	})
	register(abi.SYS_GETUID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return uint64(t.Creds().RUID), nil })
	register(abi.SYS_GETEUID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return uint64(t.Creds().EUID), nil })
	register(abi.SYS_GETGID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return uint64(t.Creds().RGID), nil })
	register(abi.SYS_GETEGID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return uint64(t.Creds().EGID), nil })
	register(abi.SYS_GETRESUID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		c := t.Creds()
		for i, v := range []uint32{c.RUID, c.EUID, c.SUID} {
			if err := copyOutU32(t, a.Args[i], v); err != nil {
				return 0, err
			}
		}
		return 0, nil
	})
	register(abi.SYS_GETRESGID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		c := t.Creds()
		for i, v := range []uint32{c.RGID, c.EGID, c.SGID} {
			if err := copyOutU32(t, a.Args[i], v); err != nil {
				return 0, err
			}
		}
		return 0, nil
	})
	register(abi.SYS_GETGROUPS, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		g := t.Creds().Groups
		n := int(int32(a.Args[0]))
		if n < 0 {
			return 0, unix.EINVAL
		}
		if n == 0 {
			return uint64(len(g)), nil
		}
		if n < len(g) {
			return 0, unix.EINVAL
		}
		for i, v := range g {
			if err := copyOutU32(t, a.Args[1]+uint64(i)*4, v); err != nil {
				return 0, err
			}
		}
		return uint64(len(g)), nil
	})
	register(abi.SYS_SETUID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, setresuid(t, ^uint32(0), uint32(a.Args[0]), ^uint32(0), true)
	})
	register(abi.SYS_SETGID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, setresgid(t, ^uint32(0), uint32(a.Args[0]), ^uint32(0), true)
	})
	register(abi.SYS_SETRESUID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, setresuid(t, uint32(a.Args[0]), uint32(a.Args[1]), uint32(a.Args[2]), false)
	})
	register(abi.SYS_SETRESGID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, setresgid(t, uint32(a.Args[0]), uint32(a.Args[1]), uint32(a.Args[2]), false)
	})
	register(abi.SYS_SETREUID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, setresuid(t, uint32(a.Args[0]), uint32(a.Args[1]), ^uint32(0), false)
	})
	register(abi.SYS_SETREGID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, setresgid(t, uint32(a.Args[0]), uint32(a.Args[1]), ^uint32(0), false)
	})
	register(abi.SYS_SETGROUPS, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		n := int(int32(a.Args[0]))
		if n < 0 || n > 65536 {
			return 0, unix.EINVAL
		}
		c := *t.Creds()
		if !c.HasCap(abi.CAP_SETGID) {
			return 0, unix.EPERM
		}
		groups := make([]uint32, n)
		for i := range groups {
			var b [4]byte
			if _, err := t.CopyIn(a.Args[1]+uint64(i)*4, b[:]); err != nil {
				return 0, unix.EFAULT
			}
			groups[i] = le.Uint32(b[:])
		}
		c.Groups = groups
		t.SetCreds(&c)
		return 0, nil
	})
	register(abi.SYS_SETFSUID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		c := *t.Creds()
		old := c.FSUID
		v := uint32(a.Args[0])
		if c.HasCap(abi.CAP_SETUID) || v == c.RUID || v == c.EUID || v == c.SUID || v == c.FSUID {
			c.FSUID = v
			kernel.FixupSetuid(t.Creds(), &c)
			t.SetCreds(&c)
		}
		return uint64(old), nil
	})
	register(abi.SYS_SETFSGID, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		c := *t.Creds()
		old := c.FSGID
		if c.HasCap(abi.CAP_SETGID) || uint32(a.Args[0]) == c.FSGID || uint32(a.Args[0]) == c.RGID || uint32(a.Args[0]) == c.EGID || uint32(a.Args[0]) == c.SGID {
			c.FSGID = uint32(a.Args[0])
			t.SetCreds(&c)
		}
		return uint64(old), nil
	})
	register(abi.SYS_PRLIMIT64, sysPrlimit)
	register(abi.SYS_GETRLIMIT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return sysPrlimit(t, &kernel.SyscallArgs{Args: [6]uint64{0, a.Args[0], 0, a.Args[1]}})
	})
	register(abi.SYS_SETRLIMIT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return sysPrlimit(t, &kernel.SyscallArgs{Args: [6]uint64{0, a.Args[0], a.Args[1], 0}})
	})
	register(abi.SYS_PRCTL, sysPrctl)
	register(abi.SYS_GETCPU, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if a.Args[0] != 0 {
			if err := copyOutU32(t, a.Args[0], 0); err != nil {
				return 0, err
			}
		}
		if a.Args[1] != 0 {
			if err := copyOutU32(t, a.Args[1], 0); err != nil {
				return 0, err
			}
		}
		return 0, nil
	})
	register(abi.SYS_SCHED_GETAFFINITY, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		n := t.Kernel().CPUs()
		size := (n + 63) / 64 * 8
		if a.Args[1] < uint64(size) || a.Args[1]%8 != 0 {
			return 0, unix.EINVAL
		}
		mask := make([]byte, size)
		for i := 0; i < n; i++ {
			mask[i/8] |= 1 << (i % 8)
		}
		if _, err := t.CopyOut(a.Args[2], mask); err != nil {
			return 0, unix.EFAULT
		}
		return uint64(size), nil
	})
	register(abi.SYS_SCHED_SETAFFINITY, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		// Tasks may run on any vCPU; accept any non-empty mask.
		return 0, nil
	})
	register(abi.SYS_SCHED_GETSCHEDULER, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return 0, nil })
	register(abi.SYS_SCHED_GETPARAM, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, copyOutU32(t, a.Args[1], 0)
	})
	register(abi.SYS_SCHED_GET_PRIORITY_MAX, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if a.Args[0] == 1 || a.Args[0] == 2 {
			return 99, nil
		}
		return 0, nil
	})
	register(abi.SYS_SCHED_GET_PRIORITY_MIN, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if a.Args[0] == 1 || a.Args[0] == 2 {
			return 1, nil
		}
		return 0, nil
	})
	register(abi.SYS_GETPRIORITY, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return 20, nil })
	register(abi.SYS_SETPRIORITY, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return 0, nil })
	register(abi.SYS_CAPGET, sysCapget)
	register(abi.SYS_CAPSET, sysCapset)
	register(abi.SYS_MEMBARRIER, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		switch a.Args[0] {
		case 0: // MEMBARRIER_CMD_QUERY
			return 1 | 8 | 16, nil // GLOBAL, PRIVATE_EXPEDITED, REGISTER_PRIVATE_EXPEDITED
		case 1, 8, 16:
			return 0, nil
		}
		return 0, unix.EINVAL
	})
	register(abi.SYS_RSEQ, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return 0, unix.ENOSYS })
	register(abi.SYS_SYSINFO, sysSysinfo)
	register(abi.SYS_TIMES, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		ticks := uint64(time.Since(t.Kernel().BootTime()) / (10 * time.Millisecond))
		if a.Args[0] != 0 {
			var b [32]byte
			if _, err := t.CopyOut(a.Args[0], b[:]); err != nil {
				return 0, unix.EFAULT
			}
		}
		return ticks, nil
	})
	register(abi.SYS_PERSONALITY, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if uint32(a.Args[0]) == 0xffffffff || a.Args[0] == 0 {
			return 0, nil
		}
		return 0, unix.EINVAL
	})
}

func sysClone3(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	size := a.Args[1]
	if size < 64 || size > 4096 {
		return 0, unix.EINVAL
	}
	b := make([]byte, size)
	if _, err := t.CopyIn(a.Args[0], b); err != nil {
		return 0, unix.EFAULT
	}
	for _, x := range b[88:] {
		if x != 0 && size > 88 {
			return 0, unix.E2BIG
		}
	}
	full := make([]byte, 88)
	copy(full, b)
	var ca abi.CloneArgs
	ca.Unmarshal(full)
	if ca.ExitSignal > 64 || ca.SetTID != 0 || ca.Cgroup != 0 {
		return 0, unix.EINVAL
	}
	stack := uint64(0)
	if ca.Stack != 0 {
		stack = ca.Stack + ca.StackSize
	}
	tid, err := t.Clone(kernel.CloneOptions{Flags: ca.Flags, Stack: stack, ParentTID: ca.ParentTID, ChildTID: ca.ChildTID, TLS: ca.TLS, ExitSignal: abi.Signal(ca.ExitSignal)})
	return uint64(tid), err
}

func execve(t *kernel.Task, dirfd int32, pathAddr, argvAddr, envAddr uint64, flags uint32) (uint64, error) {
	p, err := copyInPath(t, pathAddr)
	if err != nil {
		return 0, err
	}
	argv, err := copyInStrings(t, argvAddr)
	if err != nil {
		return 0, err
	}
	envv, err := copyInStrings(t, envAddr)
	if err != nil {
		return 0, err
	}
	if p == "" && flags&abi.AT_EMPTY_PATH == 0 {
		return 0, unix.ENOENT
	}
	if err := t.Execve(kernel.ExecArgs{Path: p, DirFD: dirfd, Argv: argv, Envv: envv, Flags: flags}); err != nil {
		return 0, err
	}
	return 0, kernel.ErrNoReturn
}

func sysWait4(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	opts := a.Args[2]
	if opts&^(unix.WNOHANG|unix.WUNTRACED|unix.WCONTINUED|unix.WALL|unix.WCLONE|0x20000000) != 0 {
		return 0, unix.EINVAL
	}
	res, err := t.Wait(kernel.WaitOptions{PID: int32(a.Args[0]), NoHang: opts&unix.WNOHANG != 0, Exited: true,
		Stopped: opts&unix.WUNTRACED != 0, Continued: opts&unix.WCONTINUED != 0})
	if err != nil || res == nil {
		return 0, err
	}
	if a.Args[1] != 0 {
		if err := copyOutU32(t, a.Args[1], uint32(res.Status)); err != nil {
			return 0, err
		}
	}
	if a.Args[3] != 0 {
		if _, err := t.CopyOut(a.Args[3], make([]byte, 144)); err != nil {
			return 0, unix.EFAULT
		}
	}
	return uint64(res.PID), nil
}

func sysWaitid(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	idtype, id, infop, opts := a.Args[0], int32(a.Args[1]), a.Args[2], a.Args[3]
	var pid int32
	switch idtype {
	case 0: // P_ALL
		pid = -1
	case 1: // P_PID
		pid = id
	case 2: // P_PGID
		pid = -id
		if id == 0 {
			pid = 0
		}
	default:
		return 0, unix.EINVAL
	}
	if opts&(unix.WEXITED|unix.WSTOPPED|unix.WCONTINUED) == 0 {
		return 0, unix.EINVAL
	}
	res, err := t.Wait(kernel.WaitOptions{PID: pid, NoHang: opts&unix.WNOHANG != 0, NoWait: opts&unix.WNOWAIT != 0,
		Exited: opts&unix.WEXITED != 0, Stopped: opts&unix.WSTOPPED != 0, Continued: opts&unix.WCONTINUED != 0})
	if err != nil {
		return 0, err
	}
	if infop != 0 {
		var info abi.SignalInfo
		if res != nil {
			info.SetSigno(abi.SIGCHLD)
			info.SetPID(res.PID)
			info.SetCode(res.Code)
			switch res.Code {
			case abi.CLD_KILLED:
				info.SetStatus(int32(res.Status.Signal()))
			case abi.CLD_STOPPED:
				info.SetStatus(int32(res.Status >> 8 & 0xff))
			case abi.CLD_CONTINUED:
				info.SetStatus(int32(abi.SIGCONT))
			default:
				info.SetStatus(int32(res.Status.ExitCode()))
			}
		}
		b := make([]byte, abi.SignalInfoSize)
		info.Marshal(b)
		if _, err := t.CopyOut(infop, b); err != nil {
			return 0, unix.EFAULT
		}
	}
	return 0, nil
}

func sysArchPrctl(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	r := t.Regs()
	switch a.Args[0] {
	case abi.ARCH_SET_FS:
		if a.Args[1] >= platform.UserTop {
			return 0, unix.EPERM
		}
		r.FSBase = a.Args[1]
	case abi.ARCH_SET_GS:
		if a.Args[1] >= platform.UserTop {
			return 0, unix.EPERM
		}
		r.GSBase = a.Args[1]
	case abi.ARCH_GET_FS:
		return 0, copyOutU64(t, a.Args[1], r.FSBase)
	case abi.ARCH_GET_GS:
		return 0, copyOutU64(t, a.Args[1], r.GSBase)
	case abi.ARCH_GET_CPUID:
		return 1, nil
	default:
		return 0, unix.EINVAL
	}
	return 0, nil
}

func sysUname(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	u := abi.Utsname{Sysname: "Linux", Nodename: t.Kernel().Hostname(), Release: "6.8.0",
		Version: "#1 SMP moat", Machine: "x86_64", Domainname: t.Kernel().Domainname()}
	b := make([]byte, abi.UtsnameSize)
	u.Marshal(b)
	if _, err := t.CopyOut(a.Args[0], b); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

func sysPrlimit(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	pid, res, newp, oldp := int32(a.Args[0]), int(a.Args[1]), a.Args[2], a.Args[3]
	if res < 0 || res >= 16 {
		return 0, unix.EINVAL
	}
	g, err := t.ThreadGroupByLocalID(pid)
	if err != nil {
		return 0, err
	}
	if g != t.ThreadGroup() && !t.Creds().HasCap(abi.CAP_SYS_RESOURCE) {
		// Another process's limits: only with its user and group ids
		// all equal to the caller's real ones (Linux's rule).
		l := g.Leader()
		if l == nil {
			return 0, unix.ESRCH
		}
		c, tc := t.Creds(), l.ProcCreds()
		if tc.RUID != c.RUID || tc.EUID != c.RUID || tc.SUID != c.RUID ||
			tc.RGID != c.RGID || tc.EGID != c.RGID || tc.SGID != c.RGID {
			return 0, unix.EPERM
		}
	}
	old := g.Rlimit(res)
	if newp != 0 {
		b := make([]byte, abi.RlimitSize)
		if _, err := t.CopyIn(newp, b); err != nil {
			return 0, unix.EFAULT
		}
		var l abi.Rlimit
		l.Unmarshal(b)
		if l.Cur > l.Max {
			return 0, unix.EINVAL
		}
		if l.Max > old.Max && !t.Creds().HasCap(abi.CAP_SYS_RESOURCE) {
			return 0, unix.EPERM
		}
		g.SetRlimit(res, l)
	}
	if oldp != 0 {
		b := make([]byte, abi.RlimitSize)
		old.Marshal(b)
		if _, err := t.CopyOut(oldp, b); err != nil {
			return 0, unix.EFAULT
		}
	}
	return 0, nil
}

func sysPrctl(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	switch a.Args[0] {
	case abi.PR_SET_NAME:
		s, err := t.CopyInString(a.Args[1], 16)
		if err != nil && err != unix.ENAMETOOLONG {
			return 0, err
		}
		if err == unix.ENAMETOOLONG {
			b := make([]byte, 15)
			t.CopyIn(a.Args[1], b)
			s = string(b)
		}
		t.SetName(s)
		return 0, nil
	case abi.PR_GET_NAME:
		b := make([]byte, 16)
		copy(b, t.Name())
		if _, err := t.CopyOut(a.Args[1], b); err != nil {
			return 0, unix.EFAULT
		}
		return 0, nil
	case abi.PR_SET_NO_NEW_PRIVS:
		if a.Args[1] != 1 || a.Args[2]|a.Args[3]|a.Args[4] != 0 {
			return 0, unix.EINVAL
		}
		c := *t.Creds()
		c.NoNewPrivs = true
		t.SetCreds(&c)
		return 0, nil
	case abi.PR_GET_NO_NEW_PRIVS:
		if a.Args[1]|a.Args[2]|a.Args[3]|a.Args[4] != 0 {
			return 0, unix.EINVAL
		}
		if t.Creds().NoNewPrivs {
			return 1, nil
		}
		return 0, nil
	case abi.PR_SET_KEEPCAPS:
		if a.Args[1] > 1 {
			return 0, unix.EINVAL
		}
		c := *t.Creds()
		c.KeepCaps = a.Args[1] == 1
		t.SetCreds(&c)
		return 0, nil
	case unix.PR_GET_KEEPCAPS:
		if t.Creds().KeepCaps {
			return 1, nil
		}
		return 0, nil
	case unix.PR_CAPBSET_DROP:
		if a.Args[1] > uint64(auth.CapLastCap) {
			return 0, unix.EINVAL
		}
		c := *t.Creds()
		if !c.HasCap(abi.CAP_SETPCAP) {
			return 0, unix.EPERM
		}
		c.Bounding &^= auth.CapSetOf(auth.Capability(a.Args[1]))
		t.SetCreds(&c)
		return 0, nil
	case unix.PR_CAP_AMBIENT:
		return prctlAmbient(t, a)
	case abi.PR_SET_PDEATHSIG, abi.PR_SET_DUMPABLE, abi.PR_SET_CHILD_SUBREAPER, abi.PR_SET_TIMERSLACK:
		return 0, nil
	case abi.PR_GET_PDEATHSIG:
		return 0, copyOutU32(t, a.Args[1], 0)
	case abi.PR_GET_DUMPABLE:
		return 1, nil
	case abi.PR_CAPBSET_READ:
		if a.Args[1] > uint64(auth.CapLastCap) {
			return 0, unix.EINVAL
		}
		if t.Creds().Bounding&auth.CapSetOf(auth.Capability(a.Args[1])) != 0 {
			return 1, nil
		}
		return 0, nil
	case abi.PR_GET_SECCOMP, abi.PR_SET_SECCOMP:
		return prctlSeccomp(t, a)
	}
	return 0, unix.EINVAL
}

// capVersion checks a capability header's version and returns how many
// 32-bit words each set takes; for an unknown one it writes the version
// this kernel prefers back (as Linux) and fails with EINVAL.
func capVersion(t *kernel.Task, hdrAddr uint64) (words int, pid int32, err error) {
	var hdr [8]byte
	if _, err := t.CopyIn(hdrAddr, hdr[:]); err != nil {
		return 0, 0, unix.EFAULT
	}
	pid = int32(le.Uint32(hdr[4:]))
	switch le.Uint32(hdr[:]) {
	case 0x19980330: // _LINUX_CAPABILITY_VERSION_1
		return 1, pid, nil
	case 0x20071026, 0x20080522: // _2, _3
		return 2, pid, nil
	}
	le.PutUint32(hdr[:], 0x20080522)
	if _, err := t.CopyOut(hdrAddr, hdr[:4]); err != nil {
		return 0, 0, unix.EFAULT
	}
	return 0, 0, unix.EINVAL
}

func sysCapget(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	words, pid, err := capVersion(t, a.Args[0])
	if a.Args[1] == 0 {
		if err == unix.EINVAL {
			return 0, nil // a probe of the version
		}
		return 0, err
	}
	if err != nil {
		return 0, err
	}
	if pid < 0 {
		return 0, unix.EINVAL
	}
	c := t.Creds()
	if pid != 0 {
		g, err := t.ThreadGroupByLocalID(pid)
		if err != nil {
			return 0, err
		}
		if l := g.Leader(); l != nil {
			pc := l.ProcCreds()
			c = &pc
		} else if ts := g.Tasks(); len(ts) > 0 {
			pc := ts[0].ProcCreds()
			c = &pc
		}
	}
	b := make([]byte, 12*words)
	for i := 0; i < words; i++ {
		le.PutUint32(b[12*i:], uint32(uint64(c.Caps)>>(32*i)))
		le.PutUint32(b[12*i+4:], uint32(uint64(c.Permitted)>>(32*i)))
		le.PutUint32(b[12*i+8:], uint32(uint64(c.Inheritable)>>(32*i)))
	}
	if _, err := t.CopyOut(a.Args[1], b); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

// sysCapset changes the caller's own effective, permitted and
// inheritable sets under capset(2)'s rules: permitted may only shrink,
// effective stays within permitted, inheritable within the old
// inheritable and permitted sets (any of bounding with CAP_SETPCAP).
func sysCapset(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	words, pid, err := capVersion(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	if pid != 0 && pid != t.LocalPID() {
		return 0, unix.EPERM
	}
	b := make([]byte, 12*words)
	if _, err := t.CopyIn(a.Args[1], b); err != nil {
		return 0, unix.EFAULT
	}
	var eff, perm, inh uint64
	for i := 0; i < words; i++ {
		eff |= uint64(le.Uint32(b[12*i:])) << (32 * i)
		perm |= uint64(le.Uint32(b[12*i+4:])) << (32 * i)
		inh |= uint64(le.Uint32(b[12*i+8:])) << (32 * i)
	}
	old := t.Creds()
	if words == 1 {
		// Version 1 sets only the low 32 capabilities.
		eff |= uint64(old.Caps) &^ 0xffffffff
		perm |= uint64(old.Permitted) &^ 0xffffffff
		inh |= uint64(old.Inheritable) &^ 0xffffffff
	}
	E, P, I := auth.CapSet(eff), auth.CapSet(perm), auth.CapSet(inh)
	if I&^(old.Inheritable|old.Permitted) != 0 && !old.HasCap(abi.CAP_SETPCAP) {
		return 0, unix.EPERM
	}
	if I&^(old.Inheritable|old.Bounding) != 0 {
		return 0, unix.EPERM
	}
	if P&^old.Permitted != 0 || E&^P != 0 {
		return 0, unix.EPERM
	}
	c := *old
	c.Caps, c.Permitted, c.Inheritable = E, P, I
	c.Ambient &= P & I
	t.SetCreds(&c)
	return 0, nil
}

// prctlAmbient is prctl(PR_CAP_AMBIENT, op, cap, 0, 0).
func prctlAmbient(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	op, cp := a.Args[1], a.Args[2]
	if op == unix.PR_CAP_AMBIENT_CLEAR_ALL {
		if cp|a.Args[3]|a.Args[4] != 0 {
			return 0, unix.EINVAL
		}
		c := *t.Creds()
		c.Ambient = 0
		t.SetCreds(&c)
		return 0, nil
	}
	if a.Args[3]|a.Args[4] != 0 || cp > uint64(auth.CapLastCap) {
		return 0, unix.EINVAL
	}
	bit := auth.CapSetOf(auth.Capability(cp))
	c := *t.Creds()
	switch op {
	case unix.PR_CAP_AMBIENT_IS_SET:
		if c.Ambient&bit != 0 {
			return 1, nil
		}
		return 0, nil
	case unix.PR_CAP_AMBIENT_RAISE:
		if c.Permitted&bit == 0 || c.Inheritable&bit == 0 {
			return 0, unix.EPERM
		}
		c.Ambient |= bit
	case unix.PR_CAP_AMBIENT_LOWER:
		c.Ambient &^= bit
	default:
		return 0, unix.EINVAL
	}
	t.SetCreds(&c)
	return 0, nil
}

func sysSysinfo(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	k := t.Kernel()
	used, _, limit := k.Frames.Usage()
	if limit == 0 {
		limit = 8 << 30
	}
	si := abi.Sysinfo{
		Uptime:   int64(time.Since(k.BootTime()).Seconds()),
		Totalram: limit,
		Freeram:  limit - min(used, limit),
		Procs:    uint16(len(t.PIDNamespace().ThreadGroups())),
		MemUnit:  1,
	}
	b := make([]byte, abi.SysinfoSize)
	si.Marshal(b)
	if _, err := t.CopyOut(a.Args[0], b); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

func setresuid(t *kernel.Task, r, e, s uint32, setuid bool) error {
	c := *t.Creds()
	priv := c.HasCap(abi.CAP_SETUID)
	const keep = ^uint32(0)
	allowed := func(v uint32) bool { return v == keep || priv || v == c.RUID || v == c.EUID || v == c.SUID }
	if setuid {
		if priv {
			c.RUID, c.EUID, c.SUID, c.FSUID = e, e, e, e
		} else if e == c.RUID || e == c.SUID {
			c.EUID, c.FSUID = e, e
		} else {
			return unix.EPERM
		}
	} else {
		if !allowed(r) || !allowed(e) || !allowed(s) {
			return unix.EPERM
		}
		if r != keep {
			c.RUID = r
		}
		if e != keep {
			c.EUID = e
		}
		if s != keep {
			c.SUID = s
		}
		c.FSUID = c.EUID
	}
	// The capability sets follow the uid change, as Linux does without
	// SECBIT_NO_SETUID_FIXUP.
	kernel.FixupSetuid(t.Creds(), &c)
	t.SetCreds(&c)
	return nil
}

func setresgid(t *kernel.Task, r, e, s uint32, setgid bool) error {
	c := *t.Creds()
	priv := c.HasCap(abi.CAP_SETGID)
	const keep = ^uint32(0)
	allowed := func(v uint32) bool { return v == keep || priv || v == c.RGID || v == c.EGID || v == c.SGID }
	if setgid {
		if priv {
			c.RGID, c.EGID, c.SGID, c.FSGID = e, e, e, e
		} else if e == c.RGID || e == c.SGID {
			c.EGID, c.FSGID = e, e
		} else {
			return unix.EPERM
		}
	} else {
		if !allowed(r) || !allowed(e) || !allowed(s) {
			return unix.EPERM
		}
		if r != keep {
			c.RGID = r
		}
		if e != keep {
			c.EGID = e
		}
		if s != keep {
			c.SGID = s
		}
		c.FSGID = c.EGID
	}
	t.SetCreds(&c)
	return nil
}
