package syscalls

import (
	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/mm"
	"moat.dev/moat/sentry/platform"
)

func init() {
	register(abi.SYS_BRK, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return t.MM().Brk(t.Ctx(), a.Args[0]), nil
	})
	register(abi.SYS_MMAP, sysMmap)
	register(abi.SYS_MUNMAP, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, t.MM().Unmap(t.Ctx(), a.Args[0], a.Args[1])
	})
	register(abi.SYS_MPROTECT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		prot := a.Args[2]
		if prot&^uint64(unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC|unix.PROT_GROWSDOWN|unix.PROT_GROWSUP) != 0 {
			return 0, unix.EINVAL
		}
		return 0, t.MM().Protect(t.Ctx(), a.Args[0], a.Args[1], protOf(prot))
	})
	register(abi.SYS_MADVISE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		addr, length, advice := a.Args[0], a.Args[1], a.Args[2]
		if addr%platform.PageSize != 0 || addr+length < addr {
			return 0, unix.EINVAL
		}
		switch advice {
		case unix.MADV_DONTNEED, unix.MADV_FREE:
			return 0, t.MM().Discard(t.Ctx(), addr, length)
		case unix.MADV_NORMAL, unix.MADV_RANDOM, unix.MADV_SEQUENTIAL, unix.MADV_WILLNEED,
			unix.MADV_DONTFORK, unix.MADV_DOFORK, unix.MADV_MERGEABLE, unix.MADV_UNMERGEABLE,
			unix.MADV_HUGEPAGE, unix.MADV_NOHUGEPAGE, unix.MADV_DONTDUMP, unix.MADV_DODUMP, unix.MADV_COLD, unix.MADV_PAGEOUT:
			return 0, nil
		}
		return 0, unix.EINVAL
	})
	register(abi.SYS_MREMAP, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return t.MM().Remap(t.Ctx(), a.Args[0], a.Args[1], a.Args[2], uint32(a.Args[3]), a.Args[4])
	})
	register(abi.SYS_MSYNC, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if a.Args[0]%platform.PageSize != 0 {
			return 0, unix.EINVAL
		}
		return 0, t.MM().Sync(t.Ctx(), a.Args[0], a.Args[1])
	})
	register(abi.SYS_MINCORE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		v, err := t.MM().Mincore(a.Args[0], a.Args[1])
		if err != nil {
			return 0, err
		}
		if _, err := t.CopyOut(a.Args[2], v); err != nil {
			return 0, unix.EFAULT
		}
		return 0, nil
	})
	register(abi.SYS_MLOCK, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return 0, nil })
	register(abi.SYS_MUNLOCK, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return 0, nil })
	register(abi.SYS_MLOCKALL, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return 0, nil })
	register(abi.SYS_MUNLOCKALL, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) { return 0, nil })
}

func protOf(p uint64) mm.Prot {
	var r mm.Prot
	if p&unix.PROT_READ != 0 {
		r |= platform.PermRead
	}
	if p&unix.PROT_WRITE != 0 {
		r |= platform.PermWrite | platform.PermRead
	}
	if p&unix.PROT_EXEC != 0 {
		r |= platform.PermExec | platform.PermRead
	}
	return r
}

func sysMmap(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	addr, length, prot, flags, fd, off := a.Args[0], a.Args[1], a.Args[2], a.Args[3], int32(a.Args[4]), a.Args[5]
	typ := flags & 0xf
	if typ != unix.MAP_PRIVATE && typ != unix.MAP_SHARED && typ != unix.MAP_SHARED_VALIDATE {
		return 0, unix.EINVAL
	}
	if prot&^uint64(unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC) != 0 {
		return 0, unix.EINVAL
	}
	o := mm.MapOpts{
		Addr: addr, Length: length, Prot: protOf(prot),
		Shared:    typ != unix.MAP_PRIVATE,
		Fixed:     flags&unix.MAP_FIXED != 0,
		NoReplace: flags&unix.MAP_FIXED_NOREPLACE != 0,
		GrowsDown: flags&unix.MAP_GROWSDOWN != 0,
		Populate:  flags&unix.MAP_POPULATE != 0,
		Off:       off,
	}
	if flags&unix.MAP_ANONYMOUS == 0 {
		f := t.FDs().Get(fd)
		if f == nil {
			return 0, unix.EBADF
		}
		defer f.DecRef(t.Ctx())
		if !f.Readable() {
			return 0, unix.EACCES
		}
		if o.Shared && prot&unix.PROT_WRITE != 0 && !f.Writable() {
			return 0, unix.EACCES
		}
		st, err := f.Stat(t.Ctx())
		if err != nil {
			return 0, err
		}
		if st.Type() != unix.S_IFREG && st.Type() != unix.S_IFCHR {
			return 0, unix.ENODEV
		}
		if st.Type() == unix.S_IFCHR {
			// /dev/zero: anonymous memory.
			o.Off = 0
		} else {
			root := t.FS().Root()
			name, _ := t.Kernel().VFS.PathOf(root, f.VirtualDentryNoRef())
			root.DecRef(t.Ctx())
			o.File = kernel.MappableFile(t.Ctx(), f, name)
		}
	}
	return t.MM().Map(t.Ctx(), o)
}
