// Package waiter lets a file report readiness and wake whoever waits on it.
//
// Nothing in the sentry's file code blocks: an operation that cannot make
// progress returns unix.EAGAIN, and the caller (the syscall layer) registers
// an Entry on the file's Queue, waits on the entry's channel together with
// its own interruption (signals, timeouts), and retries.
package waiter

import (
	"sync"

	"golang.org/x/sys/unix"
)

// EventMask is a set of poll(2) events, with Linux's bit values.
type EventMask uint64

// Events, numbered as poll(2) and epoll(7) number them.
const (
	EventIn     EventMask = unix.POLLIN
	EventPri    EventMask = unix.POLLPRI
	EventOut    EventMask = unix.POLLOUT
	EventErr    EventMask = unix.POLLERR
	EventHUp    EventMask = unix.POLLHUP
	EventRdNorm EventMask = 0x40   // POLLRDNORM
	EventWrNorm EventMask = 0x100  // POLLWRNORM
	EventRdHUp  EventMask = 0x2000 // POLLRDHUP

	// EventOpen is not a poll event: a FIFO notifies it when a reader or
	// a writer arrives, so an open waiting for the other end can retry.
	EventOpen EventMask = 1 << 32

	// ReadableEvents and WritableEvents are what read and write wait for.
	ReadableEvents = EventIn | EventRdNorm
	WritableEvents = EventOut | EventWrNorm
	// AllEvents is every event, including those always reported by poll.
	AllEvents EventMask = 0x1ffff | EventOpen
)

// Entry is one waiter. It is either channel based (NewChannelEntry) or
// calls a function (NewFunctionEntry, for epoll). An Entry is registered on
// at most one Queue at a time.
type Entry struct {
	mask EventMask
	ch   chan struct{}
	fn   func(EventMask)

	// Guarded by the Queue's mu while registered.
	prev, next *Entry
	queue      *Queue
}

// NewChannelEntry returns an entry interested in mask and the channel
// that receives a value when one of those events is notified. The channel
// has a buffer of one, so a notification is never lost and never blocks
// the notifier.
func NewChannelEntry(mask EventMask) (*Entry, <-chan struct{}) {
	ch := make(chan struct{}, 1)
	return &Entry{mask: mask, ch: ch}, ch
}

// NewFunctionEntry returns an entry that calls fn with the notified
// events that intersect mask. fn runs in the notifier's goroutine with the
// queue's lock held: it must be quick and must not touch the queue.
func NewFunctionEntry(mask EventMask, fn func(EventMask)) *Entry {
	return &Entry{mask: mask, fn: fn}
}

// Mask returns the events the entry waits for.
func (e *Entry) Mask() EventMask { return e.mask }

func (e *Entry) notify(m EventMask) {
	if e.fn != nil {
		e.fn(m & e.mask)
		return
	}
	select {
	case e.ch <- struct{}{}:
	default:
	}
}

// Queue is a list of entries waiting for events on one object. The zero
// value is an empty queue.
type Queue struct {
	mu         sync.Mutex
	head, tail *Entry
}

// EventRegister adds e to the queue. Registering an entry that is already
// on a queue panics: that is a bug in the caller.
func (q *Queue) EventRegister(e *Entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e.queue != nil {
		panic("waiter: entry registered twice")
	}
	e.queue = q
	e.prev = q.tail
	e.next = nil
	if q.tail != nil {
		q.tail.next = e
	} else {
		q.head = e
	}
	q.tail = e
}

// EventUnregister removes e from the queue; it is a no-op if e is not on q.
func (q *Queue) EventUnregister(e *Entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e.queue != q {
		return
	}
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		q.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		q.tail = e.prev
	}
	e.prev, e.next, e.queue = nil, nil, nil
}

// Notify wakes every entry whose mask intersects mask.
func (q *Queue) Notify(mask EventMask) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for e := q.head; e != nil; e = e.next {
		if e.mask&mask != 0 {
			e.notify(mask)
		}
	}
}

// Events returns the union of the masks of the registered entries.
func (q *Queue) Events() EventMask {
	q.mu.Lock()
	defer q.mu.Unlock()
	var m EventMask
	for e := q.head; e != nil; e = e.next {
		m |= e.mask
	}
	return m
}

// Waitable is an object that reports readiness and accepts waiters: every
// open file is one.
type Waitable interface {
	// Readiness returns the events in mask that are ready now.
	Readiness(mask EventMask) EventMask
	// EventRegister adds e to the object's queue.
	EventRegister(e *Entry) error
	// EventUnregister removes e from the object's queue.
	EventUnregister(e *Entry)
}

// AlwaysReady is a Waitable that is always readable and writable and never
// notifies, as regular files are.
type AlwaysReady struct{}

// Readiness implements Waitable.
func (AlwaysReady) Readiness(mask EventMask) EventMask {
	return mask & (ReadableEvents | WritableEvents)
}

// EventRegister implements Waitable.
func (AlwaysReady) EventRegister(*Entry) error { return nil }

// EventUnregister implements Waitable.
func (AlwaysReady) EventUnregister(*Entry) {}
