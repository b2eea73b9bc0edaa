package hostinet

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/waiter"
)

// poller turns the host's readiness of the sentry's host sockets into
// notifications of their waiter queues: one host epoll instance, every
// socket registered edge-triggered, one goroutine waiting on it.
type poller struct {
	epfd int

	mu    sync.Mutex
	queue map[int32]*waiter.Queue
}

var (
	thePoller   *poller
	pollerOnce  sync.Once
	errPollInit error
)

func getPoller() (*poller, error) {
	pollerOnce.Do(func() {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			errPollInit = fmt.Errorf("hostinet: epoll_create1: %w", err)
			return
		}
		thePoller = &poller{epfd: fd, queue: map[int32]*waiter.Queue{}}
		go thePoller.run()
	})
	return thePoller, errPollInit
}

// add starts watching fd for q.
func (p *poller) add(fd int, q *waiter.Queue) error {
	p.mu.Lock()
	p.queue[int32(fd)] = q
	p.mu.Unlock()
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLPRI | unix.EPOLLET,
		Fd:     int32(fd),
	}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.mu.Lock()
		delete(p.queue, int32(fd))
		p.mu.Unlock()
		return fmt.Errorf("hostinet: epoll_ctl add %d: %w", fd, err)
	}
	return nil
}

// remove stops watching fd; call it before closing fd.
func (p *poller) remove(fd int) {
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	p.mu.Lock()
	delete(p.queue, int32(fd))
	p.mu.Unlock()
}

func (p *poller) run() {
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			panic(fmt.Sprintf("hostinet: epoll_wait: %v", err))
		}
		for _, ev := range events[:n] {
			p.mu.Lock()
			q := p.queue[ev.Fd]
			p.mu.Unlock()
			if q != nil {
				q.Notify(hostEvents(ev.Events))
			}
		}
	}
}

// hostEvents maps host poll bits to waiter events (the numbers are the
// same; only the known bits pass).
func hostEvents(e uint32) waiter.EventMask {
	m := waiter.EventMask(e) & (waiter.EventIn | waiter.EventPri | waiter.EventOut |
		waiter.EventErr | waiter.EventHUp | waiter.EventRdNorm | waiter.EventWrNorm | waiter.EventRdHUp)
	if m&waiter.EventIn != 0 {
		m |= waiter.EventRdNorm
	}
	if m&waiter.EventOut != 0 {
		m |= waiter.EventWrNorm
	}
	return m
}
