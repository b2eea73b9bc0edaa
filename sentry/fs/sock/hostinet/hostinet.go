// Package hostinet implements AF_INET and AF_INET6 sockets (TCP, UDP and,
// where the host allows it, ICMP echo datagram sockets) on real host
// sockets that the sentry makes in the network namespace it runs in, the
// pod's. Every guest operation is checked and rebuilt before it reaches
// the host: addresses are parsed and their lengths checked, only the
// options of an allowlist pass (anything else is ENOPROTOOPT), control
// messages are refused, and only a few read-only ioctls are answered.
// The host descriptor never appears in the guest's descriptor table.
//
// Host sockets are non-blocking; their readiness reaches the sockets'
// waiter queues through one host epoll instance (poller.go).
package hostinet

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/fs/sock"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// Socket is an AF_INET or AF_INET6 socket backed by a host socket.
type Socket struct {
	vfs.FileDefaults
	base     sock.Base
	fd       int
	family   int
	typ      int
	protocol int
	queue    waiter.Queue
	p        *poller

	listening atomic.Bool
	released  atomic.Bool
}

// New makes a host socket for socket(family, typ, protocol), typ without
// its flags.
func New(c sock.Caller, family, typ, protocol int) (*Socket, error) {
	if family != unix.AF_INET && family != unix.AF_INET6 {
		return nil, unix.EAFNOSUPPORT
	}
	switch typ {
	case unix.SOCK_STREAM:
		if protocol == 0 {
			protocol = unix.IPPROTO_TCP
		}
		if protocol != unix.IPPROTO_TCP {
			return nil, unix.EPROTONOSUPPORT
		}
	case unix.SOCK_DGRAM:
		switch {
		case protocol == 0:
			protocol = unix.IPPROTO_UDP
		case protocol == unix.IPPROTO_UDP:
		case protocol == unix.IPPROTO_ICMP && family == unix.AF_INET,
			protocol == unix.IPPROTO_ICMPV6 && family == unix.AF_INET6:
			if err := pingAllowed(c); err != nil {
				return nil, err
			}
		default:
			return nil, unix.EPROTONOSUPPORT
		}
	case unix.SOCK_RAW:
		// Raw sockets would let the guest forge packets in the pod's
		// network; ping falls back to ICMP datagram sockets on EPERM.
		return nil, unix.EPERM
	default:
		return nil, unix.ESOCKTNOSUPPORT
	}
	p, err := getPoller()
	if err != nil {
		return nil, unix.ENOMEM
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, protocol)
	if err != nil {
		return nil, hostErr(err)
	}
	return wrap(p, fd, family, typ, protocol)
}

func wrap(p *poller, fd, family, typ, protocol int) (*Socket, error) {
	s := &Socket{fd: fd, family: family, typ: typ, protocol: protocol, p: p}
	if err := p.add(fd, &s.queue); err != nil {
		unix.Close(fd)
		return nil, unix.ENOMEM
	}
	return s, nil
}

// hostErr passes a host errno through; anything else becomes EIO.
func hostErr(err error) error {
	if e, ok := err.(unix.Errno); ok {
		return e
	}
	return unix.EIO
}

// Family implements sock.Socket.
func (s *Socket) Family() int { return s.family }

// Type implements sock.Socket.
func (s *Socket) Type() int { return s.typ }

// Protocol implements sock.Socket.
func (s *Socket) Protocol() int { return s.protocol }

// Base implements sock.Socket.
func (s *Socket) Base() *sock.Base { return &s.base }

// Release implements vfs.FileImpl.
func (s *Socket) Release(context.Context) {
	if s.released.Swap(true) {
		return
	}
	s.p.remove(s.fd)
	unix.Close(s.fd)
	s.queue.Notify(waiter.AllEvents)
}

// Bind implements sock.Socket. A port below the network namespace's
// net.ipv4.ip_unprivileged_port_start (1024 by default) needs
// CAP_NET_BIND_SERVICE in the sandbox.
func (s *Socket) Bind(c sock.Caller, b []byte) error {
	sa, _, err := parseAddr(s.family, b, true)
	if err != nil {
		return err
	}
	if p := port(sa); p != 0 && !c.HasCap(sock.CapNetBindService) && p < unprivilegedPortStart() {
		return unix.EACCES
	}
	return hostErr0(unix.Bind(s.fd, sa))
}

func hostErr0(err error) error {
	if err == nil {
		return nil
	}
	return hostErr(err)
}

// Listen implements sock.Socket.
func (s *Socket) Listen(_ sock.Caller, backlog int) error {
	if backlog < 0 || backlog > 4096 {
		backlog = 4096
	}
	if err := unix.Listen(s.fd, backlog); err != nil {
		return hostErr(err)
	}
	s.listening.Store(true)
	return nil
}

// Accept implements sock.Socket.
func (s *Socket) Accept(c sock.Caller, flags uint32) (*vfs.File, []byte, error) {
	nfd, sa, err := unix.Accept4(s.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		return nil, nil, hostErr(err)
	}
	ns, err := wrap(s.p, nfd, s.family, s.typ, s.protocol)
	if err != nil {
		return nil, nil, err
	}
	f, err := sock.NewFile(c, ns, flags)
	if err != nil {
		ns.Release(c.Ctx())
		return nil, nil, err
	}
	return f, formatAddr(sa), nil
}

// Connect implements sock.Socket.
func (s *Socket) Connect(_ sock.Caller, b []byte) error {
	sa, unspec, err := parseAddr(s.family, b, false)
	if err != nil {
		return err
	}
	if unspec {
		return connectUnspec(s.fd)
	}
	return hostErr0(unix.Connect(s.fd, sa))
}

// ConnectResult implements sock.Socket: the pending error of the
// connection that went on.
func (s *Socket) ConnectResult() error {
	v, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return hostErr(err)
	}
	if v != 0 {
		return unix.Errno(v)
	}
	return nil
}

// Shutdown implements sock.Socket.
func (s *Socket) Shutdown(how int) error {
	if how != unix.SHUT_RD && how != unix.SHUT_WR && how != unix.SHUT_RDWR {
		return unix.EINVAL
	}
	return hostErr0(unix.Shutdown(s.fd, how))
}

// SockName implements sock.Socket.
func (s *Socket) SockName() ([]byte, error) {
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		return nil, hostErr(err)
	}
	return formatAddr(sa), nil
}

// PeerName implements sock.Socket.
func (s *Socket) PeerName() ([]byte, error) {
	sa, err := unix.Getpeername(s.fd)
	if err != nil {
		return nil, hostErr(err)
	}
	return formatAddr(sa), nil
}

// The MSG_* flags passed to the host; the sentry adds MSG_DONTWAIT and
// MSG_NOSIGNAL itself (it waits and raises SIGPIPE on its own).
const (
	sendFlags = unix.MSG_OOB | unix.MSG_DONTROUTE | unix.MSG_EOR | unix.MSG_MORE | unix.MSG_CONFIRM
	recvFlags = unix.MSG_OOB | unix.MSG_PEEK | unix.MSG_TRUNC
)

// SendMsg implements sock.Socket.
func (s *Socket) SendMsg(_ sock.Caller, data []byte, opts *sock.SendOptions) (int, error) {
	if len(opts.Control.Rights) > 0 || opts.Control.Cred != nil {
		return 0, unix.EINVAL
	}
	oob, err := buildOOB(s.family, opts.Control.Inet)
	if err != nil {
		return 0, err
	}
	var to unix.Sockaddr
	if opts.To != nil && s.typ == unix.SOCK_DGRAM {
		sa, unspec, err := parseAddr(s.family, opts.To, false)
		if err != nil {
			return 0, err
		}
		if !unspec {
			to = sa
		}
	}
	n, err := unix.SendmsgN(s.fd, data, oob, to, opts.Flags&sendFlags|unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
	if err != nil {
		return 0, hostErr(err)
	}
	return n, nil
}

// buildOOB lays out the checked inet control messages for the host: only
// IP_PKTINFO, and IPV6_PKTINFO on AF_INET6 sockets, of their exact sizes.
func buildOOB(family int, msgs []sock.Cmsg) ([]byte, error) {
	var oob []byte
	for _, m := range msgs {
		switch {
		case m.Level == unix.IPPROTO_IP && m.Type == unix.IP_PKTINFO && len(m.Data) == unix.SizeofInet4Pktinfo:
		case m.Level == unix.IPPROTO_IPV6 && m.Type == unix.IPV6_PKTINFO && len(m.Data) == unix.SizeofInet6Pktinfo && family == unix.AF_INET6:
		default:
			return nil, unix.EINVAL
		}
		b := make([]byte, unix.CmsgSpace(len(m.Data)))
		binary.LittleEndian.PutUint64(b[0:], uint64(unix.CmsgLen(len(m.Data))))
		binary.LittleEndian.PutUint32(b[8:], uint32(m.Level))
		binary.LittleEndian.PutUint32(b[12:], uint32(m.Type))
		copy(b[unix.CmsgLen(0):], m.Data)
		oob = append(oob, b...)
	}
	return oob, nil
}

// inetCmsgs keeps the control messages of a host receive the guest may
// see: the destination address and interface (IP_PKTINFO, IPV6_PKTINFO).
func inetCmsgs(oob []byte) []sock.Cmsg {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var out []sock.Cmsg
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo:
			out = append(out, sock.Cmsg{Level: unix.IPPROTO_IP, Type: unix.IP_PKTINFO, Data: append([]byte(nil), m.Data[:unix.SizeofInet4Pktinfo]...)})
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo:
			out = append(out, sock.Cmsg{Level: unix.IPPROTO_IPV6, Type: unix.IPV6_PKTINFO, Data: append([]byte(nil), m.Data[:unix.SizeofInet6Pktinfo]...)})
		}
	}
	return out
}

// RecvMsg implements sock.Socket.
func (s *Socket) RecvMsg(_ sock.Caller, data []byte, flags int) (sock.RecvResult, error) {
	var oob []byte
	if s.typ == unix.SOCK_DGRAM {
		oob = make([]byte, 128)
	}
	n, oobn, rflags, from, err := unix.Recvmsg(s.fd, data, oob, flags&recvFlags|unix.MSG_DONTWAIT)
	if err != nil {
		return sock.RecvResult{}, hostErr(err)
	}
	r := sock.RecvResult{N: min(n, len(data)), MsgLen: n, Flags: rflags & (unix.MSG_TRUNC | unix.MSG_EOR | unix.MSG_OOB)}
	if oobn > 0 {
		r.Control.Inet = inetCmsgs(oob[:oobn])
	}
	if from != nil && s.typ == unix.SOCK_DGRAM {
		r.From = formatAddr(from)
	}
	return r, nil
}

// Read implements vfs.FileImpl.
func (s *Socket) Read(_ context.Context, p []byte, _ int64) (int, error) {
	n, err := unix.Read(s.fd, p)
	if err != nil {
		return 0, hostErr(err)
	}
	return n, nil
}

// Write implements vfs.FileImpl.
func (s *Socket) Write(_ context.Context, p []byte, _ int64) (int, error) {
	n, err := unix.SendmsgN(s.fd, p, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
	if err != nil {
		return 0, hostErr(err)
	}
	return n, nil
}

// Readiness implements waiter.Waitable by asking the host.
func (s *Socket) Readiness(mask waiter.EventMask) waiter.EventMask {
	return pollHost(s.fd, mask)
}

// pollHost returns the events of mask that the host reports for fd now.
func pollHost(fd int, mask waiter.EventMask) waiter.EventMask {
	fds := []unix.PollFd{{Fd: int32(fd), Events: int16(mask & 0xffff)}}
	for {
		_, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return waiter.EventErr
		}
		break
	}
	return hostEvents(uint32(uint16(fds[0].Revents))) & (mask | waiter.EventErr | waiter.EventHUp)
}

// EventRegister implements waiter.Waitable.
func (s *Socket) EventRegister(e *waiter.Entry) error {
	s.queue.EventRegister(e)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (s *Socket) EventUnregister(e *waiter.Entry) { s.queue.EventUnregister(e) }

// The ioctls answered from the host socket that read one int.
const (
	fionread  = 0x541b // SIOCINQ
	siocoutq  = 0x5411
	siocatmrk = 0x8905
)

// ifreqIoctls are the interface queries answered from the host: each reads
// a struct ifreq naming an interface (or an index) and fills in one
// value. None changes anything; the SIOCSIF* calls that would are EPERM.
var ifreqIoctls = map[uint32]bool{
	unix.SIOCGIFNAME: true, unix.SIOCGIFFLAGS: true, unix.SIOCGIFADDR: true,
	unix.SIOCGIFDSTADDR: true, unix.SIOCGIFBRDADDR: true, unix.SIOCGIFNETMASK: true,
	unix.SIOCGIFMETRIC: true, unix.SIOCGIFMTU: true, unix.SIOCGIFHWADDR: true,
	unix.SIOCGIFINDEX: true, unix.SIOCGIFTXQLEN: true,
}

const (
	ifreqSize  = 40
	ifconfSize = 16
	// maxIfconf bounds the buffer SIOCGIFCONF fills.
	maxIfconf = 64 << 10
)

// Ioctl implements vfs.FileImpl.
func (s *Socket) Ioctl(_ context.Context, mem vfs.Memory, cmd uint32, arg uint64) (uint64, error) {
	switch {
	case cmd == fionread || cmd == siocoutq || cmd == siocatmrk:
		v, err := unix.IoctlGetInt(s.fd, uint(cmd))
		if err != nil {
			return 0, hostErr(err)
		}
		b := make([]byte, 4)
		binary.LittleEndian.PutUint32(b, uint32(int32(v)))
		return 0, mem.CopyOut(arg, b)
	case ifreqIoctls[cmd]:
		b := make([]byte, ifreqSize)
		if err := mem.CopyIn(arg, b); err != nil {
			return 0, err
		}
		if cmd != unix.SIOCGIFNAME && bytes.IndexByte(b[:unix.IFNAMSIZ], 0) < 0 {
			b[unix.IFNAMSIZ-1] = 0 // as Linux, which terminates the name
		}
		if err := ioctlBuf(s.fd, uint(cmd), b); err != nil {
			return 0, hostErr(err)
		}
		return 0, mem.CopyOut(arg, b)
	case cmd == unix.SIOCGIFCONF:
		hdr := make([]byte, ifconfSize)
		if err := mem.CopyIn(arg, hdr); err != nil {
			return 0, err
		}
		n := int32(binary.LittleEndian.Uint32(hdr))
		ptr := binary.LittleEndian.Uint64(hdr[8:])
		var buf []byte
		if ptr != 0 {
			if n < 0 {
				return 0, unix.EINVAL
			}
			buf = make([]byte, min(int(n), maxIfconf))
		}
		got, err := ifconf(s.fd, buf)
		if err != nil {
			return 0, hostErr(err)
		}
		if ptr != 0 && got > 0 {
			if err := mem.CopyOut(ptr, buf[:min(got, len(buf))]); err != nil {
				return 0, err
			}
		}
		binary.LittleEndian.PutUint32(hdr, uint32(int32(got)))
		return 0, mem.CopyOut(arg, hdr[:4])
	case cmd >= 0x8900 && cmd <= 0x89ff:
		return 0, unix.EPERM // the socket ioctls that change interfaces or routes
	}
	return 0, unix.ENOTTY
}
