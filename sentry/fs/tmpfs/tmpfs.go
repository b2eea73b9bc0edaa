// Package tmpfs is an in-memory filesystem: regular (sparse) files,
// directories, symbolic links, hard links, FIFOs, sockets and, when
// allowed (devfs), device nodes, with an optional size limit (ENOSPC).
package tmpfs

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/fs/pipe"
	"moat.dev/moat/sentry/vfs"
)

const pageSize = 4096

// Options configures a tmpfs instance.
type Options struct {
	// MaxBytes caps the file data the filesystem holds (size=); 0 is no
	// limit. Writes beyond it fail with ENOSPC.
	MaxBytes int64
	// RootMode, RootUID and RootGID describe the root directory; the mode
	// defaults to 01777.
	RootMode uint32
	RootUID  uint32
	RootGID  uint32
	// AllowDevices lets Mknod make device nodes (devfs sets it).
	AllowDevices bool
	// Name is the filesystem type reported in mount tables; "tmpfs"
	// unless set.
	Name string
	// MaxInodes caps the names the filesystem holds (nr_inodes=: every
	// file and every hard link counts, as on Linux); 0 is no limit.
	// Creating past it fails with ENOSPC.
	MaxInodes int64
}

// Filesystem is one tmpfs instance.
type Filesystem struct {
	opts    Options
	dev     uint64
	nextIno atomic.Uint64
	root    *inode

	mu sync.Mutex
	// pages counts the data pages held by all files.
	pages int64
	// entries counts the directory entries (names) of all directories.
	entries int64
}

// New makes an empty tmpfs.
func New(opts Options) *Filesystem {
	if opts.RootMode == 0 {
		opts.RootMode = 0o1777
	}
	if opts.Name == "" {
		opts.Name = "tmpfs"
	}
	fs := &Filesystem{opts: opts, dev: vfs.NewAnonDev()}
	fs.root = fs.newInode(vfs.CreateAttr{Mode: unix.S_IFDIR | opts.RootMode&0o7777, UID: opts.RootUID, GID: opts.RootGID})
	fs.root.parent = fs.root
	return fs
}

// Name implements vfs.Filesystem.
func (fs *Filesystem) Name() string { return fs.opts.Name }

// Root implements vfs.Filesystem.
func (fs *Filesystem) Root(context.Context) (vfs.Inode, error) { return fs.root, nil }

// RootDir returns the root directory, for code that populates a tmpfs
// before mounting it (devfs).
func (fs *Filesystem) RootDir() vfs.Dir { return fs.root }

// Release implements vfs.Filesystem.
func (fs *Filesystem) Release(context.Context) {}

// Statfs implements vfs.Filesystem.
func (fs *Filesystem) Statfs(context.Context) (vfs.Statfs, error) {
	fs.mu.Lock()
	used := fs.pages
	fs.mu.Unlock()
	total := uint64(1 << 30) // an unlimited tmpfs reports 4 TiB
	if fs.opts.MaxBytes > 0 {
		total = uint64((fs.opts.MaxBytes + pageSize - 1) / pageSize)
	}
	free := uint64(0)
	if total > uint64(used) {
		free = total - uint64(used)
	}
	fs.mu.Lock()
	files, ffree := uint64(1<<20), uint64(1<<20)
	if fs.opts.MaxInodes > 0 {
		files = uint64(fs.opts.MaxInodes)
		ffree = uint64(max(fs.opts.MaxInodes-fs.entries, 0))
	}
	fs.mu.Unlock()
	return vfs.Statfs{Type: unix.TMPFS_MAGIC, Bsize: pageSize, Frsize: pageSize, Blocks: total,
		Bfree: free, Bavail: free, Files: files, Ffree: ffree, NameLen: vfs.NameMax}, nil
}

// reserveEntry accounts one more name, or fails with ENOSPC.
func (fs *Filesystem) reserveEntry() error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.opts.MaxInodes > 0 && fs.entries >= fs.opts.MaxInodes {
		return unix.ENOSPC
	}
	fs.entries++
	return nil
}

func (fs *Filesystem) releaseEntry() {
	fs.mu.Lock()
	fs.entries--
	fs.mu.Unlock()
}

// reserve accounts n more data pages, or fails with ENOSPC.
func (fs *Filesystem) reserve(n int64) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.opts.MaxBytes > 0 && (fs.pages+n)*pageSize > fs.opts.MaxBytes {
		return unix.ENOSPC
	}
	fs.pages += n
	return nil
}

func (fs *Filesystem) unreserve(n int64) {
	fs.mu.Lock()
	fs.pages -= n
	fs.mu.Unlock()
}

// inode is every kind of tmpfs file.
type inode struct {
	fs  *Filesystem
	ino uint64
	// ftype is the S_IFMT bits of mode, which never change.
	ftype uint32

	mu    sync.Mutex
	mode  uint32
	uid   uint32
	gid   uint32
	nlink uint64
	rdev  uint64
	atime unix.Timespec
	mtime unix.Timespec
	ctime unix.Timespec
	btime unix.Timespec

	// Regular files.
	size  int64
	pages map[int64][]byte
	opens int
	// linkable is set on an O_TMPFILE file that linkat may give a name.
	linkable bool

	// Directories.
	parent  *inode
	entries map[string]*dirent
	// order holds the entries sorted by cookie, for stable offsets.
	order      []*dirent
	nextCookie int64

	// Symbolic links.
	target string

	// FIFOs.
	pipe *pipe.Pipe

	// Extended attributes, at most maxXattrBytes of names and values.
	xattrs     map[string][]byte
	xattrBytes int
}

// maxXattrBytes bounds the extended attributes of one tmpfs file.
const maxXattrBytes = 64 << 10

// Getxattr implements vfs.XattrInode.
func (i *inode) Getxattr(_ context.Context, name string) ([]byte, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	v, ok := i.xattrs[name]
	if !ok {
		return nil, unix.ENODATA
	}
	return append([]byte(nil), v...), nil
}

// Setxattr implements vfs.XattrInode.
func (i *inode) Setxattr(_ context.Context, name string, value []byte, flags uint32) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	old, ok := i.xattrs[name]
	if ok && flags&unix.XATTR_CREATE != 0 {
		return unix.EEXIST
	}
	if !ok && flags&unix.XATTR_REPLACE != 0 {
		return unix.ENODATA
	}
	size := i.xattrBytes + len(value) - len(old)
	if !ok {
		size += len(name)
	}
	if size > maxXattrBytes {
		return unix.ENOSPC
	}
	if i.xattrs == nil {
		i.xattrs = make(map[string][]byte)
	}
	i.xattrs[name] = append([]byte(nil), value...)
	i.xattrBytes = size
	i.ctime = vfs.Now()
	return nil
}

// Listxattr implements vfs.XattrInode.
func (i *inode) Listxattr(context.Context) ([]string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	names := make([]string, 0, len(i.xattrs))
	for n := range i.xattrs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Removexattr implements vfs.XattrInode.
func (i *inode) Removexattr(_ context.Context, name string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	v, ok := i.xattrs[name]
	if !ok {
		return unix.ENODATA
	}
	delete(i.xattrs, name)
	i.xattrBytes -= len(name) + len(v)
	i.ctime = vfs.Now()
	return nil
}

type dirent struct {
	name   string
	inode  *inode
	cookie int64
}

func (fs *Filesystem) newInode(attr vfs.CreateAttr) *inode {
	now := vfs.Now()
	i := &inode{fs: fs, ino: fs.nextIno.Add(1), ftype: attr.Mode & unix.S_IFMT, mode: attr.Mode, uid: attr.UID, gid: attr.GID,
		nlink: 1, rdev: attr.Rdev, atime: now, mtime: now, ctime: now, btime: now}
	switch attr.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		i.nlink = 2
		i.entries = make(map[string]*dirent)
		i.nextCookie = 2
	case unix.S_IFIFO:
		i.pipe = pipe.New()
	}
	return i
}

// typ returns the file type.
func (i *inode) typ() uint32 { return i.ftype }

// FileType implements vfs.FileTyper.
func (i *inode) FileType() uint32 { return i.ftype }

// Stat implements vfs.Inode.
func (i *inode) Stat(context.Context) (vfs.Stat, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	st := vfs.Stat{Dev: i.fs.dev, Ino: i.ino, Mode: i.mode, Nlink: i.nlink, UID: i.uid, GID: i.gid,
		Rdev: i.rdev, Blksize: pageSize, Atime: i.atime, Mtime: i.mtime, Ctime: i.ctime, Btime: i.btime}
	switch i.typ() {
	case unix.S_IFREG:
		st.Size = i.size
		st.Blocks = int64(len(i.pages)) * (pageSize / 512)
	case unix.S_IFDIR:
		st.Size = pageSize
	case unix.S_IFLNK:
		st.Size = int64(len(i.target))
	}
	return st, nil
}

// SetStat implements vfs.Inode.
func (i *inode) SetStat(_ context.Context, s vfs.SetStat) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if s.Mask&vfs.SetSize != 0 {
		if i.typ() != unix.S_IFREG {
			return unix.EINVAL
		}
		if err := i.truncateLocked(s.Size); err != nil {
			return err
		}
	}
	if s.Mask&vfs.SetMode != 0 {
		i.mode = i.mode&unix.S_IFMT | s.Mode&0o7777
	}
	if s.Mask&vfs.SetUID != 0 {
		i.uid = s.UID
	}
	if s.Mask&vfs.SetGID != 0 {
		i.gid = s.GID
	}
	if s.Mask&vfs.SetAtime != 0 {
		i.atime = s.Atime
	}
	if s.Mask&vfs.SetMtime != 0 {
		i.mtime = s.Mtime
	}
	i.ctime = vfs.Now()
	if s.Mask&vfs.SetCtime != 0 {
		i.ctime = s.Ctime
	}
	return nil
}

// Open implements vfs.Inode.
func (i *inode) Open(_ context.Context, flags uint32) (vfs.FileImpl, error) {
	switch i.typ() {
	case unix.S_IFREG:
		i.mu.Lock()
		i.opens++
		i.mu.Unlock()
		return &regularFile{inode: i, noatime: flags&unix.O_NOATIME != 0}, nil
	case unix.S_IFIFO:
		return i.pipe.Open(flags)
	}
	return nil, unix.ENXIO
}

// Readlink implements vfs.Symlink.
func (i *inode) Readlink(context.Context) (string, error) {
	if i.typ() != unix.S_IFLNK {
		return "", unix.EINVAL
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.atime = vfs.Now()
	return i.target, nil
}

// dropLinkLocked decrements the link count and frees the data of a file
// that is gone.
// Preconditions: i.mu is held.
func (i *inode) dropLinkLocked() {
	if i.nlink > 0 {
		i.nlink--
	}
	i.ctime = vfs.Now()
	i.maybeFreeLocked()
}

// Preconditions: i.mu is held.
func (i *inode) maybeFreeLocked() {
	if i.nlink == 0 && i.opens == 0 && i.pages != nil {
		i.fs.unreserve(int64(len(i.pages)))
		i.pages = nil
		i.size = 0
	}
}

var (
	_ vfs.Dir     = (*inode)(nil)
	_ vfs.Symlink = (*inode)(nil)
)
