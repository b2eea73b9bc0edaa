package kernel

import (
	"sync"
	"time"

	"moat.dev/moat/sentry/abi"
)

// realTimer is a process's ITIMER_REAL (also alarm(2)): it sends SIGALRM
// when it expires and re-arms itself with its interval.
type realTimer struct {
	mu       sync.Mutex
	timer    *time.Timer
	deadline time.Time
	interval time.Duration
	gen      uint64
}

// SetRealTimer arms (value > 0) or disarms the process's ITIMER_REAL and
// returns the time that was left and the old interval.
func (g *ThreadGroup) SetRealTimer(value, interval time.Duration) (left, oldInterval time.Duration) {
	rt := &g.realTimer
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.timer != nil {
		rt.timer.Stop()
		rt.timer = nil
		left = max(time.Until(rt.deadline), time.Microsecond)
	}
	oldInterval = rt.interval
	rt.interval = interval
	rt.gen++
	if value > 0 {
		g.armLocked(value, rt.gen)
	}
	return left, oldInterval
}

// RealTimer returns the time left and the interval.
func (g *ThreadGroup) RealTimer() (left, interval time.Duration) {
	rt := &g.realTimer
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.timer != nil {
		left = max(time.Until(rt.deadline), time.Microsecond)
	}
	return left, rt.interval
}

// Preconditions: g.realTimer.mu is held.
func (g *ThreadGroup) armLocked(d time.Duration, gen uint64) {
	rt := &g.realTimer
	rt.deadline = time.Now().Add(d)
	rt.timer = time.AfterFunc(d, func() {
		rt.mu.Lock()
		if rt.gen != gen {
			rt.mu.Unlock()
			return
		}
		rt.timer = nil
		if rt.interval > 0 {
			g.armLocked(rt.interval, gen)
		}
		rt.mu.Unlock()
		var info abi.SignalInfo
		info.SetSigno(abi.SIGALRM)
		info.SetCode(abi.SI_TIMER)
		g.k.SendSignal(g, &info)
	})
}

// stopTimers disarms the process's timers at exit.
func (g *ThreadGroup) stopTimers() {
	g.posixTimers.mu.Lock()
	timers := g.posixTimers.timers
	g.posixTimers.timers = nil
	g.posixTimers.mu.Unlock()
	for _, t := range timers {
		t.Set(0, 0)
	}
	rt := &g.realTimer
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.gen++
	if rt.timer != nil {
		rt.timer.Stop()
		rt.timer = nil
	}
}
