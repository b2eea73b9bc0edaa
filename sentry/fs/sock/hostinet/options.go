package hostinet

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/fs/sock"
)

type optKind int

const (
	optInt      optKind = iota // an int, read and written on the host
	optLinger                  // struct linger
	optReadOnly                // an int the guest may only read
	optTCPInfo                 // struct tcp_info, read only
	optLocal                   // answered by the sentry (SO_TYPE, ...)
	optPriority                // SO_PRIORITY: 0 to 6 without CAP_NET_ADMIN
)

type optKey struct{ level, name int }

// options is the allowlist: the only options that reach the host.
// inet6 marks those that exist only on AF_INET6 sockets.
var options = map[optKey]struct {
	kind  optKind
	inet6 bool
}{
	{unix.SOL_SOCKET, unix.SO_REUSEADDR}:  {kind: optInt},
	{unix.SOL_SOCKET, unix.SO_REUSEPORT}:  {kind: optInt},
	{unix.SOL_SOCKET, unix.SO_KEEPALIVE}:  {kind: optInt},
	{unix.SOL_SOCKET, unix.SO_RCVBUF}:     {kind: optInt},
	{unix.SOL_SOCKET, unix.SO_SNDBUF}:     {kind: optInt},
	{unix.SOL_SOCKET, unix.SO_BROADCAST}:  {kind: optInt},
	{unix.SOL_SOCKET, unix.SO_OOBINLINE}:  {kind: optInt},
	{unix.SOL_SOCKET, unix.SO_RCVLOWAT}:   {kind: optInt},
	{unix.SOL_SOCKET, unix.SO_SNDLOWAT}:   {kind: optReadOnly},
	{unix.SOL_SOCKET, unix.SO_LINGER}:     {kind: optLinger},
	{unix.SOL_SOCKET, unix.SO_ERROR}:      {kind: optReadOnly},
	{unix.SOL_SOCKET, unix.SO_TYPE}:       {kind: optLocal},
	{unix.SOL_SOCKET, unix.SO_DOMAIN}:     {kind: optLocal},
	{unix.SOL_SOCKET, unix.SO_PROTOCOL}:   {kind: optLocal},
	{unix.SOL_SOCKET, unix.SO_ACCEPTCONN}: {kind: optLocal},

	{unix.IPPROTO_TCP, unix.TCP_NODELAY}:      {kind: optInt},
	{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE}:     {kind: optInt},
	{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}:    {kind: optInt},
	{unix.IPPROTO_TCP, unix.TCP_KEEPCNT}:      {kind: optInt},
	{unix.IPPROTO_TCP, unix.TCP_CORK}:         {kind: optInt},
	{unix.IPPROTO_TCP, unix.TCP_MAXSEG}:       {kind: optInt},
	{unix.IPPROTO_TCP, unix.TCP_QUICKACK}:     {kind: optInt},
	{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT}: {kind: optInt},
	{unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT}: {kind: optInt},
	{unix.IPPROTO_TCP, unix.TCP_SYNCNT}:       {kind: optInt},
	{unix.IPPROTO_TCP, unix.TCP_LINGER2}:      {kind: optInt},
	{unix.IPPROTO_TCP, unix.TCP_INFO}:         {kind: optTCPInfo},

	{unix.IPPROTO_IP, unix.IP_TOS}:                  {kind: optInt},
	{unix.IPPROTO_IP, unix.IP_TTL}:                  {kind: optInt},
	{unix.IPPROTO_IP, unix.IP_MTU_DISCOVER}:         {kind: optInt},
	{unix.IPPROTO_IP, unix.IP_MULTICAST_TTL}:        {kind: optInt},
	{unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP}:       {kind: optInt},
	{unix.IPPROTO_IP, unix.IP_PKTINFO}:              {kind: optInt},
	{unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT}: {kind: optInt},
	{unix.IPPROTO_IP, unix.IP_FREEBIND}:             {kind: optInt},
	{unix.SOL_SOCKET, unix.SO_PRIORITY}:             {kind: optPriority},
	{unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT}:      {kind: optInt},
	{unix.IPPROTO_TCP, unix.TCP_FASTOPEN}:           {kind: optInt},
	{unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT}:   {kind: optInt},
	{unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO}:      {kind: optInt, inet6: true},

	{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY}:         {kind: optInt, inet6: true},
	{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS}:   {kind: optInt, inet6: true},
	{unix.IPPROTO_IPV6, unix.IPV6_TCLASS}:         {kind: optInt, inet6: true},
	{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS}: {kind: optInt, inet6: true},
	{unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP}: {kind: optInt, inet6: true},
}

// tcpInfoMax bounds what TCP_INFO returns (struct tcp_info is 248 bytes
// on recent kernels).
const tcpInfoMax = 512

func lookupOpt(family, level, name int) (optKind, error) {
	o, ok := options[optKey{level, name}]
	if !ok || (o.inet6 && family != unix.AF_INET6) {
		return 0, unix.ENOPROTOOPT
	}
	return o.kind, nil
}

// SetSockOpt implements sock.Socket.
func (s *Socket) SetSockOpt(c sock.Caller, level, name int, val []byte) error {
	kind, err := lookupOpt(s.family, level, name)
	if err != nil {
		return err
	}
	switch kind {
	case optPriority:
		if len(val) < 4 {
			return unix.EINVAL
		}
		if v := int32(binary.LittleEndian.Uint32(val)); (v < 0 || v > 6) && !c.HasCap(sock.CapNetAdmin) {
			return unix.EPERM
		}
		fallthrough
	case optInt:
		if len(val) < 4 {
			return unix.EINVAL
		}
		return hostErr0(unix.SetsockoptInt(s.fd, level, name, int(int32(binary.LittleEndian.Uint32(val)))))
	case optLinger:
		if len(val) < abi.LingerSize {
			return unix.EINVAL
		}
		var l abi.Linger
		l.Unmarshal(val)
		return hostErr0(unix.SetsockoptLinger(s.fd, level, name, &unix.Linger{Onoff: l.Onoff, Linger: l.Linger}))
	}
	return unix.ENOPROTOOPT
}

// GetSockOpt implements sock.Socket.
func (s *Socket) GetSockOpt(_ sock.Caller, level, name int, size int) ([]byte, error) {
	kind, err := lookupOpt(s.family, level, name)
	if err != nil {
		return nil, err
	}
	var v int
	switch kind {
	case optInt, optReadOnly, optPriority:
		v, err = unix.GetsockoptInt(s.fd, level, name)
		if err != nil {
			return nil, hostErr(err)
		}
	case optLinger:
		l, err := unix.GetsockoptLinger(s.fd, level, name)
		if err != nil {
			return nil, hostErr(err)
		}
		b := make([]byte, abi.LingerSize)
		gl := abi.Linger{Onoff: l.Onoff, Linger: l.Linger}
		gl.Marshal(b)
		return b, nil
	case optTCPInfo:
		b, err := getsockoptBytes(s.fd, level, name, min(max(size, 0), tcpInfoMax))
		if err != nil {
			return nil, hostErr(err)
		}
		return b, nil
	case optLocal:
		switch name {
		case unix.SO_TYPE:
			v = s.typ
		case unix.SO_DOMAIN:
			v = s.family
		case unix.SO_PROTOCOL:
			v = s.protocol
		case unix.SO_ACCEPTCONN:
			if s.listening.Load() {
				v = 1
			}
		}
	}
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, uint32(int32(v)))
	return b, nil
}
