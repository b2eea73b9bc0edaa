package syscalls

import (
	"errors"
	"runtime"
	"sync"
	"time"
	"weak"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/fs/pipe"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/vfs/lock"
	"moat.dev/moat/sentry/waiter"
)

// Descriptor calls: dup, dup2, dup3, close_range, fcntl, flock, pipe,
// pipe2.
func init() {
	register(abi.SYS_DUP, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, err := getFile(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		return newFD(t, f, 0, false)
	})
	register(abi.SYS_DUP2, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		oldfd, newfd := int32(a.Args[0]), int32(a.Args[1])
		if oldfd == newfd {
			f, err := getFile(t, a.Args[0])
			if err != nil {
				return 0, err
			}
			f.DecRef(t.Ctx())
			return uint64(newfd), nil
		}
		return dupTo(t, oldfd, newfd, false)
	})
	register(abi.SYS_DUP3, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		oldfd, newfd, flags := int32(a.Args[0]), int32(a.Args[1]), a.Args[2]
		if flags&^uint64(unix.O_CLOEXEC) != 0 || oldfd == newfd {
			return 0, unix.EINVAL
		}
		return dupTo(t, oldfd, newfd, flags&unix.O_CLOEXEC != 0)
	})
	register(abi.SYS_CLOSE_RANGE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		first, last, flags := uint32(a.Args[0]), uint32(a.Args[1]), a.Args[2]
		const unshare, cloexec = 1 << 1, 1 << 2 // CLOSE_RANGE_UNSHARE, CLOSE_RANGE_CLOEXEC
		if flags&^uint64(unshare|cloexec) != 0 || first > last {
			return 0, unix.EINVAL
		}
		// Closing drops the caller's POSIX locks on each file.
		t.FDs().RemoveRange(t.Ctx(), first, last, flags&cloexec != 0)
		return 0, nil
	})
	register(abi.SYS_FCNTL, sysFcntl)
	register(abi.SYS_FLOCK, sysFlock)
	register(abi.SYS_PIPE, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return 0, makePipe(t, a.Args[0], 0)
	})
	register(abi.SYS_PIPE2, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		// O_NOTIFICATION_PIPE (watch queues) is not supported.
		flags := a.Args[1]
		if flags&^uint64(unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_DIRECT) != 0 {
			return 0, unix.EINVAL
		}
		return 0, makePipe(t, a.Args[0], uint32(flags))
	})
}

// fdLimit is the bound on new descriptors: RLIMIT_NOFILE.
func fdLimit(t *kernel.Task) uint64 {
	return t.ThreadGroup().Rlimit(abi.RLIMIT_NOFILE).Cur
}

// newFD installs f at the lowest free descriptor >= min. The table takes
// its own reference.
func newFD(t *kernel.Task, f *vfs.File, min int32, cloexec bool) (uint64, error) {
	fd, err := t.FDs().New(f, min, cloexec, fdLimit(t))
	if err != nil {
		return 0, err
	}
	return uint64(fd), nil
}

// dupTo implements dup2 and dup3 for oldfd != newfd.
func dupTo(t *kernel.Task, oldfd, newfd int32, cloexec bool) (uint64, error) {
	f := t.FDs().Get(oldfd)
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef(t.Ctx())
	if newfd < 0 || uint64(newfd) >= fdLimit(t) {
		return 0, unix.EBADF
	}
	// The descriptor replaced is closed (its POSIX locks go with it).
	if err := t.FDs().Set(t.Ctx(), newfd, f, cloexec, fdLimit(t)); err != nil {
		return 0, err
	}
	return uint64(newfd), nil
}

// makePipe creates a pipe and writes its descriptors to the int[2] at addr.
func makePipe(t *kernel.Task, addr uint64, flags uint32) error {
	r, w, err := pipe.NewPipe(t.Ctx(), t.Kernel().VFS, flags&(unix.O_NONBLOCK|unix.O_DIRECT))
	if err != nil {
		return err
	}
	defer r.DecRef(t.Ctx())
	defer w.DecRef(t.Ctx())
	cloexec := flags&unix.O_CLOEXEC != 0
	rfd, err := newFD(t, r, 0, cloexec)
	if err != nil {
		return err
	}
	wfd, err := newFD(t, w, 0, cloexec)
	if err != nil {
		closeFD(t, int32(rfd))
		return err
	}
	var b [8]byte
	le.PutUint32(b[0:], uint32(rfd))
	le.PutUint32(b[4:], uint32(wfd))
	if _, err := t.CopyOut(addr, b[:]); err != nil {
		closeFD(t, int32(rfd))
		closeFD(t, int32(wfd))
		return unix.EFAULT
	}
	return nil
}

// closeFD closes a descriptor the call itself just made.
func closeFD(t *kernel.Task, fd int32) {
	if f := t.FDs().Remove(fd); f != nil {
		f.DecRef(t.Ctx())
	}
}

// owners remembers F_SETOWN/F_SETSIG values per open file, for as long
// as the file lives. Signal-driven I/O itself is not implemented.
var owners sync.Map // weak.Pointer[vfs.File] -> *fileOwner

type fileOwner struct {
	mu      sync.Mutex
	owner   int32 // pid, or -pgid
	ownType int32 // F_OWNER_TID, F_OWNER_PID or F_OWNER_PGRP
	sig     int32
}

func ownerOf(f *vfs.File, create bool) *fileOwner {
	k := weak.Make(f)
	if v, ok := owners.Load(k); ok {
		return v.(*fileOwner)
	}
	if !create {
		return &fileOwner{ownType: 1} // F_OWNER_PID, no owner
	}
	v, loaded := owners.LoadOrStore(k, &fileOwner{ownType: 1})
	if !loaded {
		runtime.AddCleanup(f, func(k weak.Pointer[vfs.File]) { owners.Delete(k) }, k)
	}
	return v.(*fileOwner)
}

func sysFcntl(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	fd, cmd, arg := int32(a.Args[0]), int32(a.Args[1]), a.Args[2]
	f, cloexec := t.FDs().GetWithFlags(fd)
	if f == nil {
		return 0, unix.EBADF
	}
	defer f.DecRef(t.Ctx())
	ctx := t.Ctx()
	// An O_PATH descriptor supports only these.
	if f.IsPath() {
		switch cmd {
		case abi.F_DUPFD, abi.F_DUPFD_CLOEXEC, abi.F_GETFD, abi.F_SETFD, abi.F_GETFL:
		default:
			return 0, unix.EBADF
		}
	}
	switch cmd {
	case abi.F_DUPFD, abi.F_DUPFD_CLOEXEC:
		if arg >= fdLimit(t) || arg > 1<<31-1 {
			return 0, unix.EINVAL
		}
		return newFD(t, f, int32(arg), cmd == abi.F_DUPFD_CLOEXEC)
	case abi.F_GETFD:
		if cloexec {
			return abi.FD_CLOEXEC, nil
		}
		return 0, nil
	case abi.F_SETFD:
		return 0, t.FDs().SetCloexec(fd, arg&abi.FD_CLOEXEC != 0)
	case abi.F_GETFL:
		fl := f.StatusFlags()
		if f.IsPath() {
			fl = unix.O_PATH | fl&unix.O_ACCMODE
		}
		return uint64(fl | unix.O_LARGEFILE), nil
	case abi.F_SETFL:
		return 0, f.SetStatusFlags(ctx, t.Creds().VFSCreds(), uint32(arg))
	case abi.F_GETLK, abi.F_SETLK, abi.F_SETLKW, abi.F_OFD_GETLK, abi.F_OFD_SETLK, abi.F_OFD_SETLKW:
		return 0, fcntlLock(t, f, cmd, arg)
	case abi.F_GETPIPE_SZ:
		s, ok := f.Impl().(pipe.Sizer)
		if !ok {
			return 0, unix.EBADF
		}
		return uint64(s.PipeSize()), nil
	case abi.F_SETPIPE_SZ:
		s, ok := f.Impl().(pipe.Sizer)
		if !ok {
			return 0, unix.EBADF
		}
		n, err := s.SetPipeSize(int64(uint32(arg)))
		return uint64(n), err
	case abi.F_SETOWN:
		o := ownerOf(f, true)
		o.mu.Lock()
		o.owner, o.ownType = int32(arg), 1 // F_OWNER_PID; negative means a group
		if int32(arg) < 0 {
			o.owner, o.ownType = -int32(arg), 2
		}
		o.mu.Unlock()
		return 0, nil
	case abi.F_GETOWN:
		o := ownerOf(f, false)
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.ownType == 2 {
			return uint64(-int64(o.owner)), nil
		}
		return uint64(int64(o.owner)), nil
	case abi.F_SETOWN_EX:
		var b [8]byte
		if _, err := t.CopyIn(arg, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		typ, pid := int32(le.Uint32(b[0:])), int32(le.Uint32(b[4:]))
		if typ < 0 || typ > 2 || pid < 0 {
			return 0, unix.EINVAL
		}
		o := ownerOf(f, true)
		o.mu.Lock()
		o.owner, o.ownType = pid, typ
		o.mu.Unlock()
		return 0, nil
	case abi.F_GETOWN_EX:
		o := ownerOf(f, false)
		o.mu.Lock()
		var b [8]byte
		le.PutUint32(b[0:], uint32(o.ownType))
		le.PutUint32(b[4:], uint32(o.owner))
		o.mu.Unlock()
		if _, err := t.CopyOut(arg, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		return 0, nil
	case abi.F_SETSIG:
		if arg > uint64(abi.SIGRTMAX) {
			return 0, unix.EINVAL
		}
		o := ownerOf(f, true)
		o.mu.Lock()
		o.sig = int32(arg)
		o.mu.Unlock()
		return 0, nil
	case abi.F_GETSIG:
		o := ownerOf(f, false)
		o.mu.Lock()
		defer o.mu.Unlock()
		return uint64(o.sig), nil
	case abi.F_GETLEASE:
		return abi.F_UNLCK, nil
	}
	return 0, unix.EINVAL
}

// fcntlLock runs the record-lock commands of fcntl.
func fcntlLock(t *kernel.Task, f *vfs.File, cmd int32, addr uint64) error {
	ctx := t.Ctx()
	b := make([]byte, abi.FlockSize)
	if _, err := t.CopyIn(addr, b); err != nil {
		return unix.EFAULT
	}
	var fl abi.Flock
	fl.Unmarshal(b)
	ofd := cmd == abi.F_OFD_GETLK || cmd == abi.F_OFD_SETLK || cmd == abi.F_OFD_SETLKW
	if ofd && fl.PID != 0 {
		return unix.EINVAL
	}
	var typ lock.Type
	switch fl.Type {
	case abi.F_RDLCK:
		typ = lock.Read
	case abi.F_WRLCK:
		typ = lock.Write
	case abi.F_UNLCK:
		typ = lock.Unlock
	default:
		return unix.EINVAL
	}
	rl := vfs.RecordLock{Type: typ, Whence: int(fl.Whence), Start: fl.Start, Len: fl.Len}
	owner := t.FDs()
	switch cmd {
	case abi.F_GETLK, abi.F_OFD_GETLK:
		if typ == lock.Unlock {
			return unix.EINVAL
		}
		rec, ok, err := f.GetRecordLock(ctx, owner, ofd, rl)
		if err != nil {
			return err
		}
		out := abi.Flock{Type: abi.F_UNLCK, Whence: fl.Whence, Start: fl.Start, Len: fl.Len}
		if ok {
			out = abi.Flock{Whence: unix.SEEK_SET, Start: int64(rec.Start), PID: lockPID(t, rec.PID)}
			if rec.Type == lock.Write {
				out.Type = abi.F_WRLCK
			}
			if rec.End != lock.EOF {
				out.Len = int64(rec.End - rec.Start)
			}
		}
		out.Marshal(b)
		if _, err := t.CopyOut(addr, b); err != nil {
			return unix.EFAULT
		}
		return nil
	}
	pid := t.ThreadGroup().PID()
	set := func() error { return f.SetRecordLock(ctx, owner, pid, ofd, rl) }
	if cmd == abi.F_SETLK || cmd == abi.F_OFD_SETLK || typ == lock.Unlock {
		return set()
	}
	return waitLock(t, f, set, unix.EAGAIN)
}

// waitLock retries try until it stops failing with busy, waiting for
// lock releases on f's inode in between; a signal ends the wait.
func waitLock(t *kernel.Task, f *vfs.File, try func() error, busy error) error {
	err := try()
	if err != busy {
		return err
	}
	q, err := f.LockQueue(t.Ctx())
	if err != nil {
		return err
	}
	e, ch := waiter.NewChannelEntry(waiter.EventIn | waiter.EventOut)
	q.EventRegister(e)
	defer q.EventUnregister(e)
	for {
		if err := try(); err != busy {
			return err
		}
		if err := t.Block(ch, time.Time{}); err != nil {
			if errors.Is(err, kernel.ErrInterrupted) {
				return kernel.ErrRestartSys
			}
			return err
		}
	}
}

func sysFlock(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, err := getFile(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	op := a.Args[1]
	nb := op&abi.LOCK_NB != 0
	var typ lock.Type
	switch op &^ abi.LOCK_NB {
	case abi.LOCK_SH:
		typ = lock.Read
	case abi.LOCK_EX:
		typ = lock.Write
	case abi.LOCK_UN:
		typ = lock.Unlock
	default:
		return 0, unix.EINVAL
	}
	if f.IsPath() {
		return 0, unix.EBADF
	}
	try := func() error { return f.Flock(t.Ctx(), typ) }
	if nb || typ == lock.Unlock {
		return 0, try()
	}
	return 0, waitLock(t, f, try, unix.EWOULDBLOCK)
}

// lockPID numbers the owner of a record lock in the caller's PID
// namespace (0 when it does not see it); -1 (an OFD lock) stays.
func lockPID(t *kernel.Task, pid int32) int32 {
	if pid <= 0 {
		return pid
	}
	return t.PIDNamespace().IDOf(pid)
}
