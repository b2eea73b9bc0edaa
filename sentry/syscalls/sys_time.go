package syscalls

import (
	"crypto/rand"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/kernel"
)

func init() {
	register(abi.SYS_CLOCK_GETTIME, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		ts, err := clockNow(t, int32(a.Args[0]))
		if err != nil {
			return 0, err
		}
		return 0, copyOutTimespec(t, a.Args[1], ts)
	})
	register(abi.SYS_CLOCK_GETRES, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if _, err := clockNow(t, int32(a.Args[0])); err != nil {
			return 0, err
		}
		if a.Args[1] == 0 {
			return 0, nil
		}
		return 0, copyOutTimespec(t, a.Args[1], abi.Timespec{Nsec: 1})
	})
	register(abi.SYS_GETTIMEOFDAY, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if a.Args[0] != 0 {
			now := t.Kernel().Clock().Realtime()
			var b [16]byte
			le.PutUint64(b[0:], uint64(now.Unix()))
			le.PutUint64(b[8:], uint64(now.Nanosecond()/1000))
			if _, err := t.CopyOut(a.Args[0], b[:]); err != nil {
				return 0, unix.EFAULT
			}
		}
		if a.Args[1] != 0 {
			var b [8]byte
			if _, err := t.CopyOut(a.Args[1], b[:]); err != nil {
				return 0, unix.EFAULT
			}
		}
		return 0, nil
	})
	register(abi.SYS_TIME, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		now := uint64(time.Now().Unix())
		if a.Args[0] != 0 {
			if err := copyOutU64(t, a.Args[0], now); err != nil {
				return 0, err
			}
		}
		return now, nil
	})
	register(abi.SYS_NANOSLEEP, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		d, err := copyInTimespec(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		return 0, sleep(t, time.Now().Add(d), a.Args[1])
	})
	register(abi.SYS_CLOCK_NANOSLEEP, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		clock, flags := int32(a.Args[0]), a.Args[1]
		if _, err := clockNow(t, clock); err != nil {
			return 0, err
		}
		if clock == unix.CLOCK_THREAD_CPUTIME_ID || clock == unix.CLOCK_PROCESS_CPUTIME_ID {
			return 0, unix.EINVAL
		}
		d, err := copyInTimespec(t, a.Args[2])
		if err != nil {
			return 0, err
		}
		if flags&unix.TIMER_ABSTIME != 0 {
			now, _ := clockNow(t, clock)
			d -= time.Duration(now.Sec)*time.Second + time.Duration(now.Nsec)
			return 0, sleep(t, time.Now().Add(d), 0)
		}
		return 0, sleep(t, time.Now().Add(d), a.Args[3])
	})
	register(abi.SYS_GETRANDOM, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if a.Args[2]&^uint64(unix.GRND_NONBLOCK|unix.GRND_RANDOM|unix.GRND_INSECURE) != 0 {
			return 0, unix.EINVAL
		}
		n := min(a.Args[1], 1<<25)
		b := make([]byte, n)
		rand.Read(b)
		c, err := t.CopyOut(a.Args[0], b)
		if err != nil && c == 0 {
			return 0, unix.EFAULT
		}
		return uint64(c), nil
	})
}

// sleep blocks until deadline; an interrupted sleep writes the time left
// to rem and is restarted only when no handler runs.
func sleep(t *kernel.Task, deadline time.Time, rem uint64) error {
	err := t.Block(nil, deadline)
	if err == unix.ETIMEDOUT {
		return nil
	}
	if err == kernel.ErrInterrupted {
		if rem != 0 {
			left := time.Until(deadline)
			if left < 0 {
				left = 0
			}
			copyOutTimespec(t, rem, abi.Timespec{Sec: int64(left / time.Second), Nsec: int64(left % time.Second)})
		}
		return kernel.ErrRestartNoHand
	}
	return err
}

func clockNow(t *kernel.Task, clock int32) (abi.Timespec, error) {
	var d time.Duration
	switch clock {
	case unix.CLOCK_REALTIME, unix.CLOCK_REALTIME_COARSE, unix.CLOCK_TAI:
		now := t.Kernel().Clock().Realtime()
		return abi.Timespec{Sec: now.Unix(), Nsec: int64(now.Nanosecond())}, nil
	case unix.CLOCK_MONOTONIC, unix.CLOCK_MONOTONIC_RAW, unix.CLOCK_MONOTONIC_COARSE, unix.CLOCK_BOOTTIME:
		d = t.Kernel().Clock().Monotonic()
	case unix.CLOCK_PROCESS_CPUTIME_ID:
		d = t.ThreadGroup().CPUTime()
	case unix.CLOCK_THREAD_CPUTIME_ID:
		d = t.CPUTime()
	default:
		return abi.Timespec{}, unix.EINVAL
	}
	return abi.Timespec{Sec: int64(d / time.Second), Nsec: int64(d % time.Second)}, nil
}

func copyInTimespec(t *kernel.Task, addr uint64) (time.Duration, error) {
	b := make([]byte, abi.TimespecSize)
	if _, err := t.CopyIn(addr, b); err != nil {
		return 0, unix.EFAULT
	}
	var ts abi.Timespec
	ts.Unmarshal(b)
	if ts.Sec < 0 || ts.Nsec < 0 || ts.Nsec >= 1e9 {
		return 0, unix.EINVAL
	}
	if ts.Sec > 1<<33 {
		ts.Sec = 1 << 33
	}
	return time.Duration(ts.Sec)*time.Second + time.Duration(ts.Nsec), nil
}

func copyOutTimespec(t *kernel.Task, addr uint64, ts abi.Timespec) error {
	b := make([]byte, abi.TimespecSize)
	ts.Marshal(b)
	if _, err := t.CopyOut(addr, b); err != nil {
		return unix.EFAULT
	}
	return nil
}
