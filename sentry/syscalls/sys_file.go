package syscalls

import (
	"errors"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
)

// The file family: open, stat, directories reading, sizes, syncing, the
// working directory and root, umask, statfs, access, chmod, chown and
// times. Names (mkdir, unlink, rename, links) are in sys_path.go.
func init() {
	register(abi.SYS_OPEN, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return openAt(t, abi.AT_FDCWD, a.Args[0], uint32(a.Args[1]), uint32(a.Args[2]), 0)
	})
	register(abi.SYS_OPENAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return openAt(t, int32(a.Args[0]), a.Args[1], uint32(a.Args[2]), uint32(a.Args[3]), 0)
	})
	register(abi.SYS_CREAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return openAt(t, abi.AT_FDCWD, a.Args[0], unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC, uint32(a.Args[1]), 0)
	})
	register(abi.SYS_OPENAT2, sysOpenat2)

	register(abi.SYS_STAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, fstatat(t, abi.AT_FDCWD, a.Args[0], a.Args[1], 0)
	})
	register(abi.SYS_LSTAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, fstatat(t, abi.AT_FDCWD, a.Args[0], a.Args[1], abi.AT_SYMLINK_NOFOLLOW)
	})
	register(abi.SYS_NEWFSTATAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, fstatat(t, int32(a.Args[0]), a.Args[1], a.Args[2], uint32(a.Args[3]))
	})
	register(abi.SYS_STATX, sysStatx)
	register(abi.SYS_GETDENTS64, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return getdents(t, a.Args[0], a.Args[1], a.Args[2], true)
	})
	register(abi.SYS_GETDENTS, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return getdents(t, a.Args[0], a.Args[1], a.Args[2], false)
	})

	register(abi.SYS_TRUNCATE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if int64(a.Args[1]) < 0 {
			return 0, unix.EINVAL
		}
		return 0, withPath(t, abi.AT_FDCWD, a.Args[0], true, false, func(pop vfs.PathOperation) error {
			return t.Kernel().VFS.Truncate(t.Ctx(), t.Creds().VFSCreds(), pop, int64(a.Args[1]))
		})
	})
	register(abi.SYS_FTRUNCATE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		if int64(a.Args[1]) < 0 {
			return 0, unix.EINVAL
		}
		if f.IsPath() {
			return 0, unix.EBADF
		}
		return 0, f.Truncate(t.Ctx(), int64(a.Args[1]))
	})
	register(abi.SYS_FALLOCATE, sysFallocate)
	register(abi.SYS_FSYNC, sysFsync)
	register(abi.SYS_FDATASYNC, sysFsync)
	register(abi.SYS_SYNCFS, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		f.DecRef(t.Ctx())
		return 0, nil
	})
	register(abi.SYS_SYNC, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return 0, nil })
	register(abi.SYS_SYNC_FILE_RANGE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		off, n, flags := int64(a.Args[1]), int64(a.Args[2]), a.Args[3]
		if flags&^7 != 0 || off < 0 || n < 0 || off+n < off {
			return 0, unix.EINVAL
		}
		if st, err := f.Stat(t.Ctx()); err == nil && st.Type() != unix.S_IFREG && st.Type() != unix.S_IFDIR && st.Type() != unix.S_IFLNK && st.Type() != unix.S_IFBLK {
			return 0, unix.ESPIPE
		}
		return 0, nil
	})

	register(abi.SYS_CHDIR, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, withPath(t, abi.AT_FDCWD, a.Args[0], true, false, func(pop vfs.PathOperation) error {
			vd, err := t.Kernel().VFS.GetDirectoryAt(t.Ctx(), t.Creds().VFSCreds(), pop)
			if err != nil {
				return err
			}
			t.FS().SetCwd(t.Ctx(), vd)
			return nil
		})
	})
	register(abi.SYS_FCHDIR, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, withFD(t, a.Args[0], func(pop vfs.PathOperation) error {
			vd, err := t.Kernel().VFS.GetDirectoryAt(t.Ctx(), t.Creds().VFSCreds(), pop)
			if err != nil {
				return err
			}
			t.FS().SetCwd(t.Ctx(), vd)
			return nil
		})
	})
	register(abi.SYS_GETCWD, sysGetcwd)
	register(abi.SYS_CHROOT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, withPath(t, abi.AT_FDCWD, a.Args[0], true, false, func(pop vfs.PathOperation) error {
			vd, err := t.Kernel().VFS.GetDirectoryAt(t.Ctx(), t.Creds().VFSCreds(), pop)
			if err != nil {
				return err
			}
			if t.Creds().Caps&auth.CapSetOf(capSysChroot) == 0 {
				vd.DecRef(t.Ctx())
				return unix.EPERM
			}
			t.FS().SetRoot(t.Ctx(), vd)
			return nil
		})
	})
	register(abi.SYS_UMASK, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return uint64(t.FS().SwapUmask(uint32(a.Args[0]) & 0o777)), nil
	})
	register(abi.SYS_STATFS, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, withPath(t, abi.AT_FDCWD, a.Args[0], true, false, func(pop vfs.PathOperation) error {
			st, err := t.Kernel().VFS.Statfs(t.Ctx(), t.Creds().VFSCreds(), pop)
			if err != nil {
				return err
			}
			return copyOutStatfs(t, a.Args[1], &st)
		})
	})
	register(abi.SYS_FSTATFS, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		st, err := f.Statfs(t.Ctx())
		if err != nil {
			return 0, err
		}
		return 0, copyOutStatfs(t, a.Args[1], &st)
	})

	register(abi.SYS_ACCESS, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, faccessat(t, abi.AT_FDCWD, a.Args[0], a.Args[1], 0)
	})
	register(abi.SYS_FACCESSAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, faccessat(t, int32(a.Args[0]), a.Args[1], a.Args[2], 0)
	})
	register(abi.SYS_FACCESSAT2, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, faccessat(t, int32(a.Args[0]), a.Args[1], a.Args[2], a.Args[3])
	})

	register(abi.SYS_CHMOD, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, fchmodat(t, abi.AT_FDCWD, a.Args[0], uint32(a.Args[1]), 0)
	})
	register(abi.SYS_FCHMODAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, fchmodat(t, int32(a.Args[0]), a.Args[1], uint32(a.Args[2]), 0)
	})
	register(abi.SYS_FCHMODAT2, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, fchmodat(t, int32(a.Args[0]), a.Args[1], uint32(a.Args[2]), a.Args[3])
	})
	register(abi.SYS_FCHMOD, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		return 0, f.SetStat(t.Ctx(), t.Creds().VFSCreds(), vfs.SetStat{Mask: vfs.SetMode, Mode: uint32(a.Args[1]) & 0o7777})
	})

	register(abi.SYS_CHOWN, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, fchownat(t, abi.AT_FDCWD, a.Args[0], a.Args[1], a.Args[2], 0)
	})
	register(abi.SYS_LCHOWN, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, fchownat(t, abi.AT_FDCWD, a.Args[0], a.Args[1], a.Args[2], abi.AT_SYMLINK_NOFOLLOW)
	})
	register(abi.SYS_FCHOWNAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, fchownat(t, int32(a.Args[0]), a.Args[1], a.Args[2], a.Args[3], a.Args[4])
	})
	register(abi.SYS_FCHOWN, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		return 0, f.SetStat(t.Ctx(), t.Creds().VFSCreds(), chownStat(a.Args[1], a.Args[2]))
	})

	register(abi.SYS_UTIME, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		times, err := copyInUtimbuf(t, a.Args[1])
		if err != nil {
			return 0, err
		}
		return 0, utimesAt(t, abi.AT_FDCWD, a.Args[0], times, 0, false)
	})
	register(abi.SYS_UTIMES, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		times, err := copyInTimevals(t, a.Args[1])
		if err != nil {
			return 0, err
		}
		return 0, utimesAt(t, abi.AT_FDCWD, a.Args[0], times, 0, false)
	})
	register(abi.SYS_FUTIMESAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		times, err := copyInTimevals(t, a.Args[2])
		if err != nil {
			return 0, err
		}
		return 0, utimesAt(t, int32(a.Args[0]), a.Args[1], times, 0, true)
	})
	register(abi.SYS_UTIMENSAT, sysUtimensat)
}

// capSysChroot is CAP_SYS_CHROOT.
const capSysChroot auth.Capability = 18

// withPath copies in the path at addr and runs fn with its path
// operation relative to dirfd. emptyPath is AT_EMPTY_PATH.
func withPath(t *kernel.Task, dirfd int32, addr uint64, follow, emptyPath bool, fn func(vfs.PathOperation) error) error {
	path, err := copyInPath(t, addr)
	if err != nil {
		return err
	}
	if path == "" && !emptyPath {
		return unix.ENOENT
	}
	pop, done, err := t.PathOp(dirfd, path, follow)
	if err != nil {
		return err
	}
	defer done()
	pop.EmptyPath = emptyPath
	return fn(pop)
}

// withFD runs fn with a path operation that names the file at fd itself.
func withFD(t *kernel.Task, fd uint64, fn func(vfs.PathOperation) error) error {
	f, err := getFile(t, fd)
	if err != nil {
		return err
	}
	defer f.DecRef(t.Ctx())
	vd := f.VirtualDentry()
	defer vd.DecRef(t.Ctx())
	root := t.FS().Root()
	defer root.DecRef(t.Ctx())
	return fn(vfs.PathOperation{Root: root, Start: vd, EmptyPath: true, FollowFinal: true})
}

// openAt implements open, openat, creat and openat2 (whose resolve flags
// the caller has checked).
func openAt(t *kernel.Task, dirfd int32, pathAddr uint64, flags, mode uint32, resolve uint64) (uint64, error) {
	path, err := copyInPath(t, pathAddr)
	if err != nil {
		return 0, err
	}
	if path == "" {
		return 0, unix.ENOENT
	}
	pop, done, err := t.PathOp(dirfd, path, true)
	if err != nil {
		return 0, err
	}
	defer done()
	if resolve&abi.RESOLVE_IN_ROOT != 0 {
		// dirfd is the root: absolute paths, ".." and symlinks stay
		// inside it.
		start, err := dirStart(t, dirfd)
		if err != nil {
			return 0, err
		}
		defer start.DecRef(t.Ctx())
		pop.Root, pop.Start = start, start
	}
	if flags&(unix.O_CREAT|unix.O_TMPFILE) != 0 {
		mode = mode & 0o7777 &^ t.FS().Umask()
	} else {
		mode = 0
	}
	ctx := t.Ctx()
	f, err := t.Kernel().VFS.Open(ctx, t.Creds().VFSCreds(), pop, vfs.OpenOptions{Flags: flags, Mode: mode})
	var pe *vfs.PendingOpenError
	if errors.As(err, &pe) {
		f, err = waitOpen(t, pe)
	}
	if err != nil {
		return 0, err
	}
	defer f.DecRef(ctx)
	return newFD(t, f, 0, flags&unix.O_CLOEXEC != 0)
}

// dirStart returns the directory dirfd names (the cwd for AT_FDCWD),
// with a reference.
func dirStart(t *kernel.Task, dirfd int32) (vfs.VirtualDentry, error) {
	if dirfd == abi.AT_FDCWD {
		return t.FS().Cwd(), nil
	}
	f := t.FDs().Get(dirfd)
	if f == nil {
		return vfs.VirtualDentry{}, unix.EBADF
	}
	defer f.DecRef(t.Ctx())
	vd := f.VirtualDentry()
	if !vd.Dentry.IsDir() {
		vd.DecRef(t.Ctx())
		return vfs.VirtualDentry{}, unix.ENOTDIR
	}
	return vd, nil
}

// waitOpen waits for the other end of a FIFO an open is waiting for.
func waitOpen(t *kernel.Task, pe *vfs.PendingOpenError) (*vfs.File, error) {
	f := pe.File
	_, err := blocking(t, f, pe.Mask, func() (int, error) {
		if f.OpenReady() {
			return 0, nil
		}
		return 0, unix.EAGAIN
	})
	if err != nil {
		f.DecRef(t.Ctx())
		return nil, err
	}
	return f, nil
}

// validOpenFlags are the flags openat2 accepts (VALID_OPEN_FLAGS).
const validOpenFlags = unix.O_ACCMODE | unix.O_CREAT | unix.O_EXCL | unix.O_NOCTTY | unix.O_TRUNC |
	unix.O_APPEND | unix.O_NONBLOCK | unix.O_SYNC | unix.O_DSYNC | unix.O_ASYNC | unix.O_DIRECT |
	abi.O_LARGEFILE | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_NOATIME | unix.O_CLOEXEC |
	unix.O_PATH | unix.O_TMPFILE

func sysOpenat2(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	dirfd, pathAddr, howAddr, size := int32(a.Args[0]), a.Args[1], a.Args[2], a.Args[3]
	if size < abi.OpenHowSize {
		return 0, unix.EINVAL
	}
	if size > 4096 {
		return 0, unix.E2BIG
	}
	b := make([]byte, size)
	if _, err := t.CopyIn(howAddr, b); err != nil {
		return 0, unix.EFAULT
	}
	for _, c := range b[abi.OpenHowSize:] {
		if c != 0 {
			return 0, unix.E2BIG
		}
	}
	var how abi.OpenHow
	how.Unmarshal(b)
	if how.Flags&^uint64(validOpenFlags) != 0 {
		return 0, unix.EINVAL
	}
	flags := uint32(how.Flags)
	if flags&(unix.O_CREAT|unix.O_TMPFILE) != 0 {
		if how.Mode&^0o7777 != 0 {
			return 0, unix.EINVAL
		}
	} else if how.Mode != 0 {
		return 0, unix.EINVAL
	}
	if flags&unix.O_PATH != 0 && flags&^uint32(unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC) != 0 {
		return 0, unix.EINVAL
	}
	const known = abi.RESOLVE_NO_XDEV | abi.RESOLVE_NO_MAGICLINKS | abi.RESOLVE_NO_SYMLINKS |
		abi.RESOLVE_BENEATH | abi.RESOLVE_IN_ROOT | abi.RESOLVE_CACHED
	r := how.Resolve
	if r&^known != 0 || r&abi.RESOLVE_BENEATH != 0 && r&abi.RESOLVE_IN_ROOT != 0 {
		return 0, unix.EINVAL
	}
	if r&abi.RESOLVE_CACHED != 0 && flags&(unix.O_CREAT|unix.O_TRUNC|unix.O_TMPFILE) != 0 {
		return 0, unix.EAGAIN
	}
	// There are no magic links and every lookup is cached. The other
	// restrictions are not implemented: refuse rather than ignore them.
	if r&(abi.RESOLVE_NO_XDEV|abi.RESOLVE_NO_SYMLINKS|abi.RESOLVE_BENEATH) != 0 {
		return 0, unix.EINVAL
	}
	return openAt(t, dirfd, pathAddr, flags, uint32(how.Mode), r)
}

// statAt returns the metadata of the file (dirfd, path) names with the
// *at flags given.
func statAt(t *kernel.Task, dirfd int32, pathAddr uint64, flags uint32) (vfs.Stat, error) {
	var st vfs.Stat
	err := withPath(t, dirfd, pathAddr, flags&abi.AT_SYMLINK_NOFOLLOW == 0, flags&abi.AT_EMPTY_PATH != 0, func(pop vfs.PathOperation) error {
		var err error
		st, err = t.Kernel().VFS.Stat(t.Ctx(), t.Creds().VFSCreds(), pop)
		return err
	})
	return st, err
}

func fstatat(t *kernel.Task, dirfd int32, pathAddr, statAddr uint64, flags uint32) error {
	if flags&^uint32(abi.AT_SYMLINK_NOFOLLOW|abi.AT_EMPTY_PATH|abi.AT_NO_AUTOMOUNT) != 0 {
		return unix.EINVAL
	}
	st, err := statAt(t, dirfd, pathAddr, flags)
	if err != nil {
		return err
	}
	return copyOutStat(t, statAddr, &st)
}

func sysStatx(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	dirfd, pathAddr, flags, mask, addr := int32(a.Args[0]), a.Args[1], uint32(a.Args[2]), uint32(a.Args[3]), a.Args[4]
	if flags&^uint32(abi.AT_SYMLINK_NOFOLLOW|abi.AT_EMPTY_PATH|abi.AT_NO_AUTOMOUNT|abi.AT_STATX_SYNC_TYPE) != 0 {
		return 0, unix.EINVAL
	}
	if flags&abi.AT_STATX_SYNC_TYPE == abi.AT_STATX_SYNC_TYPE {
		return 0, unix.EINVAL
	}
	if mask&abi.STATX__RESERVED != 0 {
		return 0, unix.EINVAL
	}
	st, err := statAt(t, dirfd, pathAddr, flags)
	if err != nil {
		return 0, err
	}
	sx := abi.Statx{
		Mask: abi.STATX_BASIC_STATS, Blksize: uint32(st.Blksize), Nlink: uint32(st.Nlink),
		UID: st.UID, GID: st.GID, Mode: uint16(st.Mode), Ino: st.Ino, Size: uint64(st.Size),
		Blocks:    uint64(st.Blocks),
		Atime:     abi.StatxTimestamp{Sec: st.Atime.Sec, Nsec: uint32(st.Atime.Nsec)},
		Mtime:     abi.StatxTimestamp{Sec: st.Mtime.Sec, Nsec: uint32(st.Mtime.Nsec)},
		Ctime:     abi.StatxTimestamp{Sec: st.Ctime.Sec, Nsec: uint32(st.Ctime.Nsec)},
		RdevMajor: unix.Major(st.Rdev), RdevMinor: unix.Minor(st.Rdev),
		DevMajor: unix.Major(st.Dev), DevMinor: unix.Minor(st.Dev),
	}
	if st.Btime.Sec != 0 || st.Btime.Nsec != 0 {
		sx.Mask |= abi.STATX_BTIME
		sx.Btime = abi.StatxTimestamp{Sec: st.Btime.Sec, Nsec: uint32(st.Btime.Nsec)}
	}
	b := make([]byte, abi.StatxSize)
	sx.Marshal(b)
	if _, err := t.CopyOut(addr, b); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

// getdents fills the buffer with linux_dirent64 (or, for the old call,
// linux_dirent) records.
func getdents(t *kernel.Task, fd, addr, count uint64, is64 bool) (uint64, error) {
	f, err := getFile(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	count = min(count, maxRW)
	var out []byte
	full := false
	err = f.Getdents(t.Ctx(), func(d vfs.Dirent) bool {
		if is64 {
			de := abi.Dirent64{Ino: d.Ino, Off: d.Off, Type: d.Type, Name: d.Name}
			if uint64(len(out)+de.Size()) > count {
				full = true
				return false
			}
			out = de.Append(out)
			return true
		}
		// struct linux_dirent: ino, off, reclen, name, NUL, type last.
		n := (18 + len(d.Name) + 2 + 7) &^ 7
		if uint64(len(out)+n) > count {
			full = true
			return false
		}
		rec := make([]byte, n)
		le.PutUint64(rec[0:], d.Ino)
		le.PutUint64(rec[8:], uint64(d.Off))
		le.PutUint16(rec[16:], uint16(n))
		copy(rec[18:], d.Name)
		rec[n-1] = d.Type
		out = append(out, rec...)
		return true
	})
	if err != nil && len(out) == 0 {
		return 0, err
	}
	if len(out) == 0 && full {
		return 0, unix.EINVAL
	}
	if _, err := t.CopyOut(addr, out); err != nil {
		return 0, unix.EFAULT
	}
	return uint64(len(out)), nil
}

func sysFallocate(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	mode, off, n := uint32(a.Args[1]), int64(a.Args[2]), int64(a.Args[3])
	const known = unix.FALLOC_FL_KEEP_SIZE | unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_NO_HIDE_STALE |
		unix.FALLOC_FL_COLLAPSE_RANGE | unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_INSERT_RANGE | unix.FALLOC_FL_UNSHARE_RANGE
	if mode&^uint32(known) != 0 {
		return 0, unix.EOPNOTSUPP
	}
	if mode&unix.FALLOC_FL_PUNCH_HOLE != 0 && mode&unix.FALLOC_FL_KEEP_SIZE == 0 {
		return 0, unix.EOPNOTSUPP
	}
	if off < 0 || n <= 0 {
		return 0, unix.EINVAL
	}
	if off+n < off {
		return 0, unix.EFBIG
	}
	if f.IsPath() {
		return 0, unix.EBADF
	}
	if st, err := f.Stat(t.Ctx()); err == nil {
		switch st.Type() {
		case unix.S_IFIFO, unix.S_IFSOCK:
			return 0, unix.ESPIPE
		case unix.S_IFDIR:
			return 0, unix.EISDIR
		case unix.S_IFREG:
		default:
			if f.Writable() {
				return 0, unix.ENODEV
			}
		}
	}
	return 0, f.Fallocate(t.Ctx(), mode, off, n)
}

func sysFsync(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	return 0, f.Fsync(t.Ctx())
}

func sysGetcwd(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	addr, size := a.Args[0], a.Args[1]
	root := t.FS().Root()
	defer root.DecRef(t.Ctx())
	cwd := t.FS().Cwd()
	defer cwd.DecRef(t.Ctx())
	p, reachable := t.Kernel().VFS.PathOf(root, cwd)
	if !reachable {
		st, err := cwd.Dentry.Inode().Stat(t.Ctx())
		if err != nil {
			return 0, err
		}
		if st.Nlink == 0 {
			return 0, unix.ENOENT
		}
		p = "(unreachable)" + p
	}
	b := append([]byte(p), 0)
	if uint64(len(b)) > size {
		return 0, unix.ERANGE
	}
	if _, err := t.CopyOut(addr, b); err != nil {
		return 0, unix.EFAULT
	}
	return uint64(len(b)), nil
}

// copyOutStatfs writes a struct statfs (120 bytes on x86-64).
func copyOutStatfs(t *kernel.Task, addr uint64, st *vfs.Statfs) error {
	const stValid = 0x20 // ST_VALID: f_flags is meaningful
	b := make([]byte, 120)
	frsize := st.Frsize
	if frsize == 0 {
		frsize = st.Bsize
	}
	le.PutUint64(b[0:], uint64(st.Type))
	le.PutUint64(b[8:], uint64(st.Bsize))
	le.PutUint64(b[16:], st.Blocks)
	le.PutUint64(b[24:], st.Bfree)
	le.PutUint64(b[32:], st.Bavail)
	le.PutUint64(b[40:], st.Files)
	le.PutUint64(b[48:], st.Ffree)
	// f_fsid stays zero, as for most filesystems without a device.
	le.PutUint64(b[64:], uint64(st.NameLen))
	le.PutUint64(b[72:], uint64(frsize))
	le.PutUint64(b[80:], uint64(st.Flags|stValid))
	if _, err := t.CopyOut(addr, b); err != nil {
		return unix.EFAULT
	}
	return nil
}

func faccessat(t *kernel.Task, dirfd int32, pathAddr, mode, flags uint64) error {
	if flags&^uint64(abi.AT_EACCESS|abi.AT_SYMLINK_NOFOLLOW|abi.AT_EMPTY_PATH) != 0 {
		return unix.EINVAL
	}
	if mode&^7 != 0 {
		return unix.EINVAL
	}
	c := *t.Creds()
	if flags&abi.AT_EACCESS == 0 {
		// access(2) checks with the real ids; a non-root caller loses
		// its capabilities for the check.
		c.FSUID, c.FSGID = c.RUID, c.RGID
		if c.RUID != 0 {
			c.Caps = 0
		}
	}
	creds := c.VFSCreds()
	return withPath(t, dirfd, pathAddr, flags&abi.AT_SYMLINK_NOFOLLOW == 0, flags&abi.AT_EMPTY_PATH != 0, func(pop vfs.PathOperation) error {
		return t.Kernel().VFS.Access(t.Ctx(), creds, pop, uint32(mode))
	})
}

func fchmodat(t *kernel.Task, dirfd int32, pathAddr uint64, mode uint32, flags uint64) error {
	if flags&^uint64(abi.AT_SYMLINK_NOFOLLOW|abi.AT_EMPTY_PATH) != 0 {
		return unix.EINVAL
	}
	nofollow := flags&abi.AT_SYMLINK_NOFOLLOW != 0
	return withPath(t, dirfd, pathAddr, !nofollow, flags&abi.AT_EMPTY_PATH != 0, func(pop vfs.PathOperation) error {
		v, creds := t.Kernel().VFS, t.Creds().VFSCreds()
		if nofollow {
			st, err := v.Stat(t.Ctx(), creds, pop)
			if err != nil {
				return err
			}
			if st.Type() == unix.S_IFLNK {
				return unix.EOPNOTSUPP
			}
		}
		return v.Chmod(t.Ctx(), creds, pop, mode&0o7777)
	})
}

// chownStat turns chown's arguments into a change; -1 leaves an id.
func chownStat(uid, gid uint64) vfs.SetStat {
	var s vfs.SetStat
	if uint32(uid) != ^uint32(0) {
		s.Mask |= vfs.SetUID
		s.UID = uint32(uid)
	}
	if uint32(gid) != ^uint32(0) {
		s.Mask |= vfs.SetGID
		s.GID = uint32(gid)
	}
	return s
}

func fchownat(t *kernel.Task, dirfd int32, pathAddr, uid, gid, flags uint64) error {
	if flags&^uint64(abi.AT_SYMLINK_NOFOLLOW|abi.AT_EMPTY_PATH) != 0 {
		return unix.EINVAL
	}
	return withPath(t, dirfd, pathAddr, flags&abi.AT_SYMLINK_NOFOLLOW == 0, flags&abi.AT_EMPTY_PATH != 0, func(pop vfs.PathOperation) error {
		return t.Kernel().VFS.SetStat(t.Ctx(), t.Creds().VFSCreds(), pop, chownStat(uid, gid))
	})
}

// utimeNow is the pair of times meaning "now" for both.
var utimeNow = [2]unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}

func copyInUtimbuf(t *kernel.Task, addr uint64) ([2]unix.Timespec, error) {
	if addr == 0 {
		return utimeNow, nil
	}
	var b [16]byte
	if _, err := t.CopyIn(addr, b[:]); err != nil {
		return utimeNow, unix.EFAULT
	}
	return [2]unix.Timespec{{Sec: int64(le.Uint64(b[0:]))}, {Sec: int64(le.Uint64(b[8:]))}}, nil
}

func copyInTimevals(t *kernel.Task, addr uint64) ([2]unix.Timespec, error) {
	if addr == 0 {
		return utimeNow, nil
	}
	var b [32]byte
	if _, err := t.CopyIn(addr, b[:]); err != nil {
		return utimeNow, unix.EFAULT
	}
	var out [2]unix.Timespec
	for i := range out {
		sec, usec := int64(le.Uint64(b[i*16:])), int64(le.Uint64(b[i*16+8:]))
		if usec < 0 || usec >= 1e6 {
			return utimeNow, unix.EINVAL
		}
		out[i] = unix.Timespec{Sec: sec, Nsec: usec * 1000}
	}
	return out, nil
}

// utimesAt sets the times of the file (dirfd, path) names. With
// nullPathIsFD a NULL path means dirfd itself (futimesat, utimensat).
func utimesAt(t *kernel.Task, dirfd int32, pathAddr uint64, times [2]unix.Timespec, flags uint64, nullPathIsFD bool) error {
	if flags&^uint64(abi.AT_SYMLINK_NOFOLLOW|abi.AT_EMPTY_PATH) != 0 {
		return unix.EINVAL
	}
	set := func(pop vfs.PathOperation) error {
		return t.Kernel().VFS.Utimes(t.Ctx(), t.Creds().VFSCreds(), pop, times[0], times[1])
	}
	if pathAddr == 0 && nullPathIsFD {
		if dirfd == abi.AT_FDCWD {
			return unix.EFAULT
		}
		if flags&abi.AT_SYMLINK_NOFOLLOW != 0 {
			return unix.EINVAL
		}
		return withFD(t, uint64(uint32(dirfd)), set)
	}
	return withPath(t, dirfd, pathAddr, flags&abi.AT_SYMLINK_NOFOLLOW == 0, flags&abi.AT_EMPTY_PATH != 0, set)
}

func sysUtimensat(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	dirfd, pathAddr, timesAddr, flags := int32(a.Args[0]), a.Args[1], a.Args[2], a.Args[3]
	times := utimeNow
	if timesAddr != 0 {
		b := make([]byte, 2*abi.TimespecSize)
		if _, err := t.CopyIn(timesAddr, b); err != nil {
			return 0, unix.EFAULT
		}
		for i := range times {
			var ts abi.Timespec
			ts.Unmarshal(b[i*abi.TimespecSize:])
			if ts.Nsec != unix.UTIME_NOW && ts.Nsec != unix.UTIME_OMIT && (ts.Nsec < 0 || ts.Nsec >= 1e9) {
				return 0, unix.EINVAL
			}
			times[i] = unix.Timespec{Sec: ts.Sec, Nsec: ts.Nsec}
		}
	}
	return 0, utimesAt(t, dirfd, pathAddr, times, flags, true)
}
