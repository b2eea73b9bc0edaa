package syscalls

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait,
// epoll_pwait2.
func init() {
	register(abi.SYS_EPOLL_CREATE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if int32(a.Args[0]) <= 0 {
			return 0, unix.EINVAL
		}
		return installAnon(t, newEpoll(), 0)
	})
	register(abi.SYS_EPOLL_CREATE1, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if a.Args[0]&^uint64(abi.EPOLL_CLOEXEC) != 0 {
			return 0, unix.EINVAL
		}
		return installAnon(t, newEpoll(), uint32(a.Args[0]))
	})
	register(abi.SYS_EPOLL_CTL, sysEpollCtl)
	register(abi.SYS_EPOLL_WAIT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return epollWait(t, a.Args[0], a.Args[1], a.Args[2], msTimeout(a.Args[3]), nil)
	})
	register(abi.SYS_EPOLL_PWAIT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		mask, err := copyInSigmask(t, a.Args[4], a.Args[5])
		if err != nil {
			return 0, err
		}
		return epollWait(t, a.Args[0], a.Args[1], a.Args[2], msTimeout(a.Args[3]), mask)
	})
	register(abi.SYS_EPOLL_PWAIT2, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		timeout, err := copyInTimeout(t, a.Args[3])
		if err != nil {
			return 0, err
		}
		mask, err := copyInSigmask(t, a.Args[4], a.Args[5])
		if err != nil {
			return 0, err
		}
		return epollWait(t, a.Args[0], a.Args[1], a.Args[2], timeout, mask)
	})
}

func msTimeout(arg uint64) time.Duration {
	ms := int32(arg)
	if ms < 0 {
		return -1
	}
	return time.Duration(ms) * time.Millisecond
}

// epollKey identifies an interest: the open file and the descriptor it
// was added by, as in Linux.
type epollKey struct {
	f  *vfs.File
	fd int32
}

// epollItem is one interest. The file pointer is not a counted
// reference: an epoll does not keep files open, and an interest whose
// file is gone is dropped when next seen.
type epollItem struct {
	key   epollKey
	entry *waiter.Entry
	// Guarded by epoll.mu.
	events   uint32 // requested events and EPOLLET/EPOLLONESHOT/...
	data     uint64
	ready    bool // on the ready list
	disabled bool // EPOLLONESHOT fired; EPOLL_CTL_MOD re-arms
	removed  bool
}

// epoll is an epoll instance.
type epoll struct {
	vfs.FileDefaults
	queue waiter.Queue

	mu    sync.Mutex
	items map[epollKey]*epollItem
	ready []*epollItem
}

func newEpoll() *epoll { return &epoll{items: make(map[epollKey]*epollItem)} }

// pollMask is what an interest asks of its file.
func pollMask(events uint32) waiter.EventMask {
	return waiter.EventMask(events&0xffff) | waiter.EventErr | waiter.EventHUp
}

// markReady puts it on the ready list and wakes the epoll's waiters.
func (ep *epoll) markReady(it *epollItem) {
	ep.mu.Lock()
	add := !it.ready && !it.disabled && !it.removed
	if add {
		it.ready = true
		ep.ready = append(ep.ready, it)
	}
	ep.mu.Unlock()
	if add {
		ep.queue.Notify(waiter.ReadableEvents)
	}
}

// add registers an interest in f.
func (ep *epoll) add(ctx context.Context, k epollKey, events uint32, data uint64) error {
	ep.mu.Lock()
	if _, ok := ep.items[k]; ok {
		ep.mu.Unlock()
		return unix.EEXIST
	}
	it := &epollItem{key: k, events: events, data: data}
	it.entry = waiter.NewFunctionEntry(pollMask(events), func(waiter.EventMask) { ep.markReady(it) })
	ep.items[k] = it
	ep.mu.Unlock()
	if err := k.f.EventRegister(it.entry); err != nil {
		ep.mu.Lock()
		delete(ep.items, k)
		ep.mu.Unlock()
		return unix.EPERM
	}
	if k.f.Readiness(pollMask(events)) != 0 {
		ep.markReady(it)
	}
	return nil
}

// modify changes an interest's events and data and re-arms it.
func (ep *epoll) modify(k epollKey, events uint32, data uint64) error {
	ep.mu.Lock()
	it, ok := ep.items[k]
	if !ok {
		ep.mu.Unlock()
		return unix.ENOENT
	}
	if it.events&abi.EPOLLEXCLUSIVE != 0 {
		ep.mu.Unlock()
		return unix.EINVAL
	}
	it.events, it.data, it.disabled = events, data, false
	ep.mu.Unlock()
	// The entry's mask is fixed: register a new one.
	k.f.EventUnregister(it.entry)
	it.entry = waiter.NewFunctionEntry(pollMask(events), func(waiter.EventMask) { ep.markReady(it) })
	k.f.EventRegister(it.entry)
	if k.f.Readiness(pollMask(events)) != 0 {
		ep.markReady(it)
	}
	return nil
}

// remove drops an interest.
func (ep *epoll) remove(k epollKey) error {
	ep.mu.Lock()
	it, ok := ep.items[k]
	if !ok {
		ep.mu.Unlock()
		return unix.ENOENT
	}
	ep.dropLocked(it)
	ep.mu.Unlock()
	k.f.EventUnregister(it.entry)
	return nil
}

// Preconditions: ep.mu is held.
func (ep *epoll) dropLocked(it *epollItem) {
	it.removed = true
	delete(ep.items, it.key)
}

// collect returns up to max ready events. Level-triggered interests
// that are still ready stay on the ready list (at its end, so that every
// ready file gets its turn); edge-triggered ones leave it until their
// file notifies again; one-shot ones are disabled.
func (ep *epoll) collect(ctx context.Context, max int) []abi.EpollEvent {
	ep.mu.Lock()
	cand := ep.ready
	ep.ready = nil
	for _, it := range cand {
		it.ready = false
	}
	ep.mu.Unlock()
	var out []abi.EpollEvent
	var keep []*epollItem
	for _, it := range cand {
		if len(out) >= max {
			keep = append(keep, it)
			continue
		}
		f := it.key.f
		if !f.TryIncRef() {
			// The file is closed everywhere: forget it.
			ep.mu.Lock()
			ep.dropLocked(it)
			ep.mu.Unlock()
			f.EventUnregister(it.entry)
			continue
		}
		ep.mu.Lock()
		mask := pollMask(it.events)
		ep.mu.Unlock()
		r := f.Readiness(mask) & mask
		f.DecRef(ctx)
		ep.mu.Lock()
		if r != 0 && !it.removed && !it.disabled {
			out = append(out, abi.EpollEvent{Events: uint32(r), Data: it.data})
			switch {
			case it.events&abi.EPOLLONESHOT != 0:
				it.disabled = true
			case it.events&abi.EPOLLET == 0:
				keep = append(keep, it)
			}
		}
		ep.mu.Unlock()
	}
	ep.mu.Lock()
	for _, it := range keep {
		if !it.ready && !it.removed && !it.disabled {
			it.ready = true
			ep.ready = append(ep.ready, it)
		}
	}
	ep.mu.Unlock()
	return out
}

// Readiness implements waiter.Waitable: an epoll is readable when one of
// its interests is ready.
func (ep *epoll) Readiness(mask waiter.EventMask) waiter.EventMask {
	ep.mu.Lock()
	cand := append([]*epollItem(nil), ep.ready...)
	ep.mu.Unlock()
	for _, it := range cand {
		f := it.key.f
		if !f.TryIncRef() {
			continue
		}
		ep.mu.Lock()
		m := pollMask(it.events)
		ep.mu.Unlock()
		r := f.Readiness(m) & m
		f.DecRef(context.Background())
		if r != 0 {
			return mask & waiter.ReadableEvents
		}
	}
	return 0
}

func (ep *epoll) EventRegister(e *waiter.Entry) error {
	ep.queue.EventRegister(e)
	return nil
}

func (ep *epoll) EventUnregister(e *waiter.Entry) { ep.queue.EventUnregister(e) }

// Release drops every interest.
func (ep *epoll) Release(context.Context) {
	ep.mu.Lock()
	items := ep.items
	ep.items = map[epollKey]*epollItem{}
	ep.ready = nil
	for _, it := range items {
		it.removed = true
	}
	ep.mu.Unlock()
	for k, it := range items {
		k.f.EventUnregister(it.entry)
	}
}

// contains says whether ep watches target, directly or through nested
// epolls (to refuse loops).
func (ep *epoll) contains(target *epoll, depth int) bool {
	if depth > 5 {
		return true
	}
	ep.mu.Lock()
	var nested []*epoll
	for k := range ep.items {
		if inner, ok := k.f.Impl().(*epoll); ok {
			nested = append(nested, inner)
		}
	}
	ep.mu.Unlock()
	for _, inner := range nested {
		if inner == target || inner.contains(target, depth+1) {
			return true
		}
	}
	return false
}

// epollAllowed are the event bits epoll_ctl accepts.
const epollAllowed = abi.EPOLLIN | abi.EPOLLPRI | abi.EPOLLOUT | abi.EPOLLERR | abi.EPOLLHUP |
	abi.EPOLLRDNORM | abi.EPOLLRDBAND | abi.EPOLLWRNORM | abi.EPOLLWRBAND | abi.EPOLLMSG |
	abi.EPOLLRDHUP | abi.EPOLLEXCLUSIVE | abi.EPOLLWAKEUP | abi.EPOLLONESHOT | abi.EPOLLET

// epollExclusiveOK are the bits EPOLLEXCLUSIVE may come with.
const epollExclusiveOK = abi.EPOLLIN | abi.EPOLLOUT | abi.EPOLLERR | abi.EPOLLHUP |
	abi.EPOLLWAKEUP | abi.EPOLLET | abi.EPOLLEXCLUSIVE

func sysEpollCtl(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	epfd, op, fd, evAddr := a.Args[0], int32(a.Args[1]), int32(a.Args[2]), a.Args[3]
	var ev abi.EpollEvent
	if op != abi.EPOLL_CTL_DEL {
		b := make([]byte, abi.EpollEventSize)
		if _, err := t.CopyIn(evAddr, b); err != nil {
			return 0, unix.EFAULT
		}
		ev.Unmarshal(b)
	}
	epf, err := getFile(t, epfd)
	if err != nil {
		return 0, err
	}
	defer epf.DecRef(t.Ctx())
	f := t.FDs().Get(fd)
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef(t.Ctx())
	ep, ok := epf.Impl().(*epoll)
	if !ok || f == epf {
		return 0, unix.EINVAL
	}
	if f.IsPath() {
		return 0, unix.EBADF
	}
	if st, err := f.Stat(t.Ctx()); err == nil && (st.Type() == unix.S_IFREG || st.Type() == unix.S_IFDIR) {
		// Regular files and directories cannot be polled.
		return 0, unix.EPERM
	}
	events := ev.Events & epollAllowed
	if events&abi.EPOLLEXCLUSIVE != 0 {
		if op == abi.EPOLL_CTL_MOD {
			return 0, unix.EINVAL
		}
		if op == abi.EPOLL_CTL_ADD {
			if ev.Events&^uint32(epollExclusiveOK) != 0 {
				return 0, unix.EINVAL
			}
			if _, isEp := f.Impl().(*epoll); isEp {
				return 0, unix.EINVAL
			}
		}
	}
	k := epollKey{f: f, fd: fd}
	switch op {
	case abi.EPOLL_CTL_ADD:
		if inner, isEp := f.Impl().(*epoll); isEp && (inner == ep || inner.contains(ep, 0)) {
			return 0, unix.ELOOP
		}
		return 0, ep.add(t.Ctx(), k, events, ev.Data)
	case abi.EPOLL_CTL_MOD:
		return 0, ep.modify(k, events, ev.Data)
	case abi.EPOLL_CTL_DEL:
		return 0, ep.remove(k)
	}
	return 0, unix.EINVAL
}

func epollWait(t *kernel.Task, epfd, addr, maxEvents uint64, timeout time.Duration, mask *abi.SignalSet) (uint64, error) {
	max := int32(maxEvents)
	if max <= 0 || int64(max) > (1<<31-1)/abi.EpollEventSize {
		return 0, unix.EINVAL
	}
	f, err := getFile(t, epfd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	ep, ok := f.Impl().(*epoll)
	if !ok {
		return 0, unix.EINVAL
	}
	if mask != nil {
		t.SetWaitMask(*mask)
	}
	evs, err := epollCollect(t, ep, int(max), timeout)
	if mask != nil {
		t.EndWaitMask(err == unix.EINTR)
	}
	if err != nil {
		return 0, err
	}
	if len(evs) == 0 {
		return 0, nil
	}
	b := make([]byte, len(evs)*abi.EpollEventSize)
	for i := range evs {
		evs[i].Marshal(b[i*abi.EpollEventSize:])
	}
	if _, err := t.CopyOut(addr, b); err != nil {
		return 0, unix.EFAULT
	}
	return uint64(len(evs)), nil
}

// epollCollect waits for events. A signal fails the wait with EINTR:
// epoll_wait is never restarted.
func epollCollect(t *kernel.Task, ep *epoll, max int, timeout time.Duration) ([]abi.EpollEvent, error) {
	if evs := ep.collect(t.Ctx(), max); len(evs) > 0 || timeout == 0 {
		return evs, nil
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(capTimeout(timeout))
	}
	e, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	ep.queue.EventRegister(e)
	defer ep.queue.EventUnregister(e)
	for {
		if evs := ep.collect(t.Ctx(), max); len(evs) > 0 {
			return evs, nil
		}
		err := t.Block(ch, deadline)
		switch {
		case err == unix.ETIMEDOUT:
			return nil, nil
		case errors.Is(err, kernel.ErrInterrupted):
			return nil, unix.EINTR
		case err != nil:
			return nil, err
		}
	}
}
