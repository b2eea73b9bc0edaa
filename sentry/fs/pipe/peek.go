package pipe

import "golang.org/x/sys/unix"

// Peeker is implemented by pipe read ends, for tee(2): Peek copies
// buffered bytes without consuming them, with Read's answers when there
// are none (unix.EAGAIN with a writer, 0 without).
type Peeker interface {
	Peek(dst []byte) (int, error)
}

var _ Peeker = (*end)(nil)

// Peek implements Peeker.
func (e *end) Peek(dst []byte) (int, error) {
	if !e.read {
		return 0, unix.EBADF
	}
	if len(dst) == 0 {
		return 0, nil
	}
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.size == 0 {
		if p.writers == 0 {
			return 0, nil
		}
		return 0, unix.EAGAIN
	}
	n, head, size := 0, p.head, p.size
	for n < len(dst) && size > 0 {
		end := min(head+size, len(p.ring))
		c := copy(dst[n:], p.ring[head:end])
		n += c
		size -= c
		head = (head + c) % len(p.ring)
	}
	return n, nil
}
