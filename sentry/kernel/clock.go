package kernel

import (
	"math/bits"
	"sync"
	"time"

	"moat.dev/moat/sentry/platform"
	"moat.dev/moat/sentry/vdso"
)

// Clock is the sandbox's time: CLOCK_MONOTONIC counts from the kernel's
// start and CLOCK_REALTIME follows the host, both computed from the guest
// TSC with the parameters the vDSO reads, so a program that reads the
// clock through the vDSO and through the syscall sees one clock.
type Clock struct {
	k *Kernel

	mu     sync.Mutex
	tsc    bool // false: no usable TSC, the vDSO falls back to syscalls
	offset int64
	p      vdso.Params
	vvar   uint64   // frame of the parameter page
	text   []uint64 // frames of the vDSO image
	stop   chan struct{}
	// done is closed when the refresher has stopped writing guest memory.
	done chan struct{}
}

func (k *Kernel) initClock() {
	c := &Clock{k: k, stop: make(chan struct{}), done: make(chan struct{})}
	k.clock = c
	// The vDSO's frames, shared read-only by every process.
	vvar, err := k.Frames.Alloc()
	if err != nil {
		return
	}
	c.vvar = vvar
	for i := 0; i < vdso.Pages; i++ {
		f, err := k.Frames.Alloc()
		if err != nil {
			return
		}
		n := min(len(vdso.Image)-i*vdso.PageSize, vdso.PageSize)
		copy(k.Frames.Bytes(f), vdso.Image[i*vdso.PageSize:i*vdso.PageSize+n])
		c.text = append(c.text, f)
	}
	khz, offset, err := k.M.TSC()
	if err != nil || khz == 0 {
		k.Log.Warn("no usable TSC: the vDSO clock falls back to syscalls", "err", err)
		return
	}
	c.tsc = true
	c.offset = offset
	const shift = 32
	// mult = (1e6 << 32) / khz: nanoseconds per tick in 32.32 fixed point.
	mult, _ := bits.Div64(uint64(1e6)>>(64-shift), uint64(1e6)<<shift, khz)
	c.p = vdso.Params{TSCBase: c.guestTSC(), MonoBaseNS: 0, RealBaseNS: time.Now().UnixNano(), Mult: mult, Shift: shift}
	vdso.Write(k.Frames.Bytes(c.vvar), c.p)
	go c.refresher()
}

// stopAndWait stops the refresher and waits until it no longer touches
// guest memory (which the machine frees after the kernel shuts down).
func (c *Clock) stopAndWait() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	if c.tsc {
		<-c.done
	}
}

func (c *Clock) guestTSC() uint64 { return uint64(int64(platform.HostTSC()) + c.offset) }

// nowLocked returns monotonic and realtime nanoseconds.
func (c *Clock) nowLocked() (mono, real int64) {
	delta := c.guestTSC() - c.p.TSCBase
	if int64(delta) < 0 {
		delta = 0
	}
	hi, lo := bits.Mul64(delta, c.p.Mult)
	ns := int64(hi<<(64-c.p.Shift) | lo>>c.p.Shift)
	return c.p.MonoBaseNS + ns, c.p.RealBaseNS + ns
}

// refresher re-anchors CLOCK_REALTIME to the host clock every second (the
// monotonic clock continues from where the TSC took it).
func (c *Clock) refresher() {
	defer close(c.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.mu.Lock()
		mono, _ := c.nowLocked()
		c.p.TSCBase = c.guestTSC()
		c.p.MonoBaseNS = mono
		c.p.RealBaseNS = time.Now().UnixNano()
		vdso.Write(c.k.Frames.Bytes(c.vvar), c.p)
		c.mu.Unlock()
	}
}

// Monotonic returns CLOCK_MONOTONIC.
func (c *Clock) Monotonic() time.Duration {
	if !c.tsc {
		return time.Since(c.k.boot)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m, _ := c.nowLocked()
	return time.Duration(m)
}

// Realtime returns CLOCK_REALTIME.
func (c *Clock) Realtime() time.Time {
	if !c.tsc {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, r := c.nowLocked()
	return time.Unix(0, r)
}

// Clock returns the kernel's clock.
func (k *Kernel) Clock() *Clock { return k.clock }
