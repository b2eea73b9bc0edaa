package tmpfs

import (
	"context"
	"sort"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/vfs"
)

func (i *inode) isDir() bool { return i.typ() == unix.S_IFDIR }

// setParent records a directory's new parent.
// Preconditions: the old and new parents' mu are held (lock order:
// parents before children).
func (i *inode) setParent(p *inode) {
	i.mu.Lock()
	i.parent = p
	i.mu.Unlock()
}

// Lookup implements vfs.Dir.
func (i *inode) Lookup(_ context.Context, name string) (vfs.Inode, error) {
	if !i.isDir() {
		return nil, unix.ENOTDIR
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if e := i.entries[name]; e != nil {
		return e.inode, nil
	}
	return nil, unix.ENOENT
}

// addLocked links child into i as name.
// Preconditions: i.mu is held; i is a live directory; name is free.
func (i *inode) addLocked(name string, child *inode) {
	e := &dirent{name: name, inode: child, cookie: i.nextCookie}
	i.nextCookie++
	i.entries[name] = e
	i.order = append(i.order, e)
	now := vfs.Now()
	i.mtime, i.ctime = now, now
}

// removeLocked unlinks name from i.
// Preconditions: i.mu is held; name exists.
func (i *inode) removeLocked(name string) *dirent {
	e := i.entries[name]
	delete(i.entries, name)
	k := sort.Search(len(i.order), func(n int) bool { return i.order[n].cookie >= e.cookie })
	i.order = append(i.order[:k], i.order[k+1:]...)
	now := vfs.Now()
	i.mtime, i.ctime = now, now
	return e
}

// checkNewLocked checks that name may be added to i.
// Preconditions: i.mu is held.
func (i *inode) checkNewLocked(name string) error {
	if !i.isDir() {
		return unix.ENOTDIR
	}
	if i.nlink == 0 {
		return unix.ENOENT
	}
	if _, ok := i.entries[name]; ok {
		return unix.EEXIST
	}
	return nil
}

func (i *inode) makeChild(name string, attr vfs.CreateAttr, init func(*inode)) (*inode, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if err := i.checkNewLocked(name); err != nil {
		return nil, err
	}
	if err := i.fs.reserveEntry(); err != nil {
		return nil, err
	}
	child := i.fs.newInode(attr)
	if init != nil {
		init(child)
	}
	if child.isDir() {
		child.parent = i
		i.nlink++
	}
	i.addLocked(name, child)
	return child, nil
}

// Create implements vfs.Dir.
func (i *inode) Create(_ context.Context, name string, attr vfs.CreateAttr) (vfs.Inode, error) {
	attr.Mode = unix.S_IFREG | attr.Mode&0o7777
	return i.makeChild(name, attr, nil)
}

// CreateTmpfile implements vfs.TmpfileDir: a regular file with no name.
func (i *inode) CreateTmpfile(_ context.Context, attr vfs.CreateAttr, linkable bool) (vfs.Inode, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.nlink == 0 {
		return nil, unix.ENOENT
	}
	attr.Mode = unix.S_IFREG | attr.Mode&0o7777
	c := i.fs.newInode(attr)
	c.nlink = 0
	c.linkable = linkable
	return c, nil
}

// Mkdir implements vfs.Dir.
func (i *inode) Mkdir(_ context.Context, name string, attr vfs.CreateAttr) error {
	attr.Mode = unix.S_IFDIR | attr.Mode&0o7777
	_, err := i.makeChild(name, attr, nil)
	return err
}

// Mknod implements vfs.Dir.
func (i *inode) Mknod(_ context.Context, name string, attr vfs.CreateAttr) error {
	switch attr.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFIFO, unix.S_IFSOCK:
	case unix.S_IFCHR, unix.S_IFBLK:
		if !i.fs.opts.AllowDevices {
			return unix.EPERM
		}
	default:
		return unix.EINVAL
	}
	_, err := i.makeChild(name, attr, nil)
	return err
}

// Symlink implements vfs.Dir.
func (i *inode) Symlink(_ context.Context, name, target string, attr vfs.CreateAttr) error {
	attr.Mode = unix.S_IFLNK | 0o777
	_, err := i.makeChild(name, attr, func(c *inode) { c.target = target })
	return err
}

// Link implements vfs.Dir.
func (i *inode) Link(_ context.Context, name string, target vfs.Inode) error {
	t, ok := target.(*inode)
	if !ok || t.fs != i.fs {
		return unix.EXDEV
	}
	if t.isDir() {
		return unix.EPERM
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if err := i.checkNewLocked(name); err != nil {
		return err
	}
	t.mu.Lock()
	if t.nlink == 0 && !t.linkable {
		t.mu.Unlock()
		return unix.ENOENT
	}
	if err := i.fs.reserveEntry(); err != nil {
		t.mu.Unlock()
		return err
	}
	t.nlink++
	t.ctime = vfs.Now()
	t.mu.Unlock()
	i.addLocked(name, t)
	return nil
}

// Unlink implements vfs.Dir.
func (i *inode) Unlink(_ context.Context, name string, child vfs.Inode) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	e := i.entries[name]
	if e == nil || e.inode != child {
		return unix.ENOENT
	}
	if e.inode.isDir() {
		return unix.EISDIR
	}
	i.removeLocked(name)
	i.fs.releaseEntry()
	e.inode.mu.Lock()
	e.inode.dropLinkLocked()
	e.inode.mu.Unlock()
	return nil
}

// Rmdir implements vfs.Dir.
func (i *inode) Rmdir(_ context.Context, name string, child vfs.Inode) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	e := i.entries[name]
	if e == nil || e.inode != child {
		return unix.ENOENT
	}
	c := e.inode
	if !c.isDir() {
		return unix.ENOTDIR
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) != 0 {
		return unix.ENOTEMPTY
	}
	i.removeLocked(name)
	i.fs.releaseEntry()
	i.nlink--
	c.nlink = 0
	c.ctime = vfs.Now()
	return nil
}

// Rename implements vfs.Dir.
func (i *inode) Rename(_ context.Context, r vfs.RenameRequest) error {
	nd, ok := r.NewDir.(*inode)
	if !ok || nd.fs != i.fs {
		return unix.EXDEV
	}
	// Lock the directories in inode-number order.
	first, second := i, nd
	if second.ino < first.ino {
		first, second = second, first
	}
	first.mu.Lock()
	defer first.mu.Unlock()
	if second != first {
		second.mu.Lock()
		defer second.mu.Unlock()
	}
	oe := i.entries[r.OldName]
	if oe == nil || oe.inode != r.Child {
		return unix.ENOENT
	}
	if nd.nlink == 0 {
		return unix.ENOENT
	}
	ne := nd.entries[r.NewName]
	if r.Flags&unix.RENAME_EXCHANGE != 0 {
		if ne == nil {
			return unix.ENOENT
		}
		a, b := oe.inode, ne.inode
		oe.inode, ne.inode = b, a
		if i != nd {
			if a.isDir() {
				a.setParent(nd)
				i.nlink--
				nd.nlink++
			}
			if b.isDir() {
				b.setParent(i)
				nd.nlink--
				i.nlink++
			}
		}
		now := vfs.Now()
		i.mtime, i.ctime, nd.mtime, nd.ctime = now, now, now, now
		return nil
	}
	if ne != nil {
		if r.Flags&unix.RENAME_NOREPLACE != 0 {
			return unix.EEXIST
		}
		victim := ne.inode
		if victim == oe.inode {
			return nil
		}
		if victim.isDir() {
			if !oe.inode.isDir() {
				return unix.EISDIR
			}
			victim.mu.Lock()
			empty := len(victim.entries) == 0
			if empty {
				victim.nlink = 0
			}
			victim.mu.Unlock()
			if !empty {
				return unix.ENOTEMPTY
			}
			nd.nlink--
		} else {
			if oe.inode.isDir() {
				return unix.ENOTDIR
			}
			victim.mu.Lock()
			victim.dropLinkLocked()
			victim.mu.Unlock()
		}
		nd.removeLocked(r.NewName)
		i.fs.releaseEntry()
	}
	moved := oe.inode
	i.removeLocked(r.OldName)
	nd.addLocked(r.NewName, moved)
	if moved.isDir() && i != nd {
		moved.setParent(nd)
		i.nlink--
		nd.nlink++
	}
	moved.mu.Lock()
	moved.ctime = vfs.Now()
	moved.mu.Unlock()
	return nil
}

// OpenDir implements vfs.Dir.
func (i *inode) OpenDir(context.Context) (vfs.DirReader, error) {
	return dirReader{i}, nil
}

type dirReader struct{ i *inode }

func (dirReader) Release(context.Context) {}

// ReadDir implements vfs.DirReader: "." at 0, ".." at 1, then the
// entries by the cookie they got when they were added.
func (r dirReader) ReadDir(_ context.Context, off int64, emit func(vfs.Dirent) bool) error {
	i := r.i
	i.mu.Lock()
	parentIno := i.parent.ino
	var batch []vfs.Dirent
	if off <= 0 {
		batch = append(batch, vfs.Dirent{Name: ".", Ino: i.ino, Type: unix.DT_DIR, Off: 1})
	}
	if off <= 1 {
		batch = append(batch, vfs.Dirent{Name: "..", Ino: parentIno, Type: unix.DT_DIR, Off: 2})
	}
	k := sort.Search(len(i.order), func(n int) bool { return i.order[n].cookie >= off })
	for _, e := range i.order[k:] {
		batch = append(batch, vfs.Dirent{Name: e.name, Ino: e.inode.ino, Type: vfs.DirentType(e.inode.ftype), Off: e.cookie + 1})
	}
	i.atime = vfs.Now()
	i.mu.Unlock()
	for _, d := range batch {
		if !emit(d) {
			break
		}
	}
	return nil
}
