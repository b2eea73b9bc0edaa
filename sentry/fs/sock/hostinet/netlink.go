package hostinet

import (
	"context"
	"encoding/binary"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/fs/sock"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// NetlinkSocket is an AF_NETLINK NETLINK_ROUTE socket on a host netlink
// socket, restricted to reading: the only requests that reach the host are
// RTM_GETLINK, RTM_GETADDR and RTM_GETROUTE, to the kernel, and the socket
// joins no multicast group. That is what getifaddrs(3) (glibc, musl), Go's
// net.Interfaces and `ip addr`/`ip route` need; nothing can change the
// pod's network.
type NetlinkSocket struct {
	vfs.FileDefaults
	base     sock.Base
	fd       int
	typ      int
	queue    waiter.Queue
	p        *poller
	released atomic.Bool
}

// Netlink message layout (netlink(7)).
const (
	nlmsghdrSize       = 16
	sockaddrNetlinkLen = 12
)

// allowedRequests are the netlink message types a guest may send.
var allowedRequests = map[uint16]bool{
	unix.RTM_GETLINK:  true,
	unix.RTM_GETADDR:  true,
	unix.RTM_GETROUTE: true,
}

// NewNetlink makes a NETLINK_ROUTE socket (typ SOCK_RAW or SOCK_DGRAM).
func NewNetlink(c sock.Caller, typ, protocol int) (*NetlinkSocket, error) {
	if typ != unix.SOCK_RAW && typ != unix.SOCK_DGRAM {
		return nil, unix.ESOCKTNOSUPPORT
	}
	if protocol != unix.NETLINK_ROUTE {
		return nil, unix.EPROTONOSUPPORT
	}
	p, err := getPoller()
	if err != nil {
		return nil, unix.ENOMEM
	}
	fd, err := unix.Socket(unix.AF_NETLINK, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, protocol)
	if err != nil {
		return nil, hostErr(err)
	}
	s := &NetlinkSocket{fd: fd, typ: typ, p: p}
	if err := p.add(fd, &s.queue); err != nil {
		unix.Close(fd)
		return nil, unix.ENOMEM
	}
	return s, nil
}

// Family implements sock.Socket.
func (s *NetlinkSocket) Family() int { return unix.AF_NETLINK }

// Type implements sock.Socket.
func (s *NetlinkSocket) Type() int { return s.typ }

// Protocol implements sock.Socket.
func (s *NetlinkSocket) Protocol() int { return unix.NETLINK_ROUTE }

// Base implements sock.Socket.
func (s *NetlinkSocket) Base() *sock.Base { return &s.base }

// Release implements vfs.FileImpl.
func (s *NetlinkSocket) Release(context.Context) {
	if s.released.Swap(true) {
		return
	}
	s.p.remove(s.fd)
	unix.Close(s.fd)
	s.queue.Notify(waiter.AllEvents)
}

// parseNetlinkAddr checks a sockaddr_nl: only the kernel (port 0) and no
// multicast groups.
func parseNetlinkAddr(b []byte) (pid, groups uint32, err error) {
	if len(b) < sockaddrNetlinkLen {
		return 0, 0, unix.EINVAL
	}
	if binary.LittleEndian.Uint16(b) != unix.AF_NETLINK {
		return 0, 0, unix.EINVAL
	}
	return binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:]), nil
}

func formatNetlinkAddr(pid, groups uint32) []byte {
	b := make([]byte, sockaddrNetlinkLen)
	binary.LittleEndian.PutUint16(b, unix.AF_NETLINK)
	binary.LittleEndian.PutUint32(b[4:], pid)
	binary.LittleEndian.PutUint32(b[8:], groups)
	return b
}

// Bind implements sock.Socket: the host picks the port id; multicast
// groups are refused.
func (s *NetlinkSocket) Bind(_ sock.Caller, b []byte) error {
	_, groups, err := parseNetlinkAddr(b)
	if err != nil {
		return err
	}
	if groups != 0 {
		return unix.EPERM
	}
	return hostErr0(unix.Bind(s.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}))
}

// Listen implements sock.Socket.
func (s *NetlinkSocket) Listen(sock.Caller, int) error { return unix.EOPNOTSUPP }

// Accept implements sock.Socket.
func (s *NetlinkSocket) Accept(sock.Caller, uint32) (*vfs.File, []byte, error) {
	return nil, nil, unix.EOPNOTSUPP
}

// Connect implements sock.Socket: only to the kernel.
func (s *NetlinkSocket) Connect(_ sock.Caller, b []byte) error {
	pid, groups, err := parseNetlinkAddr(b)
	if err != nil {
		return err
	}
	if pid != 0 || groups != 0 {
		return unix.EPERM
	}
	return hostErr0(unix.Connect(s.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}))
}

// ConnectResult implements sock.Socket.
func (s *NetlinkSocket) ConnectResult() error { return nil }

// Shutdown implements sock.Socket.
func (s *NetlinkSocket) Shutdown(int) error { return unix.EOPNOTSUPP }

// SockName implements sock.Socket.
func (s *NetlinkSocket) SockName() ([]byte, error) {
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		return nil, hostErr(err)
	}
	nl, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		return nil, unix.EINVAL
	}
	return formatNetlinkAddr(nl.Pid, nl.Groups), nil
}

// PeerName implements sock.Socket.
func (s *NetlinkSocket) PeerName() ([]byte, error) { return formatNetlinkAddr(0, 0), nil }

// checkRequests walks the netlink messages of one send: each must be a
// complete, allowed request.
func checkRequests(b []byte) error {
	if len(b) < nlmsghdrSize {
		return unix.EINVAL
	}
	for len(b) >= nlmsghdrSize {
		l := binary.LittleEndian.Uint32(b)
		typ := binary.LittleEndian.Uint16(b[4:])
		flags := binary.LittleEndian.Uint16(b[6:])
		if l < nlmsghdrSize || uint64(l) > uint64(len(b)) {
			return unix.EINVAL
		}
		if flags&unix.NLM_F_REQUEST == 0 || !allowedRequests[typ] {
			return unix.EPERM
		}
		next := (uint64(l) + 3) &^ 3
		if next >= uint64(len(b)) {
			break
		}
		b = b[next:]
	}
	return nil
}

// SendMsg implements sock.Socket.
func (s *NetlinkSocket) SendMsg(_ sock.Caller, data []byte, opts *sock.SendOptions) (int, error) {
	if !opts.Control.Empty() {
		return 0, unix.EINVAL
	}
	if opts.To != nil {
		pid, groups, err := parseNetlinkAddr(opts.To)
		if err != nil {
			return 0, err
		}
		if pid != 0 || groups != 0 {
			return 0, unix.EPERM
		}
	}
	if err := checkRequests(data); err != nil {
		return 0, err
	}
	n, err := unix.SendmsgN(s.fd, data, nil, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}, unix.MSG_DONTWAIT)
	if err != nil {
		return 0, hostErr(err)
	}
	return n, nil
}

// RecvMsg implements sock.Socket.
func (s *NetlinkSocket) RecvMsg(_ sock.Caller, data []byte, flags int) (sock.RecvResult, error) {
	n, _, rflags, _, err := unix.Recvmsg(s.fd, data, nil, flags&(unix.MSG_PEEK|unix.MSG_TRUNC)|unix.MSG_DONTWAIT)
	if err != nil {
		return sock.RecvResult{}, hostErr(err)
	}
	return sock.RecvResult{N: min(n, len(data)), MsgLen: n, Flags: rflags & unix.MSG_TRUNC, From: formatNetlinkAddr(0, 0)}, nil
}

// Read implements vfs.FileImpl.
func (s *NetlinkSocket) Read(_ context.Context, p []byte, _ int64) (int, error) {
	n, err := unix.Read(s.fd, p)
	if err != nil {
		return 0, hostErr(err)
	}
	return n, nil
}

// Write implements vfs.FileImpl.
func (s *NetlinkSocket) Write(_ context.Context, p []byte, _ int64) (int, error) {
	return s.SendMsg(nil, p, &sock.SendOptions{})
}

// SetSockOpt implements sock.Socket: the buffer sizes and the harmless
// netlink flags.
func (s *NetlinkSocket) SetSockOpt(_ sock.Caller, level, name int, val []byte) error {
	switch {
	case level == unix.SOL_SOCKET && (name == unix.SO_RCVBUF || name == unix.SO_SNDBUF):
	case level == unix.SOL_NETLINK && (name == unix.NETLINK_EXT_ACK || name == unix.NETLINK_GET_STRICT_CHK ||
		name == unix.NETLINK_CAP_ACK):
	default:
		return unix.ENOPROTOOPT
	}
	if len(val) < 4 {
		return unix.EINVAL
	}
	return hostErr0(unix.SetsockoptInt(s.fd, level, name, int(int32(binary.LittleEndian.Uint32(val)))))
}

// GetSockOpt implements sock.Socket.
func (s *NetlinkSocket) GetSockOpt(_ sock.Caller, level, name int, _ int) ([]byte, error) {
	var v int
	switch {
	case level == unix.SOL_SOCKET && name == unix.SO_TYPE:
		v = s.typ
	case level == unix.SOL_SOCKET && name == unix.SO_DOMAIN:
		v = unix.AF_NETLINK
	case level == unix.SOL_SOCKET && name == unix.SO_PROTOCOL:
		v = unix.NETLINK_ROUTE
	case level == unix.SOL_SOCKET && (name == unix.SO_RCVBUF || name == unix.SO_SNDBUF || name == unix.SO_ERROR):
		var err error
		if v, err = unix.GetsockoptInt(s.fd, level, name); err != nil {
			return nil, hostErr(err)
		}
	default:
		return nil, unix.ENOPROTOOPT
	}
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, uint32(int32(v)))
	return b, nil
}

// Readiness implements waiter.Waitable.
func (s *NetlinkSocket) Readiness(mask waiter.EventMask) waiter.EventMask {
	return pollHost(s.fd, mask)
}

// EventRegister implements waiter.Waitable.
func (s *NetlinkSocket) EventRegister(e *waiter.Entry) error {
	s.queue.EventRegister(e)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (s *NetlinkSocket) EventUnregister(e *waiter.Entry) { s.queue.EventUnregister(e) }
