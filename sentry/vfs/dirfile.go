package vfs

import (
	"context"

	"golang.org/x/sys/unix"
)

// dirFile is an open directory.
type dirFile struct {
	FileDefaults
	reader DirReader
}

func (d *dirFile) Release(ctx context.Context) { d.reader.Release(ctx) }

func (d *dirFile) Read(context.Context, []byte, int64) (int, error) { return 0, unix.EISDIR }

func (d *dirFile) Write(context.Context, []byte, int64) (int, error) { return 0, unix.EBADF }

// Seek allows SEEK_SET to an offset a Dirent gave and SEEK_CUR, as most
// Linux filesystems do.
func (d *dirFile) Seek(_ context.Context, cur, off int64, whence int) (int64, error) {
	switch whence {
	case unix.SEEK_SET:
	case unix.SEEK_CUR:
		off += cur
	default:
		return 0, unix.EINVAL
	}
	if off < 0 {
		return 0, unix.EINVAL
	}
	return off, nil
}

func (d *dirFile) Fsync(context.Context) error { return nil }
