package syscalls

import (
	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
)

func init() {
	register(abi.SYS_MEMFD_CREATE, sysMemfdCreate)
}

// sysMemfdCreate makes an anonymous in-memory file: a tmpfs file of its
// own, already unlinked, counted against the sandbox's memory like any
// tmpfs file.
func sysMemfdCreate(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	const (
		mfdCloexec      = 0x1
		mfdAllowSealing = 0x2
		mfdHugeTLB      = 0x4
		mfdNoExecSeal   = 0x8
		mfdExec         = 0x10
	)
	flags := a.Args[1]
	if flags&^(mfdCloexec|mfdAllowSealing|mfdNoExecSeal|mfdExec) != 0 {
		if flags&mfdHugeTLB != 0 {
			return 0, unix.EINVAL
		}
		return 0, unix.EINVAL
	}
	name, err := t.CopyInString(a.Args[0], 250)
	if err != nil {
		if err == unix.ENAMETOOLONG {
			return 0, unix.EINVAL
		}
		return 0, err
	}
	ctx := t.Ctx()
	c := t.Creds()
	fs := tmpfs.New(tmpfs.Options{RootMode: 0o700, Name: "memfd"})
	dir := fs.RootDir()
	ino, err := dir.Create(ctx, "f", vfs.CreateAttr{Mode: unix.S_IFREG | 0o777, UID: c.FSUID, GID: c.FSGID})
	if err != nil {
		return 0, err
	}
	impl, err := ino.Open(ctx, unix.O_RDWR)
	if err != nil {
		return 0, err
	}
	if err := dir.Unlink(ctx, "f", ino); err != nil {
		impl.Release(ctx)
		return 0, err
	}
	f, err := t.Kernel().VFS.NewAnonFile(ctx, ino, impl, unix.O_RDWR|unix.O_LARGEFILE, false)
	if err != nil {
		impl.Release(ctx)
		return 0, err
	}
	defer f.DecRef(ctx)
	_ = name // shown as "memfd:NAME" by /proc once it names anonymous files
	fd, err := t.FDs().New(f, 0, flags&mfdCloexec != 0, t.ThreadGroup().Rlimit(abi.RLIMIT_NOFILE).Cur)
	return uint64(fd), err
}
