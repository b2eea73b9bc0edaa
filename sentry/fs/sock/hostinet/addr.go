package hostinet

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/fs/sock"
)

// parseAddr checks a sockaddr_in or sockaddr_in6 from the guest for a
// socket of family and rebuilds it as a host address. unspec is true for
// an AF_UNSPEC address (connect: dissolve the association).
func parseAddr(family int, b []byte, forBind bool) (sa unix.Sockaddr, unspec bool, err error) {
	if len(b) < sock.SockaddrFamilySize {
		return nil, false, unix.EINVAL
	}
	fam := int(binary.LittleEndian.Uint16(b))
	if fam == unix.AF_UNSPEC && !forBind {
		return nil, true, nil
	}
	switch family {
	case unix.AF_INET:
		if len(b) < abi.SockaddrInet4Size {
			return nil, false, unix.EINVAL
		}
		a := &unix.SockaddrInet4{Port: int(binary.BigEndian.Uint16(b[2:]))}
		copy(a.Addr[:], b[4:8])
		switch {
		case fam == unix.AF_INET:
		case fam == unix.AF_UNSPEC && a.Addr == [4]byte{}:
			// Linux lets bind take AF_UNSPEC with INADDR_ANY.
		default:
			return nil, false, unix.EAFNOSUPPORT
		}
		return a, false, nil
	case unix.AF_INET6:
		if len(b) < sock.SockaddrInet6MinSize {
			return nil, false, unix.EINVAL
		}
		if fam != unix.AF_INET6 {
			return nil, false, unix.EAFNOSUPPORT
		}
		a := &unix.SockaddrInet6{Port: int(binary.BigEndian.Uint16(b[2:]))}
		copy(a.Addr[:], b[8:24])
		if len(b) >= abi.SockaddrInet6Size {
			a.ZoneId = binary.LittleEndian.Uint32(b[24:])
		}
		return a, false, nil
	}
	return nil, false, unix.EAFNOSUPPORT
}

// formatAddr writes a host address in the guest's format.
func formatAddr(sa unix.Sockaddr) []byte {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		b := make([]byte, abi.SockaddrInet4Size)
		binary.LittleEndian.PutUint16(b, unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], uint16(a.Port))
		copy(b[4:], a.Addr[:])
		return b
	case *unix.SockaddrInet6:
		b := make([]byte, abi.SockaddrInet6Size)
		binary.LittleEndian.PutUint16(b, unix.AF_INET6)
		binary.BigEndian.PutUint16(b[2:], uint16(a.Port))
		copy(b[8:], a.Addr[:])
		binary.LittleEndian.PutUint32(b[24:], a.ZoneId)
		return b
	}
	return nil
}

func port(sa unix.Sockaddr) int {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	return 0
}
