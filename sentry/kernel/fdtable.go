package kernel

import (
	"context"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/vfs"
)

type fdEntry struct {
	file    *vfs.File
	cloexec bool
}

// FDTable is a process's file descriptors (shared with CLONE_FILES).
type FDTable struct {
	mu   sync.Mutex
	fds  map[int32]fdEntry
	refs int
}

// NewFDTable returns an empty table.
func NewFDTable() *FDTable { return &FDTable{fds: map[int32]fdEntry{}, refs: 1} }

// IncRef adds a sharer.
func (t *FDTable) IncRef() {
	t.mu.Lock()
	t.refs++
	t.mu.Unlock()
}

// DecRef drops a sharer; the last closes every file.
func (t *FDTable) DecRef(ctx context.Context) {
	t.mu.Lock()
	t.refs--
	if t.refs > 0 {
		t.mu.Unlock()
		return
	}
	fds := t.fds
	t.fds = map[int32]fdEntry{}
	t.mu.Unlock()
	for _, e := range fds {
		e.file.ReleasePOSIXLocks(ctx, t)
		e.file.DecRef(ctx)
	}
}

// Fork copies the table for a new process.
func (t *FDTable) Fork() *FDTable {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := &FDTable{fds: make(map[int32]fdEntry, len(t.fds)), refs: 1}
	for fd, e := range t.fds {
		e.file.IncRef()
		n.fds[fd] = e
	}
	return n
}

// Get returns a reference to the file at fd, or nil.
func (t *FDTable) Get(fd int32) *vfs.File {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.fds[fd]
	if !ok {
		return nil
	}
	e.file.IncRef()
	return e.file
}

// GetWithFlags also returns FD_CLOEXEC.
func (t *FDTable) GetWithFlags(fd int32) (*vfs.File, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.fds[fd]
	if !ok {
		return nil, false
	}
	e.file.IncRef()
	return e.file, e.cloexec
}

// SetCloexec changes FD_CLOEXEC.
func (t *FDTable) SetCloexec(fd int32, on bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.fds[fd]
	if !ok {
		return unix.EBADF
	}
	e.cloexec = on
	t.fds[fd] = e
	return nil
}

// New installs f at the lowest free descriptor >= min, below limit. It
// takes a new reference on f.
func (t *FDTable) New(f *vfs.File, min int32, cloexec bool, limit uint64) (int32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for fd := min; ; fd++ {
		if uint64(fd) >= limit {
			return -1, unix.EMFILE
		}
		if _, used := t.fds[fd]; !used {
			f.IncRef()
			t.fds[fd] = fdEntry{file: f, cloexec: cloexec}
			return fd, nil
		}
	}
}

// Set installs f at fd, closing what was there (dup2). It takes a new
// reference on f.
func (t *FDTable) Set(ctx context.Context, fd int32, f *vfs.File, cloexec bool, limit uint64) error {
	if fd < 0 || uint64(fd) >= limit {
		return unix.EBADF
	}
	f.IncRef()
	t.mu.Lock()
	old, had := t.fds[fd]
	t.fds[fd] = fdEntry{file: f, cloexec: cloexec}
	t.mu.Unlock()
	if had {
		old.file.ReleasePOSIXLocks(ctx, t)
		old.file.DecRef(ctx)
	}
	return nil
}

// Remove closes fd and returns its file (the caller drops the reference).
func (t *FDTable) Remove(fd int32) *vfs.File {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.fds[fd]
	if !ok {
		return nil
	}
	delete(t.fds, fd)
	return e.file
}

// RemoveRange closes [first, last]; cloexecOnly marks them close-on-exec.
func (t *FDTable) RemoveRange(ctx context.Context, first, last uint32, cloexecOnly bool) {
	t.mu.Lock()
	var closed []*vfs.File
	for fd, e := range t.fds {
		if uint32(fd) < first || uint32(fd) > last {
			continue
		}
		if cloexecOnly {
			e.cloexec = true
			t.fds[fd] = e
			continue
		}
		delete(t.fds, fd)
		closed = append(closed, e.file)
	}
	t.mu.Unlock()
	for _, f := range closed {
		f.ReleasePOSIXLocks(ctx, t)
		f.DecRef(ctx)
	}
}

// CloseOnExec closes every FD_CLOEXEC descriptor.
func (t *FDTable) CloseOnExec(ctx context.Context) {
	t.mu.Lock()
	var closed []*vfs.File
	for fd, e := range t.fds {
		if e.cloexec {
			delete(t.fds, fd)
			closed = append(closed, e.file)
		}
	}
	t.mu.Unlock()
	for _, f := range closed {
		f.ReleasePOSIXLocks(ctx, t)
		f.DecRef(ctx)
	}
}

// FDs returns the open descriptors, for /proc/[pid]/fd.
func (t *FDTable) FDs() []int32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]int32, 0, len(t.fds))
	for fd := range t.fds {
		out = append(out, fd)
	}
	return out
}
