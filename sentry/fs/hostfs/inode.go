package hostfs

import (
	"context"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/vfs"
)

// inode is one host file reached through the VFS. Each lookup makes a new
// inode object holding its own O_PATH descriptor, released by the VFS
// with the dentry.
type inode struct {
	fs  *Filesystem
	fd  int
	typ uint32
	id  fileID
	// heldIO marks a file whose fd is an open descriptor with access mode
	// ioAcc rather than O_PATH (the root of a one-file filesystem, an
	// O_TMPFILE file, which has no name to reopen by): opens duplicate it.
	heldIO bool
	ioAcc  int

	mu sync.Mutex
	// parent and name are where the file was found, for the operations
	// that need a name (reopening a regular file); parent is nil for the
	// root and name is "" once the name is gone.
	parent *inode
	name   string
	closed bool
}

func (fs *Filesystem) newInode(fd int, parent *inode, name string) (*inode, error) {
	st, err := statFD(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &inode{fs: fs, fd: fd, typ: st.Type(), id: fileID{st.Dev, st.Ino}, parent: parent, name: name}, nil
}

// ReleaseInode implements vfs.InodeReleaser.
func (i *inode) ReleaseInode() {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.closed {
		i.closed = true
		unix.Close(i.fd)
	}
}

// FileType implements vfs.FileTyper.
func (i *inode) FileType() uint32 { return i.typ }

// Stat implements vfs.Inode.
func (i *inode) Stat(context.Context) (vfs.Stat, error) {
	return statFD(i.fd)
}

// reopen opens the file for I/O with flags. A directory is reopened
// through its own descriptor ("."); any other file through its parent and
// name, and the result must be the same file (device and inode), so a
// name swapped by a host process in between is refused.
func (i *inode) reopen(flags int) (int, error) {
	if i.typ == unix.S_IFDIR {
		return unix.Openat(i.fd, ".", flags|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if i.typ != unix.S_IFREG {
		return -1, unix.ENXIO
	}
	if i.heldIO {
		acc := flags & unix.O_ACCMODE
		if acc != unix.O_RDONLY && i.ioAcc == unix.O_RDONLY || acc != unix.O_WRONLY && i.ioAcc == unix.O_WRONLY {
			return -1, unix.EACCES
		}
		return unix.FcntlInt(uintptr(i.fd), unix.F_DUPFD_CLOEXEC, 0)
	}
	i.mu.Lock()
	parent, name := i.parent, i.name
	i.mu.Unlock()
	if parent == nil || name == "" {
		return -1, unix.ENOENT
	}
	// O_NONBLOCK: should the name have become a FIFO, do not wait.
	fd, err := openBeneath(parent.fd, name, flags|unix.O_NOCTTY|unix.O_NONBLOCK)
	if err != nil {
		return -1, err
	}
	st, err := statFD(fd)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	if (fileID{st.Dev, st.Ino}) != i.id {
		unix.Close(fd)
		return -1, unix.ESTALE
	}
	return fd, nil
}

// SetStat implements vfs.Inode.
func (i *inode) SetStat(_ context.Context, s vfs.SetStat) error {
	if err := i.fs.writable(); err != nil {
		return err
	}
	if s.Mask&vfs.SetSize != 0 {
		fd, err := i.reopen(unix.O_WRONLY)
		if err != nil {
			return err
		}
		err = unix.Ftruncate(fd, s.Size)
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	if s.Mask&(vfs.SetUID|vfs.SetGID) != 0 {
		uid, gid := -1, -1
		if s.Mask&vfs.SetUID != 0 {
			uid = int(s.UID)
		}
		if s.Mask&vfs.SetGID != 0 {
			gid = int(s.GID)
		}
		if err := unix.Fchownat(i.fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	if s.Mask&vfs.SetMode != 0 && i.typ != unix.S_IFLNK {
		if err := i.chmod(s.Mode & 0o7777); err != nil {
			return err
		}
	}
	if s.Mask&(vfs.SetAtime|vfs.SetMtime) != 0 {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		if s.Mask&vfs.SetAtime != 0 {
			ts[0] = s.Atime
		}
		if s.Mask&vfs.SetMtime != 0 {
			ts[1] = s.Mtime
		}
		if err := unix.UtimesNanoAt(i.fd, "", ts, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

// chmod changes the mode through the O_PATH descriptor (fchmodat2), or
// through a reopened descriptor on kernels without it.
func (i *inode) chmod(mode uint32) error {
	err := unix.Fchmodat(i.fd, "", mode, unix.AT_EMPTY_PATH)
	if err != unix.EOPNOTSUPP && err != unix.ENOSYS {
		return err
	}
	fd, err := i.reopen(unix.O_RDONLY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fchmod(fd, mode)
}

// Readlink implements vfs.Symlink.
func (i *inode) Readlink(context.Context) (string, error) {
	if i.typ != unix.S_IFLNK {
		return "", unix.EINVAL
	}
	buf := make([]byte, vfs.PathMax)
	n, err := unix.Readlinkat(i.fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// Open implements vfs.Inode: regular files are reopened from the host;
// FIFOs are served by a sentry pipe; nothing else is opened on the host.
func (i *inode) Open(_ context.Context, flags uint32) (vfs.FileImpl, error) {
	switch i.typ {
	case unix.S_IFREG:
		acc := int(flags & unix.O_ACCMODE)
		if acc == unix.O_ACCMODE {
			acc = unix.O_RDWR
		}
		if acc != unix.O_RDONLY {
			if err := i.fs.writable(); err != nil {
				return nil, err
			}
		}
		fd, err := i.reopen(acc)
		if err != nil {
			return nil, err
		}
		return &regularFile{inode: i, fd: fd, appendFD: -1}, nil
	case unix.S_IFIFO:
		return i.fs.fifo(i.id).Open(flags)
	}
	return nil, unix.ENXIO
}

// setName records a new place for the file after a rename.
func (i *inode) setName(parent *inode, name string) {
	i.mu.Lock()
	i.parent, i.name = parent, name
	i.mu.Unlock()
}
