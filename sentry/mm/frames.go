// Package mm is the sentry's memory manager: guest RAM frames with
// reference counts, per-process address spaces of VMAs, demand paging,
// copy-on-write after fork, and copying to and from user memory.
package mm

import (
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/platform"
)

const (
	pageSize  = platform.PageSize
	chunkSize = 64 << 20
)

// Frames allocates guest RAM in pages, for every address space of one
// sandbox, within a memory limit.
type Frames struct {
	m platform.Machine

	mu     sync.Mutex
	chunks []*chunk // by gpa
	free   []uint64
	limit  uint64
	used   uint64
	peak   uint64
	// OOM is called (without locks held) when an allocation fails
	// because of the limit.
	OOM func()
}

type chunk struct {
	gpa  uint64
	host []byte
	refs []uint32
	next uint64 // first never-used page index
}

// NewFrames returns an allocator over m's RAM that hands out at most limit
// bytes (0: no limit beyond the guest's address space).
func NewFrames(m platform.Machine, limit uint64) *Frames {
	return &Frames{m: m, limit: limit}
}

// ErrNoMemory is returned when the memory limit is reached.
var ErrNoMemory = fmt.Errorf("memory limit reached: %w", unix.ENOMEM)

// SetLimit changes the memory limit.
func (f *Frames) SetLimit(limit uint64) {
	f.mu.Lock()
	f.limit = limit
	f.mu.Unlock()
}

// Usage returns the bytes in use, the peak and the limit.
func (f *Frames) Usage() (used, peak, limit uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used, f.peak, f.limit
}

// Alloc returns a zeroed frame with one reference.
func (f *Frames) Alloc() (uint64, error) {
	f.mu.Lock()
	if f.limit != 0 && f.used+pageSize > f.limit {
		f.mu.Unlock()
		if f.OOM != nil {
			f.OOM()
		}
		return 0, ErrNoMemory
	}
	var gpa uint64
	if n := len(f.free); n > 0 {
		gpa = f.free[n-1]
		f.free = f.free[:n-1]
	} else {
		var c *chunk
		if n := len(f.chunks); n > 0 && f.chunks[n-1].next < chunkSize/pageSize {
			c = f.chunks[n-1]
		} else {
			base, host, err := f.m.AddMemory(chunkSize)
			if err != nil {
				f.mu.Unlock()
				return 0, fmt.Errorf("add guest memory: %w", err)
			}
			c = &chunk{gpa: base, host: host, refs: make([]uint32, chunkSize/pageSize)}
			f.chunks = append(f.chunks, c)
		}
		gpa = c.gpa + c.next*pageSize
		c.next++
	}
	c, i := f.find(gpa)
	c.refs[i] = 1
	f.used += pageSize
	if f.used > f.peak {
		f.peak = f.used
	}
	f.mu.Unlock()
	clear(c.host[i*pageSize : (i+1)*pageSize])
	return gpa, nil
}

// find returns the chunk and page index of gpa.
// Preconditions: f.mu is held.
func (f *Frames) find(gpa uint64) (*chunk, uint64) {
	i := sort.Search(len(f.chunks), func(i int) bool { return f.chunks[i].gpa+chunkSize > gpa })
	if i == len(f.chunks) || gpa < f.chunks[i].gpa {
		panic(fmt.Sprintf("mm: frame %#x is not guest RAM", gpa))
	}
	c := f.chunks[i]
	return c, (gpa - c.gpa) / pageSize
}

// IncRef adds a reference to frame gpa.
func (f *Frames) IncRef(gpa uint64) {
	f.mu.Lock()
	c, i := f.find(gpa)
	c.refs[i]++
	f.mu.Unlock()
}

// DecRef drops a reference; the last one frees the frame.
func (f *Frames) DecRef(gpa uint64) {
	f.mu.Lock()
	c, i := f.find(gpa)
	c.refs[i]--
	if c.refs[i] == 0 {
		f.free = append(f.free, gpa)
		f.used -= pageSize
	}
	f.mu.Unlock()
}

// Refs returns the reference count of frame gpa.
func (f *Frames) Refs(gpa uint64) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, i := f.find(gpa)
	return c.refs[i]
}

// Bytes returns the host view of frame gpa.
func (f *Frames) Bytes(gpa uint64) []byte {
	f.mu.Lock()
	c, i := f.find(gpa)
	f.mu.Unlock()
	return c.host[i*pageSize : (i+1)*pageSize : (i+1)*pageSize]
}
