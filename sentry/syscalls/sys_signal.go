package syscalls

import (
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/kernel"
)

func init() {
	register(abi.SYS_RT_SIGACTION, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		sig, newp, oldp := abi.Signal(a.Args[0]), a.Args[1], a.Args[2]
		if a.Args[3] != abi.SignalSetSize {
			return 0, unix.EINVAL
		}
		var nact *abi.Sigaction
		if newp != 0 {
			b := make([]byte, abi.SigactionSize)
			if _, err := t.CopyIn(newp, b); err != nil {
				return 0, unix.EFAULT
			}
			nact = &abi.Sigaction{}
			nact.Unmarshal(b)
		}
		old, err := t.SigAction(sig, nact)
		if err != nil {
			return 0, err
		}
		if oldp != 0 {
			b := make([]byte, abi.SigactionSize)
			old.Marshal(b)
			if _, err := t.CopyOut(oldp, b); err != nil {
				return 0, unix.EFAULT
			}
		}
		return 0, nil
	})
	register(abi.SYS_RT_SIGPROCMASK, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		how, setp, oldp := a.Args[0], a.Args[1], a.Args[2]
		if a.Args[3] != abi.SignalSetSize {
			return 0, unix.EINVAL
		}
		var set *abi.SignalSet
		if setp != 0 {
			v, err := copyInU64(t, setp)
			if err != nil {
				return 0, err
			}
			s := abi.SignalSet(v)
			set = &s
		}
		old, err := t.SigProcMask(int(how), set)
		if err != nil {
			return 0, err
		}
		if oldp != 0 {
			return 0, copyOutU64(t, oldp, uint64(old))
		}
		return 0, nil
	})
	register(abi.SYS_RT_SIGRETURN, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if err := t.SigReturn(); err != nil {
			t.Kernel().SendTaskSignal(t, kernel.SignalInfoKill(abi.SIGSEGV, abi.SI_KERNEL, 0, 0))
		}
		return 0, kernel.ErrNoReturn
	})
	register(abi.SYS_SIGALTSTACK, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		var ns *abi.SignalStack
		if a.Args[0] != 0 {
			b := make([]byte, abi.SignalStackSize)
			if _, err := t.CopyIn(a.Args[0], b); err != nil {
				return 0, unix.EFAULT
			}
			ns = &abi.SignalStack{}
			ns.Unmarshal(b)
		}
		old, err := t.SigAltStack(ns)
		if err != nil {
			return 0, err
		}
		if a.Args[1] != 0 {
			b := make([]byte, abi.SignalStackSize)
			old.Marshal(b)
			if _, err := t.CopyOut(a.Args[1], b); err != nil {
				return 0, unix.EFAULT
			}
		}
		return 0, nil
	})
	register(abi.SYS_RT_SIGPENDING, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if a.Args[1] != abi.SignalSetSize {
			return 0, unix.EINVAL
		}
		return 0, copyOutU64(t, a.Args[0], uint64(t.SigPending()))
	})
	register(abi.SYS_RT_SIGSUSPEND, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if a.Args[1] != abi.SignalSetSize {
			return 0, unix.EINVAL
		}
		v, err := copyInU64(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		t.SigSuspend(abi.SignalSet(v))
		return 0, kernel.ErrRestartNoHand
	})
	register(abi.SYS_PAUSE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		t.Block(nil, time.Time{})
		return 0, kernel.ErrRestartNoHand
	})
	register(abi.SYS_RT_SIGTIMEDWAIT, sysSigtimedwait)
	register(abi.SYS_RT_SIGQUEUEINFO, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		b := make([]byte, abi.SignalInfoSize)
		if _, err := t.CopyIn(a.Args[2], b); err != nil {
			return 0, unix.EFAULT
		}
		var info abi.SignalInfo
		info.Unmarshal(b)
		if info.Code() >= 0 || info.Code() == abi.SI_TKILL {
			return 0, unix.EPERM
		}
		info.SetSigno(abi.Signal(a.Args[1]))
		return 0, t.QueueSignal(int32(a.Args[0]), 0, &info)
	})
	register(abi.SYS_RT_TGSIGQUEUEINFO, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		b := make([]byte, abi.SignalInfoSize)
		if _, err := t.CopyIn(a.Args[3], b); err != nil {
			return 0, unix.EFAULT
		}
		var info abi.SignalInfo
		info.Unmarshal(b)
		if info.Code() >= 0 || info.Code() == abi.SI_TKILL {
			return 0, unix.EPERM
		}
		info.SetSigno(abi.Signal(a.Args[2]))
		return 0, t.QueueSignal(int32(a.Args[0]), int32(a.Args[1]), &info)
	})
}

func sysSigtimedwait(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a.Args[3] != abi.SignalSetSize {
		return 0, unix.EINVAL
	}
	v, err := copyInU64(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	var deadline time.Time
	if a.Args[2] != 0 {
		d, err := copyInTimespec(t, a.Args[2])
		if err != nil {
			return 0, err
		}
		deadline = time.Now().Add(d)
	}
	info, err := t.SigTimedWait(abi.SignalSet(v), deadline)
	if err != nil {
		return 0, err
	}
	if a.Args[1] != 0 {
		b := make([]byte, abi.SignalInfoSize)
		info.Marshal(b)
		if _, err := t.CopyOut(a.Args[1], b); err != nil {
			return 0, unix.EFAULT
		}
	}
	return uint64(info.Signo()), nil
}
