// Package hostfs serves a host directory (a container's root filesystem,
// a volume) to the VFS, confined to that directory.
//
// Confinement: the filesystem holds an O_PATH descriptor of its root
// directory and an O_PATH descriptor of every file the VFS has reached,
// and it only ever asks the host for one name relative to a descriptor
// it holds: openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
// RESOLVE_NO_MAGICLINKS and O_NOFOLLOW (openat with O_NOFOLLOW where
// openat2 is missing), *at calls with AT_SYMLINK_NOFOLLOW or
// AT_EMPTY_PATH on a held descriptor. The host never resolves a path of
// more than one component, never follows a symbolic link and never sees
// "..": the VFS walks paths itself and reads symbolic links with
// readlinkat, resolving them inside the container's root. A link such
// as "etc -> /etc" or "x -> ../../.." planted in the image, or a
// directory a host process swaps for a symlink during a walk, therefore
// leads nowhere outside.
package hostfs

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/fs/pipe"
	"moat.dev/moat/sentry/vfs"
)

// Options configures a host filesystem.
type Options struct {
	// ReadOnly refuses every change with EROFS, whatever the mount says.
	ReadOnly bool
	// KeepHostOwner leaves new files owned by the sentry's host user
	// instead of giving them the creating task's uid and gid (for a
	// sentry that cannot chown).
	KeepHostOwner bool
}

// Filesystem is a host directory tree, or a single host file (a file
// bind mount such as /etc/hosts).
type Filesystem struct {
	opts   Options
	rootFD int
	// rootFile is set when the root is a regular file; rootFD is then an
	// open descriptor of it (not O_PATH) with access mode rootAcc, which
	// every open of the file duplicates.
	rootFile bool
	rootAcc  int

	mu sync.Mutex
	// fifos holds the sentry pipe behind each host FIFO: the sentry
	// never opens a host FIFO (that could block the host thread).
	fifos map[fileID]*pipe.Pipe
}

type fileID struct{ dev, ino uint64 }

// New opens the host directory path (a trusted path from the shim; it may
// itself contain symlinks) as a filesystem.
func New(path string, opts Options) (*Filesystem, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("hostfs: open root %s: %w", path, err)
	}
	return NewFromFD(fd, opts), nil
}

// NewFromFD makes a filesystem of the directory fd, which it takes over.
func NewFromFD(fd int, opts Options) *Filesystem {
	return &Filesystem{opts: opts, rootFD: fd, fifos: make(map[fileID]*pipe.Pipe)}
}

// NewFile opens the host regular file path (a trusted path, as for New)
// as a filesystem of one file, to mount over a file of the container:
// read-write, or read-only with opts.ReadOnly.
func NewFile(path string, opts Options) (*Filesystem, error) {
	acc := unix.O_RDWR
	if opts.ReadOnly {
		acc = unix.O_RDONLY
	}
	fd, err := unix.Open(path, acc|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("hostfs: open file %s: %w", path, err)
	}
	fs, err := NewFileFromFD(fd, opts)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hostfs: %s: %w", path, err)
	}
	return fs, nil
}

// NewFileFromFD makes a filesystem of the regular file open as fd (not
// O_PATH), which it takes over.
func NewFileFromFD(fd int, opts Options) (*Filesystem, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("not a regular file (mode %#o): %w", st.Mode, unix.EINVAL)
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return nil, fmt.Errorf("F_GETFL: %w", err)
	}
	if fl&unix.O_PATH != 0 {
		return nil, fmt.Errorf("an O_PATH descriptor cannot be read: %w", unix.EBADF)
	}
	acc := fl & unix.O_ACCMODE
	if acc == unix.O_RDONLY {
		opts.ReadOnly = true
	}
	return &Filesystem{opts: opts, rootFD: fd, rootFile: true, rootAcc: acc, fifos: make(map[fileID]*pipe.Pipe)}, nil
}

// ReadOnly implements vfs.ReadOnlyFilesystem.
func (fs *Filesystem) ReadOnly() bool { return fs.opts.ReadOnly }

// Name implements vfs.Filesystem.
func (fs *Filesystem) Name() string { return "hostfs" }

// Root implements vfs.Filesystem. Each call returns a new inode with its
// own descriptor, which the VFS releases with its mount.
func (fs *Filesystem) Root(context.Context) (vfs.Inode, error) {
	var fd int
	var err error
	if fs.rootFile {
		fd, err = unix.FcntlInt(uintptr(fs.rootFD), unix.F_DUPFD_CLOEXEC, 0)
	} else {
		fd, err = unix.Openat(fs.rootFD, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, err
	}
	i, err := fs.newInode(fd, nil, "")
	if err != nil {
		return nil, err
	}
	i.heldIO, i.ioAcc = fs.rootFile, fs.rootAcc
	return i, nil
}

// Release implements vfs.Filesystem.
func (fs *Filesystem) Release(context.Context) {
	unix.Close(fs.rootFD)
}

// Statfs implements vfs.Filesystem.
func (fs *Filesystem) Statfs(context.Context) (vfs.Statfs, error) {
	var s unix.Statfs_t
	if err := unix.Fstatfs(fs.rootFD, &s); err != nil {
		return vfs.Statfs{}, err
	}
	return vfs.Statfs{Type: s.Type, Bsize: s.Bsize, Blocks: s.Blocks, Bfree: s.Bfree, Bavail: s.Bavail,
		Files: s.Files, Ffree: s.Ffree, NameLen: s.Namelen, Frsize: s.Frsize}, nil
}

func (fs *Filesystem) writable() error {
	if fs.opts.ReadOnly {
		return unix.EROFS
	}
	return nil
}

// validName refuses anything but one plain component. The VFS never
// passes anything else; this is a second line.
func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.IndexByte(name, '/') >= 0 || strings.IndexByte(name, 0) >= 0 {
		return unix.EINVAL
	}
	return nil
}

// openBeneath opens the single component name under dirfd without
// following a symlink and without leaving dirfd's tree.
func openBeneath(dirfd int, name string, flags int) (int, error) {
	if err := validName(name); err != nil {
		return -1, err
	}
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_NOFOLLOW | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(dirfd, name, &how)
		switch err {
		case nil:
			return fd, nil
		case unix.EINTR:
			continue
		case unix.ENOSYS:
			// No openat2: a single component with O_NOFOLLOW cannot
			// leave dirfd either.
			return unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		return -1, err
	}
}

// statFD returns the metadata of a descriptor (O_PATH ones too).
func statFD(fd int) (vfs.Stat, error) {
	var sx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &sx); err != nil {
		return vfs.Stat{}, err
	}
	ts := func(t unix.StatxTimestamp) unix.Timespec { return unix.Timespec{Sec: t.Sec, Nsec: int64(t.Nsec)} }
	return vfs.Stat{
		Dev: unix.Mkdev(sx.Dev_major, sx.Dev_minor), Ino: sx.Ino, Mode: uint32(sx.Mode), Nlink: uint64(sx.Nlink),
		UID: sx.Uid, GID: sx.Gid, Rdev: unix.Mkdev(sx.Rdev_major, sx.Rdev_minor), Size: int64(sx.Size),
		Blksize: int64(sx.Blksize), Blocks: int64(sx.Blocks),
		Atime: ts(sx.Atime), Mtime: ts(sx.Mtime), Ctime: ts(sx.Ctime), Btime: ts(sx.Btime),
	}, nil
}

func (fs *Filesystem) fifo(id fileID) *pipe.Pipe {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	p := fs.fifos[id]
	if p == nil {
		p = pipe.New()
		fs.fifos[id] = p
	}
	return p
}
