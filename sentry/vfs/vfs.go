// Package vfs is the sentry's virtual filesystem: the mount table, path
// resolution inside the container's root, permission checks, and open
// files. Filesystems (tmpfs, hostfs, devfs, procfs) implement the small
// interfaces of impl.go; the syscall layer calls the methods of
// VirtualFilesystem and File and returns their unix.Errno errors to the
// guest as they are.
package vfs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
)

// VirtualFilesystem is one tree of mounts: a container's (or a pod's)
// view of files.
type VirtualFilesystem struct {
	// renameMu is held for writing by operations that move names or
	// change mounts (Rename, Mount, Umount) and for reading by every
	// path walk, so a walk never sees a half-done rename and ".." is
	// always the parent.
	renameMu sync.RWMutex
	root     *Mount
	// mounts maps a mountpoint to the mount attached there. Guarded by
	// renameMu.
	mounts   map[mountKey]*Mount
	mountSeq atomic.Uint64

	fsMu   sync.Mutex
	fsRefs map[Filesystem]int

	devMu   sync.RWMutex
	devices map[deviceKey]Device

	locksMu sync.Mutex
	locks   map[fileKey]*lockEntry

	sockMu  sync.Mutex
	sockets map[sockKey]any

	lruMu sync.Mutex
	// lruHead is the least recently unused dentry, lruTail the most.
	lruHead, lruTail *Dentry
	lruLen           int
	lruCap           int
}

// DefaultDentryCacheSize is how many unused dentries a VFS keeps cached.
const DefaultDentryCacheSize = 1024

// New makes a VFS whose root is a mount of fs.
func New(ctx context.Context, fs Filesystem, opts MountOptions) (*VirtualFilesystem, error) {
	v := &VirtualFilesystem{
		mounts:  make(map[mountKey]*Mount),
		fsRefs:  make(map[Filesystem]int),
		devices: make(map[deviceKey]Device),
		locks:   make(map[fileKey]*lockEntry),
		sockets: make(map[sockKey]any),
		lruCap:  DefaultDentryCacheSize,
	}
	rootInode, err := fs.Root(ctx)
	if err != nil {
		return nil, fmt.Errorf("vfs: root of %s: %w", fs.Name(), err)
	}
	root, err := newDentry(ctx, v, fs, rootInode)
	if err != nil {
		return nil, fmt.Errorf("vfs: root of %s: %w", fs.Name(), err)
	}
	defer root.DecRef()
	if !root.IsDir() {
		return nil, fmt.Errorf("vfs: root of %s: %w", fs.Name(), unix.ENOTDIR)
	}
	v.addFilesystem(fs)
	v.root = v.newMount(fs, root, opts.Flags)
	return v, nil
}

// Root returns the root of the tree, with a reference: the initial root
// and cwd of the first task.
func (v *VirtualFilesystem) Root() VirtualDentry {
	vd := VirtualDentry{v.root, v.root.root}
	vd.IncRef()
	return vd
}

func (v *VirtualFilesystem) addFilesystem(fs Filesystem) {
	v.fsMu.Lock()
	v.fsRefs[fs]++
	v.fsMu.Unlock()
}

func (v *VirtualFilesystem) releaseFilesystem(ctx context.Context, fs Filesystem) {
	v.fsMu.Lock()
	v.fsRefs[fs]--
	last := v.fsRefs[fs] == 0
	if last {
		delete(v.fsRefs, fs)
	}
	v.fsMu.Unlock()
	if last {
		v.dropFilesystemCaches(fs)
		fs.Release(ctx)
	}
}

// dropFilesystemCaches evicts the unused dentries of fs, whose last mount
// is gone, so their inodes (host descriptors) go with it.
func (v *VirtualFilesystem) dropFilesystemCaches(fs Filesystem) {
	for {
		v.lruMu.Lock()
		var victims []*Dentry
		for d := v.lruHead; d != nil; d = d.lruNext {
			if d.fs == fs {
				victims = append(victims, d)
			}
		}
		for _, d := range victims {
			v.lruUnlinkLocked(d)
		}
		v.lruMu.Unlock()
		if len(victims) == 0 {
			return
		}
		for _, d := range victims {
			d.tryEvict()
		}
	}
}

// GetDentryAt returns the file pop names, with a reference.
func (v *VirtualFilesystem) GetDentryAt(ctx context.Context, creds *auth.Credentials, pop PathOperation) (VirtualDentry, error) {
	v.renameMu.RLock()
	defer v.renameMu.RUnlock()
	w := v.newWalker(ctx, creds, pop)
	defer w.release()
	return w.resolve(pop.FollowFinal)
}

// GetDirectoryAt returns the directory pop names, for chdir and chroot:
// ENOTDIR if it is not one, EACCES without search permission.
func (v *VirtualFilesystem) GetDirectoryAt(ctx context.Context, creds *auth.Credentials, pop PathOperation) (VirtualDentry, error) {
	pop.FollowFinal = true
	vd, err := v.GetDentryAt(ctx, creds, pop)
	if err != nil {
		return VirtualDentry{}, err
	}
	if !vd.Dentry.IsDir() {
		vd.DecRef(ctx)
		return VirtualDentry{}, unix.ENOTDIR
	}
	if err := v.checkAccess(ctx, creds, vd, MayExec); err != nil {
		vd.DecRef(ctx)
		return VirtualDentry{}, err
	}
	return vd, nil
}

// PathOf returns the path of vd as the task with the given root sees it,
// for getcwd and /proc/self/fd. reachable is false when vd lies outside
// root or was removed (getcwd then reports "(unreachable)").
func (v *VirtualFilesystem) PathOf(root, vd VirtualDentry) (path string, reachable bool) {
	v.renameMu.RLock()
	defer v.renameMu.RUnlock()
	p, ok := v.pathLocked(root, vd)
	return p, ok && !vd.Dentry.dead.Load()
}

// Stat returns the metadata of the file pop names.
func (v *VirtualFilesystem) Stat(ctx context.Context, creds *auth.Credentials, pop PathOperation) (Stat, error) {
	vd, err := v.GetDentryAt(ctx, creds, pop)
	if err != nil {
		return Stat{}, err
	}
	defer vd.DecRef(ctx)
	return vd.Dentry.inode.Stat(ctx)
}

// Statfs reports on the filesystem holding the file pop names.
func (v *VirtualFilesystem) Statfs(ctx context.Context, creds *auth.Credentials, pop PathOperation) (Statfs, error) {
	pop.FollowFinal = true
	vd, err := v.GetDentryAt(ctx, creds, pop)
	if err != nil {
		return Statfs{}, err
	}
	defer vd.DecRef(ctx)
	return statfsOf(ctx, vd)
}

func statfsOf(ctx context.Context, vd VirtualDentry) (Statfs, error) {
	st, err := vd.Mount.fs.Statfs(ctx)
	if err != nil {
		return Statfs{}, err
	}
	f := vd.Mount.Flags()
	if vd.Mount.ReadOnly() {
		f |= MountReadOnly
	}
	for _, m := range []struct{ ms, st uint32 }{
		{MountReadOnly, unix.ST_RDONLY}, {MountNoSuid, unix.ST_NOSUID}, {MountNoDev, unix.ST_NODEV},
		{MountNoExec, unix.ST_NOEXEC}, {MountNoAtime, unix.ST_NOATIME},
	} {
		if f&m.ms != 0 {
			st.Flags |= int64(m.st)
		}
	}
	return st, nil
}

// Access checks the access(2) mode (F_OK, or R_OK|W_OK|X_OK) on the file
// pop names for creds (the caller passes the real ids unless AT_EACCESS).
func (v *VirtualFilesystem) Access(ctx context.Context, creds *auth.Credentials, pop PathOperation, mode uint32) error {
	if mode&^uint32(unix.R_OK|unix.W_OK|unix.X_OK) != 0 {
		return unix.EINVAL
	}
	vd, err := v.GetDentryAt(ctx, creds, pop)
	if err != nil {
		return err
	}
	defer vd.DecRef(ctx)
	ats := AccessTypes(mode)
	if ats&MayWrite != 0 && vd.Mount.ReadOnly() && (vd.Dentry.typ == unix.S_IFREG || vd.Dentry.IsDir() || vd.Dentry.IsSymlink()) {
		return unix.EROFS
	}
	if ats == 0 {
		return nil
	}
	return v.checkAccess(ctx, creds, vd, ats)
}

// Readlink returns the target of the symbolic link pop names.
func (v *VirtualFilesystem) Readlink(ctx context.Context, creds *auth.Credentials, pop PathOperation) (string, error) {
	pop.FollowFinal = false
	vd, err := v.GetDentryAt(ctx, creds, pop)
	if err != nil {
		return "", err
	}
	defer vd.DecRef(ctx)
	sl, ok := vd.Dentry.inode.(Symlink)
	if !vd.Dentry.IsSymlink() || !ok {
		return "", unix.EINVAL
	}
	return sl.Readlink(ctx)
}

// SetStat changes metadata of the file pop names (chmod, chown, utimes,
// truncate), after the checks those calls make. Times may hold UTIME_NOW
// and UTIME_OMIT in Nsec.
func (v *VirtualFilesystem) SetStat(ctx context.Context, creds *auth.Credentials, pop PathOperation, s SetStat) error {
	vd, err := v.GetDentryAt(ctx, creds, pop)
	if err != nil {
		return err
	}
	defer vd.DecRef(ctx)
	if s.Mask&SetSize != 0 {
		if vd.Dentry.IsDir() {
			return unix.EISDIR
		}
		if err := v.checkAccess(ctx, creds, vd, MayWrite); err != nil {
			return err
		}
	}
	return v.setStat(ctx, creds, vd, s)
}

// Chmod sets the permission bits of the file pop names.
func (v *VirtualFilesystem) Chmod(ctx context.Context, creds *auth.Credentials, pop PathOperation, mode uint32) error {
	return v.SetStat(ctx, creds, pop, SetStat{Mask: SetMode, Mode: mode})
}

// Chown changes the owner and group; -1 (as uint32) leaves one alone.
func (v *VirtualFilesystem) Chown(ctx context.Context, creds *auth.Credentials, pop PathOperation, uid, gid uint32) error {
	s := SetStat{UID: uid, GID: gid}
	if uid != ^uint32(0) {
		s.Mask |= SetUID
	}
	if gid != ^uint32(0) {
		s.Mask |= SetGID
	}
	return v.SetStat(ctx, creds, pop, s)
}

// Utimes sets access and modification times (utimensat semantics:
// UTIME_NOW and UTIME_OMIT in Nsec).
func (v *VirtualFilesystem) Utimes(ctx context.Context, creds *auth.Credentials, pop PathOperation, atime, mtime unix.Timespec) error {
	return v.SetStat(ctx, creds, pop, SetStat{Mask: SetAtime | SetMtime, Atime: atime, Mtime: mtime})
}

// Truncate sets the size of the regular file pop names (truncate(2)).
func (v *VirtualFilesystem) Truncate(ctx context.Context, creds *auth.Credentials, pop PathOperation, size int64) error {
	pop.FollowFinal = true
	return v.SetStat(ctx, creds, pop, SetStat{Mask: SetSize, Size: size})
}

// setStat runs the permission rules, resolves UTIME_NOW/UTIME_OMIT and
// applies s to vd.
func (v *VirtualFilesystem) setStat(ctx context.Context, creds *auth.Credentials, vd VirtualDentry, s SetStat) error {
	timesNow := false
	if s.Mask&(SetAtime|SetMtime) != 0 {
		now := Now()
		timesNow = true
		for _, f := range []struct {
			bit uint32
			ts  *unix.Timespec
		}{{SetAtime, &s.Atime}, {SetMtime, &s.Mtime}} {
			if s.Mask&f.bit == 0 {
				continue
			}
			switch f.ts.Nsec {
			case unix.UTIME_OMIT:
				s.Mask &^= f.bit
			case unix.UTIME_NOW:
				*f.ts = now
			default:
				if f.ts.Nsec < 0 || f.ts.Nsec >= 1e9 {
					return unix.EINVAL
				}
				timesNow = false
			}
		}
	}
	if s.Mask == 0 {
		return nil
	}
	if vd.Mount.ReadOnly() {
		return unix.EROFS
	}
	st, err := vd.Dentry.inode.Stat(ctx)
	if err != nil {
		return err
	}
	if err := checkSetStat(creds, &st, &s, timesNow); err != nil {
		return err
	}
	return vd.Dentry.inode.SetStat(ctx, s)
}

// createAttr returns the attributes of a new file of the given mode made
// by creds in the directory with stat dir: the group comes from the
// directory when it is set-group-ID, and so does that bit for new
// directories.
func createAttr(creds *auth.Credentials, dir *Stat, mode uint32) CreateAttr {
	a := CreateAttr{Mode: mode, UID: creds.UID, GID: creds.GID}
	if dir.Mode&unix.S_ISGID != 0 {
		a.GID = dir.GID
		if mode&unix.S_IFMT == unix.S_IFDIR {
			a.Mode |= unix.S_ISGID
		}
	}
	return a
}

// parentForCreate walks to the parent of a new name and checks that a
// child may be made there. It returns the parent (with a reference) with
// its mu locked and the name; the caller unlocks and drops it.
func (v *VirtualFilesystem) parentForCreate(w *walker, isDir bool) (parent VirtualDentry, name string, err error) {
	last, trailing, err := w.walkToLast()
	if err != nil {
		return VirtualDentry{}, "", err
	}
	if last == "" || last == "." || last == ".." {
		return VirtualDentry{}, "", unix.EEXIST
	}
	if err := w.mayLookup(w.cur); err != nil {
		return VirtualDentry{}, "", err
	}
	if len(last) > NameMax {
		return VirtualDentry{}, "", unix.ENAMETOOLONG
	}
	parent = w.cur
	d := parent.Dentry
	d.mu.Lock()
	if child, err := d.lookupLocked(w.ctx, last); err == nil {
		d.mu.Unlock()
		child.DecRef()
		return VirtualDentry{}, "", unix.EEXIST
	} else if err != unix.ENOENT {
		d.mu.Unlock()
		return VirtualDentry{}, "", err
	}
	if trailing && !isDir {
		d.mu.Unlock()
		return VirtualDentry{}, "", unix.ENOENT
	}
	if err := v.mayCreate(w.ctx, w.creds, parent); err != nil {
		d.mu.Unlock()
		return VirtualDentry{}, "", err
	}
	return w.take(), last, nil
}

// mayCreate checks that creds may add or remove names in dir.
func (v *VirtualFilesystem) mayCreate(ctx context.Context, creds *auth.Credentials, dir VirtualDentry) error {
	if dir.Dentry.dead.Load() {
		return unix.ENOENT
	}
	if dir.Mount.ReadOnly() {
		return unix.EROFS
	}
	return v.checkAccess(ctx, creds, dir, MayWrite|MayExec)
}

// create runs fn on the parent directory of a new name with the checks
// every creating call shares.
func (v *VirtualFilesystem) create(ctx context.Context, creds *auth.Credentials, pop PathOperation, isDir bool, fn func(dir Dir, dirStat *Stat, name string) error) error {
	v.renameMu.RLock()
	defer v.renameMu.RUnlock()
	w := v.newWalker(ctx, creds, pop)
	defer w.release()
	parent, name, err := v.parentForCreate(w, isDir)
	if err != nil {
		return err
	}
	defer parent.DecRef(ctx)
	defer parent.Dentry.mu.Unlock()
	dir, ok := parent.Dentry.inode.(Dir)
	if !ok {
		return unix.ENOTDIR
	}
	st, err := dir.Stat(ctx)
	if err != nil {
		return err
	}
	return fn(dir, &st, name)
}

// Mkdir makes a directory; mode has the caller's umask applied.
func (v *VirtualFilesystem) Mkdir(ctx context.Context, creds *auth.Credentials, pop PathOperation, mode uint32) error {
	return v.create(ctx, creds, pop, true, func(dir Dir, st *Stat, name string) error {
		return dir.Mkdir(ctx, name, createAttr(creds, st, unix.S_IFDIR|mode&0o7777))
	})
}

// Mknod makes a regular file, FIFO, socket or device node. Device nodes
// need CAP_MKNOD and a filesystem that holds them (devfs).
func (v *VirtualFilesystem) Mknod(ctx context.Context, creds *auth.Credentials, pop PathOperation, mode uint32, rdev uint64) error {
	typ := mode & unix.S_IFMT
	switch typ {
	case 0, unix.S_IFREG:
		mode = unix.S_IFREG | mode&0o7777
	case unix.S_IFIFO, unix.S_IFSOCK:
	case unix.S_IFCHR, unix.S_IFBLK:
		if !creds.HasCap(auth.CapMknod) {
			return unix.EPERM
		}
	case unix.S_IFDIR:
		return unix.EPERM
	default:
		return unix.EINVAL
	}
	return v.create(ctx, creds, pop, false, func(dir Dir, st *Stat, name string) error {
		attr := createAttr(creds, st, mode)
		attr.Rdev = rdev
		if mode&unix.S_IFMT == unix.S_IFREG {
			_, err := dir.Create(ctx, name, attr)
			return err
		}
		return dir.Mknod(ctx, name, attr)
	})
}

// Symlink makes a symbolic link at pop pointing to target.
func (v *VirtualFilesystem) Symlink(ctx context.Context, creds *auth.Credentials, target string, pop PathOperation) error {
	if target == "" {
		return unix.ENOENT
	}
	if len(target) >= PathMax {
		return unix.ENAMETOOLONG
	}
	return v.create(ctx, creds, pop, false, func(dir Dir, st *Stat, name string) error {
		return dir.Symlink(ctx, name, target, createAttr(creds, st, unix.S_IFLNK|0o777))
	})
}

// Link makes newpop a hard link to the file oldpop names (oldpop's
// FollowFinal is linkat's AT_SYMLINK_FOLLOW).
func (v *VirtualFilesystem) Link(ctx context.Context, creds *auth.Credentials, oldpop, newpop PathOperation) error {
	old, err := v.GetDentryAt(ctx, creds, oldpop)
	if err != nil {
		return err
	}
	defer old.DecRef(ctx)
	if old.Dentry.IsDir() {
		return unix.EPERM
	}
	st, err := old.Dentry.inode.Stat(ctx)
	if err != nil {
		return err
	}
	if st.Nlink == 0 && !old.Dentry.linkable {
		return unix.ENOENT
	}
	v.renameMu.RLock()
	defer v.renameMu.RUnlock()
	w := v.newWalker(ctx, creds, newpop)
	defer w.release()
	parent, name, err := v.parentForCreate(w, false)
	if err != nil {
		return err
	}
	defer parent.DecRef(ctx)
	defer parent.Dentry.mu.Unlock()
	if parent.Mount != old.Mount {
		return unix.EXDEV
	}
	dir, ok := parent.Dentry.inode.(Dir)
	if !ok {
		return unix.ENOTDIR
	}
	return dir.Link(ctx, name, old.Dentry.inode)
}

// removeTarget walks to the parent of a name to remove and looks the
// child up. It returns them with references and the parent's mu held.
func (v *VirtualFilesystem) removeTarget(w *walker, rmdir bool) (parent VirtualDentry, child *Dentry, name string, err error) {
	last, trailing, err := w.walkToLast()
	if err != nil {
		return VirtualDentry{}, nil, "", err
	}
	switch last {
	case "":
		if rmdir {
			return VirtualDentry{}, nil, "", unix.EBUSY
		}
		return VirtualDentry{}, nil, "", unix.EISDIR
	case ".":
		if rmdir {
			return VirtualDentry{}, nil, "", unix.EINVAL
		}
		return VirtualDentry{}, nil, "", unix.EISDIR
	case "..":
		if rmdir {
			return VirtualDentry{}, nil, "", unix.ENOTEMPTY
		}
		return VirtualDentry{}, nil, "", unix.EISDIR
	}
	if err := w.mayLookup(w.cur); err != nil {
		return VirtualDentry{}, nil, "", err
	}
	parent = w.cur
	d := parent.Dentry
	d.mu.Lock()
	child, err = d.lookupLocked(w.ctx, last)
	if err != nil {
		d.mu.Unlock()
		return VirtualDentry{}, nil, "", err
	}
	fail := func(err error) (VirtualDentry, *Dentry, string, error) {
		d.mu.Unlock()
		child.DecRef()
		return VirtualDentry{}, nil, "", err
	}
	if rmdir && !child.IsDir() {
		return fail(unix.ENOTDIR)
	}
	if !rmdir && child.IsDir() {
		return fail(unix.EISDIR)
	}
	if !rmdir && trailing {
		return fail(unix.ENOTDIR)
	}
	if child.mounts.Load() > 0 {
		return fail(unix.EBUSY)
	}
	if err := v.mayCreate(w.ctx, w.creds, parent); err != nil {
		return fail(err)
	}
	dst, err := d.inode.Stat(w.ctx)
	if err != nil {
		return fail(err)
	}
	cst, err := child.inode.Stat(w.ctx)
	if err != nil {
		return fail(err)
	}
	if err := checkSticky(w.creds, &dst, &cst); err != nil {
		return fail(err)
	}
	return w.take(), child, last, nil
}

func (v *VirtualFilesystem) remove(ctx context.Context, creds *auth.Credentials, pop PathOperation, rmdir bool) error {
	v.renameMu.RLock()
	defer v.renameMu.RUnlock()
	w := v.newWalker(ctx, creds, pop)
	defer w.release()
	parent, child, name, err := v.removeTarget(w, rmdir)
	if err != nil {
		return err
	}
	defer parent.DecRef(ctx)
	defer child.DecRef()
	defer parent.Dentry.mu.Unlock()
	dir := parent.Dentry.inode.(Dir)
	if rmdir {
		err = dir.Rmdir(ctx, name, child.inode)
	} else {
		err = dir.Unlink(ctx, name, child.inode)
	}
	if err != nil {
		return err
	}
	child.dead.Store(true)
	parent.Dentry.detachLocked(child)
	return nil
}

// Unlink removes a name that is not a directory.
func (v *VirtualFilesystem) Unlink(ctx context.Context, creds *auth.Credentials, pop PathOperation) error {
	return v.remove(ctx, creds, pop, false)
}

// Rmdir removes an empty directory.
func (v *VirtualFilesystem) Rmdir(ctx context.Context, creds *auth.Credentials, pop PathOperation) error {
	return v.remove(ctx, creds, pop, true)
}

// CachedDentries returns how many dentries the cache holds below the
// roots of the attached mounts: what is pinned by open files, working
// directories and mountpoints. For diagnostics and leak tests.
func (v *VirtualFilesystem) CachedDentries() int {
	v.renameMu.RLock()
	roots := []*Dentry{v.root.root}
	for _, m := range v.mounts {
		roots = append(roots, m.root)
	}
	v.renameMu.RUnlock()
	n := 0
	for _, r := range roots {
		n += r.countCached()
	}
	return n
}

// SetDentryCacheSize sets how many unused dentries stay cached (0: none,
// every dentry goes with its last reference). Each may hold a host file
// descriptor on hostfs.
func (v *VirtualFilesystem) SetDentryCacheSize(n int) {
	v.lruMu.Lock()
	v.lruCap = max(n, 0)
	v.lruMu.Unlock()
	v.lruTrim()
}

// DropCaches evicts every unused dentry, as echo 2 > drop_caches.
func (v *VirtualFilesystem) DropCaches() {
	v.lruMu.Lock()
	c := v.lruCap
	v.lruCap = 0
	v.lruMu.Unlock()
	v.lruTrim()
	v.lruMu.Lock()
	v.lruCap = c
	v.lruMu.Unlock()
}

// lruAdd puts an unused dentry at the tail of the list, and says whether
// it is kept there.
// Preconditions: d's parent's mu is held.
func (v *VirtualFilesystem) lruAdd(d *Dentry) bool {
	v.lruMu.Lock()
	defer v.lruMu.Unlock()
	if v.lruCap == 0 {
		return false
	}
	if d.inLRU {
		v.lruUnlinkLocked(d)
	}
	d.inLRU = true
	d.lruPrev, d.lruNext = v.lruTail, nil
	if v.lruTail != nil {
		v.lruTail.lruNext = d
	} else {
		v.lruHead = d
	}
	v.lruTail = d
	v.lruLen++
	return true
}

// Preconditions: v.lruMu is held; d.inLRU.
func (v *VirtualFilesystem) lruUnlinkLocked(d *Dentry) {
	if d.lruPrev != nil {
		d.lruPrev.lruNext = d.lruNext
	} else {
		v.lruHead = d.lruNext
	}
	if d.lruNext != nil {
		d.lruNext.lruPrev = d.lruPrev
	} else {
		v.lruTail = d.lruPrev
	}
	d.lruPrev, d.lruNext, d.inLRU = nil, nil, false
	v.lruLen--
}

func (v *VirtualFilesystem) lruRemove(d *Dentry) {
	v.lruMu.Lock()
	if d.inLRU {
		v.lruUnlinkLocked(d)
	}
	v.lruMu.Unlock()
}

// lruTrim evicts the oldest unused dentries while the list is too long.
// Evicting a leaf may make its parent unused, which joins the list.
func (v *VirtualFilesystem) lruTrim() {
	for {
		v.lruMu.Lock()
		if v.lruLen <= v.lruCap || v.lruHead == nil {
			v.lruMu.Unlock()
			return
		}
		d := v.lruHead
		v.lruUnlinkLocked(d)
		v.lruMu.Unlock()
		d.tryEvict()
	}
}
