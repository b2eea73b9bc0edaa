package vfs

import (
	"context"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Dentry is a name in the VFS's tree: an inode, the directory it was
// reached from and the name it was reached by. Dentries are cached only
// while something refers to them (an open file, a cwd, a mount, a cached
// child, a walk in progress); the last DecRef evicts an unpinned dentry
// from its parent.
type Dentry struct {
	v     *VirtualFilesystem
	inode Inode
	// typ is the inode's S_IFMT bits, which never change.
	typ uint32
	// mount-independent filesystem identity.
	fs Filesystem

	refs atomic.Int64
	// parent is nil for a filesystem root. It and name change only in
	// Rename, with VirtualFilesystem.renameMu held for writing and both
	// parents' mu held.
	parent atomic.Pointer[Dentry]
	name   string
	// mounts counts the mounts whose mountpoint this dentry is.
	mounts atomic.Int32
	// dead is set once the name is unlinked or removed.
	dead atomic.Bool
	// destroyed is set when the inode has been released.
	destroyed atomic.Bool
	// linkable marks the nameless file of an O_TMPFILE open that linkat
	// may name.
	linkable bool

	mu sync.Mutex
	// children caches the looked-up children. Every child, cached or
	// detached, holds a reference on its parent until it is destroyed.
	children map[string]*Dentry
	// cached says whether this dentry is in its parent's children map
	// (guarded by the parent's mu).
	cached bool

	// The list of unreferenced cached dentries, guarded by v.lruMu.
	lruPrev, lruNext *Dentry
	inLRU            bool
}

func newDentry(ctx context.Context, v *VirtualFilesystem, fs Filesystem, inode Inode) (*Dentry, error) {
	var typ uint32
	if t, ok := inode.(FileTyper); ok {
		typ = t.FileType()
	} else {
		st, err := inode.Stat(ctx)
		if err != nil {
			return nil, err
		}
		typ = st.Type()
	}
	d := &Dentry{v: v, inode: inode, typ: typ, fs: fs}
	d.refs.Store(1)
	return d, nil
}

// Inode returns the dentry's inode.
func (d *Dentry) Inode() Inode { return d.inode }

// IsDir says whether the dentry is a directory.
func (d *Dentry) IsDir() bool { return d.typ == unix.S_IFDIR }

// IsSymlink says whether the dentry is a symbolic link.
func (d *Dentry) IsSymlink() bool { return d.typ == unix.S_IFLNK }

// IncRef takes a reference.
func (d *Dentry) IncRef() {
	if d.refs.Add(1) <= 1 {
		panic("vfs: IncRef of a released dentry")
	}
}

// DecRef drops a reference. A cached dentry whose last reference goes
// stays in its parent's cache, on the VFS's list of unused dentries, until
// that list overflows; any other dentry is destroyed: its inode released
// and its reference on its parent dropped.
func (d *Dentry) DecRef() {
	n := d.refs.Add(-1)
	if n > 0 {
		return
	}
	if n < 0 {
		panic("vfs: dentry reference count below zero")
	}
	p := d.lockParent()
	if p == nil {
		if d.refs.Load() == 0 {
			d.destroy()
		}
		return
	}
	if d.refs.Load() != 0 {
		p.mu.Unlock()
		return
	}
	if d.cached && !d.dead.Load() && d.v != nil && d.v.lruAdd(d) {
		p.mu.Unlock()
		d.v.lruTrim()
		return
	}
	if d.cached {
		delete(p.children, d.name)
		d.cached = false
	}
	p.mu.Unlock()
	d.destroy()
}

// lockParent locks and returns d's parent, or returns nil for a root.
func (d *Dentry) lockParent() *Dentry {
	for {
		p := d.parent.Load()
		if p == nil {
			return nil
		}
		p.mu.Lock()
		if d.parent.Load() == p {
			return p
		}
		p.mu.Unlock()
	}
}

// destroy releases an unreachable dentry's inode and its reference on its
// parent, once.
func (d *Dentry) destroy() {
	if !d.destroyed.CompareAndSwap(false, true) {
		return
	}
	if d.v != nil {
		d.v.lruRemove(d)
	}
	if r, ok := d.inode.(InodeReleaser); ok {
		r.ReleaseInode()
	}
	if p := d.parent.Load(); p != nil {
		p.DecRef()
	}
}

// tryEvict drops an unused dentry taken off the LRU list from its
// parent's cache and destroys it; a dentry in use again is left alone.
func (d *Dentry) tryEvict() {
	p := d.lockParent()
	if p == nil {
		return
	}
	if d.refs.Load() != 0 {
		p.mu.Unlock()
		return
	}
	if d.cached {
		delete(p.children, d.name)
		d.cached = false
	}
	p.mu.Unlock()
	d.destroy()
}

// incRefCached takes a reference on a dentry found in a cache, which may
// have dropped to zero and be on its way out (eviction checks the count
// under the same lock).
// Preconditions: the parent's mu is held.
func (d *Dentry) incRefCached() {
	d.refs.Add(1)
}

// lookupLocked returns the child called name with a reference, from the
// cache or from the filesystem.
// Preconditions: d.mu is held; name is a valid single component.
func (d *Dentry) lookupLocked(ctx context.Context, name string) (*Dentry, error) {
	if d.dead.Load() {
		return nil, unix.ENOENT
	}
	dir, ok := d.inode.(Dir)
	if !ok {
		return nil, unix.ENOTDIR
	}
	if c := d.children[name]; c != nil {
		rv, ok := d.inode.(Revalidator)
		if !ok || c.mounts.Load() > 0 || rv.Revalidate(ctx, name, c.inode) {
			c.incRefCached()
			return c, nil
		}
		// The name now means something else: forget the stale child.
		// Unused, it is unreachable now (d.mu is held: nobody can
		// take a reference) and goes at once.
		d.detachLocked(c)
		if c.refs.Load() == 0 {
			c.destroy()
		}
	}
	inode, err := dir.Lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	return d.insertLocked(ctx, name, inode)
}

// insertLocked caches inode as the child called name and returns it with
// a reference.
// Preconditions: d.mu is held and name is not cached.
func (d *Dentry) insertLocked(ctx context.Context, name string, inode Inode) (*Dentry, error) {
	c, err := newDentry(ctx, d.v, d.fs, inode)
	if err != nil {
		return nil, err
	}
	c.name = name
	c.parent.Store(d)
	c.cached = true
	if d.children == nil {
		d.children = make(map[string]*Dentry)
	}
	d.children[name] = c
	d.refs.Add(1) // the child's reference on its parent
	return c, nil
}

// detachLocked removes c from d's cache, after an unlink, a rename or a
// failed revalidation. c keeps its parent pointer and its reference on d
// (so ".." from a removed directory still works) until it is destroyed.
// Preconditions: d.mu is held.
func (d *Dentry) detachLocked(c *Dentry) {
	if !c.cached || d.children[c.name] != c {
		return
	}
	delete(d.children, c.name)
	c.cached = false
}

// countCached returns the number of dentries cached below d.
func (d *Dentry) countCached() int {
	d.mu.Lock()
	kids := make([]*Dentry, 0, len(d.children))
	for _, c := range d.children {
		kids = append(kids, c)
	}
	d.mu.Unlock()
	n := len(kids)
	for _, c := range kids {
		n += c.countCached()
	}
	return n
}
