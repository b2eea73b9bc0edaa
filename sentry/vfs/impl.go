package vfs

import (
	"context"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/waiter"
)

// This file holds what a filesystem implements. The VFS resolves paths
// itself, one component at a time, and asks the filesystem only about one
// directory and one name at a time; it checks permissions, mount flags,
// sticky directories and the type rules of each operation before it calls
// in, so an implementation only stores and fetches.

// Filesystem is one mounted filesystem instance (a tmpfs, a host
// directory, a procfs).
type Filesystem interface {
	// Name is the filesystem type shown in mount tables ("tmpfs").
	Name() string
	// Root returns the inode of the filesystem's root directory.
	Root(ctx context.Context) (Inode, error)
	// Statfs reports usage, as statfs(2).
	Statfs(ctx context.Context) (Statfs, error)
	// Release is called when the last mount of the filesystem is gone.
	Release(ctx context.Context)
}

// Inode is one file of a filesystem. Its type (Stat().Mode&S_IFMT) never
// changes. Directories also implement Dir; symbolic links implement
// Symlink.
type Inode interface {
	// Stat returns the file's metadata.
	Stat(ctx context.Context) (Stat, error)
	// SetStat changes the metadata named by s.Mask. The VFS has checked
	// permissions and resolved UTIME_NOW; s.Size is only set on regular
	// files. The implementation updates ctime.
	SetStat(ctx context.Context, s SetStat) error
	// Open returns the open-file state of a regular file, FIFO or other
	// non-directory, non-device file. The VFS opens directories
	// (through Dir.OpenDir) and devices (through its device table)
	// itself, and never calls Open for O_PATH.
	Open(ctx context.Context, flags uint32) (FileImpl, error)
}

// Dir is implemented by directory inodes. name is always a single valid
// component: not empty, not "." or "..", no '/', at most NAME_MAX bytes.
// The VFS serializes the calls that change one directory.
type Dir interface {
	Inode
	// Lookup returns the child called name, or unix.ENOENT.
	Lookup(ctx context.Context, name string) (Inode, error)
	// OpenDir starts reading the directory's entries.
	OpenDir(ctx context.Context) (DirReader, error)
	// Create makes a regular file and returns it; unix.EEXIST if the
	// name is taken.
	Create(ctx context.Context, name string, attr CreateAttr) (Inode, error)
	// Mkdir makes a directory.
	Mkdir(ctx context.Context, name string, attr CreateAttr) error
	// Mknod makes a FIFO, a socket or (on filesystems that allow them) a
	// device node; attr.Mode carries the type.
	Mknod(ctx context.Context, name string, attr CreateAttr) error
	// Symlink makes a symbolic link to target.
	Symlink(ctx context.Context, name, target string, attr CreateAttr) error
	// Link makes name a new hard link to target, an inode of the same
	// filesystem that is not a directory.
	Link(ctx context.Context, name string, target Inode) error
	// Unlink removes the non-directory child.
	Unlink(ctx context.Context, name string, child Inode) error
	// Rmdir removes the directory child, or gives unix.ENOTEMPTY.
	Rmdir(ctx context.Context, name string, child Inode) error
	// Rename moves r.Child from this directory to r.NewDir.
	Rename(ctx context.Context, r RenameRequest) error
}

// TmpfileDir is implemented by directories whose filesystem supports
// O_TMPFILE: CreateTmpfile makes a regular file with no name (link count
// 0) that linkat may name later if linkable.
type TmpfileDir interface {
	CreateTmpfile(ctx context.Context, attr CreateAttr, linkable bool) (Inode, error)
}

// Symlink is implemented by symbolic link inodes.
type Symlink interface {
	Inode
	Readlink(ctx context.Context) (string, error)
}

// MagicLink is implemented by symbolic links that lead to a place rather
// than a path, as procfs's /proc/<pid>/fd/<n>, cwd, root and exe do: a
// walk that follows one continues at Target (which may be an unlinked file
// or lie outside the walker's root), and Readlink only describes it.
type MagicLink interface {
	Symlink
	// Target returns where the link leads, with a reference.
	Target(ctx context.Context) (VirtualDentry, error)
}

// Revalidator is implemented by directories whose children can change
// behind the VFS's back (a host directory that host processes also
// modify). Before the VFS reuses a cached child it asks whether name still
// names that child; if not it looks the name up afresh.
type Revalidator interface {
	Revalidate(ctx context.Context, name string, child Inode) bool
}

// FileTyper is implemented by inodes that know their file type (S_IFMT
// bits) without a Stat, to save the VFS one Stat per looked-up name.
type FileTyper interface {
	FileType() uint32
}

// InodeReleaser is implemented by inodes that hold resources (a host
// file descriptor): ReleaseInode is called once, when the VFS drops the
// last dentry of this inode object. A filesystem whose Lookup returns a
// new inode object each time releases each one this way.
type InodeReleaser interface {
	ReleaseInode()
}

// RenameRequest describes one rename to Dir.Rename.
type RenameRequest struct {
	OldName string
	Child   Inode
	NewDir  Dir
	NewName string
	// Replaced is the inode that NewName names now, or nil. With
	// RENAME_EXCHANGE it is the inode that moves the other way.
	Replaced Inode
	// Flags holds unix.RENAME_NOREPLACE or unix.RENAME_EXCHANGE.
	Flags uint32
}

// CreateAttr is what a new file starts with. The VFS has applied the
// caller's umask and the set-group-ID rules of the parent directory.
type CreateAttr struct {
	Mode uint32 // file type and permission bits
	UID  uint32
	GID  uint32
	Rdev uint64 // device number for device nodes
}

// DirReader reads the entries of one open directory.
type DirReader interface {
	// ReadDir calls emit with the entries at or after offset off, in
	// order, until emit returns false or the entries run out. An entry's
	// Off is the offset of the entry after it, so ReadDir(e.Off) resumes
	// after e. Offsets stay valid while entries are added and removed:
	// reading a directory in pieces never repeats or skips an entry that
	// stayed in the directory the whole time. Offset 0 is the start; the
	// entries "." and ".." come first.
	ReadDir(ctx context.Context, off int64, emit func(Dirent) bool) error
	// Release frees the reader.
	Release(ctx context.Context)
}

// Dirent is one directory entry, as getdents64 returns it.
type Dirent struct {
	Name string
	Ino  uint64
	Type uint8 // unix.DT_*
	Off  int64 // offset of the next entry
}

// DirentType returns the DT_* value of a file mode.
func DirentType(mode uint32) uint8 {
	return uint8((mode & unix.S_IFMT) >> 12)
}

// Memory is the calling task's address space, as an ioctl sees it.
type Memory interface {
	CopyIn(addr uint64, dst []byte) error
	CopyOut(addr uint64, src []byte) error
}

// FileImpl is the state of one open file description beyond what File
// keeps (offset, status flags, references). Embed FileDefaults for the
// operations a file does not support.
type FileImpl interface {
	waiter.Waitable
	// Release is called once, when the last reference to the File goes.
	Release(ctx context.Context)
	// Read reads into p from offset off; for streams (pipes, sockets,
	// anonymous files) off is -1. An empty stream that would block gives
	// unix.EAGAIN; end of file gives 0, nil.
	Read(ctx context.Context, p []byte, off int64) (int, error)
	// Write writes p at offset off (-1 for streams). A short count with
	// a nil error means the rest would block.
	Write(ctx context.Context, p []byte, off int64) (int, error)
	// Seek returns the new offset for lseek(off, whence) from cur.
	Seek(ctx context.Context, cur, off int64, whence int) (int64, error)
	// Ioctl runs one ioctl; arg is the raw argument, mem the caller's
	// memory for arguments that are pointers.
	Ioctl(ctx context.Context, mem Memory, cmd uint32, arg uint64) (uint64, error)
	// Fsync flushes the file to stable storage (fsync and fdatasync).
	Fsync(ctx context.Context) error
	// Fallocate implements fallocate(2).
	Fallocate(ctx context.Context, mode uint32, off, length int64) error
}

// Appender is implemented by regular files: Append writes p at the end
// of the file atomically (O_APPEND) and returns the new end.
type Appender interface {
	Append(ctx context.Context, p []byte) (n int, end int64, err error)
}

// OpenWaiter is implemented by files whose open can wait (a FIFO opened
// without O_NONBLOCK waits for its other end). See PendingOpenError.
type OpenWaiter interface {
	OpenReady() bool
}

// FileDefaults gives the Linux answer for every operation a file type does
// not support. Embed it in a FileImpl.
type FileDefaults struct {
	waiter.AlwaysReady
}

// Release implements FileImpl.
func (FileDefaults) Release(context.Context) {}

// Read implements FileImpl.
func (FileDefaults) Read(context.Context, []byte, int64) (int, error) { return 0, unix.EINVAL }

// Write implements FileImpl.
func (FileDefaults) Write(context.Context, []byte, int64) (int, error) { return 0, unix.EINVAL }

// Seek implements FileImpl.
func (FileDefaults) Seek(context.Context, int64, int64, int) (int64, error) { return 0, unix.ESPIPE }

// Ioctl implements FileImpl.
func (FileDefaults) Ioctl(context.Context, Memory, uint32, uint64) (uint64, error) {
	return 0, unix.ENOTTY
}

// Fsync implements FileImpl.
func (FileDefaults) Fsync(context.Context) error { return nil }

// Fallocate implements FileImpl.
func (FileDefaults) Fallocate(context.Context, uint32, int64, int64) error { return unix.ENODEV }

// GenericSeek computes lseek for a file of the given size: SEEK_SET,
// SEEK_CUR, SEEK_END, and SEEK_DATA/SEEK_HOLE for a file with no holes.
func GenericSeek(cur, off int64, whence int, size int64) (int64, error) {
	var n int64
	switch whence {
	case unix.SEEK_SET:
		n = off
	case unix.SEEK_CUR:
		n = cur + off
		if off > 0 && n < cur {
			return 0, unix.EOVERFLOW
		}
	case unix.SEEK_END:
		n = size + off
		if off > 0 && n < size {
			return 0, unix.EOVERFLOW
		}
	case unix.SEEK_DATA:
		if off < 0 || off >= size {
			return 0, unix.ENXIO
		}
		n = off
	case unix.SEEK_HOLE:
		if off < 0 || off >= size {
			return 0, unix.ENXIO
		}
		n = size
	default:
		return 0, unix.EINVAL
	}
	if n < 0 {
		return 0, unix.EINVAL
	}
	return n, nil
}

var anonDevMinor atomic.Uint32

// NewAnonDev returns a device number (major 0) for a filesystem that has
// no device of its own, as Linux gives tmpfs and procfs mounts. Numbers
// are unique within the process.
func NewAnonDev() uint64 {
	return unix.Mkdev(0, anonDevMinor.Add(1)+16)
}
