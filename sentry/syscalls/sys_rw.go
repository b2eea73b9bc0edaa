package syscalls

import (
	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/fs/sock"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
)

// The core read/write/open/close/stat calls; the rest of the file family
// lives in sys_file.go.
func init() {
	register(abi.SYS_READ, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		return readTo(t, f, a.Args[1], a.Args[2], -1)
	})
	register(abi.SYS_WRITE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		return writeFrom(t, f, a.Args[1], a.Args[2], -1)
	})
	register(abi.SYS_PREAD64, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if int64(a.Args[3]) < 0 {
			return 0, unix.EINVAL
		}
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		return readTo(t, f, a.Args[1], a.Args[2], int64(a.Args[3]))
	})
	register(abi.SYS_PWRITE64, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		if int64(a.Args[3]) < 0 {
			return 0, unix.EINVAL
		}
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		return writeFrom(t, f, a.Args[1], a.Args[2], int64(a.Args[3]))
	})
	register(abi.SYS_READV, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return vectored(t, a.Args[0], a.Args[1], a.Args[2], -1, false)
	})
	register(abi.SYS_WRITEV, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return vectored(t, a.Args[0], a.Args[1], a.Args[2], -1, true)
	})
	register(abi.SYS_PREADV, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return vectored(t, a.Args[0], a.Args[1], a.Args[2], int64(a.Args[3]), false)
	})
	register(abi.SYS_PWRITEV, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return vectored(t, a.Args[0], a.Args[1], a.Args[2], int64(a.Args[3]), true)
	})
	register(abi.SYS_PREADV2, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return vectored(t, a.Args[0], a.Args[1], a.Args[2], int64(a.Args[3]), false)
	})
	register(abi.SYS_PWRITEV2, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return vectored(t, a.Args[0], a.Args[1], a.Args[2], int64(a.Args[3]), true)
	})
	register(abi.SYS_CLOSE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f := t.FDs().Remove(int32(a.Args[0]))
		if f == nil {
			return 0, unix.EBADF
		}
		f.ReleasePOSIXLocks(t.Ctx(), t.FDs())
		f.DecRef(t.Ctx())
		return 0, nil
	})
	register(abi.SYS_IOCTL, sysIoctl)
	register(abi.SYS_FSTAT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		st, err := f.Stat(t.Ctx())
		if err != nil {
			return 0, err
		}
		return 0, copyOutStat(t, a.Args[1], &st)
	})
	register(abi.SYS_LSEEK, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		off, err := f.Seek(t.Ctx(), int64(a.Args[1]), int(int32(a.Args[2])))
		return uint64(off), err
	})
}

// getFile returns a reference to the file at fd.
func getFile(t *kernel.Task, fd uint64) (*vfs.File, error) {
	f := t.FDs().Get(int32(fd))
	if f == nil {
		return nil, unix.EBADF
	}
	return f, nil
}

func vectored(t *kernel.Task, fd, iovAddr, n uint64, off int64, write bool) (uint64, error) {
	if off < -1 {
		return 0, unix.EINVAL
	}
	f, err := getFile(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	iov, err := iovecs(t, iovAddr, n)
	if err != nil {
		return 0, err
	}
	if s := sock.FromFile(f); s != nil && off == -1 {
		return sockIO(t, f, s, iov, write)
	}
	var total uint64
	for _, v := range iov {
		if v.Len == 0 {
			continue
		}
		var c uint64
		if write {
			c, err = writeFrom(t, f, v.Base, v.Len, off)
		} else {
			c, err = readTo(t, f, v.Base, v.Len, off)
		}
		total += c
		if off >= 0 {
			off += int64(c)
		}
		if err != nil {
			if total > 0 {
				return total, nil
			}
			return 0, err
		}
		if c < v.Len {
			break
		}
	}
	return total, nil
}

func sysIoctl(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	cmd := uint32(a.Args[1])
	switch cmd {
	case abi.FIOCLEX:
		return 0, t.FDs().SetCloexec(int32(a.Args[0]), true)
	case abi.FIONCLEX:
		return 0, t.FDs().SetCloexec(int32(a.Args[0]), false)
	case abi.FIONBIO, abi.FIOASYNC:
		// FIOASYNC sets O_ASYNC as fcntl(F_SETFL) does (nginx asks it
		// of its channel sockets); signal-driven I/O itself is not
		// implemented.
		bit := uint32(unix.O_NONBLOCK)
		if cmd == abi.FIOASYNC {
			bit = unix.O_ASYNC
		}
		var b [4]byte
		if _, err := t.CopyIn(a.Args[2], b[:]); err != nil {
			return 0, unix.EFAULT
		}
		fl := f.StatusFlags() &^ bit
		if le.Uint32(b[:]) != 0 {
			fl |= bit
		}
		return 0, f.SetStatusFlags(t.Ctx(), t.Creds().VFSCreds(), fl)
	}
	return f.Ioctl(t.Ctx(), taskMem{t}, cmd, a.Args[2])
}

func copyOutStat(t *kernel.Task, addr uint64, st *vfs.Stat) error {
	s := abi.Stat{
		Dev: st.Dev, Ino: st.Ino, Nlink: st.Nlink, Mode: st.Mode, UID: st.UID, GID: st.GID,
		Rdev: st.Rdev, Size: st.Size, Blksize: st.Blksize, Blocks: st.Blocks,
		Atime: abi.Timespec{Sec: st.Atime.Sec, Nsec: st.Atime.Nsec},
		Mtime: abi.Timespec{Sec: st.Mtime.Sec, Nsec: st.Mtime.Nsec},
		Ctime: abi.Timespec{Sec: st.Ctime.Sec, Nsec: st.Ctime.Nsec},
	}
	b := make([]byte, abi.StatSize)
	s.Marshal(b)
	if _, err := t.CopyOut(addr, b); err != nil {
		return unix.EFAULT
	}
	return nil
}
