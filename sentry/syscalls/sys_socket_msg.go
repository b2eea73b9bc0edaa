package syscalls

import (
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/sock"
	"moat.dev/moat/sentry/fs/sock/unixsock"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// The message calls: sendto, recvfrom, sendmsg, recvmsg, sendmmsg and
// recvmmsg, with their iovecs and control messages.
func init() {
	register(abi.SYS_SENDTO, sysSendto)
	register(abi.SYS_RECVFROM, sysRecvfrom)
	register(abi.SYS_SENDMSG, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, s, err := getSocket(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		return sendMsg(t, f, s, a.Args[1], int(int32(a.Args[2])))
	})
	register(abi.SYS_RECVMSG, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		f, s, err := getSocket(t, a.Args[0])
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t.Ctx())
		return recvMsg(t, f, s, a.Args[1], int(int32(a.Args[2])))
	})
	register(abi.SYS_SENDMMSG, sysSendmmsg)
	register(abi.SYS_RECVMMSG, sysRecvmmsg)
}

// Limits of one message.
const (
	// maxIov is UIO_MAXIOV.
	maxIov = 1024
	// maxControl bounds the control data of one sendmsg
	// (net.core.optmem_max).
	maxControl = 64 << 10
	// maxDatagram bounds the bytes of one message on a socket that keeps
	// message boundaries.
	maxDatagram = 1 << 20
	// maxMmsg bounds sendmmsg and recvmmsg (UIO_MAXIOV).
	maxMmsg = 1024
)

// msgFlagsKnown are the MSG_* flags a send or receive may carry; others
// are ignored, as Linux ignores them.
const msgFlagsKnown = unix.MSG_OOB | unix.MSG_PEEK | unix.MSG_DONTROUTE | unix.MSG_CTRUNC |
	unix.MSG_TRUNC | unix.MSG_DONTWAIT | unix.MSG_EOR | unix.MSG_WAITALL | unix.MSG_CONFIRM |
	unix.MSG_NOSIGNAL | unix.MSG_MORE | unix.MSG_WAITFORONE | unix.MSG_CMSG_CLOEXEC | unix.MSG_ERRQUEUE

// ioVec is a list of guest buffers being filled or drained in order.
type ioVec struct {
	iov   []abi.Iovec
	total uint64
}

func newIOVec(iov []abi.Iovec) ioVec {
	v := ioVec{iov: iov}
	for _, e := range iov {
		v.total += e.Len
	}
	v.total = min(v.total, maxRW)
	return v
}

// copyIn gathers n bytes starting at byte off of the vector.
func (v ioVec) copyIn(t *kernel.Task, off, n uint64) ([]byte, error) {
	b := make([]byte, n)
	var done uint64
	for _, e := range v.iov {
		if done == n {
			break
		}
		if off >= e.Len {
			off -= e.Len
			continue
		}
		c := min(e.Len-off, n-done)
		if _, err := t.CopyIn(e.Base+off, b[done:done+c]); err != nil {
			return nil, unix.EFAULT
		}
		done += c
		off = 0
	}
	return b[:done], nil
}

// copyOut scatters b into the vector starting at byte off.
func (v ioVec) copyOut(t *kernel.Task, off uint64, b []byte) error {
	for _, e := range v.iov {
		if len(b) == 0 {
			return nil
		}
		if off >= e.Len {
			off -= e.Len
			continue
		}
		c := min(e.Len-off, uint64(len(b)))
		if _, err := t.CopyOut(e.Base+off, b[:c]); err != nil {
			return unix.EFAULT
		}
		b = b[c:]
		off = 0
	}
	return nil
}

// validIovs checks that every buffer of v can be accessed, so a bad
// pointer is EFAULT before anything is sent or consumed.
func (v ioVec) check(t *kernel.Task, write bool) error {
	var probe [1]byte
	for _, e := range v.iov {
		if e.Len == 0 {
			continue
		}
		for _, at := range []uint64{e.Base, e.Base + e.Len - 1} {
			var err error
			if write {
				_, err = t.CopyIn(at, probe[:])
				if err == nil {
					_, err = t.CopyOut(at, probe[:])
				}
			} else {
				_, err = t.CopyIn(at, probe[:])
			}
			if err != nil {
				return unix.EFAULT
			}
		}
	}
	return nil
}

// boundaries says whether the socket keeps message boundaries.
func boundaries(s sock.Socket) bool { return s.Type() != unix.SOCK_STREAM }

// sendCommon sends the bytes of v (and ctl with the first of them).
func sendCommon(t *kernel.Task, f *vfs.File, s sock.Socket, v ioVec, to []byte, ctl sock.Control, flags int) (uint64, error) {
	defer ctl.Release(t.Ctx())
	c := caller{t}
	dontwait := flags&unix.MSG_DONTWAIT != 0
	_, timeout := s.Base().Timeouts()
	epipe := func(err error) error {
		if err == unix.EPIPE && flags&unix.MSG_NOSIGNAL == 0 && s.Type() != unix.SOCK_DGRAM {
			t.Kernel().SendTaskSignal(t, kernel.SignalInfoKill(abi.SIGPIPE, abi.SI_USER, t.LocalPID(), 0))
		}
		return err
	}
	if boundaries(s) {
		if v.total > maxDatagram {
			return 0, unix.EMSGSIZE
		}
		data, err := v.copyIn(t, 0, v.total)
		if err != nil {
			return 0, err
		}
		opts := &sock.SendOptions{To: to, Control: ctl, Flags: flags}
		n, err := sockWait(t, f, waiter.WritableEvents, dontwait, timeout, func() (int, error) {
			return s.SendMsg(c, data, opts)
		})
		ctl = opts.Control
		if err != nil {
			return 0, epipe(err)
		}
		return uint64(n), nil
	}
	opts := &sock.SendOptions{To: to, Control: ctl, Flags: flags}
	var total uint64
	for {
		data, err := v.copyIn(t, total, min(v.total-total, ioChunk))
		if err != nil {
			if total > 0 {
				return total, nil
			}
			return 0, err
		}
		done := 0
		for {
			n, err := sockWait(t, f, waiter.WritableEvents, dontwait, timeout, func() (int, error) {
				return s.SendMsg(c, data[done:], opts)
			})
			done += n
			total += uint64(n)
			if err != nil {
				ctl = opts.Control
				if total > 0 {
					return total, nil
				}
				return 0, epipe(err)
			}
			if done >= len(data) {
				break
			}
		}
		if total >= v.total {
			break
		}
	}
	ctl = opts.Control
	return total, nil
}

// recvCommon receives into v. It returns the byte count for the guest
// (the whole datagram's length with MSG_TRUNC) and what else arrived.
func recvCommon(t *kernel.Task, f *vfs.File, s sock.Socket, v ioVec, flags int) (uint64, sock.RecvResult, error) {
	c := caller{t}
	dontwait := flags&unix.MSG_DONTWAIT != 0
	timeout, _ := s.Base().Timeouts()
	if flags&unix.MSG_ERRQUEUE != 0 {
		return 0, sock.RecvResult{}, unix.EAGAIN // no error queue is kept
	}
	if boundaries(s) {
		data := make([]byte, min(v.total, maxDatagram))
		var r sock.RecvResult
		_, err := sockWait(t, f, waiter.ReadableEvents, dontwait, timeout, func() (int, error) {
			var err error
			r, err = s.RecvMsg(c, data, flags)
			return r.N, err
		})
		if err != nil {
			return 0, r, err
		}
		if err := v.copyOut(t, 0, data[:r.N]); err != nil {
			r.Control.Release(t.Ctx())
			return 0, sock.RecvResult{}, err
		}
		if flags&unix.MSG_TRUNC != 0 {
			return uint64(r.MsgLen), r, nil
		}
		return uint64(r.N), r, nil
	}
	var first sock.RecvResult
	var total uint64
	for {
		want := min(v.total-total, 256<<10)
		data := make([]byte, want)
		var r sock.RecvResult
		wait := total == 0 || flags&unix.MSG_WAITALL != 0 && flags&unix.MSG_PEEK == 0
		_, err := sockWait(t, f, waiter.ReadableEvents, dontwait || !wait, timeout, func() (int, error) {
			var err error
			r, err = s.RecvMsg(c, data, flags)
			return r.N, err
		})
		if err != nil {
			if total > 0 {
				break
			}
			return 0, first, err
		}
		if err := v.copyOut(t, total, data[:r.N]); err != nil {
			r.Control.Release(t.Ctx())
			if total > 0 {
				break
			}
			return 0, first, err
		}
		if total == 0 {
			first = r
		} else {
			r.Control.Release(t.Ctx())
		}
		total += uint64(r.N)
		if r.N == 0 || total >= v.total || flags&unix.MSG_WAITALL == 0 || flags&unix.MSG_PEEK != 0 {
			break
		}
	}
	first.N = int(total)
	return total, first, nil
}

// sockIO is read, write, readv and writev on a socket: one message for
// the whole vector (a datagram is never split or merged), with the
// socket's timeouts, as recv and send with no flags.
func sockIO(t *kernel.Task, f *vfs.File, s sock.Socket, iov []abi.Iovec, write bool) (uint64, error) {
	if write && !f.Writable() || !write && !f.Readable() {
		return 0, unix.EBADF
	}
	v := newIOVec(iov)
	if err := v.check(t, !write); err != nil {
		return 0, err
	}
	if write {
		return sendCommon(t, f, s, v, nil, sock.Control{}, 0)
	}
	n, r, err := recvCommon(t, f, s, v, 0)
	r.Control.Release(t.Ctx())
	return n, err
}

func sysSendto(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, s, err := getSocket(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	var to []byte
	if a.Args[4] != 0 {
		if to, err = copyInSockaddr(t, a.Args[4], a.Args[5]); err != nil {
			return 0, err
		}
	}
	v := newIOVec([]abi.Iovec{{Base: a.Args[1], Len: min(a.Args[2], maxRW)}})
	if err := v.check(t, false); err != nil {
		return 0, err
	}
	return sendCommon(t, f, s, v, to, sock.Control{}, int(int32(a.Args[3]))&msgFlagsKnown)
}

func sysRecvfrom(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, s, err := getSocket(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	var room uint32
	if a.Args[4] != 0 {
		if room, err = readAddrLen(t, a.Args[5]); err != nil {
			return 0, err
		}
	}
	v := newIOVec([]abi.Iovec{{Base: a.Args[1], Len: min(a.Args[2], maxRW)}})
	if err := v.check(t, true); err != nil {
		return 0, err
	}
	n, r, err := recvCommon(t, f, s, v, int(int32(a.Args[3]))&msgFlagsKnown)
	if err != nil {
		return 0, err
	}
	r.Control.Release(t.Ctx())
	if a.Args[4] != 0 {
		if r.From == nil {
			return n, copyOutU32(t, a.Args[5], 0)
		}
		if err := copyOutSockaddr(t, a.Args[4], a.Args[5], room, r.From); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// readMsghdr reads and checks a struct msghdr and its iovecs.
func readMsghdr(t *kernel.Task, addr uint64) (abi.Msghdr, ioVec, error) {
	b := make([]byte, abi.MsghdrSize)
	if _, err := t.CopyIn(addr, b); err != nil {
		return abi.Msghdr{}, ioVec{}, unix.EFAULT
	}
	var m abi.Msghdr
	m.Unmarshal(b)
	if m.Iovlen > maxIov {
		return m, ioVec{}, unix.EMSGSIZE
	}
	iov, err := iovecs(t, m.Iov, m.Iovlen)
	if err != nil {
		return m, ioVec{}, err
	}
	return m, newIOVec(iov), nil
}

func sendMsg(t *kernel.Task, f *vfs.File, s sock.Socket, addr uint64, flags int) (uint64, error) {
	m, v, err := readMsghdr(t, addr)
	if err != nil {
		return 0, err
	}
	flags &= msgFlagsKnown
	var to []byte
	if m.Name != 0 && m.Namelen != 0 {
		if to, err = copyInSockaddr(t, m.Name, uint64(m.Namelen)); err != nil {
			return 0, err
		}
	}
	if err := v.check(t, false); err != nil {
		return 0, err
	}
	var ctl sock.Control
	if m.Controllen > 0 {
		if m.Controllen > maxControl {
			return 0, unix.ENOBUFS
		}
		if m.Controllen < abi.CmsghdrSize {
			return 0, unix.EINVAL
		}
		cb := make([]byte, m.Controllen)
		if _, err := t.CopyIn(m.Control, cb); err != nil {
			return 0, unix.EFAULT
		}
		if ctl, err = parseControl(t, s, cb); err != nil {
			return 0, err
		}
	}
	return sendCommon(t, f, s, v, to, ctl, flags)
}

// parseControl reads the control messages of a sendmsg: SCM_RIGHTS and
// SCM_CREDENTIALS on unix sockets; nothing on others.
func parseControl(t *kernel.Task, s sock.Socket, b []byte) (sock.Control, error) {
	var ctl sock.Control
	fail := func(err error) (sock.Control, error) {
		ctl.Release(t.Ctx())
		return sock.Control{}, err
	}
	for len(b) >= abi.CmsghdrSize {
		var h abi.Cmsghdr
		h.Unmarshal(b)
		if h.Len < abi.CmsghdrSize || h.Len > uint64(len(b)) {
			return fail(unix.EINVAL)
		}
		data := b[abi.CmsghdrSize:h.Len]
		if s.Family() == unix.AF_INET || s.Family() == unix.AF_INET6 {
			if !inetCmsgAllowed(s.Family(), int(h.Level), int(h.Type), len(data)) {
				return fail(unix.EINVAL)
			}
			ctl.Inet = append(ctl.Inet, sock.Cmsg{Level: int(h.Level), Type: int(h.Type), Data: append([]byte(nil), data...)})
		} else if s.Family() != unix.AF_UNIX || h.Level != unix.SOL_SOCKET {
			return fail(unix.EINVAL)
		} else {
			switch h.Type {
			case unix.SCM_RIGHTS:
				if len(data)%4 != 0 {
					return fail(unix.EINVAL)
				}
				n := len(data) / 4
				if len(ctl.Rights)+n > unixsock.MaxRights {
					return fail(unix.EINVAL)
				}
				for i := range n {
					rf := t.FDs().Get(int32(le.Uint32(data[4*i:])))
					if rf == nil {
						return fail(unix.EBADF)
					}
					ctl.Rights = append(ctl.Rights, rf)
				}
			case unix.SCM_CREDENTIALS:
				if len(data) != abi.UcredSize {
					return fail(unix.EINVAL)
				}
				var u abi.Ucred
				u.Unmarshal(data)
				if err := checkCred(t, u); err != nil {
					return fail(err)
				}
				ctl.Cred = &sock.Cred{PID: u.PID, UID: u.UID, GID: u.GID}
			default:
				return fail(unix.EINVAL)
			}
		}
		next := abi.CmsgAlign(h.Len)
		if next >= uint64(len(b)) {
			break
		}
		b = b[next:]
	}
	return ctl, nil
}

// inetCmsgAllowed says which control messages an inet send may carry:
// the source address and interface (IP_PKTINFO, IPV6_PKTINFO) that UDP
// servers answer with.
func inetCmsgAllowed(family, level, typ, n int) bool {
	switch {
	case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO:
		return n == unix.SizeofInet4Pktinfo
	case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO:
		return family == unix.AF_INET6 && n == unix.SizeofInet6Pktinfo
	}
	return false
}

// checkCred decides whether the sender may claim u (SCM_CREDENTIALS): its
// own process id and one of its real, effective or saved ids, unless it
// holds the capability to claim others.
func checkCred(t *kernel.Task, u abi.Ucred) error {
	cr := t.Creds()
	c := caller{t}
	if u.PID != t.LocalPID() && !c.HasCap(auth.CapSysAdmin) {
		return unix.EPERM
	}
	if u.UID != cr.RUID && u.UID != cr.EUID && u.UID != cr.SUID && !c.HasCap(auth.CapSetuid) {
		return unix.EPERM
	}
	if u.GID != cr.RGID && u.GID != cr.EGID && u.GID != cr.SGID && !c.HasCap(auth.CapSetgid) {
		return unix.EPERM
	}
	return nil
}

func recvMsg(t *kernel.Task, f *vfs.File, s sock.Socket, addr uint64, flags int) (uint64, error) {
	m, v, err := readMsghdr(t, addr)
	if err != nil {
		return 0, err
	}
	flags &= msgFlagsKnown
	if int32(m.Namelen) < 0 {
		return 0, unix.EINVAL
	}
	if err := v.check(t, true); err != nil {
		return 0, err
	}
	n, r, err := recvCommon(t, f, s, v, flags)
	if err != nil {
		return 0, err
	}
	// msg_namelen, msg_controllen and msg_flags are written back.
	nameLen := uint32(0)
	if m.Name != 0 && r.From != nil {
		c := min(uint32(len(r.From)), m.Namelen)
		if c > 0 {
			if _, err := t.CopyOut(m.Name, r.From[:c]); err != nil {
				r.Control.Release(t.Ctx())
				return 0, unix.EFAULT
			}
		}
		nameLen = uint32(len(r.From))
	}
	ctlLen, ctlFlags, err := writeControl(t, m.Control, m.Controllen, &r.Control, flags&unix.MSG_CMSG_CLOEXEC != 0)
	if err != nil {
		return 0, err
	}
	if m.Name != 0 { // Linux leaves msg_namelen alone without msg_name
		if err := copyOutU32(t, addr+8, nameLen); err != nil {
			return 0, err
		}
	}
	if err := copyOutU64(t, addr+40, ctlLen); err != nil {
		return 0, err
	}
	if err := copyOutU32(t, addr+48, uint32(r.Flags|ctlFlags)); err != nil {
		return 0, err
	}
	return n, nil
}

// writeControl writes the received control messages into the guest's
// control buffer, installing passed files as new descriptors. What does
// not fit is dropped with MSG_CTRUNC. It returns the bytes used.
func writeControl(t *kernel.Task, addr, room uint64, ctl *sock.Control, cloexec bool) (uint64, int, error) {
	defer ctl.Release(t.Ctx())
	if addr == 0 {
		room = 0
	}
	var out []byte
	var fds []int32
	flags := 0
	if ctl.Cred != nil {
		if uint64(len(out))+abi.CmsgSpace(abi.UcredSize) <= room {
			h := abi.Cmsghdr{Len: abi.CmsgLen(abi.UcredSize), Level: unix.SOL_SOCKET, Type: unix.SCM_CREDENTIALS}
			b := make([]byte, abi.CmsgSpace(abi.UcredSize))
			h.Marshal(b)
			u := abi.Ucred{PID: ctl.Cred.PID, UID: ctl.Cred.UID, GID: ctl.Cred.GID}
			u.Marshal(b[abi.CmsghdrSize:])
			out = append(out, b...)
		} else {
			flags |= unix.MSG_CTRUNC
		}
	}
	for _, m := range ctl.Inet {
		need := abi.CmsgSpace(uint64(len(m.Data)))
		if uint64(len(out))+need > room {
			flags |= unix.MSG_CTRUNC
			continue
		}
		b := make([]byte, need)
		h := abi.Cmsghdr{Len: abi.CmsgLen(uint64(len(m.Data))), Level: int32(m.Level), Type: int32(m.Type)}
		h.Marshal(b)
		copy(b[abi.CmsghdrSize:], m.Data)
		out = append(out, b...)
	}
	if len(ctl.Rights) > 0 {
		left := room - min(room, uint64(len(out)))
		fit := 0
		if left >= abi.CmsghdrSize+4 {
			fit = int(min((left-abi.CmsghdrSize)/4, uint64(len(ctl.Rights))))
		}
		if fit < len(ctl.Rights) {
			flags |= unix.MSG_CTRUNC
		}
		for _, rf := range ctl.Rights[:fit] {
			fd, err := t.FDs().New(rf, 0, cloexec, nofile(t))
			if err != nil {
				flags |= unix.MSG_CTRUNC
				break
			}
			fds = append(fds, fd)
		}
		if len(fds) > 0 {
			h := abi.Cmsghdr{Len: abi.CmsgLen(uint64(4 * len(fds))), Level: unix.SOL_SOCKET, Type: unix.SCM_RIGHTS}
			b := make([]byte, abi.CmsgSpace(uint64(4*len(fds))))
			h.Marshal(b)
			for i, fd := range fds {
				le.PutUint32(b[abi.CmsghdrSize+4*i:], uint32(fd))
			}
			// The last message's padding may not fit: Linux then
			// reports only its length.
			out = append(out, b[:min(uint64(len(b)), left)]...)
		}
	}
	if len(out) > 0 {
		if _, err := t.CopyOut(addr, out); err != nil {
			// The guest never learns the numbers: take the
			// descriptors back.
			for _, fd := range fds {
				closeFD(t, fd)
			}
			return 0, 0, unix.EFAULT
		}
	}
	return uint64(len(out)), flags, nil
}

func sysSendmmsg(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, s, err := getSocket(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	vlen := min(a.Args[2], maxMmsg)
	flags := int(int32(a.Args[3]))
	var i uint64
	for ; i < vlen; i++ {
		at := a.Args[1] + i*abi.MmsghdrSize
		n, err := sendMsg(t, f, s, at, flags)
		if err != nil {
			if i > 0 {
				break
			}
			return 0, err
		}
		if err := copyOutU32(t, at+abi.MsghdrSize, uint32(n)); err != nil {
			if i > 0 {
				break
			}
			return 0, err
		}
	}
	return i, nil
}

func sysRecvmmsg(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	f, s, err := getSocket(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	vlen := min(a.Args[2], maxMmsg)
	flags := int(int32(a.Args[3]))
	var deadline time.Time
	if a.Args[4] != 0 {
		ts, err := copyInTimespecSock(t, a.Args[4])
		if err != nil {
			return 0, err
		}
		deadline = time.Now().Add(ts)
	}
	var i uint64
	for ; i < vlen; i++ {
		at := a.Args[1] + i*abi.MmsghdrSize
		fl := flags
		if i > 0 && flags&unix.MSG_WAITFORONE != 0 {
			fl |= unix.MSG_DONTWAIT
		}
		n, err := recvMsg(t, f, s, at, fl)
		if err != nil {
			if i > 0 {
				break
			}
			return 0, err
		}
		if err := copyOutU32(t, at+abi.MsghdrSize, uint32(n)); err != nil {
			if i > 0 {
				break
			}
			return 0, err
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			i++
			break
		}
	}
	return i, nil
}

func copyInTimespecSock(t *kernel.Task, addr uint64) (time.Duration, error) {
	b := make([]byte, abi.TimespecSize)
	if _, err := t.CopyIn(addr, b); err != nil {
		return 0, unix.EFAULT
	}
	var ts abi.Timespec
	ts.Unmarshal(b)
	if ts.Sec < 0 || ts.Nsec < 0 || ts.Nsec >= 1e9 {
		return 0, unix.EINVAL
	}
	return time.Duration(min(ts.Sec, 1<<32))*time.Second + time.Duration(ts.Nsec), nil
}
