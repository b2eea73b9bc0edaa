package syscalls

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"
	"weak"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/sock"
	"moat.dev/moat/sentry/fs/sock/hostinet"
	"moat.dev/moat/sentry/fs/sock/unixsock"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// The socket calls: socket(2) and socketpair(2) make sentry files whose
// impl is a sock.Socket; the other calls find it behind the descriptor
// (ENOTSOCK otherwise), copy and check the guest's arguments, and wait
// when the socket says EAGAIN. Messages: sys_socket_msg.go.
func init() {
	register(abi.SYS_SOCKET, sysSocket)
	register(abi.SYS_SOCKETPAIR, sysSocketpair)
	register(abi.SYS_BIND, sysBind)
	register(abi.SYS_LISTEN, sysListen)
	register(abi.SYS_ACCEPT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return accept(t, a.Args[0], a.Args[1], a.Args[2], 0)
	})
	register(abi.SYS_ACCEPT4, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return accept(t, a.Args[0], a.Args[1], a.Args[2], a.Args[3])
	})
	register(abi.SYS_CONNECT, sysConnect)
	register(abi.SYS_GETSOCKNAME, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return sockName(t, a, false)
	})
	register(abi.SYS_GETPEERNAME, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		return sockName(t, a, true)
	})
	register(abi.SYS_SHUTDOWN, sysShutdown)
	register(abi.SYS_SETSOCKOPT, sysSetsockopt)
	register(abi.SYS_GETSOCKOPT, sysGetsockopt)
}

// caller adapts a task to sock.Caller.
type caller struct{ t *kernel.Task }

func (c caller) Ctx() context.Context           { return c.t.Ctx() }
func (c caller) VFS() *vfs.VirtualFilesystem    { return c.t.Kernel().VFS }
func (c caller) FSCreds() *auth.Credentials     { return c.t.Creds().VFSCreds() }
func (c caller) Umask() uint32                  { return c.t.FS().Umask() }
func (c caller) HasCap(cp auth.Capability) bool { return c.t.Creds().HasCap(cp) }
func (c caller) Cred() sock.Cred {
	cr := c.t.Creds()
	return sock.Cred{PID: c.t.LocalPID(), UID: cr.EUID, GID: cr.EGID}
}
func (c caller) PathOp(path string, follow bool) (vfs.PathOperation, func(), error) {
	return c.t.PathOp(abi.AT_FDCWD, path, follow)
}

// unixNamespaces holds each kernel's namespace of unix socket names; an
// entry goes when its kernel is collected.
var unixNamespaces = struct {
	mu sync.Mutex
	m  map[weak.Pointer[kernel.Kernel]]*unixsock.Namespace
}{m: map[weak.Pointer[kernel.Kernel]]*unixsock.Namespace{}}

func unixNamespace(k *kernel.Kernel) *unixsock.Namespace {
	w := weak.Make(k)
	unixNamespaces.mu.Lock()
	defer unixNamespaces.mu.Unlock()
	ns := unixNamespaces.m[w]
	if ns == nil {
		ns = unixsock.NewNamespace()
		unixNamespaces.m[w] = ns
		runtime.AddCleanup(k, func(w weak.Pointer[kernel.Kernel]) {
			unixNamespaces.mu.Lock()
			delete(unixNamespaces.m, w)
			unixNamespaces.mu.Unlock()
		}, w)
	}
	return ns
}

func nofile(t *kernel.Task) uint64 {
	return t.ThreadGroup().Rlimit(unix.RLIMIT_NOFILE).Cur
}

// splitType separates SOCK_NONBLOCK and SOCK_CLOEXEC from a socket type.
func splitType(v uint64) (typ int, nonblock, cloexec bool, err error) {
	flags := v & (unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC)
	typ = int(v &^ flags)
	if uint64(typ) > 0xf {
		return 0, false, false, unix.EINVAL
	}
	return typ, flags&unix.SOCK_NONBLOCK != 0, flags&unix.SOCK_CLOEXEC != 0, nil
}

func newSocket(t *kernel.Task, family, typ, protocol int) (sock.Socket, error) {
	switch family {
	case unix.AF_UNIX:
		return unixsock.New(unixNamespace(t.Kernel()), typ, protocol)
	case unix.AF_INET, unix.AF_INET6:
		return hostinet.New(caller{t}, family, typ, protocol)
	case unix.AF_NETLINK:
		// Read-only NETLINK_ROUTE, for getifaddrs and the like.
		return hostinet.NewNetlink(caller{t}, typ, protocol)
	}
	return nil, unix.EAFNOSUPPORT
}

func installFile(t *kernel.Task, f *vfs.File, cloexec bool) (int32, error) {
	fd, err := t.FDs().New(f, 0, cloexec, nofile(t))
	f.DecRef(t.Ctx())
	return fd, err
}

func fileFlags(nonblock bool) uint32 {
	if nonblock {
		return unix.O_NONBLOCK
	}
	return 0
}

func sysSocket(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	family := int(int32(a.Args[0]))
	typ, nonblock, cloexec, err := splitType(a.Args[1])
	if err != nil {
		return 0, err
	}
	s, err := newSocket(t, family, typ, int(int32(a.Args[2])))
	if err != nil {
		return 0, err
	}
	f, err := sock.NewFile(caller{t}, s, fileFlags(nonblock))
	if err != nil {
		s.Release(t.Ctx())
		return 0, err
	}
	fd, err := installFile(t, f, cloexec)
	return uint64(fd), err
}

func sysSocketpair(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	family := int(int32(a.Args[0]))
	typ, nonblock, cloexec, err := splitType(a.Args[1])
	if err != nil {
		return 0, err
	}
	switch family {
	case unix.AF_UNIX:
	case unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK:
		return 0, unix.EOPNOTSUPP
	default:
		return 0, unix.EAFNOSUPPORT
	}
	c := caller{t}
	s1, s2, err := unixsock.Pair(unixNamespace(t.Kernel()), typ, int(int32(a.Args[2])), c.Cred())
	if err != nil {
		return 0, err
	}
	f1, err := sock.NewFile(c, s1, fileFlags(nonblock))
	if err != nil {
		s1.Release(t.Ctx())
		s2.Release(t.Ctx())
		return 0, err
	}
	f2, err := sock.NewFile(c, s2, fileFlags(nonblock))
	if err != nil {
		f1.DecRef(t.Ctx())
		s2.Release(t.Ctx())
		return 0, err
	}
	fd1, err := t.FDs().New(f1, 0, cloexec, nofile(t))
	f1.DecRef(t.Ctx())
	if err != nil {
		f2.DecRef(t.Ctx())
		return 0, err
	}
	fd2, err := t.FDs().New(f2, 0, cloexec, nofile(t))
	f2.DecRef(t.Ctx())
	if err != nil {
		closeFD(t, fd1)
		return 0, err
	}
	var b [8]byte
	le.PutUint32(b[0:], uint32(fd1))
	le.PutUint32(b[4:], uint32(fd2))
	if _, err := t.CopyOut(a.Args[3], b[:]); err != nil {
		closeFD(t, fd1)
		closeFD(t, fd2)
		return 0, unix.EFAULT
	}
	return 0, nil
}

// getSocket returns the file at fd and its socket: EBADF, or ENOTSOCK if
// it is not a socket.
func getSocket(t *kernel.Task, fd uint64) (*vfs.File, sock.Socket, error) {
	f, err := getFile(t, fd)
	if err != nil {
		return nil, nil, err
	}
	s := sock.FromFile(f)
	if s == nil {
		f.DecRef(t.Ctx())
		return nil, nil, unix.ENOTSOCK
	}
	return f, s, nil
}

// copyInSockaddr reads an address the guest passes in: at most
// sizeof(struct sockaddr_storage) bytes.
func copyInSockaddr(t *kernel.Task, addr, n uint64) ([]byte, error) {
	if int32(n) < 0 || n > sock.SockaddrStorageSize {
		return nil, unix.EINVAL
	}
	b := make([]byte, n)
	if n == 0 {
		return b, nil
	}
	if _, err := t.CopyIn(addr, b); err != nil {
		return nil, unix.EFAULT
	}
	return b, nil
}

// readAddrLen reads the socklen_t a result address's room is given in.
func readAddrLen(t *kernel.Task, lenAddr uint64) (uint32, error) {
	var b [4]byte
	if _, err := t.CopyIn(lenAddr, b[:]); err != nil {
		return 0, unix.EFAULT
	}
	n := le.Uint32(b[:])
	if int32(n) < 0 {
		return 0, unix.EINVAL
	}
	return n, nil
}

// copyOutSockaddr writes as much of sa as room allows at addr and its
// full length at lenAddr, as accept, getsockname and recvfrom do.
func copyOutSockaddr(t *kernel.Task, addr, lenAddr uint64, room uint32, sa []byte) error {
	n := min(uint32(len(sa)), room)
	if n > 0 {
		if _, err := t.CopyOut(addr, sa[:n]); err != nil {
			return unix.EFAULT
		}
	}
	return copyOutU32(t, lenAddr, uint32(len(sa)))
}

// sockWait runs op until it does not return EAGAIN, waiting for mask on
// f in between, unless the call must not block. timeout (0: none) turns
// into EAGAIN; a signal into a restart, or EINTR when a timeout is set,
// as Linux does.
func sockWait(t *kernel.Task, f *vfs.File, mask waiter.EventMask, dontwait bool, timeout time.Duration, op func() (int, error)) (int, error) {
	n, err := op()
	if err != unix.EAGAIN || dontwait || f.StatusFlags()&unix.O_NONBLOCK != 0 {
		return n, err
	}
	e, ch := waiter.NewChannelEntry(mask | waiter.EventErr | waiter.EventHUp)
	if err := f.EventRegister(e); err != nil {
		return 0, unix.EAGAIN
	}
	defer f.EventUnregister(e)
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		n, err = op()
		if err != unix.EAGAIN {
			return n, err
		}
		if err := t.Block(ch, deadline); err != nil {
			switch {
			case err == unix.ETIMEDOUT:
				return 0, unix.EAGAIN
			case errors.Is(err, kernel.ErrInterrupted):
				if timeout > 0 {
					return 0, unix.EINTR
				}
				return 0, kernel.ErrRestartSys
			}
			return 0, err
		}
	}
}

func sysBind(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, s, err := getSocket(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	b, err := copyInSockaddr(t, a.Args[1], a.Args[2])
	if err != nil {
		return 0, err
	}
	return 0, s.Bind(caller{t}, b)
}

func sysListen(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, s, err := getSocket(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	backlog := int(int32(a.Args[1]))
	if backlog < 0 {
		backlog = unixsock.MaxBacklog // Linux reads it as unsigned
	}
	return 0, s.Listen(caller{t}, backlog)
}

func accept(t *kernel.Task, fd, addr, lenAddr, flags uint64) (uint64, error) {
	if flags&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 {
		return 0, unix.EINVAL
	}
	f, s, err := getSocket(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	var room uint32
	if addr != 0 {
		if room, err = readAddrLen(t, lenAddr); err != nil {
			return 0, err
		}
	}
	c := caller{t}
	var nf *vfs.File
	var peer []byte
	rcv, _ := s.Base().Timeouts()
	_, err = sockWait(t, f, waiter.ReadableEvents, false, rcv, func() (int, error) {
		var err error
		nf, peer, err = s.Accept(c, fileFlags(flags&unix.SOCK_NONBLOCK != 0))
		return 0, err
	})
	if err != nil {
		return 0, err
	}
	if addr != 0 {
		if err := copyOutSockaddr(t, addr, lenAddr, room, peer); err != nil {
			nf.DecRef(t.Ctx())
			return 0, err
		}
	}
	nfd, err := installFile(t, nf, flags&unix.SOCK_CLOEXEC != 0)
	return uint64(nfd), err
}

func sysConnect(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, s, err := getSocket(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	b, err := copyInSockaddr(t, a.Args[1], a.Args[2])
	if err != nil {
		return 0, err
	}
	c := caller{t}
	nonblock := f.StatusFlags()&unix.O_NONBLOCK != 0
	_, snd := s.Base().Timeouts()
	// A full backlog (EAGAIN) waits for the listener to accept.
	_, err = sockWait(t, f, waiter.WritableEvents, false, snd, func() (int, error) {
		return 0, s.Connect(c, b)
	})
	// EALREADY: a connect restarted after a signal (or another thread's)
	// is still under way; a blocking caller waits for it, as on Linux.
	if err != unix.EINPROGRESS && err != unix.EALREADY || nonblock {
		return 0, err
	}
	_, err = sockWait(t, f, waiter.WritableEvents, false, snd, func() (int, error) {
		if f.Readiness(waiter.WritableEvents|waiter.EventErr|waiter.EventHUp) == 0 {
			return 0, unix.EAGAIN
		}
		return 0, nil
	})
	switch {
	case err == unix.EAGAIN:
		return 0, unix.EINPROGRESS // timed out: the connection goes on
	case err != nil:
		return 0, err
	}
	return 0, s.ConnectResult()
}

func sockName(t *kernel.Task, a *kernel.SyscallArgs, peer bool) (uint64, error) {
	f, s, err := getSocket(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	room, err := readAddrLen(t, a.Args[2])
	if err != nil {
		return 0, err
	}
	var sa []byte
	if peer {
		sa, err = s.PeerName()
	} else {
		sa, err = s.SockName()
	}
	if err != nil {
		return 0, err
	}
	return 0, copyOutSockaddr(t, a.Args[1], a.Args[2], room, sa)
}

func sysShutdown(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, s, err := getSocket(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	return 0, s.Shutdown(int(int32(a.Args[1])))
}

// maxOptLen bounds an option value copied in.
const maxOptLen = 4096

func sysSetsockopt(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, s, err := getSocket(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	level, name, n := int(int32(a.Args[1])), int(int32(a.Args[2])), a.Args[4]
	if int32(n) < 0 {
		return 0, unix.EINVAL
	}
	n = min(n, maxOptLen)
	val := make([]byte, n)
	if n > 0 {
		if _, err := t.CopyIn(a.Args[3], val); err != nil {
			return 0, unix.EFAULT
		}
	}
	if level == unix.SOL_SOCKET && (name == unix.SO_RCVTIMEO || name == unix.SO_SNDTIMEO ||
		name == unix.SO_RCVTIMEO_NEW || name == unix.SO_SNDTIMEO_NEW) {
		if len(val) < abi.TimevalSize {
			return 0, unix.EINVAL
		}
		var tv abi.Timeval
		tv.Unmarshal(val)
		if tv.Usec < 0 || tv.Usec >= 1e6 {
			return 0, unix.EDOM
		}
		d := time.Duration(0)
		if tv.Sec > 0 || (tv.Sec == 0 && tv.Usec > 0) {
			d = time.Duration(min(tv.Sec, 1<<32))*time.Second + time.Duration(tv.Usec)*time.Microsecond
		}
		s.Base().SetTimeout(name == unix.SO_SNDTIMEO || name == unix.SO_SNDTIMEO_NEW, d)
		return 0, nil
	}
	return 0, s.SetSockOpt(caller{t}, level, name, val)
}

func sysGetsockopt(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, s, err := getSocket(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	level, name := int(int32(a.Args[1])), int(int32(a.Args[2]))
	room, err := readAddrLen(t, a.Args[4])
	if err != nil {
		return 0, err
	}
	var val []byte
	if level == unix.SOL_SOCKET && (name == unix.SO_RCVTIMEO || name == unix.SO_SNDTIMEO ||
		name == unix.SO_RCVTIMEO_NEW || name == unix.SO_SNDTIMEO_NEW) {
		rcv, snd := s.Base().Timeouts()
		d := rcv
		if name == unix.SO_SNDTIMEO || name == unix.SO_SNDTIMEO_NEW {
			d = snd
		}
		tv := abi.Timeval{Sec: int64(d / time.Second), Usec: int64(d % time.Second / time.Microsecond)}
		val = make([]byte, abi.TimevalSize)
		tv.Marshal(val)
	} else {
		val, err = s.GetSockOpt(caller{t}, level, name, int(min(room, maxOptLen)))
		if err != nil {
			return 0, err
		}
	}
	n := min(uint32(len(val)), room)
	if n > 0 {
		if _, err := t.CopyOut(a.Args[3], val[:n]); err != nil {
			return 0, unix.EFAULT
		}
	}
	return 0, copyOutU32(t, a.Args[4], n)
}
