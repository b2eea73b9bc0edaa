package kernel

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
)

// POSIXTimer is one timer_create(2) timer of a process.
type POSIXTimer struct {
	g        *ThreadGroup
	id       int32
	notify   int32 // SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID
	signo    abi.Signal
	value    uint64
	tid      int32
	mu       sync.Mutex
	timer    *time.Timer
	deadline time.Time
	interval time.Duration
	overrun  int32
	gen      uint64
}

type posixTimers struct {
	mu     sync.Mutex
	next   int32
	timers map[int32]*POSIXTimer
}

// Sigevent notification kinds.
const (
	sigevSignal   = 0
	sigevNone     = 1
	sigevThreadID = 4
)

// CreateTimer makes a timer that notifies as ev says; with ev nil, by
// SIGALRM carrying the timer's id, as Linux does.
func (g *ThreadGroup) CreateTimer(ev *abi.Sigevent) (int32, error) {
	idValue := ev == nil
	if ev == nil {
		ev = &abi.Sigevent{Signo: int32(abi.SIGALRM), Notify: sigevSignal}
	}
	t := &POSIXTimer{g: g, notify: ev.Notify, signo: abi.Signal(ev.Signo), value: ev.Value, tid: ev.ThreadID}
	switch ev.Notify {
	case sigevNone:
	case sigevSignal, sigevThreadID:
		if !t.signo.Valid() {
			return 0, unix.EINVAL
		}
		if ev.Notify == sigevThreadID {
			// The thread is named in the process's namespace; the
			// timer keeps its root ID.
			tt := g.ns.TaskWithID(ev.ThreadID)
			if tt == nil || tt.tg != g {
				return 0, unix.EINVAL
			}
			t.tid = tt.tid
		}
	default:
		return 0, unix.EINVAL
	}
	pt := &g.posixTimers
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.timers == nil {
		pt.timers = map[int32]*POSIXTimer{}
	}
	if len(pt.timers) >= 4096 {
		return 0, unix.EAGAIN
	}
	for {
		id := pt.next
		pt.next++
		if pt.next < 0 {
			pt.next = 0
		}
		if _, used := pt.timers[id]; !used {
			t.id = id
			if idValue {
				t.value = uint64(id)
			}
			pt.timers[id] = t
			return id, nil
		}
	}
}

// Timer returns timer id of the process.
func (g *ThreadGroup) Timer(id int32) *POSIXTimer {
	g.posixTimers.mu.Lock()
	defer g.posixTimers.mu.Unlock()
	return g.posixTimers.timers[id]
}

// DeleteTimer removes timer id.
func (g *ThreadGroup) DeleteTimer(id int32) error {
	pt := &g.posixTimers
	pt.mu.Lock()
	t := pt.timers[id]
	delete(pt.timers, id)
	pt.mu.Unlock()
	if t == nil {
		return unix.EINVAL
	}
	t.Set(0, 0)
	return nil
}

// Set arms the timer to expire after value (0 disarms) and then every
// interval; it returns the old setting.
func (t *POSIXTimer) Set(value, interval time.Duration) (oldValue, oldInterval time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
		oldValue = max(time.Until(t.deadline), time.Nanosecond)
	}
	oldInterval = t.interval
	t.interval = interval
	t.gen++
	t.overrun = 0
	if value > 0 {
		t.armLocked(value, t.gen)
	}
	return oldValue, oldInterval
}

// Get returns the time left and the interval.
func (t *POSIXTimer) Get() (value, interval time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer != nil {
		value = max(time.Until(t.deadline), time.Nanosecond)
	}
	return value, t.interval
}

// Overrun returns the overrun count of the last expiry.
func (t *POSIXTimer) Overrun() int32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.overrun
}

func (t *POSIXTimer) armLocked(d time.Duration, gen uint64) {
	t.deadline = time.Now().Add(d)
	t.timer = time.AfterFunc(d, func() { t.fire(gen) })
}

func (t *POSIXTimer) fire(gen uint64) {
	t.mu.Lock()
	if t.gen != gen {
		t.mu.Unlock()
		return
	}
	t.timer = nil
	if t.interval > 0 {
		t.armLocked(t.interval, gen)
	}
	t.mu.Unlock()
	if t.notify == sigevNone {
		return
	}
	var info abi.SignalInfo
	info.SetSigno(t.signo)
	info.SetCode(abi.SI_TIMER)
	info.SetTimerID(t.id)
	info.SetValue(t.value)
	k := t.g.k
	if t.notify == sigevThreadID {
		if tt := k.TaskByID(t.tid); tt != nil {
			k.SendTaskSignal(tt, &info)
			return
		}
	}
	k.SendSignal(t.g, &info)
}
