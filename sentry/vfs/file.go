package vfs

import (
	"context"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/vfs/lock"
	"moat.dev/moat/sentry/waiter"
)

// File is an open file description. Descriptors made by dup share one
// File (IncRef); the last DecRef releases it.
type File struct {
	vfs  *VirtualFilesystem
	vd   VirtualDentry
	impl FileImpl
	refs atomic.Int64
	// flags holds the access mode and status flags.
	flags    atomic.Uint32
	readable bool
	writable bool
	isPath   bool
	// stream files have no offset.
	stream bool

	// offMu serializes the operations that use or move the offset.
	offMu sync.Mutex
	off   int64

	locksMu sync.Mutex
	locks   *lockEntry
}

func (v *VirtualFilesystem) newFile(vd VirtualDentry, impl FileImpl, flags uint32, stream bool) *File {
	vd.IncRef()
	f := &File{vfs: v, vd: vd, impl: impl, stream: stream}
	f.refs.Store(1)
	f.isPath = flags&unix.O_PATH != 0
	if !f.isPath {
		acc := flags & unix.O_ACCMODE
		f.readable = acc == unix.O_RDONLY || acc == unix.O_RDWR
		f.writable = acc == unix.O_WRONLY || acc == unix.O_RDWR
		flags = acc | flags&openStatusFlags
	}
	f.flags.Store(flags)
	return f
}

// IncRef takes a reference (dup, fork).
func (f *File) IncRef() {
	if f.refs.Add(1) <= 1 {
		panic("vfs: IncRef of a released file")
	}
}

// DecRef drops a reference; the last one releases the file, its OFD and
// flock locks, and its place in the tree.
func (f *File) DecRef(ctx context.Context) {
	n := f.refs.Add(-1)
	if n > 0 {
		return
	}
	if n < 0 {
		panic("vfs: file reference count below zero")
	}
	f.locksMu.Lock()
	le := f.locks
	f.locks = nil
	f.locksMu.Unlock()
	if le != nil {
		le.ReleaseOwner(f)
		f.vfs.putLocks(le)
	}
	f.impl.Release(ctx)
	f.vd.DecRef(ctx)
}

// Impl returns the file's implementation, for the syscall layer to reach
// type-specific operations (F_SETPIPE_SZ on a pipe, a socket's calls).
func (f *File) Impl() FileImpl { return f.impl }

// VirtualDentry returns where the file is in the tree, with a reference
// (fchdir, *at calls with a dirfd, /proc/self/fd).
func (f *File) VirtualDentry() VirtualDentry {
	f.vd.IncRef()
	return f.vd
}

// StatusFlags returns the access mode and status flags (F_GETFL).
func (f *File) StatusFlags() uint32 { return f.flags.Load() }

// SetStatusFlags changes the settable status flags (F_SETFL): O_APPEND,
// O_NONBLOCK, O_DIRECT, O_NOATIME, O_ASYNC. Others are ignored.
func (f *File) SetStatusFlags(ctx context.Context, creds *auth.Credentials, flags uint32) error {
	if f.isPath {
		return unix.EBADF
	}
	if flags&unix.O_NOATIME != 0 && f.flags.Load()&unix.O_NOATIME == 0 {
		st, err := f.vd.Dentry.inode.Stat(ctx)
		if err != nil {
			return err
		}
		if !isOwner(creds, &st) {
			return unix.EPERM
		}
	}
	for {
		old := f.flags.Load()
		n := old&^SettableFlags | flags&SettableFlags
		if f.flags.CompareAndSwap(old, n) {
			return nil
		}
	}
}

// Readable and Writable report the access mode.
func (f *File) Readable() bool { return f.readable }

// Writable says whether the file was opened for writing.
func (f *File) Writable() bool { return f.writable }

// IsPath says whether the file was opened with O_PATH.
func (f *File) IsPath() bool { return f.isPath }

// Stat returns the file's metadata (fstat).
func (f *File) Stat(ctx context.Context) (Stat, error) {
	return f.vd.Dentry.inode.Stat(ctx)
}

// Statfs reports on the file's filesystem (fstatfs).
func (f *File) Statfs(ctx context.Context) (Statfs, error) {
	return statfsOf(ctx, f.vd)
}

// Read reads at the file offset and advances it. A read that would block
// returns unix.EAGAIN whatever O_NONBLOCK says: waiting is the caller's.
func (f *File) Read(ctx context.Context, p []byte) (int, error) {
	if !f.readable {
		return 0, unix.EBADF
	}
	if f.stream {
		return f.impl.Read(ctx, p, -1)
	}
	f.offMu.Lock()
	defer f.offMu.Unlock()
	n, err := f.impl.Read(ctx, p, f.off)
	f.off += int64(n)
	return n, err
}

// Pread reads at off without moving the offset.
func (f *File) Pread(ctx context.Context, p []byte, off int64) (int, error) {
	if !f.readable {
		return 0, unix.EBADF
	}
	if f.stream {
		return 0, unix.ESPIPE
	}
	if off < 0 {
		return 0, unix.EINVAL
	}
	return f.impl.Read(ctx, p, off)
}

// Write writes at the file offset (at the end with O_APPEND) and advances
// it. A write that would block returns what was written, or unix.EAGAIN
// if nothing was.
func (f *File) Write(ctx context.Context, p []byte) (int, error) {
	if !f.writable {
		return 0, unix.EBADF
	}
	if f.stream {
		return f.impl.Write(ctx, p, -1)
	}
	f.offMu.Lock()
	defer f.offMu.Unlock()
	if f.flags.Load()&unix.O_APPEND != 0 {
		if a, ok := f.impl.(Appender); ok {
			n, end, err := a.Append(ctx, p)
			if n > 0 || err == nil {
				f.off = end
			}
			return n, err
		}
	}
	n, err := f.impl.Write(ctx, p, f.off)
	f.off += int64(n)
	return n, err
}

// Pwrite writes at off without moving the offset. As on Linux, a file
// opened with O_APPEND appends anyway.
func (f *File) Pwrite(ctx context.Context, p []byte, off int64) (int, error) {
	if !f.writable {
		return 0, unix.EBADF
	}
	if f.stream {
		return 0, unix.ESPIPE
	}
	if off < 0 {
		return 0, unix.EINVAL
	}
	if f.flags.Load()&unix.O_APPEND != 0 {
		if a, ok := f.impl.(Appender); ok {
			n, _, err := a.Append(ctx, p)
			return n, err
		}
	}
	return f.impl.Write(ctx, p, off)
}

// Seek moves the offset (lseek).
func (f *File) Seek(ctx context.Context, off int64, whence int) (int64, error) {
	if f.isPath {
		return 0, unix.EBADF
	}
	if f.stream {
		return 0, unix.ESPIPE
	}
	f.offMu.Lock()
	defer f.offMu.Unlock()
	n, err := f.impl.Seek(ctx, f.off, off, whence)
	if err != nil {
		return 0, err
	}
	f.off = n
	return n, nil
}

// Offset returns the file offset.
func (f *File) Offset() int64 {
	f.offMu.Lock()
	defer f.offMu.Unlock()
	return f.off
}

// Getdents calls emit with the next directory entries until emit returns
// false (the caller's buffer is full: that entry is not consumed and will
// come first next time) or the directory ends.
func (f *File) Getdents(ctx context.Context, emit func(Dirent) bool) error {
	if f.isPath {
		return unix.EBADF
	}
	df, ok := f.impl.(*dirFile)
	if !ok {
		return unix.ENOTDIR
	}
	f.offMu.Lock()
	defer f.offMu.Unlock()
	return df.reader.ReadDir(ctx, f.off, func(d Dirent) bool {
		if !emit(d) {
			return false
		}
		f.off = d.Off
		return true
	})
}

// SetStat changes the file's metadata (fchmod, fchown, futimens) with the
// same checks as the path calls.
func (f *File) SetStat(ctx context.Context, creds *auth.Credentials, s SetStat) error {
	if f.isPath {
		return unix.EBADF
	}
	if s.Mask&SetSize != 0 {
		return f.Truncate(ctx, s.Size)
	}
	return f.vfs.setStat(ctx, creds, f.vd, s)
}

// Truncate sets the size (ftruncate): the file must be open for writing.
func (f *File) Truncate(ctx context.Context, size int64) error {
	if !f.writable {
		return unix.EINVAL
	}
	if size < 0 {
		return unix.EINVAL
	}
	if f.vd.Dentry.typ != unix.S_IFREG {
		return unix.EINVAL
	}
	if f.vd.Mount.ReadOnly() {
		return unix.EROFS
	}
	now := Now()
	return f.vd.Dentry.inode.SetStat(ctx, SetStat{Mask: SetSize | SetMtime | SetCtime, Size: size, Mtime: now, Ctime: now})
}

// Fsync flushes the file.
func (f *File) Fsync(ctx context.Context) error {
	if f.isPath {
		return unix.EBADF
	}
	return f.impl.Fsync(ctx)
}

// Fallocate implements fallocate(2).
func (f *File) Fallocate(ctx context.Context, mode uint32, off, length int64) error {
	if !f.writable {
		return unix.EBADF
	}
	if off < 0 || length <= 0 {
		return unix.EINVAL
	}
	if f.vd.Dentry.IsDir() {
		return unix.EISDIR
	}
	if f.stream {
		return unix.ESPIPE
	}
	return f.impl.Fallocate(ctx, mode, off, length)
}

// Ioctl passes an ioctl to the implementation.
func (f *File) Ioctl(ctx context.Context, mem Memory, cmd uint32, arg uint64) (uint64, error) {
	if f.isPath {
		return 0, unix.EBADF
	}
	return f.impl.Ioctl(ctx, mem, cmd, arg)
}

// Readiness returns the events in mask that are ready.
func (f *File) Readiness(mask waiter.EventMask) waiter.EventMask {
	if f.isPath {
		return waiter.EventHUp & mask
	}
	return f.impl.Readiness(mask)
}

// EventRegister adds e to the file's waiter queue.
func (f *File) EventRegister(e *waiter.Entry) error {
	if f.isPath {
		return unix.EBADF
	}
	return f.impl.EventRegister(e)
}

// EventUnregister removes e from the file's waiter queue.
func (f *File) EventUnregister(e *waiter.Entry) {
	if !f.isPath {
		f.impl.EventUnregister(e)
	}
}

// OpenReady says whether a pending open (PendingOpenError) may complete.
func (f *File) OpenReady() bool {
	if ow, ok := f.impl.(OpenWaiter); ok {
		return ow.OpenReady()
	}
	return true
}

// RecordLock is one fcntl lock request (struct flock), before the file
// position and size are applied.
type RecordLock struct {
	Type   lock.Type
	Whence int
	Start  int64
	Len    int64
}

// lockRange turns a struct flock range into a byte range.
func (f *File) lockRange(ctx context.Context, l RecordLock) (lock.Range, error) {
	var base int64
	switch l.Whence {
	case unix.SEEK_SET:
	case unix.SEEK_CUR:
		base = f.Offset()
	case unix.SEEK_END:
		st, err := f.Stat(ctx)
		if err != nil {
			return lock.Range{}, err
		}
		base = st.Size
	default:
		return lock.Range{}, unix.EINVAL
	}
	start := base + l.Start
	if start < 0 {
		return lock.Range{}, unix.EINVAL
	}
	switch {
	case l.Len == 0:
		return lock.Range{Start: uint64(start), End: lock.EOF}, nil
	case l.Len > 0:
		end := start + l.Len
		if end < start {
			return lock.Range{Start: uint64(start), End: lock.EOF}, nil
		}
		return lock.Range{Start: uint64(start), End: uint64(end)}, nil
	default:
		if start+l.Len < 0 {
			return lock.Range{}, unix.EINVAL
		}
		return lock.Range{Start: uint64(start + l.Len), End: uint64(start)}, nil
	}
}

// fileLocks returns the lock table of the file's inode.
func (f *File) fileLocks(ctx context.Context) (*lockEntry, error) {
	f.locksMu.Lock()
	defer f.locksMu.Unlock()
	if f.locks != nil {
		return f.locks, nil
	}
	st, err := f.Stat(ctx)
	if err != nil {
		return nil, err
	}
	f.locks = f.vfs.getLocks(fileKey{fs: f.vd.Dentry.fs, dev: st.Dev, ino: st.Ino})
	return f.locks, nil
}

// SetRecordLock takes or releases a record lock (F_SETLK). owner is the
// calling process for POSIX locks (pid its id); ofd selects an
// open-file-description lock (F_OFD_SETLK), owned by f. A conflict
// returns unix.EAGAIN; F_SETLKW waits on LockQueue and retries.
func (f *File) SetRecordLock(ctx context.Context, owner lock.Owner, pid int32, ofd bool, l RecordLock) error {
	if f.isPath {
		return unix.EBADF
	}
	switch l.Type {
	case lock.Read:
		if !f.readable {
			return unix.EBADF
		}
	case lock.Write:
		if !f.writable {
			return unix.EBADF
		}
	case lock.Unlock:
	default:
		return unix.EINVAL
	}
	r, err := f.lockRange(ctx, l)
	if err != nil {
		return err
	}
	le, err := f.fileLocks(ctx)
	if err != nil {
		return err
	}
	if ofd {
		owner, pid = f, -1
	}
	return le.SetRecord(owner, pid, l.Type, r)
}

// GetRecordLock reports a lock that would conflict with l (F_GETLK,
// F_OFD_GETLK); ok is false if there is none.
func (f *File) GetRecordLock(ctx context.Context, owner lock.Owner, ofd bool, l RecordLock) (rec lock.Record, ok bool, err error) {
	if f.isPath {
		return lock.Record{}, false, unix.EBADF
	}
	if l.Type != lock.Read && l.Type != lock.Write {
		return lock.Record{}, false, unix.EINVAL
	}
	r, err := f.lockRange(ctx, l)
	if err != nil {
		return lock.Record{}, false, err
	}
	le, err := f.fileLocks(ctx)
	if err != nil {
		return lock.Record{}, false, err
	}
	if ofd {
		owner = f
	}
	rec, ok = le.TestRecord(owner, l.Type, r)
	return rec, ok, nil
}

// ReleasePOSIXLocks drops owner's POSIX locks on the file: the syscall
// layer calls it when owner closes any descriptor of the file.
func (f *File) ReleasePOSIXLocks(ctx context.Context, owner lock.Owner) {
	f.locksMu.Lock()
	le := f.locks
	f.locksMu.Unlock()
	if le != nil {
		le.ReleaseOwner(owner)
		return
	}
	// Another File of the same inode may hold the table.
	st, err := f.Stat(ctx)
	if err != nil {
		return
	}
	f.vfs.locksMu.Lock()
	le = f.vfs.locks[fileKey{fs: f.vd.Dentry.fs, dev: st.Dev, ino: st.Ino}]
	f.vfs.locksMu.Unlock()
	if le != nil {
		le.ReleaseOwner(owner)
	}
}

// Flock takes (lock.Read: LOCK_SH, lock.Write: LOCK_EX) or releases a
// flock lock owned by f. A conflict returns unix.EWOULDBLOCK.
func (f *File) Flock(ctx context.Context, t lock.Type) error {
	if f.isPath {
		return unix.EBADF
	}
	le, err := f.fileLocks(ctx)
	if err != nil {
		return err
	}
	return le.Flock(f, t)
}

// LockQueue returns the queue notified when a lock on the file's inode is
// released, for F_SETLKW and blocking flock.
func (f *File) LockQueue(ctx context.Context) (*waiter.Queue, error) {
	le, err := f.fileLocks(ctx)
	if err != nil {
		return nil, err
	}
	return &le.Queue, nil
}

// fileKey identifies a file for locking across hard links and across
// the inode objects a filesystem may make for one file.
type fileKey struct {
	fs  Filesystem
	dev uint64
	ino uint64
}

type lockEntry struct {
	lock.Locks
	key   fileKey
	users int // guarded by VirtualFilesystem.locksMu
}

func (v *VirtualFilesystem) getLocks(k fileKey) *lockEntry {
	v.locksMu.Lock()
	defer v.locksMu.Unlock()
	le := v.locks[k]
	if le == nil {
		le = &lockEntry{key: k}
		v.locks[k] = le
	}
	le.users++
	return le
}

func (v *VirtualFilesystem) putLocks(le *lockEntry) {
	v.locksMu.Lock()
	defer v.locksMu.Unlock()
	le.users--
	if le.users == 0 {
		delete(v.locks, le.key)
	}
}

// VirtualDentryNoRef returns where the file is without a reference, for
// a PathOperation's Start while the caller holds the file.
func (f *File) VirtualDentryNoRef() VirtualDentry { return f.vd }
