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
	exchange := flags&unix.RENAME_EXCHANGE != 0

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
	defer op.mu.Unlock()
	if np != op {
		np.mu.Lock()
		defer np.mu.Unlock()
	}
	child, err := op.lookupLocked(ctx, oldLast)
	if err != nil {
		return err
	}
	defer child.DecRef()
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
		defer replaced.DecRef()
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
	// Mirror the change in the dentry cache.
	op.detachLocked(child)
	if replaced != nil {
		np.detachLocked(replaced)
		if exchange {
			moveLocked(replaced, op, oldLast)
		} else {
			replaced.dead.Store(true)
		}
	}
	moveLocked(child, np, newLast)
	return nil
}

// moveLocked caches d (not cached anywhere) as parent's child name.
// Preconditions: renameMu is held for writing; parent.mu is held.
func moveLocked(d, parent *Dentry, name string) {
	if parent.children == nil {
		parent.children = make(map[string]*Dentry)
	}
	if old := parent.children[name]; old != nil {
		parent.detachLocked(old)
	}
	d.name = name
	d.parent.Store(parent)
	d.cached = true
	parent.children[name] = d
	parent.refs.Add(1)
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
