package syscalls

import (
	"context"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// eventfd and eventfd2.
func init() {
	register(abi.SYS_EVENTFD, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return newEventFD(t, uint32(a.Args[0]), 0)
	})
	register(abi.SYS_EVENTFD2, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return newEventFD(t, uint32(a.Args[0]), a.Args[1])
	})
}

func newEventFD(t *kernel.Task, initval uint32, flags uint64) (uint64, error) {
	if flags&^uint64(abi.EFD_SEMAPHORE|abi.EFD_CLOEXEC|abi.EFD_NONBLOCK) != 0 {
		return 0, unix.EINVAL
	}
	e := &eventFD{val: uint64(initval), sem: flags&abi.EFD_SEMAPHORE != 0}
	return installAnon(t, e, uint32(flags))
}

// eventMax is the largest value an eventfd counter holds.
const eventMax = ^uint64(0) - 1

// eventFD is an eventfd: a 64-bit counter that read takes (all of it, or
// one in semaphore mode) and write adds to.
type eventFD struct {
	vfs.FileDefaults
	queue waiter.Queue
	sem   bool

	mu  sync.Mutex
	val uint64
}

func (e *eventFD) Read(_ context.Context, p []byte, _ int64) (int, error) {
	if len(p) < 8 {
		return 0, unix.EINVAL
	}
	e.mu.Lock()
	if e.val == 0 {
		e.mu.Unlock()
		return 0, unix.EAGAIN
	}
	v := e.val
	if e.sem {
		v = 1
	}
	e.val -= v
	e.mu.Unlock()
	le.PutUint64(p, v)
	e.queue.Notify(waiter.WritableEvents)
	return 8, nil
}

// Write adds the 8-byte value at the start of p. Like Linux it takes only
// the first 8 bytes; it reports the whole buffer consumed so that the
// caller does not write the rest as further values.
func (e *eventFD) Write(_ context.Context, p []byte, _ int64) (int, error) {
	if len(p) < 8 {
		return 0, unix.EINVAL
	}
	v := le.Uint64(p)
	if v == ^uint64(0) {
		return 0, unix.EINVAL
	}
	e.mu.Lock()
	if eventMax-e.val < v {
		e.mu.Unlock()
		return 0, unix.EAGAIN
	}
	e.val += v
	e.mu.Unlock()
	if v > 0 {
		e.queue.Notify(waiter.ReadableEvents)
	}
	return len(p), nil
}

func (e *eventFD) Readiness(mask waiter.EventMask) waiter.EventMask {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r waiter.EventMask
	if e.val > 0 {
		r |= waiter.ReadableEvents
	}
	if e.val < eventMax {
		r |= waiter.WritableEvents
	}
	return r & mask
}

func (e *eventFD) EventRegister(w *waiter.Entry) error {
	e.queue.EventRegister(w)
	return nil
}

func (e *eventFD) EventUnregister(w *waiter.Entry) { e.queue.EventUnregister(w) }
