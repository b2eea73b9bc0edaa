package tmpfs

import (
	"context"
	"math"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/vfs"
)

// maxFileSize is the largest offset a tmpfs file reaches.
const maxFileSize = math.MaxInt64 &^ (pageSize - 1)

// regularFile is an open regular file.
type regularFile struct {
	vfs.FileDefaults
	inode *inode
	// noatime is O_NOATIME at open: reads leave the access time alone.
	noatime bool
}

// Release implements vfs.FileImpl.
func (f *regularFile) Release(context.Context) {
	i := f.inode
	i.mu.Lock()
	i.opens--
	i.maybeFreeLocked()
	i.mu.Unlock()
}

// Read implements vfs.FileImpl; holes read as zeros.
func (f *regularFile) Read(_ context.Context, dst []byte, off int64) (int, error) {
	i := f.inode
	i.mu.Lock()
	defer i.mu.Unlock()
	if !f.noatime {
		i.touchAtimeLocked()
	}
	if off >= i.size || len(dst) == 0 {
		return 0, nil
	}
	n := int64(len(dst))
	if n > i.size-off {
		n = i.size - off
	}
	for done := int64(0); done < n; {
		pos := off + done
		pg, in := pos/pageSize, pos%pageSize
		chunk := min(pageSize-in, n-done)
		out := dst[done : done+chunk]
		if p := i.pages[pg]; p != nil {
			copy(out, p[in:in+chunk])
		} else {
			clear(out)
		}
		done += chunk
	}
	return int(n), nil
}

// Write implements vfs.FileImpl. When the filesystem fills up part way,
// the bytes written so far are returned; ENOSPC if none were.
func (f *regularFile) Write(_ context.Context, src []byte, off int64) (int, error) {
	i := f.inode
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.writeLocked(src, off)
}

// Append implements vfs.Appender.
func (f *regularFile) Append(_ context.Context, src []byte) (int, int64, error) {
	i := f.inode
	i.mu.Lock()
	defer i.mu.Unlock()
	n, err := i.writeLocked(src, i.size)
	return n, i.size, err
}

// Preconditions: i.mu is held.
func (i *inode) writeLocked(src []byte, off int64) (int, error) {
	if len(src) == 0 {
		return 0, nil
	}
	if off < 0 || off > maxFileSize-int64(len(src)) {
		return 0, unix.EFBIG
	}
	done := int64(0)
	var err error
	for done < int64(len(src)) {
		pos := off + done
		pg, in := pos/pageSize, pos%pageSize
		chunk := min(pageSize-in, int64(len(src))-done)
		p := i.pages[pg]
		if p == nil {
			if err = i.fs.reserve(1); err != nil {
				break
			}
			p = make([]byte, pageSize)
			if i.pages == nil {
				i.pages = make(map[int64][]byte)
			}
			i.pages[pg] = p
		}
		copy(p[in:], src[done:done+chunk])
		done += chunk
	}
	if done > 0 {
		if off+done > i.size {
			i.size = off + done
		}
		now := vfs.Now()
		i.mtime, i.ctime = now, now
		// A write clears set-user-ID (and set-group-ID of group-executable
		// files), as Linux's file_remove_privs.
		if i.mode&unix.S_ISUID != 0 || i.mode&(unix.S_ISGID|unix.S_IXGRP) == unix.S_ISGID|unix.S_IXGRP {
			i.mode &^= unix.S_ISUID
			if i.mode&unix.S_IXGRP != 0 {
				i.mode &^= unix.S_ISGID
			}
		}
		return int(done), nil
	}
	return 0, err
}

// truncateLocked sets the size, freeing pages past it.
// Preconditions: i.mu is held.
func (i *inode) truncateLocked(size int64) error {
	if size > maxFileSize {
		return unix.EFBIG
	}
	if size < i.size {
		last := (size + pageSize - 1) / pageSize // first page wholly beyond
		var freed int64
		for pg := range i.pages {
			if pg >= last {
				delete(i.pages, pg)
				freed++
			}
		}
		i.fs.unreserve(freed)
		if in := size % pageSize; in != 0 {
			if p := i.pages[size/pageSize]; p != nil {
				clear(p[in:])
			}
		}
	}
	if size != i.size {
		now := vfs.Now()
		i.mtime, i.ctime = now, now
	}
	i.size = size
	return nil
}

// Seek implements vfs.FileImpl, with SEEK_DATA and SEEK_HOLE that see
// the pages actually held.
func (f *regularFile) Seek(_ context.Context, cur, off int64, whence int) (int64, error) {
	i := f.inode
	i.mu.Lock()
	defer i.mu.Unlock()
	switch whence {
	case unix.SEEK_DATA, unix.SEEK_HOLE:
		if off < 0 || off >= i.size {
			return 0, unix.ENXIO
		}
		for pg := off / pageSize; pg*pageSize < i.size; pg++ {
			_, present := i.pages[pg]
			if present == (whence == unix.SEEK_DATA) {
				return max(off, pg*pageSize), nil
			}
		}
		if whence == unix.SEEK_DATA {
			return 0, unix.ENXIO
		}
		return i.size, nil
	}
	return vfs.GenericSeek(cur, off, whence, i.size)
}

// Fallocate implements vfs.FileImpl: allocation (with or without
// FALLOC_FL_KEEP_SIZE) and FALLOC_FL_PUNCH_HOLE.
func (f *regularFile) Fallocate(_ context.Context, mode uint32, off, length int64) error {
	i := f.inode
	i.mu.Lock()
	defer i.mu.Unlock()
	end := off + length
	if end < off || end > maxFileSize {
		return unix.EFBIG
	}
	switch mode {
	case 0, unix.FALLOC_FL_KEEP_SIZE:
		var missing []int64
		for pg := off / pageSize; pg*pageSize < end; pg++ {
			if i.pages[pg] == nil {
				missing = append(missing, pg)
			}
		}
		if err := i.fs.reserve(int64(len(missing))); err != nil {
			return err
		}
		if i.pages == nil {
			i.pages = make(map[int64][]byte)
		}
		for _, pg := range missing {
			i.pages[pg] = make([]byte, pageSize)
		}
		if mode == 0 && end > i.size {
			i.size = end
		}
	case unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE:
		var freed int64
		for pg := off / pageSize; pg*pageSize < end; pg++ {
			p := i.pages[pg]
			if p == nil {
				continue
			}
			ps, pe := pg*pageSize, (pg+1)*pageSize
			if off <= ps && end >= pe {
				delete(i.pages, pg)
				freed++
				continue
			}
			clear(p[max(off, ps)-ps : min(end, pe)-ps])
		}
		i.fs.unreserve(freed)
	default:
		return unix.EOPNOTSUPP
	}
	i.ctime = vfs.Now()
	return nil
}

// touchAtimeLocked updates the access time the way Linux's relatime does:
// only when it is not newer than the last change or is a day old, so
// reads rarely write.
// Preconditions: i.mu is held.
func (i *inode) touchAtimeLocked() {
	now := vfs.Now()
	if tsLess(i.mtime, i.atime) && tsLess(i.ctime, i.atime) && now.Sec-i.atime.Sec < 24*3600 {
		return
	}
	i.atime = now
}

func tsLess(a, b unix.Timespec) bool {
	return a.Sec < b.Sec || a.Sec == b.Sec && a.Nsec < b.Nsec
}
