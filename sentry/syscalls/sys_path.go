package syscalls

import (
	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
)

// Calls that make, remove and move names: mkdir, mknod, unlink, rmdir,
// rename, link, symlink, readlink.
func init() {
	register(abi.SYS_MKDIR, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, mkdirat(t, abi.AT_FDCWD, a.Args[0], uint32(a.Args[1]))
	})
	register(abi.SYS_MKDIRAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, mkdirat(t, int32(a.Args[0]), a.Args[1], uint32(a.Args[2]))
	})
	register(abi.SYS_MKNOD, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, mknodat(t, abi.AT_FDCWD, a.Args[0], uint32(a.Args[1]), a.Args[2])
	})
	register(abi.SYS_MKNODAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, mknodat(t, int32(a.Args[0]), a.Args[1], uint32(a.Args[2]), a.Args[3])
	})
	register(abi.SYS_UNLINK, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, unlinkat(t, abi.AT_FDCWD, a.Args[0], 0)
	})
	register(abi.SYS_UNLINKAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, unlinkat(t, int32(a.Args[0]), a.Args[1], a.Args[2])
	})
	register(abi.SYS_RMDIR, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, unlinkat(t, abi.AT_FDCWD, a.Args[0], abi.AT_REMOVEDIR)
	})
	register(abi.SYS_RENAME, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, renameat(t, abi.AT_FDCWD, a.Args[0], abi.AT_FDCWD, a.Args[1], 0)
	})
	register(abi.SYS_RENAMEAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, renameat(t, int32(a.Args[0]), a.Args[1], int32(a.Args[2]), a.Args[3], 0)
	})
	register(abi.SYS_RENAMEAT2, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, renameat(t, int32(a.Args[0]), a.Args[1], int32(a.Args[2]), a.Args[3], a.Args[4])
	})
	register(abi.SYS_LINK, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, linkat(t, abi.AT_FDCWD, a.Args[0], abi.AT_FDCWD, a.Args[1], 0)
	})
	register(abi.SYS_LINKAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, linkat(t, int32(a.Args[0]), a.Args[1], int32(a.Args[2]), a.Args[3], a.Args[4])
	})
	register(abi.SYS_SYMLINK, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, symlinkat(t, a.Args[0], abi.AT_FDCWD, a.Args[1])
	})
	register(abi.SYS_SYMLINKAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, symlinkat(t, a.Args[0], int32(a.Args[1]), a.Args[2])
	})
	register(abi.SYS_READLINK, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return readlinkat(t, abi.AT_FDCWD, a.Args[0], a.Args[1], a.Args[2])
	})
	register(abi.SYS_READLINKAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return readlinkat(t, int32(a.Args[0]), a.Args[1], a.Args[2], a.Args[3])
	})
}

func mkdirat(t *kernel.Task, dirfd int32, pathAddr uint64, mode uint32) error {
	return withPath(t, dirfd, pathAddr, false, false, func(pop vfs.PathOperation) error {
		return t.Kernel().VFS.Mkdir(t.Ctx(), t.Creds().VFSCreds(), pop, mode&0o7777&^t.FS().Umask())
	})
}

func mknodat(t *kernel.Task, dirfd int32, pathAddr uint64, mode uint32, dev uint64) error {
	switch mode & unix.S_IFMT {
	case 0, unix.S_IFREG, unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFCHR, unix.S_IFBLK:
	case unix.S_IFDIR:
		return unix.EPERM
	default:
		return unix.EINVAL
	}
	// dev is a new_encode_dev value: the 32-bit dev_t of the ABI.
	d := uint32(dev)
	rdev := unix.Mkdev((d&0xfff00)>>8, d&0xff|(d>>12)&0xfff00)
	return withPath(t, dirfd, pathAddr, false, false, func(pop vfs.PathOperation) error {
		perm := mode & 0o7777 &^ t.FS().Umask()
		return t.Kernel().VFS.Mknod(t.Ctx(), t.Creds().VFSCreds(), pop, mode&unix.S_IFMT|perm, rdev)
	})
}

func unlinkat(t *kernel.Task, dirfd int32, pathAddr, flags uint64) error {
	if flags&^uint64(abi.AT_REMOVEDIR) != 0 {
		return unix.EINVAL
	}
	return withPath(t, dirfd, pathAddr, false, false, func(pop vfs.PathOperation) error {
		if flags&abi.AT_REMOVEDIR != 0 {
			return t.Kernel().VFS.Rmdir(t.Ctx(), t.Creds().VFSCreds(), pop)
		}
		return t.Kernel().VFS.Unlink(t.Ctx(), t.Creds().VFSCreds(), pop)
	})
}

func renameat(t *kernel.Task, olddirfd int32, oldAddr uint64, newdirfd int32, newAddr, flags uint64) error {
	if flags&^uint64(abi.RENAME_NOREPLACE|abi.RENAME_EXCHANGE|abi.RENAME_WHITEOUT) != 0 {
		return unix.EINVAL
	}
	if flags&abi.RENAME_WHITEOUT != 0 {
		// Whiteouts are for overlay filesystems; none here.
		return unix.EINVAL
	}
	return withPath(t, olddirfd, oldAddr, false, false, func(oldpop vfs.PathOperation) error {
		return withPath(t, newdirfd, newAddr, false, false, func(newpop vfs.PathOperation) error {
			return t.Kernel().VFS.Rename(t.Ctx(), t.Creds().VFSCreds(), oldpop, newpop, uint32(flags))
		})
	})
}

func linkat(t *kernel.Task, olddirfd int32, oldAddr uint64, newdirfd int32, newAddr, flags uint64) error {
	if flags&^uint64(abi.AT_SYMLINK_FOLLOW|abi.AT_EMPTY_PATH) != 0 {
		return unix.EINVAL
	}
	empty := flags&abi.AT_EMPTY_PATH != 0
	if empty && t.Creds().VFSCreds().Effective&(1<<2) == 0 { // CAP_DAC_READ_SEARCH
		empty = false
	}
	return withPath(t, olddirfd, oldAddr, flags&abi.AT_SYMLINK_FOLLOW != 0, empty, func(oldpop vfs.PathOperation) error {
		return withPath(t, newdirfd, newAddr, false, false, func(newpop vfs.PathOperation) error {
			return t.Kernel().VFS.Link(t.Ctx(), t.Creds().VFSCreds(), oldpop, newpop)
		})
	})
}

func symlinkat(t *kernel.Task, targetAddr uint64, dirfd int32, pathAddr uint64) error {
	target, err := copyInPath(t, targetAddr)
	if err != nil {
		return err
	}
	if target == "" {
		return unix.ENOENT
	}
	return withPath(t, dirfd, pathAddr, false, false, func(pop vfs.PathOperation) error {
		return t.Kernel().VFS.Symlink(t.Ctx(), t.Creds().VFSCreds(), target, pop)
	})
}

func readlinkat(t *kernel.Task, dirfd int32, pathAddr, buf, size uint64) (uint64, error) {
	if int32(size) <= 0 {
		return 0, unix.EINVAL
	}
	var target string
	// An empty path names dirfd itself (an O_PATH descriptor of a link);
	// with AT_FDCWD it is ENOENT, as on Linux.
	err := withPath(t, dirfd, pathAddr, false, dirfd != abi.AT_FDCWD, func(pop vfs.PathOperation) error {
		var err error
		target, err = t.Kernel().VFS.Readlink(t.Ctx(), t.Creds().VFSCreds(), pop)
		return err
	})
	if err != nil {
		return 0, err
	}
	n := min(uint64(len(target)), uint64(uint32(size)))
	if _, err := t.CopyOut(buf, []byte(target[:n])); err != nil {
		return 0, unix.EFAULT
	}
	return n, nil
}
