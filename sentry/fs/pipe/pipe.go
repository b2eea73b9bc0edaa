// Package pipe implements pipes and FIFOs with Linux's semantics: a 64 KiB
// buffer by default (F_SETPIPE_SZ up to 1 MiB), writes of at most PIPE_BUF
// bytes that are atomic, EPIPE without readers, end of file without
// writers, readiness events, FIONREAD, and the open rules of FIFOs.
//
// Nothing blocks: an operation that would wait returns unix.EAGAIN (an
// open that would wait returns a file whose OpenReady is false, which the
// VFS turns into vfs.PendingOpenError), and every state change notifies
// the pipe's waiter queue.
package pipe

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// Sizes, as on Linux.
const (
	// DefaultSize is the capacity of a new pipe.
	DefaultSize = 16 * pageSize
	// MaxSize is the largest capacity F_SETPIPE_SZ grants
	// (/proc/sys/fs/pipe-max-size).
	MaxSize = 1 << 20
	// AtomicIOBytes is PIPE_BUF: writes up to this size are never split.
	AtomicIOBytes = 4096
	pageSize      = 4096
	fionread      = 0x541b // FIONREAD (TIOCINQ) on x86-64
)

// Pipe is the buffer shared by the ends of one pipe or FIFO.
type Pipe struct {
	queue waiter.Queue

	mu sync.Mutex
	// ring holds the data: size bytes from head, wrapping around. It is
	// allocated at the first write and dropped when the pipe is empty
	// and unused.
	ring []byte
	head int
	size int
	// max is the capacity.
	max     int
	readers int
	writers int
	// rOpens and wOpens count the opens of each side ever made, so a
	// waiting FIFO open sees a peer that came and went.
	rOpens uint64
	wOpens uint64
}

// New returns an empty pipe with the default capacity and no ends.
func New() *Pipe {
	return &Pipe{max: DefaultSize}
}

// end is one open file of a pipe: a read end, a write end, or both (a
// FIFO opened O_RDWR).
type end struct {
	vfs.FileDefaults
	p     *Pipe
	read  bool
	write bool
	// waitOpen is set for an open that must wait for the other side; the
	// counters are the other side's open count when it began.
	waitOpen bool
	rStart   uint64
	wStart   uint64
	released atomic.Bool
}

// NewPipe returns the two ends of a new pipe (pipe2). flags may hold
// O_NONBLOCK (recorded as a status flag; the ends never block anyway).
func NewPipe(ctx context.Context, v *vfs.VirtualFilesystem, flags uint32) (r, w *vfs.File, err error) {
	p := New()
	p.mu.Lock()
	p.readers, p.writers, p.rOpens, p.wOpens = 1, 1, 1, 1
	p.mu.Unlock()
	inode := &Inode{p: p, ino: nextIno.Add(1), mode: unix.S_IFIFO | 0o600, now: vfs.Now()}
	inode.uid, inode.gid = 0, 0
	re := &end{p: p, read: true}
	we := &end{p: p, write: true}
	flags &= unix.O_NONBLOCK
	if r, err = v.NewAnonFile(ctx, inode, re, unix.O_RDONLY|flags, true); err != nil {
		return nil, nil, err
	}
	if w, err = v.NewAnonFile(ctx, inode, we, unix.O_WRONLY|flags, true); err != nil {
		r.DecRef(ctx)
		return nil, nil, err
	}
	return r, w, nil
}

// Open opens an end of a FIFO with the rules of fifo(7): O_RDWR never
// waits; O_RDONLY waits for a writer unless O_NONBLOCK; O_WRONLY waits
// for a reader, or with O_NONBLOCK fails with ENXIO when there is none.
func (p *Pipe) Open(flags uint32) (vfs.FileImpl, error) {
	nonblock := flags&unix.O_NONBLOCK != 0
	p.mu.Lock()
	defer p.mu.Unlock()
	e := &end{p: p}
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		e.read = true
		p.readers++
		p.rOpens++
		e.waitOpen = !nonblock && p.writers == 0
	case unix.O_WRONLY:
		if nonblock && p.readers == 0 {
			return nil, unix.ENXIO
		}
		e.write = true
		p.writers++
		p.wOpens++
		e.waitOpen = p.readers == 0
	case unix.O_RDWR:
		e.read, e.write = true, true
		p.readers++
		p.writers++
		p.rOpens++
		p.wOpens++
	default:
		return nil, unix.EINVAL
	}
	e.rStart, e.wStart = p.rOpens, p.wOpens
	p.queue.Notify(waiter.EventOpen | waiter.EventIn | waiter.EventOut)
	return e, nil
}

// OpenReady implements vfs.OpenWaiter: a waiting open completes once the
// other side has been opened since it began.
func (e *end) OpenReady() bool {
	if !e.waitOpen {
		return true
	}
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.read && (p.writers > 0 || p.wOpens != e.wStart) {
		e.waitOpen = false
	}
	if e.write && (p.readers > 0 || p.rOpens != e.rStart) {
		e.waitOpen = false
	}
	return !e.waitOpen
}

// Release implements vfs.FileImpl.
func (e *end) Release(context.Context) {
	if e.released.Swap(true) {
		return
	}
	p := e.p
	p.mu.Lock()
	var ev waiter.EventMask
	if e.read {
		p.readers--
		ev |= waiter.EventOut | waiter.EventErr
	}
	if e.write {
		p.writers--
		ev |= waiter.EventIn | waiter.EventHUp
	}
	if p.readers == 0 && p.writers == 0 {
		// A FIFO's data does not outlive its last opener.
		p.ring, p.head, p.size = nil, 0, 0
	}
	p.mu.Unlock()
	p.queue.Notify(ev | waiter.EventOpen)
}

// Read implements vfs.FileImpl: unix.EAGAIN when empty with a writer,
// end of file (0, nil) when empty without one.
func (e *end) Read(_ context.Context, dst []byte, _ int64) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	p := e.p
	p.mu.Lock()
	if p.size == 0 {
		w := p.writers
		p.mu.Unlock()
		if w == 0 {
			return 0, nil
		}
		return 0, unix.EAGAIN
	}
	n := 0
	for n < len(dst) && p.size > 0 {
		end := min(p.head+p.size, len(p.ring))
		c := copy(dst[n:], p.ring[p.head:end])
		n += c
		p.size -= c
		p.head = (p.head + c) % len(p.ring)
	}
	if p.size == 0 {
		p.head = 0
	}
	p.mu.Unlock()
	p.queue.Notify(waiter.EventOut | waiter.EventWrNorm)
	return n, nil
}

// Write implements vfs.FileImpl: unix.EPIPE without a reader (the caller
// sends SIGPIPE); a write of at most PIPE_BUF bytes goes in whole or not
// at all (unix.EAGAIN); a larger one goes in as far as there is room.
func (e *end) Write(_ context.Context, src []byte, _ int64) (int, error) {
	p := e.p
	p.mu.Lock()
	if p.readers == 0 {
		p.mu.Unlock()
		return 0, unix.EPIPE
	}
	if len(src) == 0 {
		p.mu.Unlock()
		return 0, nil
	}
	room := p.max - p.size
	n := len(src)
	if n <= AtomicIOBytes {
		if room < n {
			p.mu.Unlock()
			return 0, unix.EAGAIN
		}
	} else if n > room {
		n = room
	}
	if n == 0 {
		p.mu.Unlock()
		return 0, unix.EAGAIN
	}
	if len(p.ring) != p.max {
		p.resizeLocked(p.max)
	}
	for done := 0; done < n; {
		tail := (p.head + p.size) % len(p.ring)
		c := copy(p.ring[tail:min(len(p.ring), tail+n-done)], src[done:n])
		done += c
		p.size += c
	}
	p.mu.Unlock()
	p.queue.Notify(waiter.EventIn | waiter.EventRdNorm)
	return n, nil
}

// Readiness implements waiter.Waitable.
func (e *end) Readiness(mask waiter.EventMask) waiter.EventMask {
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	var ready waiter.EventMask
	if e.read {
		if p.size > 0 {
			ready |= waiter.ReadableEvents
		}
		if p.writers == 0 && p.wOpens != e.wStart {
			ready |= waiter.EventHUp
		}
	}
	if e.write {
		if p.max-p.size >= AtomicIOBytes {
			ready |= waiter.WritableEvents
		}
		if p.readers == 0 {
			ready |= waiter.EventErr
		}
	}
	return ready & (mask | waiter.EventHUp | waiter.EventErr)
}

// EventRegister implements waiter.Waitable.
func (e *end) EventRegister(w *waiter.Entry) error {
	e.p.queue.EventRegister(w)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (e *end) EventUnregister(w *waiter.Entry) { e.p.queue.EventUnregister(w) }

// Fsync implements vfs.FileImpl: pipes cannot be synced.
func (e *end) Fsync(context.Context) error { return unix.EINVAL }

// Ioctl implements FIONREAD: the number of buffered bytes, as an int.
func (e *end) Ioctl(_ context.Context, mem vfs.Memory, cmd uint32, arg uint64) (uint64, error) {
	switch cmd {
	case fionread:
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(e.p.Buffered()))
		if err := mem.CopyOut(arg, b[:]); err != nil {
			return 0, err
		}
		return 0, nil
	}
	return 0, unix.ENOTTY
}

// PipeSize returns the capacity (F_GETPIPE_SZ).
func (e *end) PipeSize() int64 {
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	return int64(e.p.max)
}

// SetPipeSize sets the capacity (F_SETPIPE_SZ), rounded up to a power of
// two number of pages, and returns it: EPERM above MaxSize, EBUSY below
// what is buffered.
func (e *end) SetPipeSize(size int64) (int64, error) {
	if size < 0 {
		return 0, unix.EINVAL
	}
	if size > MaxSize {
		return 0, unix.EPERM
	}
	n := int64(pageSize)
	for n < size {
		n <<= 1
	}
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if int(n) < p.size {
		return 0, unix.EBUSY
	}
	p.max = int(n)
	if p.ring != nil {
		p.resizeLocked(p.max)
	}
	p.queue.Notify(waiter.EventOut)
	return n, nil
}

// Buffered returns how many bytes the pipe holds.
func (p *Pipe) Buffered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size
}

// resizeLocked moves the data into a ring of n bytes.
// Preconditions: p.mu is held; n >= p.size.
func (p *Pipe) resizeLocked(n int) {
	ring := make([]byte, n)
	got := 0
	for got < p.size {
		end := min(p.head+p.size-got, len(p.ring))
		c := copy(ring[got:], p.ring[p.head:end])
		got += c
		p.head = (p.head + c) % len(p.ring)
	}
	p.ring, p.head = ring, 0
}

// Sizer is implemented by pipe files, for F_GETPIPE_SZ and F_SETPIPE_SZ.
type Sizer interface {
	PipeSize() int64
	SetPipeSize(size int64) (int64, error)
}

var _ Sizer = (*end)(nil)

var nextIno atomic.Uint64

// pipefsDev is the device of anonymous pipes.
var pipefsDev = vfs.NewAnonDev()

// Inode is the inode fstat reports for an anonymous pipe.
type Inode struct {
	p        *Pipe
	ino      uint64
	mode     uint32
	uid, gid uint32
	now      unix.Timespec
}

// Stat implements vfs.Inode.
func (i *Inode) Stat(context.Context) (vfs.Stat, error) {
	return vfs.Stat{Dev: pipefsDev, Ino: i.ino, Mode: i.mode, Nlink: 1, UID: i.uid, GID: i.gid,
		Blksize: pageSize, Atime: i.now, Mtime: i.now, Ctime: i.now}, nil
}

// SetStat implements vfs.Inode.
func (i *Inode) SetStat(context.Context, vfs.SetStat) error { return unix.EPERM }

// Open implements vfs.Inode. An anonymous pipe has no name, but
// /proc/[pid]/fd/N leads to it: opening that opens another end of the
// same pipe. Unlike a FIFO's, the open never waits for the other side
// and never fails for want of it, as on Linux.
func (i *Inode) Open(_ context.Context, flags uint32) (vfs.FileImpl, error) {
	if i.p == nil {
		return nil, unix.ENXIO
	}
	impl, err := i.p.Open(flags &^ unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	if e, ok := impl.(*end); ok {
		e.waitOpen = false
	}
	return impl, nil
}
