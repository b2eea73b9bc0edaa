package syscalls

import (
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/kernel"
)

func init() {
	register(abi.SYS_ALARM, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		left, _ := t.ThreadGroup().SetRealTimer(time.Duration(uint32(a.Args[0]))*time.Second, 0)
		secs := uint64((left + time.Second/2) / time.Second)
		if left > 0 && secs == 0 {
			secs = 1
		}
		return secs, nil
	})
	register(abi.SYS_SETITIMER, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		which := a.Args[0]
		var value, interval time.Duration
		if a.Args[1] != 0 {
			var err error
			if interval, value, err = copyInItimerval(t, a.Args[1]); err != nil {
				return 0, err
			}
		}
		var left, oldInterval time.Duration
		switch which {
		case unix.ITIMER_REAL:
			if a.Args[1] == 0 {
				left, oldInterval = t.ThreadGroup().RealTimer()
			} else {
				left, oldInterval = t.ThreadGroup().SetRealTimer(value, interval)
			}
		case unix.ITIMER_VIRTUAL, unix.ITIMER_PROF:
			// CPU-time timers are not modelled: they never fire.
		default:
			return 0, unix.EINVAL
		}
		if a.Args[2] != 0 {
			return 0, copyOutItimerval(t, a.Args[2], oldInterval, left)
		}
		return 0, nil
	})
	register(abi.SYS_GETITIMER, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		var left, interval time.Duration
		switch a.Args[0] {
		case unix.ITIMER_REAL:
			left, interval = t.ThreadGroup().RealTimer()
		case unix.ITIMER_VIRTUAL, unix.ITIMER_PROF:
		default:
			return 0, unix.EINVAL
		}
		return 0, copyOutItimerval(t, a.Args[1], interval, left)
	})
	register(abi.SYS_GETRUSAGE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		var cpu time.Duration
		switch int32(a.Args[0]) {
		case unix.RUSAGE_SELF:
			cpu = t.ThreadGroup().CPUTime()
		case unix.RUSAGE_THREAD:
			cpu = t.CPUTime()
		case unix.RUSAGE_CHILDREN:
			cpu = t.ThreadGroup().ChildrenCPUTime()
		default:
			return 0, unix.EINVAL
		}
		ru := abi.Rusage{Utime: abi.Timeval{Sec: int64(cpu / time.Second), Usec: int64(cpu%time.Second) / 1000}}
		if int32(a.Args[0]) != unix.RUSAGE_CHILDREN {
			ru.Maxrss = int64(t.MM().Resident() / 1024)
		}
		b := make([]byte, abi.RusageSize)
		ru.Marshal(b)
		if _, err := t.CopyOut(a.Args[1], b); err != nil {
			return 0, unix.EFAULT
		}
		return 0, nil
	})
}

func copyInItimerval(t *kernel.Task, addr uint64) (interval, value time.Duration, err error) {
	b := make([]byte, 2*abi.TimevalSize)
	if _, err := t.CopyIn(addr, b); err != nil {
		return 0, 0, unix.EFAULT
	}
	var iv, v abi.Timeval
	iv.Unmarshal(b)
	v.Unmarshal(b[abi.TimevalSize:])
	for _, x := range []abi.Timeval{iv, v} {
		if x.Sec < 0 || x.Usec < 0 || x.Usec >= 1e6 {
			return 0, 0, unix.EINVAL
		}
	}
	conv := func(x abi.Timeval) time.Duration {
		return time.Duration(min(x.Sec, 1<<32))*time.Second + time.Duration(x.Usec)*time.Microsecond
	}
	return conv(iv), conv(v), nil
}

func copyOutItimerval(t *kernel.Task, addr uint64, interval, value time.Duration) error {
	b := make([]byte, 2*abi.TimevalSize)
	iv := abi.Timeval{Sec: int64(interval / time.Second), Usec: int64(interval%time.Second) / 1000}
	v := abi.Timeval{Sec: int64(value / time.Second), Usec: int64(value%time.Second) / 1000}
	iv.Marshal(b)
	v.Marshal(b[abi.TimevalSize:])
	if _, err := t.CopyOut(addr, b); err != nil {
		return unix.EFAULT
	}
	return nil
}

func init() {
	register(abi.SYS_TIMER_CREATE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		switch int32(a.Args[0]) {
		case unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_BOOTTIME, unix.CLOCK_TAI:
		default:
			return 0, unix.EINVAL
		}
		var ev *abi.Sigevent
		if a.Args[1] != 0 {
			b := make([]byte, abi.SigeventSize)
			if _, err := t.CopyIn(a.Args[1], b); err != nil {
				return 0, unix.EFAULT
			}
			ev = &abi.Sigevent{}
			ev.Unmarshal(b)
		}
		id, err := t.ThreadGroup().CreateTimer(ev)
		if err != nil {
			return 0, err
		}
		if err := copyOutU32(t, a.Args[2], uint32(id)); err != nil {
			t.ThreadGroup().DeleteTimer(id)
			return 0, err
		}
		return 0, nil
	})
	register(abi.SYS_TIMER_SETTIME, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		pt := t.ThreadGroup().Timer(int32(a.Args[0]))
		if pt == nil {
			return 0, unix.EINVAL
		}
		b := make([]byte, abi.ItimerspecSize)
		if _, err := t.CopyIn(a.Args[2], b); err != nil {
			return 0, unix.EFAULT
		}
		var its abi.Itimerspec
		its.Unmarshal(b)
		value, interval, err := itimerspecDurations(&its)
		if err != nil {
			return 0, err
		}
		if a.Args[1]&unix.TIMER_ABSTIME != 0 && value > 0 {
			now := t.Kernel().Clock().Realtime().UnixNano()
			value = time.Duration(int64(value) - now)
			if value <= 0 {
				value = time.Nanosecond
			}
		}
		ov, oi := pt.Set(value, interval)
		if a.Args[3] != 0 {
			return 0, copyOutItimerspec(t, a.Args[3], ov, oi)
		}
		return 0, nil
	})
	register(abi.SYS_TIMER_GETTIME, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		pt := t.ThreadGroup().Timer(int32(a.Args[0]))
		if pt == nil {
			return 0, unix.EINVAL
		}
		v, i := pt.Get()
		return 0, copyOutItimerspec(t, a.Args[1], v, i)
	})
	register(abi.SYS_TIMER_GETOVERRUN, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		pt := t.ThreadGroup().Timer(int32(a.Args[0]))
		if pt == nil {
			return 0, unix.EINVAL
		}
		return uint64(pt.Overrun()), nil
	})
	register(abi.SYS_TIMER_DELETE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, t.ThreadGroup().DeleteTimer(int32(a.Args[0]))
	})
}

func itimerspecDurations(its *abi.Itimerspec) (value, interval time.Duration, err error) {
	for _, ts := range []abi.Timespec{its.Value, its.Interval} {
		if ts.Sec < 0 || ts.Nsec < 0 || ts.Nsec >= 1e9 {
			return 0, 0, unix.EINVAL
		}
	}
	conv := func(ts abi.Timespec) time.Duration {
		return time.Duration(min(ts.Sec, 1<<33))*time.Second + time.Duration(ts.Nsec)
	}
	return conv(its.Value), conv(its.Interval), nil
}

func copyOutItimerspec(t *kernel.Task, addr uint64, value, interval time.Duration) error {
	its := abi.Itimerspec{
		Interval: abi.Timespec{Sec: int64(interval / time.Second), Nsec: int64(interval % time.Second)},
		Value:    abi.Timespec{Sec: int64(value / time.Second), Nsec: int64(value % time.Second)},
	}
	b := make([]byte, abi.ItimerspecSize)
	its.Marshal(b)
	if _, err := t.CopyOut(addr, b); err != nil {
		return unix.EFAULT
	}
	return nil
}
