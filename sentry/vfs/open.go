package vfs

import (
	"context"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/waiter"
)

// OpenOptions are the arguments of open(2) beyond the path.
type OpenOptions struct {
	// Flags are open(2)'s flags (O_CLOEXEC is the caller's business and
	// is ignored here).
	Flags uint32
	// Mode is the mode of a file O_CREAT makes, umask already applied.
	Mode uint32
	// Exec asks for the file to be executed (execve, uselib): it must be
	// a regular file with execute permission on a mount without noexec.
	Exec bool
}

// PendingOpenError is returned by Open for a file whose open waits (a
// FIFO opened for reading or writing only, without O_NONBLOCK, before the
// other end is open). errors.Is(err, unix.EAGAIN) holds. The caller waits
// for Mask on File (EventRegister) until File.OpenReady, then uses File;
// if it gives up (a signal), it drops File with DecRef.
type PendingOpenError struct {
	File *File
	Mask waiter.EventMask
}

func (e *PendingOpenError) Error() string { return "open would block" }

// Is makes errors.Is(err, unix.EAGAIN) true.
func (e *PendingOpenError) Is(target error) bool { return target == unix.EAGAIN }

const (
	openStatusFlags = unix.O_APPEND | unix.O_NONBLOCK | unix.O_DSYNC | unix.O_SYNC | unix.O_DIRECT | unix.O_NOATIME | unix.O_ASYNC | unix.O_LARGEFILE
	// SettableFlags are the status flags F_SETFL may change.
	SettableFlags = unix.O_APPEND | unix.O_NONBLOCK | unix.O_DIRECT | unix.O_NOATIME | unix.O_ASYNC
)

// Open opens the file pop names, as openat(2). pop.FollowFinal is
// ignored: O_NOFOLLOW (and O_CREAT|O_EXCL) decide.
func (v *VirtualFilesystem) Open(ctx context.Context, creds *auth.Credentials, pop PathOperation, opts OpenOptions) (*File, error) {
	flags := opts.Flags
	if flags&unix.O_PATH != 0 {
		flags &= unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	}
	if flags&unix.O_TMPFILE == unix.O_TMPFILE {
		return v.openTmpfile(ctx, creds, pop, opts)
	}
	if flags&unix.O_CREAT != 0 && flags&unix.O_DIRECTORY != 0 {
		return nil, unix.EINVAL
	}
	create := flags&unix.O_CREAT != 0
	excl := create && flags&unix.O_EXCL != 0
	follow := flags&unix.O_NOFOLLOW == 0 && !excl

	v.renameMu.RLock()
	vd, created, err := v.openTarget(ctx, creds, pop, flags, opts.Mode, create, excl, follow)
	v.renameMu.RUnlock()
	if err != nil {
		return nil, err
	}
	f, err := v.openDentry(ctx, creds, vd, flags, opts.Exec, created)
	vd.DecRef(ctx)
	if err != nil {
		return nil, err
	}
	if ow, ok := f.impl.(OpenWaiter); ok && !ow.OpenReady() {
		return nil, &PendingOpenError{File: f, Mask: waiter.EventOpen}
	}
	return f, nil
}

// openTarget finds (or with O_CREAT makes) the file to open.
// Preconditions: renameMu is held for reading.
func (v *VirtualFilesystem) openTarget(ctx context.Context, creds *auth.Credentials, pop PathOperation, flags, mode uint32, create, excl, follow bool) (VirtualDentry, bool, error) {
	w := v.newWalker(ctx, creds, pop)
	defer w.release()
	if !create {
		vd, err := w.resolve(follow)
		return vd, false, err
	}
	retried := false
	for {
		last, trailing, err := w.walkToLast()
		if err != nil {
			return VirtualDentry{}, false, err
		}
		if !isNormalName(last) {
			// "/", "." and ".." name existing directories; "" is also
			// where a magic link led.
			if excl {
				return VirtualDentry{}, false, unix.EEXIST
			}
			if last == "" && !w.cur.Dentry.IsDir() {
				return w.take(), false, nil
			}
			return VirtualDentry{}, false, unix.EISDIR
		}
		if err := w.mayLookup(w.cur); err != nil {
			return VirtualDentry{}, false, err
		}
		if len(last) > NameMax {
			return VirtualDentry{}, false, unix.ENAMETOOLONG
		}
		parent := w.cur
		d := parent.Dentry
		d.mu.Lock()
		child, err := d.lookupLocked(ctx, last)
		if err == nil {
			d.mu.Unlock()
			parent.Mount.incRef()
			vd := v.followMounts(VirtualDentry{parent.Mount, child})
			if excl {
				vd.DecRef(ctx)
				return VirtualDentry{}, false, unix.EEXIST
			}
			if vd.Dentry.IsSymlink() && follow {
				rest := ""
				if trailing {
					rest = "/"
				}
				if err := w.followLink(vd, rest); err != nil {
					return VirtualDentry{}, false, err
				}
				continue
			}
			if vd.Dentry.IsDir() {
				vd.DecRef(ctx)
				return VirtualDentry{}, false, unix.EISDIR
			}
			if trailing {
				vd.DecRef(ctx)
				return VirtualDentry{}, false, unix.ENOTDIR
			}
			return vd, false, nil
		}
		if err != unix.ENOENT {
			d.mu.Unlock()
			return VirtualDentry{}, false, err
		}
		if trailing {
			d.mu.Unlock()
			return VirtualDentry{}, false, unix.EISDIR
		}
		vd, err := v.createRegular(ctx, creds, parent, last, mode)
		d.mu.Unlock()
		if err == unix.EEXIST && !excl && !retried {
			// Made behind the VFS's back (a host process) since the
			// lookup: open it instead, once.
			retried = true
			w.rest = last
			continue
		}
		return vd, err == nil, err
	}
}

// createRegular makes the regular file name in parent for O_CREAT.
// Preconditions: parent.Dentry.mu is held.
func (v *VirtualFilesystem) createRegular(ctx context.Context, creds *auth.Credentials, parent VirtualDentry, name string, mode uint32) (VirtualDentry, error) {
	if err := v.mayCreate(ctx, creds, parent); err != nil {
		return VirtualDentry{}, err
	}
	dir, ok := parent.Dentry.inode.(Dir)
	if !ok {
		return VirtualDentry{}, unix.ENOTDIR
	}
	st, err := dir.Stat(ctx)
	if err != nil {
		return VirtualDentry{}, err
	}
	inode, err := dir.Create(ctx, name, createAttr(creds, &st, unix.S_IFREG|mode&0o7777))
	if err != nil {
		return VirtualDentry{}, err
	}
	child, err := parent.Dentry.insertLocked(ctx, name, inode)
	if err != nil {
		return VirtualDentry{}, err
	}
	parent.Mount.incRef()
	return VirtualDentry{parent.Mount, child}, nil
}

// openDentry opens the file at vd after the checks open(2) makes.
func (v *VirtualFilesystem) openDentry(ctx context.Context, creds *auth.Credentials, vd VirtualDentry, flags uint32, exec, created bool) (*File, error) {
	d := vd.Dentry
	if flags&unix.O_DIRECTORY != 0 && !d.IsDir() {
		return nil, unix.ENOTDIR
	}
	if flags&unix.O_PATH != 0 {
		return v.newFile(vd, &pathFile{}, flags, false), nil
	}
	acc := flags & unix.O_ACCMODE
	var ats AccessTypes
	switch acc {
	case unix.O_RDONLY:
		ats = MayRead
	case unix.O_WRONLY:
		ats = MayWrite
	case unix.O_RDWR, unix.O_ACCMODE:
		ats = MayRead | MayWrite
	}
	if flags&unix.O_TRUNC != 0 {
		ats |= MayWrite
	}
	if exec {
		ats = MayExec
		if d.typ != unix.S_IFREG {
			return nil, unix.EACCES
		}
	}
	switch d.typ {
	case unix.S_IFLNK:
		return nil, unix.ELOOP
	case unix.S_IFSOCK:
		return nil, unix.ENXIO
	case unix.S_IFDIR:
		if ats&MayWrite != 0 {
			return nil, unix.EISDIR
		}
	}
	if ats&MayWrite != 0 && vd.Mount.ReadOnly() && (d.typ == unix.S_IFREG || d.typ == unix.S_IFDIR) {
		return nil, unix.EROFS
	}
	st, err := d.inode.Stat(ctx)
	if err != nil {
		return nil, err
	}
	if !created {
		if err := v.checkAccess(ctx, creds, vd, ats); err != nil {
			return nil, err
		}
	}
	if flags&unix.O_NOATIME != 0 && !isOwner(creds, &st) {
		return nil, unix.EPERM
	}
	var impl FileImpl
	switch d.typ {
	case unix.S_IFDIR:
		dir, ok := d.inode.(Dir)
		if !ok {
			return nil, unix.ENOTDIR
		}
		r, err := dir.OpenDir(ctx)
		if err != nil {
			return nil, err
		}
		impl = &dirFile{reader: r}
	case unix.S_IFCHR, unix.S_IFBLK:
		if vd.Mount.Flags()&MountNoDev != 0 {
			return nil, unix.EACCES
		}
		dev := v.device(d.typ, st.Rdev)
		if dev == nil {
			return nil, unix.ENXIO
		}
		impl, err = dev.Open(ctx, vd, flags)
		if err != nil {
			return nil, err
		}
	default:
		if flags&unix.O_TRUNC != 0 && d.typ == unix.S_IFREG && !created {
			if err := d.inode.SetStat(ctx, SetStat{Mask: SetSize | SetMtime | SetCtime, Mtime: Now(), Ctime: Now()}); err != nil {
				return nil, err
			}
		}
		impl, err = d.inode.Open(ctx, flags)
		if err != nil {
			return nil, err
		}
	}
	stream := d.typ == unix.S_IFIFO || d.typ == unix.S_IFSOCK
	return v.newFile(vd, impl, flags, stream), nil
}

// pathFile is the impl of an O_PATH file: every I/O operation fails.
type pathFile struct{ FileDefaults }

// NewAnonFile wraps impl in a File that has no name: pipes from pipe(2),
// eventfds, sockets. inode answers fstat; stream says the file has no
// offset (read and write ignore it, pread gives ESPIPE).
func (v *VirtualFilesystem) NewAnonFile(ctx context.Context, inode Inode, impl FileImpl, flags uint32, stream bool) (*File, error) {
	d, err := newDentry(ctx, v, anonFS{}, inode)
	if err != nil {
		return nil, err
	}
	defer d.DecRef()
	v.addFilesystem(anonFS{})
	m := v.newMount(anonFS{}, d, 0)
	vd := VirtualDentry{m, d}
	d.IncRef()
	return v.newFile(vd, impl, flags, stream), nil
}

// anonFS is the filesystem of anonymous files.
type anonFS struct{}

func (anonFS) Name() string                        { return "anon_inodefs" }
func (anonFS) Root(context.Context) (Inode, error) { return nil, unix.ENOENT }
func (anonFS) Statfs(context.Context) (Statfs, error) {
	return Statfs{Type: 0x09041934, Bsize: 4096, NameLen: NameMax}, nil
}
func (anonFS) Release(context.Context) {}

// openTmpfile implements O_TMPFILE: an unnamed regular file in the
// directory pop names, which linkat can name later unless O_EXCL.
func (v *VirtualFilesystem) openTmpfile(ctx context.Context, creds *auth.Credentials, pop PathOperation, opts OpenOptions) (*File, error) {
	flags := opts.Flags &^ (unix.O_TMPFILE &^ unix.O_DIRECTORY)
	if acc := flags & unix.O_ACCMODE; acc != unix.O_WRONLY && acc != unix.O_RDWR {
		return nil, unix.EINVAL
	}
	if flags&unix.O_CREAT != 0 || flags&unix.O_PATH != 0 {
		return nil, unix.EINVAL
	}
	pop.FollowFinal = true
	dir, err := v.GetDentryAt(ctx, creds, pop)
	if err != nil {
		return nil, err
	}
	defer dir.DecRef(ctx)
	if !dir.Dentry.IsDir() {
		return nil, unix.ENOTDIR
	}
	if err := v.mayCreate(ctx, creds, dir); err != nil {
		return nil, err
	}
	td, ok := dir.Dentry.inode.(TmpfileDir)
	if !ok {
		return nil, unix.EOPNOTSUPP
	}
	st, err := dir.Dentry.inode.Stat(ctx)
	if err != nil {
		return nil, err
	}
	inode, err := td.CreateTmpfile(ctx, createAttr(creds, &st, unix.S_IFREG|opts.Mode&0o7777), flags&unix.O_EXCL == 0)
	if err != nil {
		return nil, err
	}
	d, err := newDentry(ctx, v, dir.Dentry.fs, inode)
	if err != nil {
		return nil, err
	}
	// A nameless child of the directory: never cached, already "removed",
	// so PathOf reports it unreachable, and ".." from it is dir.
	dir.Dentry.IncRef()
	d.parent.Store(dir.Dentry)
	d.name = "#tmpfile"
	d.dead.Store(true)
	d.linkable = flags&unix.O_EXCL == 0
	dir.Mount.incRef()
	vd := VirtualDentry{dir.Mount, d}
	defer vd.DecRef(ctx)
	return v.openDentry(ctx, creds, vd, flags&^(unix.O_DIRECTORY|unix.O_EXCL), false, true)
}
