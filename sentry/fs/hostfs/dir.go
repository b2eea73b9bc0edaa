package hostfs

import (
	"context"
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/vfs"
)

// Lookup implements vfs.Dir.
func (i *inode) Lookup(_ context.Context, name string) (vfs.Inode, error) {
	if i.typ != unix.S_IFDIR {
		return nil, unix.ENOTDIR
	}
	fd, err := openBeneath(i.fd, name, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	return i.fs.newInode(fd, i, name)
}

// Revalidate implements vfs.Revalidator: a cached child is still valid if
// name still names the same host file.
func (i *inode) Revalidate(_ context.Context, name string, child vfs.Inode) bool {
	c, ok := child.(*inode)
	if !ok || validName(name) != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstatat(i.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false
	}
	return (fileID{st.Dev, st.Ino}) == c.id
}

// finishCreate looks up a file just made, gives it the creator's owner
// and the exact mode (the host umask may have cut it).
func (i *inode) finishCreate(name string, attr vfs.CreateAttr) (*inode, error) {
	fd, err := openBeneath(i.fd, name, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	c, err := i.fs.newInode(fd, i, name)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*inode, error) {
		c.ReleaseInode()
		return nil, err
	}
	st, err := statFD(c.fd)
	if err != nil {
		return fail(err)
	}
	if !i.fs.opts.KeepHostOwner && (st.UID != attr.UID || st.GID != attr.GID) {
		if err := unix.Fchownat(c.fd, "", int(attr.UID), int(attr.GID), unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fail(err)
		}
	}
	if c.typ != unix.S_IFLNK && st.Mode&0o7777 != attr.Mode&0o7777 {
		if err := c.chmod(attr.Mode & 0o7777); err != nil {
			return fail(err)
		}
	}
	return c, nil
}

func (i *inode) checkCreate(name string) error {
	if err := i.fs.writable(); err != nil {
		return err
	}
	return validName(name)
}

// Create implements vfs.Dir. mknodat makes the file without opening it,
// and fails on any existing name, a symlink included.
func (i *inode) Create(_ context.Context, name string, attr vfs.CreateAttr) (vfs.Inode, error) {
	if err := i.checkCreate(name); err != nil {
		return nil, err
	}
	if err := unix.Mknodat(i.fd, name, unix.S_IFREG|attr.Mode&0o7777, 0); err != nil {
		return nil, err
	}
	return i.finishCreate(name, attr)
}

// CreateTmpfile implements vfs.TmpfileDir with the host's O_TMPFILE: an
// unnamed file in this directory's host filesystem.
func (i *inode) CreateTmpfile(_ context.Context, attr vfs.CreateAttr, linkable bool) (vfs.Inode, error) {
	if err := i.fs.writable(); err != nil {
		return nil, err
	}
	flags := unix.O_TMPFILE | unix.O_RDWR | unix.O_CLOEXEC
	if !linkable {
		flags |= unix.O_EXCL
	}
	fd, err := unix.Openat(i.fd, ".", flags, attr.Mode&0o7777)
	if err != nil {
		return nil, err
	}
	c, err := i.fs.newInode(fd, nil, "")
	if err != nil {
		return nil, err
	}
	c.heldIO, c.ioAcc = true, unix.O_RDWR
	if !i.fs.opts.KeepHostOwner {
		if err := unix.Fchown(fd, int(attr.UID), int(attr.GID)); err != nil {
			c.ReleaseInode()
			return nil, err
		}
	}
	if err := unix.Fchmod(fd, attr.Mode&0o7777); err != nil {
		c.ReleaseInode()
		return nil, err
	}
	return c, nil
}

// Mkdir implements vfs.Dir.
func (i *inode) Mkdir(_ context.Context, name string, attr vfs.CreateAttr) error {
	if err := i.checkCreate(name); err != nil {
		return err
	}
	if err := unix.Mkdirat(i.fd, name, attr.Mode&0o7777); err != nil {
		return err
	}
	c, err := i.finishCreate(name, attr)
	if err == nil {
		c.ReleaseInode()
	}
	return err
}

// Mknod implements vfs.Dir: FIFOs and sockets only; device nodes are never
// made on the host.
func (i *inode) Mknod(_ context.Context, name string, attr vfs.CreateAttr) error {
	if err := i.checkCreate(name); err != nil {
		return err
	}
	switch attr.Mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFREG:
	default:
		return unix.EPERM
	}
	if err := unix.Mknodat(i.fd, name, attr.Mode, 0); err != nil {
		return err
	}
	c, err := i.finishCreate(name, attr)
	if err == nil {
		c.ReleaseInode()
	}
	return err
}

// Symlink implements vfs.Dir. The target is stored as given; the VFS
// resolves it inside the container's root when it is followed.
func (i *inode) Symlink(_ context.Context, name, target string, attr vfs.CreateAttr) error {
	if err := i.checkCreate(name); err != nil {
		return err
	}
	if err := unix.Symlinkat(target, i.fd, name); err != nil {
		return err
	}
	c, err := i.finishCreate(name, attr)
	if err == nil {
		c.ReleaseInode()
	}
	return err
}

// Link implements vfs.Dir. linkat with AT_EMPTY_PATH links the held
// descriptor itself; without CAP_DAC_READ_SEARCH it falls back to the
// target's parent and name, and checks the new link is the same file.
func (i *inode) Link(_ context.Context, name string, target vfs.Inode) error {
	if err := i.checkCreate(name); err != nil {
		return err
	}
	t, ok := target.(*inode)
	if !ok || t.fs != i.fs {
		return unix.EXDEV
	}
	err := unix.Linkat(t.fd, "", i.fd, name, unix.AT_EMPTY_PATH)
	if err == unix.EPERM || err == unix.ENOENT {
		t.mu.Lock()
		parent, tname := t.parent, t.name
		t.mu.Unlock()
		if parent == nil || tname == "" {
			return unix.ENOENT
		}
		if err = unix.Linkat(parent.fd, tname, i.fd, name, 0); err == nil {
			var st unix.Stat_t
			if err = unix.Fstatat(i.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && (fileID{st.Dev, st.Ino}) != t.id {
				unix.Unlinkat(i.fd, name, 0)
				err = unix.ESTALE
			}
		}
	}
	return err
}

// Unlink implements vfs.Dir.
func (i *inode) Unlink(_ context.Context, name string, child vfs.Inode) error {
	if err := i.checkCreate(name); err != nil {
		return err
	}
	if err := unix.Unlinkat(i.fd, name, 0); err != nil {
		return err
	}
	if c, ok := child.(*inode); ok {
		c.setName(nil, "")
	}
	return nil
}

// Rmdir implements vfs.Dir.
func (i *inode) Rmdir(_ context.Context, name string, child vfs.Inode) error {
	if err := i.checkCreate(name); err != nil {
		return err
	}
	if err := unix.Unlinkat(i.fd, name, unix.AT_REMOVEDIR); err != nil {
		if err == unix.EEXIST {
			err = unix.ENOTEMPTY
		}
		return err
	}
	if c, ok := child.(*inode); ok {
		c.setName(nil, "")
	}
	return nil
}

// Rename implements vfs.Dir with renameat2 between held descriptors.
func (i *inode) Rename(_ context.Context, r vfs.RenameRequest) error {
	if err := i.checkCreate(r.OldName); err != nil {
		return err
	}
	if err := validName(r.NewName); err != nil {
		return err
	}
	nd, ok := r.NewDir.(*inode)
	if !ok || nd.fs != i.fs {
		return unix.EXDEV
	}
	if err := unix.Renameat2(i.fd, r.OldName, nd.fd, r.NewName, uint(r.Flags)); err != nil {
		if err == unix.EEXIST && r.Flags&unix.RENAME_NOREPLACE == 0 {
			err = unix.ENOTEMPTY
		}
		return err
	}
	if c, ok := r.Child.(*inode); ok {
		c.setName(nd, r.NewName)
	}
	if rep, ok := r.Replaced.(*inode); ok {
		if r.Flags&unix.RENAME_EXCHANGE != 0 {
			rep.setName(i, r.OldName)
		} else {
			rep.setName(nil, "")
		}
	}
	return nil
}

// OpenDir implements vfs.Dir.
func (i *inode) OpenDir(context.Context) (vfs.DirReader, error) {
	fd, err := i.reopen(unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return &dirReader{fd: fd, pos: 0}, nil
}

// dirReader reads a host directory with getdents64; offsets are the
// host's d_off cookies, which the host keeps stable.
type dirReader struct {
	mu  sync.Mutex
	fd  int
	pos int64 // the host descriptor's offset
	buf [8192]byte
}

// Release implements vfs.DirReader.
func (d *dirReader) Release(context.Context) { unix.Close(d.fd) }

// ReadDir implements vfs.DirReader.
func (d *dirReader) ReadDir(_ context.Context, off int64, emit func(vfs.Dirent) bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off != d.pos {
		if _, err := unix.Seek(d.fd, off, unix.SEEK_SET); err != nil {
			return err
		}
		d.pos = off
	}
	for {
		n, err := unix.Getdents(d.fd, d.buf[:])
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		b := d.buf[:n]
		for len(b) >= 19 {
			ino := binary.LittleEndian.Uint64(b[0:])
			next := int64(binary.LittleEndian.Uint64(b[8:]))
			reclen := int(binary.LittleEndian.Uint16(b[16:]))
			typ := b[18]
			if reclen < 19 || reclen > len(b) {
				return unix.EIO
			}
			name := b[19:reclen]
			for k, c := range name {
				if c == 0 {
					name = name[:k]
					break
				}
			}
			if !emit(vfs.Dirent{Name: string(name), Ino: ino, Type: typ, Off: next}) {
				// The host descriptor has moved past entries not
				// consumed: seek back on the next call.
				d.pos = -1
				return nil
			}
			b = b[reclen:]
		}
		pos, err := unix.Seek(d.fd, 0, unix.SEEK_CUR)
		if err != nil {
			return err
		}
		d.pos = pos
	}
}
