package syscalls

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// capWakeAlarm is CAP_WAKE_ALARM.
const capWakeAlarm auth.Capability = 35

// timerfd_create, timerfd_settime, timerfd_gettime.
func init() {
	register(abi.SYS_TIMERFD_CREATE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		clock, flags := int32(a.Args[0]), a.Args[1]
		if flags&^uint64(unix.TFD_NONBLOCK|unix.TFD_CLOEXEC) != 0 {
			return 0, unix.EINVAL
		}
		switch clock {
		case unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_BOOTTIME:
		case unix.CLOCK_REALTIME_ALARM, unix.CLOCK_BOOTTIME_ALARM:
			// There is no suspend to wake from: with CAP_WAKE_ALARM
			// these are their plain clocks.
			if t.Creds().Caps&auth.CapSetOf(capWakeAlarm) == 0 {
				return 0, unix.EPERM
			}
			clock = unix.CLOCK_REALTIME
			if a.Args[0] == unix.CLOCK_BOOTTIME_ALARM {
				clock = unix.CLOCK_BOOTTIME
			}
		default:
			return 0, unix.EINVAL
		}
		tf := &timerFD{clock: clock, now: func() time.Duration {
			ts, _ := clockNow(t, clock)
			return time.Duration(ts.Sec)*time.Second + time.Duration(ts.Nsec)
		}}
		return installAnon(t, tf, uint32(flags))
	})
	register(abi.SYS_TIMERFD_SETTIME, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		flags := a.Args[1]
		if flags&^uint64(unix.TFD_TIMER_ABSTIME|unix.TFD_TIMER_CANCEL_ON_SET) != 0 {
			return 0, unix.EINVAL
		}
		tf, f, err := getTimerFD(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		b := make([]byte, 2*abi.TimespecSize)
		if _, err := t.CopyIn(a.Args[2], b); err != nil {
			return 0, unix.EFAULT
		}
		var interval, value abi.Timespec
		interval.Unmarshal(b)
		value.Unmarshal(b[abi.TimespecSize:])
		if !interval.Valid() || !value.Valid() {
			return 0, unix.EINVAL
		}
		old := tf.set(timespecDuration(value), timespecDuration(interval), flags&unix.TFD_TIMER_ABSTIME != 0)
		if a.Args[3] != 0 {
			return 0, copyOutItimerspec(t, a.Args[3], old.value, old.interval)
		}
		return 0, nil
	})
	register(abi.SYS_TIMERFD_GETTIME, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		tf, f, err := getTimerFD(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		it := tf.get()
		return 0, copyOutItimerspec(t, a.Args[1], it.value, it.interval)
	})
}

func timespecDuration(ts abi.Timespec) time.Duration {
	return time.Duration(min(ts.Sec, 1<<33))*time.Second + time.Duration(ts.Nsec)
}

// getTimerFD returns the timerfd at fd (EINVAL if it is another file).
func getTimerFD(t *kernel.Task, fd uint64) (*timerFD, *vfs.File, error) {
	f, err := getFile(t, fd)
	if err != nil {
		return nil, nil, err
	}
	tf, ok := f.Impl().(*timerFD)
	if !ok {
		f.DecRef(t.Ctx())
		return nil, nil, unix.EINVAL
	}
	return tf, f, nil
}

// itimer is a timer setting: time to the next expiry and the period.
type itimer struct{ value, interval time.Duration }

// timerFD is a timerfd. Expirations are counted from the clock when the
// file is read or polled; a host timer only wakes the waiters.
type timerFD struct {
	vfs.FileDefaults
	queue waiter.Queue
	clock int32
	// now reads the timer's clock, as a time since its epoch.
	now func() time.Duration

	mu sync.Mutex
	// next is the clock time of the next expiry; zero when disarmed.
	next     time.Duration
	interval time.Duration
	wake     *time.Timer
	gen      uint64
}

// set arms (value > 0) or disarms the timer and returns the old setting.
func (tf *timerFD) set(value, interval time.Duration, abs bool) itimer {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	now := tf.now()
	old := tf.getLocked(now)
	tf.gen++
	if tf.wake != nil {
		tf.wake.Stop()
		tf.wake = nil
	}
	tf.next, tf.interval = 0, interval
	if value == 0 {
		return old
	}
	if abs {
		tf.next = max(value, 1)
	} else {
		tf.next = now + value
	}
	tf.scheduleLocked(now)
	return old
}

// scheduleLocked starts a host timer that wakes the waiters at each
// expiry (only the first, for a one-shot timer).
// Preconditions: tf.mu is held and the timer is armed.
func (tf *timerFD) scheduleLocked(now time.Duration) {
	gen := tf.gen
	var fire func()
	fire = func() {
		tf.mu.Lock()
		if tf.gen != gen || tf.next == 0 {
			tf.mu.Unlock()
			return
		}
		now := tf.now()
		if now < tf.next {
			// The host timer and the clock disagree by a hair.
			tf.wake = time.AfterFunc(tf.next-now, fire)
			tf.mu.Unlock()
			return
		}
		if tf.interval > 0 {
			n := tf.next + ((now-tf.next)/tf.interval+1)*tf.interval
			tf.wake = time.AfterFunc(n-now, fire)
		}
		tf.mu.Unlock()
		tf.queue.Notify(waiter.ReadableEvents)
	}
	tf.wake = time.AfterFunc(max(tf.next-now, 0), fire)
}

// expirationsLocked counts the expiries up to now not yet read.
func (tf *timerFD) expirationsLocked(now time.Duration) uint64 {
	if tf.next == 0 || now < tf.next {
		return 0
	}
	if tf.interval == 0 {
		return 1
	}
	return uint64((now-tf.next)/tf.interval) + 1
}

func (tf *timerFD) getLocked(now time.Duration) itimer {
	if tf.next == 0 {
		return itimer{interval: tf.interval}
	}
	if now < tf.next {
		return itimer{value: tf.next - now, interval: tf.interval}
	}
	if tf.interval == 0 {
		// Expired and not read: Linux reports zero, disarmed.
		return itimer{}
	}
	n := tf.expirationsLocked(now)
	return itimer{value: tf.next + time.Duration(n)*tf.interval - now, interval: tf.interval}
}

func (tf *timerFD) get() itimer {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	return tf.getLocked(tf.now())
}

// Read returns the number of expiries since the last read, as a u64.
func (tf *timerFD) Read(_ context.Context, p []byte, _ int64) (int, error) {
	if len(p) < 8 {
		return 0, unix.EINVAL
	}
	tf.mu.Lock()
	defer tf.mu.Unlock()
	n := tf.expirationsLocked(tf.now())
	if n == 0 {
		return 0, unix.EAGAIN
	}
	if tf.interval == 0 {
		tf.next = 0
	} else {
		tf.next += time.Duration(n) * tf.interval
	}
	le.PutUint64(p, n)
	return 8, nil
}

func (tf *timerFD) Readiness(mask waiter.EventMask) waiter.EventMask {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	if tf.expirationsLocked(tf.now()) > 0 {
		return mask & waiter.ReadableEvents
	}
	return 0
}

func (tf *timerFD) EventRegister(e *waiter.Entry) error {
	tf.queue.EventRegister(e)
	return nil
}

func (tf *timerFD) EventUnregister(e *waiter.Entry) { tf.queue.EventUnregister(e) }

// Release stops the host timer.
func (tf *timerFD) Release(context.Context) {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	tf.gen++
	if tf.wake != nil {
		tf.wake.Stop()
	}
}

// AnonName names a timerfd in /proc/[pid]/fd.
func (*timerFD) AnonName() string { return "timerfd" }
