package vfs

import (
	"context"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
)

// Rename moves oldpop to newpop, as renameat2 with flags 0,
// RENAME_NOREPLACE or RENAME_EXCHANGE.
func (v *VirtualFilesystem) Rename(ctx context.Context, creds *auth.Credentials, oldpop, newpop PathOperation, flags uint32) error {
	if flags&^uint32(unix.RENAME_NOREPLACE|unix.RENAME_EXCHANGE) != 0 {
		return unix.EINVAL
	}
	if flags == unix.RENAME_NOREPLACE|unix.RENAME_EXCHANGE {
		return unix.EINVAL
	}
	v.renameMu.Lock()
	defer v.renameMu.Unlock()

	ow := v.newWalker(ctx, creds, oldpop)
	defer ow.release()
	oldLast, oldTrailing, err := ow.walkToLast()
	if err != nil {
		return err
	}
	nw := v.newWalker(ctx, creds, newpop)
	defer nw.release()
	newLast, newTrailing, err := nw.walkToLast()
	if err != nil {
		return err
	}
	if !isNormalName(oldLast) || !isNormalName(newLast) {
		return unix.EBUSY
	}
	if err := ow.mayLookup(ow.cur); err != nil {
		return err
	}
	if err := nw.mayLookup(nw.cur); err != nil {
		return err
	}
	if len(newLast) > NameMax || len(oldLast) > NameMax {
		return unix.ENAMETOOLONG
	}
	oldParent, newParent := ow.cur, nw.cur
	if oldParent.Mount != newParent.Mount {
		return unix.EXDEV
	}
	// renameMu is held for writing, so no other goroutine holds two
	// dentry locks: locking the two parents in any order is safe.
	op, np := oldParent.Dentry, newParent.Dentry
	op.mu.Lock()
	if np != op {
		np.mu.Lock()
	}
	// Dentries are released after the parents are unlocked: a last
	// DecRef takes the parent's lock.
	var release []*Dentry
	err = v.renameLocked(ctx, creds, oldParent, newParent, oldLast, newLast, oldTrailing, newTrailing, flags, &release)
	if np != op {
		np.mu.Unlock()
	}
	op.mu.Unlock()
	for _, d := range release {
		d.DecRef()
	}
	return err
}

// renameLocked is Rename once both parents are locked. The dentries it
// looks up are appended to release.
// Preconditions: renameMu is held for writing; both parents' mu are held.
func (v *VirtualFilesystem) renameLocked(ctx context.Context, creds *auth.Credentials, oldParent, newParent VirtualDentry, oldLast, newLast string, oldTrailing, newTrailing bool, flags uint32, release *[]*Dentry) error {
	exchange := flags&unix.RENAME_EXCHANGE != 0
	op, np := oldParent.Dentry, newParent.Dentry
	child, err := op.lookupLocked(ctx, oldLast)
	if err != nil {
		return err
	}
	*release = append(*release, child)
	replaced, err := np.lookupLocked(ctx, newLast)
	switch {
	case err == unix.ENOENT:
		replaced = nil
		if exchange {
			return unix.ENOENT
		}
	case err != nil:
		return err
	default:
		*release = append(*release, replaced)
		if flags&unix.RENAME_NOREPLACE != 0 {
			return unix.EEXIST
		}
	}
	if (oldTrailing || newTrailing) && !child.IsDir() {
		return unix.ENOTDIR
	}
	if exchange && newTrailing && !replaced.IsDir() {
		return unix.ENOTDIR
	}
	if replaced == child {
		return nil
	}
	if replaced != nil && !exchange {
		if child.IsDir() && !replaced.IsDir() {
			return unix.ENOTDIR
		}
		if !child.IsDir() && replaced.IsDir() {
			return unix.EISDIR
		}
	}
	if isAncestor(child, np) || (exchange && isAncestor(replaced, op)) {
		return unix.EINVAL
	}
	if replaced != nil && !exchange && isAncestor(replaced, op) {
		return unix.ENOTEMPTY
	}
	if child.mounts.Load() > 0 || (replaced != nil && replaced.mounts.Load() > 0) {
		return unix.EBUSY
	}
	cst, err := child.inode.Stat(ctx)
	if err != nil {
		return err
	}
	if replaced != nil {
		rst, err := replaced.inode.Stat(ctx)
		if err != nil {
			return err
		}
		if rst.Dev == cst.Dev && rst.Ino == cst.Ino {
			return nil // two links to one file: nothing to do
		}
		if err := v.checkRemoval(ctx, creds, newParent, &rst); err != nil {
			return err
		}
		if exchange && replaced.IsDir() && op != np {
			if err := v.checkAccess(ctx, creds, VirtualDentry{newParent.Mount, replaced}, MayWrite); err != nil {
				return err
			}
		}
	} else if err := v.mayCreate(ctx, creds, newParent); err != nil {
		return err
	}
	if err := v.checkRemoval(ctx, creds, oldParent, &cst); err != nil {
		return err
	}
	if child.IsDir() && op != np {
		// Moving a directory rewrites its "..".
		if err := v.checkAccess(ctx, creds, VirtualDentry{oldParent.Mount, child}, MayWrite); err != nil {
			return err
		}
	}
	var replacedInode Inode
	if replaced != nil {
		replacedInode = replaced.inode
	}
	if err := op.inode.(Dir).Rename(ctx, RenameRequest{
		OldName: oldLast, Child: child.inode, NewDir: np.inode.(Dir), NewName: newLast,
		Replaced: replacedInode, Flags: flags,
	}); err != nil {
		return err
	}
	// Mirror the change in the dentry cache. A moved dentry's reference
	// on its old parent is dropped once the parents are unlocked.
	op.detachLocked(child)
	if replaced != nil {
		np.detachLocked(replaced)
		if exchange {
			moveLocked(replaced, op, oldLast)
			*release = append(*release, np)
		} else {
			replaced.dead.Store(true)
		}
	}
	moveLocked(child, np, newLast)
	*release = append(*release, op)
	return nil
}

// moveLocked caches d (detached) as parent's child name, with a new
// reference on parent; the caller drops d's reference on its old parent.
// Preconditions: renameMu is held for writing; parent.mu is held.
func moveLocked(d, parent *Dentry, name string) {
	if parent.children == nil {
		parent.children = make(map[string]*Dentry)
	}
	if old := parent.children[name]; old != nil {
		parent.detachLocked(old)
	}
	parent.refs.Add(1)
	d.name = name
	d.parent.Store(parent)
	d.cached = true
	parent.children[name] = d
}

// checkRemoval checks that a name may be removed from dir (write and
// search permission, sticky bit).
func (v *VirtualFilesystem) checkRemoval(ctx context.Context, creds *auth.Credentials, dir VirtualDentry, child *Stat) error {
	if err := v.mayCreate(ctx, creds, dir); err != nil {
		return err
	}
	dst, err := dir.Dentry.inode.Stat(ctx)
	if err != nil {
		return err
	}
	return checkSticky(creds, &dst, child)
}

// isAncestor says whether a is d or one of d's ancestors in the dentry
// tree of one filesystem.
// Preconditions: renameMu is held.
func isAncestor(a, d *Dentry) bool {
	for ; d != nil; d = d.parent.Load() {
		if d == a {
			return true
		}
	}
	return false
}

func isNormalName(name string) bool {
	return name != "" && name != "." && name != ".."
}
