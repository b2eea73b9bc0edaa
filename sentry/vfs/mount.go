package vfs

import (
	"context"
	"sort"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
)

// Mount flags (a subset of mount(2)'s MS_* flags, with their values).
const (
	MountReadOnly = unix.MS_RDONLY
	MountNoSuid   = unix.MS_NOSUID
	MountNoDev    = unix.MS_NODEV
	MountNoExec   = unix.MS_NOEXEC
	MountNoAtime  = unix.MS_NOATIME
	mountFlagMask = MountReadOnly | MountNoSuid | MountNoDev | MountNoExec | MountNoAtime
)

// Mount is one filesystem (or subtree of one, for bind mounts) attached
// to the tree.
type Mount struct {
	vfs   *VirtualFilesystem
	fs    Filesystem
	root  *Dentry
	flags atomic.Uint32

	// parent and point are where the mount is attached; nil for the root
	// mount and after a detach. Guarded by vfs.renameMu.
	parent *Mount
	point  *Dentry

	// refs counts the VirtualDentries that refer to this mount, plus
	// one while attached.
	refs atomic.Int64
	// seq orders mounts by when they were made, for mount tables.
	seq uint64
}

// Flags returns the mount's MS_* flags.
func (m *Mount) Flags() uint32 { return m.flags.Load() }

// SetFlags replaces the mount's MS_* flags (a remount).
func (m *Mount) SetFlags(flags uint32) { m.flags.Store(flags & mountFlagMask) }

// IsMountRoot says whether vd is the root of its mount.
func (vd VirtualDentry) IsMountRoot() bool { return vd.Mount != nil && vd.Dentry == vd.Mount.root }

// Filesystem returns the mounted filesystem.
func (m *Mount) Filesystem() Filesystem { return m.fs }

// ReadOnly says whether the mount refuses writes: mounted read-only, or
// a filesystem that is read-only itself (ReadOnlyFilesystem).
func (m *Mount) ReadOnly() bool {
	if m.flags.Load()&MountReadOnly != 0 {
		return true
	}
	ro, ok := m.fs.(ReadOnlyFilesystem)
	return ok && ro.ReadOnly()
}

// ReadOnlyFilesystem is implemented by filesystems that can be read-only
// whatever their mounts say (a host directory opened read-only).
type ReadOnlyFilesystem interface {
	ReadOnly() bool
}

func (m *Mount) incRef() {
	if m.refs.Add(1) <= 1 {
		panic("vfs: IncRef of a released mount")
	}
}

func (m *Mount) decRef(ctx context.Context) {
	n := m.refs.Add(-1)
	if n > 0 {
		return
	}
	if n < 0 {
		panic("vfs: mount reference count below zero")
	}
	m.root.DecRef()
	m.vfs.releaseFilesystem(ctx, m.fs)
}

// VirtualDentry is a position in the tree: a dentry seen through a mount.
// The zero value is "none". Values returned by the VFS carry a reference
// the receiver must drop with DecRef.
type VirtualDentry struct {
	Mount  *Mount
	Dentry *Dentry
}

// Ok says whether vd refers to something.
func (vd VirtualDentry) Ok() bool { return vd.Mount != nil }

// IncRef takes a reference on vd.
func (vd VirtualDentry) IncRef() {
	vd.Mount.incRef()
	vd.Dentry.IncRef()
}

// DecRef drops a reference on vd.
func (vd VirtualDentry) DecRef(ctx context.Context) {
	vd.Dentry.DecRef()
	vd.Mount.decRef(ctx)
}

type mountKey struct {
	parent *Mount
	point  *Dentry
}

// MountOptions configures a new mount.
type MountOptions struct {
	// Flags is a set of Mount* flags.
	Flags uint32
	// Recursive makes BindMount bring the mounts below its source along
	// (mount --rbind), each attached at the same place of the copy.
	Recursive bool
}

// newMount makes a detached mount of fs rooted at root (which it takes a
// reference on).
func (v *VirtualFilesystem) newMount(fs Filesystem, root *Dentry, flags uint32) *Mount {
	m := &Mount{vfs: v, fs: fs, root: root, seq: v.mountSeq.Add(1)}
	m.flags.Store(flags & mountFlagMask)
	m.refs.Store(1)
	root.IncRef()
	return m
}

// Mount attaches fs over the directory (or, for a filesystem whose root
// is a file, the file) that pop names; it needs CAP_SYS_ADMIN. Mounts stack: the newest mount on a point is the one
// seen.
func (v *VirtualFilesystem) Mount(ctx context.Context, creds *auth.Credentials, pop PathOperation, fs Filesystem, opts MountOptions) error {
	if !creds.HasCap(auth.CapSysAdmin) {
		return unix.EPERM
	}
	rootInode, err := fs.Root(ctx)
	if err != nil {
		return err
	}
	root, err := newDentry(ctx, v, fs, rootInode)
	if err != nil {
		return err
	}
	defer root.DecRef()
	v.addFilesystem(fs)
	m := v.newMount(fs, root, opts.Flags)
	if err := v.attach(ctx, creds, pop, m); err != nil {
		m.decRef(ctx)
		return err
	}
	return nil
}

// BindMount attaches the subtree at source over target, as mount --bind.
func (v *VirtualFilesystem) BindMount(ctx context.Context, creds *auth.Credentials, source, target PathOperation, opts MountOptions) error {
	if !creds.HasCap(auth.CapSysAdmin) {
		return unix.EPERM
	}
	src, err := v.GetDentryAt(ctx, creds, source)
	if err != nil {
		return err
	}
	defer src.DecRef(ctx)
	v.addFilesystem(src.Mount.fs)
	m := v.newMount(src.Mount.fs, src.Dentry, opts.Flags)
	if err := v.attach(ctx, creds, target, m); err != nil {
		m.decRef(ctx)
		return err
	}
	if opts.Recursive {
		v.renameMu.Lock()
		v.copySubmountsLocked(src.Mount, src.Dentry, m, m.seq)
		v.renameMu.Unlock()
	}
	return nil
}

// copySubmountsLocked attaches to dst a copy of every mount attached to
// src at src's dentry under (or at) top, and of the mounts below those,
// at the same dentries: dst is a bind of src at top. Only mounts older
// than the bind (seq below cutoff) are copied, so neither the bind
// itself (when its target lies under its source) nor the copies made
// here are copied again.
//
// Preconditions: renameMu is held for writing.
func (v *VirtualFilesystem) copySubmountsLocked(src *Mount, top *Dentry, dst *Mount, cutoff uint64) {
	type sub struct {
		point *Dentry
		m     *Mount
	}
	var subs []sub
	for k, c := range v.mounts {
		if k.parent == src && c.seq < cutoff && isAncestor(top, k.point) {
			subs = append(subs, sub{k.point, c})
		}
	}
	for _, s := range subs {
		c := v.newMount(s.m.fs, s.m.root, s.m.flags.Load())
		point := VirtualDentry{Mount: dst, Dentry: s.point}
		point.IncRef() // held by the copy
		s.point.mounts.Add(1)
		c.parent, c.point = dst, s.point
		v.mounts[mountKey{dst, s.point}] = c
		v.copySubmountsLocked(s.m, s.m.root, c, cutoff)
	}
}

func (v *VirtualFilesystem) attach(ctx context.Context, creds *auth.Credentials, pop PathOperation, m *Mount) error {
	v.renameMu.Lock()
	defer v.renameMu.Unlock()
	w := v.newWalker(ctx, creds, pop)
	defer w.release()
	point, err := w.resolve(true)
	if err != nil {
		return err
	}
	defer point.DecRef(ctx)
	// Directories go over directories, files over files (a host file
	// bound over /etc/hosts).
	if point.Dentry.IsDir() != m.root.IsDir() {
		return unix.ENOTDIR
	}
	if point.Dentry.dead.Load() {
		return unix.ENOENT
	}
	point.IncRef() // held by the mount
	point.Dentry.mounts.Add(1)
	m.parent, m.point = point.Mount, point.Dentry
	// point is the top of any stack of mounts there (the walk followed
	// them), so the key is free: a new mount stacks on the root of the
	// one it covers, and unmounting it uncovers that one.
	v.mounts[mountKey{point.Mount, point.Dentry}] = m
	return nil
}

// Umount detaches the mount whose root pop names. The detach is lazy, as
// umount2(MNT_DETACH): open files and working directories inside keep
// working, and the filesystem is released with the last of them.
func (v *VirtualFilesystem) Umount(ctx context.Context, creds *auth.Credentials, pop PathOperation) error {
	if !creds.HasCap(auth.CapSysAdmin) {
		return unix.EPERM
	}
	v.renameMu.Lock()
	var toDrop []VirtualDentry
	var dropMounts []*Mount
	err := func() error {
		w := v.newWalker(ctx, creds, pop)
		defer w.release()
		vd, err := w.resolve(true)
		if err != nil {
			return err
		}
		toDrop = append(toDrop, vd)
		m := vd.Mount
		if vd.Dentry != m.root {
			return unix.EINVAL
		}
		if m.parent == nil {
			return unix.EBUSY // the root mount
		}
		// Detach the mount and every mount below it.
		var detach func(m *Mount)
		detach = func(m *Mount) {
			for k, child := range v.mounts {
				if k.parent == m {
					detach(child)
				}
			}
			delete(v.mounts, mountKey{m.parent, m.point})
			m.point.mounts.Add(-1)
			toDrop = append(toDrop, VirtualDentry{m.parent, m.point})
			m.parent, m.point = nil, nil
			dropMounts = append(dropMounts, m)
		}
		detach(m)
		return nil
	}()
	v.renameMu.Unlock()
	for _, vd := range toDrop {
		vd.DecRef(ctx)
	}
	for _, m := range dropMounts {
		m.decRef(ctx)
	}
	return err
}

// MountInfo describes one attached mount, for /proc/self/mounts.
type MountInfo struct {
	Mount *Mount
	// Path is the mountpoint, relative to the VFS root.
	Path  string
	FS    string
	Flags uint32
}

// Mounts lists the attached mounts in the order they were made, the root
// mount first.
func (v *VirtualFilesystem) Mounts() []MountInfo {
	v.renameMu.RLock()
	defer v.renameMu.RUnlock()
	out := []MountInfo{{Mount: v.root, Path: "/", FS: v.root.fs.Name(), Flags: v.root.Flags()}}
	for _, m := range v.mounts {
		p, _ := v.pathLocked(VirtualDentry{}, VirtualDentry{m.parent, m.point})
		out = append(out, MountInfo{Mount: m, Path: p, FS: m.fs.Name(), Flags: m.Flags()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Mount.seq < out[j].Mount.seq })
	return out
}

// Close detaches every mount and drops the tree's hold on the root
// filesystem and the unused dentries, for a sandbox that is done. Files
// still open keep working until they are closed; the VFS must not be used
// for new operations afterwards.
func (v *VirtualFilesystem) Close(ctx context.Context) {
	v.renameMu.Lock()
	var points []VirtualDentry
	var ms []*Mount
	for k, m := range v.mounts {
		delete(v.mounts, k)
		m.point.mounts.Add(-1)
		points = append(points, VirtualDentry{m.parent, m.point})
		m.parent, m.point = nil, nil
		ms = append(ms, m)
	}
	root := v.root
	v.renameMu.Unlock()
	for _, vd := range points {
		vd.DecRef(ctx)
	}
	for _, m := range ms {
		m.decRef(ctx)
	}
	root.decRef(ctx)
	v.DropCaches()
}
