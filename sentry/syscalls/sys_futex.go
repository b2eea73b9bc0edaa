package syscalls

import (
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/kernel"
)

func init() {
	register(abi.SYS_FUTEX, sysFutex)
}

func sysFutex(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	addr, op, val, timeout, addr2, val3 := a.Args[0], a.Args[1], uint32(a.Args[2]), a.Args[3], a.Args[4], uint32(a.Args[5])
	cmd := op & 0x7f // without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME
	realtime := op&256 != 0
	f := t.Kernel().Futexes()
	if addr%4 != 0 {
		return 0, unix.EINVAL
	}
	deadline := func(abs bool) (time.Time, error) {
		if timeout == 0 {
			return time.Time{}, nil
		}
		d, err := copyInTimespec(t, timeout)
		if err != nil {
			return time.Time{}, err
		}
		if !abs {
			return time.Now().Add(d), nil
		}
		if realtime {
			return time.Unix(0, int64(d)), nil
		}
		return t.Kernel().BootTime().Add(d), nil
	}
	switch cmd {
	case 0: // FUTEX_WAIT
		dl, err := deadline(false)
		if err != nil {
			return 0, err
		}
		return 0, f.Wait(t, addr, val, ^uint32(0), dl)
	case 9: // FUTEX_WAIT_BITSET
		dl, err := deadline(true)
		if err != nil {
			return 0, err
		}
		return 0, f.Wait(t, addr, val, val3, dl)
	case 1: // FUTEX_WAKE
		return uint64(f.Wake(t, addr, false, int(int32(val)), ^uint32(0))), nil
	case 10: // FUTEX_WAKE_BITSET
		return uint64(f.Wake(t, addr, false, int(int32(val)), val3)), nil
	case 3: // FUTEX_REQUEUE
		n, err := f.Requeue(t, addr, addr2, int(int32(val)), int(int32(timeout)), false, 0)
		return uint64(n), err
	case 4: // FUTEX_CMP_REQUEUE
		n, err := f.Requeue(t, addr, addr2, int(int32(val)), int(int32(timeout)), true, val3)
		return uint64(n), err
	case 5: // FUTEX_WAKE_OP
		n, err := f.WakeOp(t, addr, addr2, int(int32(val)), int(int32(timeout)), val3)
		return uint64(n), err
	}
	return 0, unix.ENOSYS
}
