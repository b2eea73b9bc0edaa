package unixsock

import (
	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/fs/sock"
)

// SetSockOpt implements sock.Socket. Only SOL_SOCKET options mean
// anything to a unix socket; SO_RCVTIMEO and SO_SNDTIMEO are the syscall
// layer's.
func (s *Socket) SetSockOpt(c sock.Caller, level, name int, val []byte) error {
	if level != unix.SOL_SOCKET {
		return unix.ENOPROTOOPT
	}
	switch name {
	case unix.SO_LINGER:
		if len(val) < abi.LingerSize {
			return unix.EINVAL
		}
		var l abi.Linger
		l.Unmarshal(val)
		s.mu.Lock()
		s.linger = [2]int32{l.Onoff, l.Linger}
		s.mu.Unlock()
		return nil
	case unix.SO_PASSCRED, unix.SO_RCVBUF, unix.SO_SNDBUF, unix.SO_REUSEADDR,
		unix.SO_REUSEPORT, unix.SO_KEEPALIVE, unix.SO_BROADCAST, unix.SO_RCVLOWAT,
		unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE:
	default:
		return unix.ENOPROTOOPT
	}
	if len(val) < 4 {
		return unix.EINVAL
	}
	v := le32(val)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch name {
	case unix.SO_PASSCRED:
		s.passcred = v != 0
	case unix.SO_RCVBUF, unix.SO_SNDBUF, unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE:
		if (name == unix.SO_SNDBUFFORCE || name == unix.SO_RCVBUFFORCE) && !c.HasCap(sock.CapNetAdmin) {
			return unix.EPERM
		}
		// Linux doubles the value for its bookkeeping and reports that.
		n := min(max(int(v), 0), MaxBuf/2) * 2
		n = max(n, minBuf)
		if name == unix.SO_RCVBUF || name == unix.SO_RCVBUFFORCE {
			s.rcvbuf = n
		} else {
			s.sndbuf = n
		}
	default:
		if s.opts == nil {
			s.opts = map[int]int32{}
		}
		if name == unix.SO_RCVLOWAT && v < 1 {
			v = 1
		}
		s.opts[name] = v
	}
	return nil
}

// GetSockOpt implements sock.Socket.
func (s *Socket) GetSockOpt(c sock.Caller, level, name int, size int) ([]byte, error) {
	if level != unix.SOL_SOCKET {
		return nil, unix.ENOPROTOOPT
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var v int32
	switch name {
	case unix.SO_TYPE:
		v = int32(s.typ)
	case unix.SO_DOMAIN:
		v = unix.AF_UNIX
	case unix.SO_PROTOCOL:
		v = 0
	case unix.SO_ACCEPTCONN:
		v = b2i(s.state == stateListening)
	case unix.SO_ERROR:
		if e, ok := s.err.(unix.Errno); ok {
			v = int32(e)
		}
		s.err = nil
	case unix.SO_PASSCRED:
		v = b2i(s.passcred)
	case unix.SO_RCVBUF:
		v = int32(s.rcvbuf)
	case unix.SO_SNDBUF:
		v = int32(s.sndbuf)
	case unix.SO_RCVLOWAT:
		v = 1
		if o, ok := s.opts[name]; ok {
			v = o
		}
	case unix.SO_SNDLOWAT:
		v = 1
	case unix.SO_REUSEADDR, unix.SO_REUSEPORT, unix.SO_KEEPALIVE, unix.SO_BROADCAST:
		v = s.opts[name]
	case unix.SO_LINGER:
		b := make([]byte, abi.LingerSize)
		l := abi.Linger{Onoff: s.linger[0], Linger: s.linger[1]}
		l.Marshal(b)
		return b, nil
	case unix.SO_PEERCRED:
		u := abi.Ucred{UID: overflowID, GID: overflowID}
		if s.hasPeerCred {
			u = abi.Ucred{PID: s.peerCred.PID, UID: s.peerCred.UID, GID: s.peerCred.GID}
		}
		b := make([]byte, abi.UcredSize)
		u.Marshal(b)
		return b, nil
	default:
		return nil, unix.ENOPROTOOPT
	}
	b := make([]byte, 4)
	le32put(b, uint32(v))
	return b, nil
}

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}
