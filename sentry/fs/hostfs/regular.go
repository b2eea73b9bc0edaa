package hostfs

import (
	"context"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/vfs"
)

// regularFile is an open host regular file. I/O uses pread and pwrite on
// a descriptor of its own; O_APPEND writes go through a second descriptor
// opened with O_APPEND, so the host kernel makes each append atomic.
type regularFile struct {
	vfs.FileDefaults
	inode *inode
	fd    int

	mu       sync.Mutex
	appendFD int
}

// Release implements vfs.FileImpl.
func (f *regularFile) Release(context.Context) {
	unix.Close(f.fd)
	f.mu.Lock()
	if f.appendFD >= 0 {
		unix.Close(f.appendFD)
	}
	f.mu.Unlock()
}

// Read implements vfs.FileImpl.
func (f *regularFile) Read(_ context.Context, dst []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(f.fd, dst, off)
		if err == unix.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		return n, err
	}
}

// Write implements vfs.FileImpl.
func (f *regularFile) Write(_ context.Context, src []byte, off int64) (int, error) {
	for {
		n, err := unix.Pwrite(f.fd, src, off)
		if err == unix.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		return n, err
	}
}

// Append implements vfs.Appender.
func (f *regularFile) Append(_ context.Context, src []byte) (int, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inode.heldIO {
		// The duplicated descriptors share their status flags, so no
		// O_APPEND descriptor of its own: append under the inode's lock.
		f.inode.mu.Lock()
		defer f.inode.mu.Unlock()
		var st unix.Stat_t
		if err := unix.Fstat(f.fd, &st); err != nil {
			return 0, 0, err
		}
		n, err := unix.Pwrite(f.fd, src, st.Size)
		if n < 0 {
			n = 0
		}
		return n, st.Size + int64(n), err
	}
	if f.appendFD < 0 {
		fd, err := f.inode.reopen(unix.O_WRONLY | unix.O_APPEND)
		if err != nil {
			return 0, 0, err
		}
		f.appendFD = fd
	}
	n, err := unix.Write(f.appendFD, src)
	if n < 0 {
		n = 0
	}
	end, serr := unix.Seek(f.appendFD, 0, unix.SEEK_CUR)
	if err == nil {
		err = serr
	}
	return n, end, err
}

// Seek implements vfs.FileImpl; SEEK_DATA and SEEK_HOLE ask the host.
func (f *regularFile) Seek(_ context.Context, cur, off int64, whence int) (int64, error) {
	switch whence {
	case unix.SEEK_DATA, unix.SEEK_HOLE:
		return unix.Seek(f.fd, off, whence)
	}
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return 0, err
	}
	return vfs.GenericSeek(cur, off, whence, st.Size)
}

// Fsync implements vfs.FileImpl.
func (f *regularFile) Fsync(context.Context) error { return unix.Fsync(f.fd) }

// Fallocate implements vfs.FileImpl.
func (f *regularFile) Fallocate(_ context.Context, mode uint32, off, length int64) error {
	return unix.Fallocate(f.fd, mode, off, length)
}
