package vfs

import (
	"context"
	"strings"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
)

// Limits of path resolution, as in Linux.
const (
	MaxSymlinks = 40   // MAXSYMLINKS: ELOOP beyond
	NameMax     = 255  // NAME_MAX: longest component
	PathMax     = 4096 // PATH_MAX: longest path, with its NUL
)

// PathOperation names a file: Path resolved from Start (a directory: the
// task's cwd or the dirfd) inside Root (the task's root; ".." never climbs
// above it and absolute paths and symlinks start there).
type PathOperation struct {
	Root  VirtualDentry
	Start VirtualDentry
	Path  string
	// FollowFinal follows a symbolic link in the last component (the
	// opposite of AT_SYMLINK_NOFOLLOW). Open ignores it and uses
	// O_NOFOLLOW instead.
	FollowFinal bool
	// EmptyPath allows an empty Path to mean Start itself (AT_EMPTY_PATH).
	EmptyPath bool
}

// walker resolves one path. It holds a reference on cur.
// Preconditions: the VFS's renameMu is held (read or write) for the
// walker's life.
type walker struct {
	v     *VirtualFilesystem
	ctx   context.Context
	creds *auth.Credentials
	root  VirtualDentry
	cur   VirtualDentry
	rest  string
	// symlinks counts the links followed so far.
	symlinks int
	err      error
}

func (v *VirtualFilesystem) newWalker(ctx context.Context, creds *auth.Credentials, pop PathOperation) *walker {
	w := &walker{v: v, ctx: ctx, creds: creds, root: pop.Root, rest: pop.Path}
	if !pop.Root.Ok() {
		w.root = VirtualDentry{v.root, v.root.root}
	}
	switch {
	case len(pop.Path) >= PathMax:
		w.err = unix.ENAMETOOLONG
	case pop.Path == "" && !pop.EmptyPath:
		w.err = unix.ENOENT
	}
	start := pop.Start
	if strings.HasPrefix(pop.Path, "/") || !start.Ok() {
		start = w.root
	}
	start.IncRef()
	w.cur = start
	return w
}

func (w *walker) release() {
	if w.cur.Ok() {
		w.cur.DecRef(w.ctx)
		w.cur = VirtualDentry{}
	}
}

// take hands the walker's current position to the caller.
func (w *walker) take() VirtualDentry {
	vd := w.cur
	w.cur = VirtualDentry{}
	return vd
}

// setCur replaces the current position, whose reference is transferred.
func (w *walker) setCur(vd VirtualDentry) {
	w.cur.DecRef(w.ctx)
	w.cur = vd
}

// splitFirst returns the first component of p, what follows it, and
// whether it is the last component and followed by a slash.
func splitFirst(p string) (comp, rest string, last, trailingSlash bool) {
	p = strings.TrimLeft(p, "/")
	i := strings.IndexByte(p, '/')
	if i < 0 {
		return p, "", true, false
	}
	comp, rest = p[:i], p[i:]
	if strings.TrimLeft(rest, "/") == "" {
		return comp, "", true, true
	}
	return comp, rest, false, false
}

// mayLookup checks that cur is a directory the walker may search.
func (w *walker) mayLookup(vd VirtualDentry) error {
	if !vd.Dentry.IsDir() {
		return unix.ENOTDIR
	}
	return w.v.checkAccess(w.ctx, w.creds, vd, MayExec)
}

// step returns the position reached from cur by one component (not "" or
// "."), crossing mounts, without following a symlink.
func (w *walker) step(name string) (VirtualDentry, error) {
	if err := w.mayLookup(w.cur); err != nil {
		return VirtualDentry{}, err
	}
	if len(name) > NameMax {
		return VirtualDentry{}, unix.ENAMETOOLONG
	}
	if name == ".." {
		return w.v.parentOf(w.root, w.cur), nil
	}
	d := w.cur.Dentry
	d.mu.Lock()
	child, err := d.lookupLocked(w.ctx, name)
	d.mu.Unlock()
	if err != nil {
		return VirtualDentry{}, err
	}
	w.cur.Mount.incRef()
	return w.v.followMounts(VirtualDentry{w.cur.Mount, child}), nil
}

// followMounts moves vd to the root of the mount stacked on it, if any.
// The reference on vd is transferred to the result.
func (v *VirtualFilesystem) followMounts(vd VirtualDentry) VirtualDentry {
	for vd.Dentry.mounts.Load() > 0 {
		m := v.mounts[mountKey{vd.Mount, vd.Dentry}]
		if m == nil {
			break
		}
		next := VirtualDentry{m, m.root}
		next.IncRef()
		vd.Dentry.DecRef()
		vd.Mount.decRef(context.Background())
		vd = next
	}
	return vd
}

// parentOf returns the parent of vd with a reference: vd itself at root,
// and across the mountpoint at the root of a mount.
func (v *VirtualFilesystem) parentOf(root, vd VirtualDentry) VirtualDentry {
	for {
		if vd == root {
			break
		}
		if vd.Dentry == vd.Mount.root {
			if vd.Mount.parent == nil {
				break // root of the tree or of a detached mount
			}
			vd = VirtualDentry{vd.Mount.parent, vd.Mount.point}
			continue
		}
		if p := vd.Dentry.parent.Load(); p != nil {
			vd = VirtualDentry{vd.Mount, p}
		}
		break
	}
	vd.IncRef()
	return vd
}

// readlink reads the symlink vd for following.
func (w *walker) readlink(vd VirtualDentry) (string, error) {
	w.symlinks++
	if w.symlinks > MaxSymlinks {
		return "", unix.ELOOP
	}
	sl, ok := vd.Dentry.inode.(Symlink)
	if !ok {
		return "", unix.EINVAL
	}
	target, err := sl.Readlink(w.ctx)
	if err != nil {
		return "", err
	}
	if target == "" {
		return "", unix.ENOENT
	}
	return target, nil
}

// followLink continues the walk through the symlink vd (reached from
// w.cur): its target replaces it at the front of the remaining path.
func (w *walker) followLink(vd VirtualDentry, rest string) error {
	if ml, ok := vd.Dentry.inode.(MagicLink); ok {
		w.symlinks++
		if w.symlinks > MaxSymlinks {
			vd.DecRef(w.ctx)
			return unix.ELOOP
		}
		to, err := ml.Target(w.ctx)
		vd.DecRef(w.ctx)
		if err != nil {
			return err
		}
		w.setCur(to)
		w.rest = rest
		return nil
	}
	target, err := w.readlink(vd)
	vd.DecRef(w.ctx)
	if err != nil {
		return err
	}
	if len(target)+len(rest) >= PathMax {
		return unix.ENAMETOOLONG
	}
	if strings.HasPrefix(target, "/") {
		w.root.IncRef()
		w.setCur(w.root)
	}
	w.rest = target + rest
	return nil
}

// walkToLast walks every component but the last, following symlinks,
// and returns the last component ("" when the path names the start or
// root itself, as "/" does) and whether a slash follows it.
func (w *walker) walkToLast() (last string, trailingSlash bool, err error) {
	if w.err != nil {
		return "", false, w.err
	}
	for {
		comp, rest, isLast, trailing := splitFirst(w.rest)
		if isLast {
			w.rest = ""
			return comp, trailing, nil
		}
		w.rest = rest
		if comp == "." {
			if err := w.mayLookup(w.cur); err != nil {
				return "", false, err
			}
			continue
		}
		next, err := w.step(comp)
		if err != nil {
			return "", false, err
		}
		if next.Dentry.IsSymlink() {
			if err := w.followLink(next, w.rest); err != nil {
				return "", false, err
			}
			continue
		}
		w.setCur(next)
	}
}

// resolve walks the whole path and leaves the walker on the file it
// names; the result carries a reference.
func (w *walker) resolve(follow bool) (VirtualDentry, error) {
	for {
		last, trailing, err := w.walkToLast()
		if err != nil {
			return VirtualDentry{}, err
		}
		if last == "" || last == "." {
			if last == "." || trailing {
				if err := w.mayLookup(w.cur); err != nil {
					return VirtualDentry{}, err
				}
			}
			return w.take(), nil
		}
		next, err := w.step(last)
		if err != nil {
			return VirtualDentry{}, err
		}
		if next.Dentry.IsSymlink() && (follow || trailing) {
			rest := ""
			if trailing {
				rest = "/"
			}
			if err := w.followLink(next, rest); err != nil {
				return VirtualDentry{}, err
			}
			continue
		}
		if trailing && !next.Dentry.IsDir() {
			next.DecRef(w.ctx)
			return VirtualDentry{}, unix.ENOTDIR
		}
		w.setCur(next)
		return w.take(), nil
	}
}

// pathLocked returns the path of vd as seen from root ("/" when they are
// the same). reachable is false when vd is not under root (the path is
// then relative to the top of whatever tree vd is in).
// Preconditions: v.renameMu is held.
func (v *VirtualFilesystem) pathLocked(root, vd VirtualDentry) (path string, reachable bool) {
	if !root.Ok() {
		root = VirtualDentry{v.root, v.root.root}
	}
	var parts []string
	for {
		if vd == root {
			reachable = true
			break
		}
		if vd.Dentry == vd.Mount.root {
			if vd.Mount.parent == nil {
				break
			}
			vd = VirtualDentry{vd.Mount.parent, vd.Mount.point}
			continue
		}
		p := vd.Dentry.parent.Load()
		if p == nil {
			break
		}
		parts = append(parts, vd.Dentry.name)
		vd = VirtualDentry{vd.Mount, p}
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	if b.Len() == 0 {
		return "/", reachable
	}
	return b.String(), reachable
}
