package syscalls

import (
	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
)

// mount(2) and umount2(2) change the sandbox's own mount table (the
// sentry's VFS), never the host's, and need CAP_SYS_ADMIN in the
// sandbox (a privileged container). Supported: bind mounts of the
// caller's tree (MS_BIND, with MS_REC the mounts below the source too),
// remounts that change a mount's flags (ro, nosuid, nodev,
// noexec, noatime), and propagation changes, which have nothing to act
// on: the sandbox's mounts never propagate to the host. New filesystems
// are ENODEV; MS_MOVE is EINVAL.
func init() {
	register(abi.SYS_MOUNT, sysMount)
	register(abi.SYS_UMOUNT2, sysUmount2)
}

const (
	mountPropagation = unix.MS_SHARED | unix.MS_PRIVATE | unix.MS_SLAVE | unix.MS_UNBINDABLE
	// mountFlags are the per-mount flags a remount may set.
	mountFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME
	// mountKnown is every flag mount(2) accepts here.
	mountKnown = mountPropagation | mountFlags | unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT | unix.MS_MOVE |
		unix.MS_SILENT | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME | unix.MS_LAZYTIME |
		unix.MS_SYNCHRONOUS | unix.MS_DIRSYNC | unix.MS_MANDLOCK
)

func hasSysAdmin(t *kernel.Task) bool {
	return t.Creds().Caps&auth.CapSetOf(auth.CapSysAdmin) != 0
}

func sysMount(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	flags := a.Args[3]
	if flags&0xffff0000 == unix.MS_MGC_VAL {
		flags &= 0xffff // the old magic number in the top half
	}
	if !hasSysAdmin(t) {
		return 0, unix.EPERM
	}
	if flags&^uint64(mountKnown) != 0 {
		return 0, unix.EINVAL
	}
	target, err := copyInPath(t, a.Args[1])
	if err != nil {
		return 0, err
	}
	creds := t.Creds().VFSCreds()
	tpop, trelease, err := t.PathOp(abi.AT_FDCWD, target, true)
	if err != nil {
		return 0, err
	}
	defer trelease()
	v := t.Kernel().VFS
	switch {
	case flags&unix.MS_REMOUNT != 0:
		vd, err := v.GetDentryAt(t.Ctx(), creds, tpop)
		if err != nil {
			return 0, err
		}
		defer vd.DecRef(t.Ctx())
		if !vd.IsMountRoot() {
			return 0, unix.EINVAL
		}
		vd.Mount.SetFlags(uint32(flags & mountFlags))
		return 0, nil
	case flags&unix.MS_BIND != 0:
		if a.Args[0] == 0 {
			return 0, unix.EFAULT
		}
		source, err := copyInPath(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		spop, srelease, err := t.PathOp(abi.AT_FDCWD, source, true)
		if err != nil {
			return 0, err
		}
		defer srelease()
		return 0, v.BindMount(t.Ctx(), creds, spop, tpop, vfs.MountOptions{Recursive: flags&unix.MS_REC != 0})
	case flags&mountPropagation != 0:
		// One propagation type at a time, on a mount's root.
		p := flags & mountPropagation
		if p&(p-1) != 0 {
			return 0, unix.EINVAL
		}
		vd, err := v.GetDentryAt(t.Ctx(), creds, tpop)
		if err != nil {
			return 0, err
		}
		defer vd.DecRef(t.Ctx())
		if !vd.IsMountRoot() {
			return 0, unix.EINVAL
		}
		return 0, nil
	case flags&unix.MS_MOVE != 0:
		return 0, unix.EINVAL
	}
	if a.Args[2] == 0 {
		return 0, unix.EINVAL
	}
	if _, err := t.CopyInString(a.Args[2], 64); err != nil {
		return 0, err
	}
	return 0, unix.ENODEV
}

func sysUmount2(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	flags := a.Args[1]
	if flags&^uint64(unix.MNT_FORCE|unix.MNT_DETACH|unix.MNT_EXPIRE|unix.UMOUNT_NOFOLLOW) != 0 ||
		flags&unix.MNT_EXPIRE != 0 && flags&(unix.MNT_FORCE|unix.MNT_DETACH) != 0 {
		return 0, unix.EINVAL
	}
	if !hasSysAdmin(t) {
		return 0, unix.EPERM
	}
	target, err := copyInPath(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	if flags&unix.MNT_EXPIRE != 0 {
		return 0, unix.EAGAIN // never marked for expiry
	}
	pop, release, err := t.PathOp(abi.AT_FDCWD, target, flags&unix.UMOUNT_NOFOLLOW == 0)
	if err != nil {
		return 0, err
	}
	defer release()
	// Every unmount is lazy (MNT_DETACH): files open inside keep working.
	return 0, t.Kernel().VFS.Umount(t.Ctx(), t.Creds().VFSCreds(), pop)
}
