package hostinet

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/sock"
	"moat.dev/moat/sentry/vfs"
)

type testCaller struct{ creds *auth.Credentials }

func (c testCaller) Ctx() context.Context           { return context.Background() }
func (c testCaller) VFS() *vfs.VirtualFilesystem    { return nil }
func (c testCaller) FSCreds() *auth.Credentials     { return c.creds }
func (c testCaller) Cred() sock.Cred                { return sock.Cred{} }
func (c testCaller) Umask() uint32                  { return 0o022 }
func (c testCaller) HasCap(cp auth.Capability) bool { return c.creds.HasCap(cp) }
func (c testCaller) PathOp(string, bool) (vfs.PathOperation, func(), error) {
	return vfs.PathOperation{}, nil, unix.ENOENT
}

func inet4(port int, ip [4]byte, n int) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b, unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:], uint16(port))
	copy(b[4:], ip[:])
	return b[:n]
}

// TestParseAddr checks the lengths and families of guest addresses.
func TestParseAddr(t *testing.T) {
	lo := [4]byte{127, 0, 0, 1}
	six := make([]byte, 28)
	binary.LittleEndian.PutUint16(six, unix.AF_INET6)
	six[23] = 1
	for _, tc := range []struct {
		name   string
		family int
		b      []byte
		bind   bool
		err    error
	}{
		{"inet", unix.AF_INET, inet4(80, lo, 16), false, nil},
		{"inet short", unix.AF_INET, inet4(80, lo, 15), false, unix.EINVAL},
		{"empty", unix.AF_INET, nil, false, unix.EINVAL},
		{"inet6 on inet", unix.AF_INET, six, false, unix.EAFNOSUPPORT},
		{"inet6", unix.AF_INET6, six, false, nil},
		{"inet6 without scope", unix.AF_INET6, six[:24], false, nil},
		{"inet6 short", unix.AF_INET6, six[:23], false, unix.EINVAL},
		{"inet on inet6", unix.AF_INET6, inet4(80, lo, 16), false, unix.EINVAL},
		{"unspec any for bind", unix.AF_INET, make([]byte, 16), true, nil},
	} {
		_, _, err := parseAddr(tc.family, tc.b, tc.bind)
		if err != tc.err {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	// An AF_UNSPEC address with an address that is not INADDR_ANY is not
	// one bind takes.
	b := inet4(0, lo, 16)
	b[0] = 0
	if _, _, err := parseAddr(unix.AF_INET, b, true); err != unix.EAFNOSUPPORT {
		t.Errorf("bind AF_UNSPEC 127.0.0.1: %v", err)
	}
	sa, _, _ := parseAddr(unix.AF_INET, inet4(8080, lo, 16), false)
	if got := formatAddr(sa); !bytes.Equal(got, inet4(8080, lo, 16)) {
		t.Errorf("round trip: %x", got)
	}
}

// TestOptionAllowlist: only listed options reach the host.
func TestOptionAllowlist(t *testing.T) {
	c := testCaller{auth.User(1000, 1000)}
	s, err := New(c, unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	defer s.Release(context.Background())
	one := []byte{1, 0, 0, 0}
	for _, o := range []struct{ level, name int }{
		{unix.SOL_SOCKET, unix.SO_BINDTODEVICE},
		{unix.SOL_SOCKET, unix.SO_MARK},
		{unix.SOL_SOCKET, unix.SO_ATTACH_FILTER},
		{unix.IPPROTO_IP, unix.IP_HDRINCL},
		{unix.IPPROTO_IP, unix.IP_TRANSPARENT},
		{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY}, // on an AF_INET socket
		{unix.SOL_SOCKET, 9999},
		{999, 1},
	} {
		if err := s.SetSockOpt(c, o.level, o.name, one); err != unix.ENOPROTOOPT {
			t.Errorf("setsockopt(%d, %d): %v, want ENOPROTOOPT", o.level, o.name, err)
		}
	}
	if err := s.SetSockOpt(c, unix.IPPROTO_TCP, unix.TCP_NODELAY, one); err != nil {
		t.Errorf("TCP_NODELAY: %v", err)
	}
	if err := s.SetSockOpt(c, unix.IPPROTO_TCP, unix.TCP_NODELAY, one[:2]); err != unix.EINVAL {
		t.Errorf("TCP_NODELAY with 2 bytes: %v", err)
	}
	v, err := s.GetSockOpt(c, unix.IPPROTO_TCP, unix.TCP_NODELAY, 4)
	if err != nil || binary.LittleEndian.Uint32(v) != 1 {
		t.Errorf("TCP_NODELAY reads %x %v", v, err)
	}
	if err := s.SetSockOpt(c, unix.SOL_SOCKET, unix.SO_PRIORITY, []byte{7, 0, 0, 0}); err != unix.EPERM {
		t.Errorf("SO_PRIORITY 7 without CAP_NET_ADMIN: %v", err)
	}
	if err := s.SetSockOpt(c, unix.SOL_SOCKET, unix.SO_PRIORITY, []byte{6, 0, 0, 0}); err != nil {
		t.Errorf("SO_PRIORITY 6: %v", err)
	}
	if v, err := s.GetSockOpt(c, unix.SOL_SOCKET, unix.SO_PRIORITY, 4); err != nil || v[0] != 6 {
		t.Errorf("SO_PRIORITY reads %v %v", v, err)
	}
	if err := s.SetSockOpt(c, unix.SOL_SOCKET, unix.SO_ERROR, one); err != unix.ENOPROTOOPT {
		t.Errorf("setting SO_ERROR: %v", err)
	}
	info, err := s.GetSockOpt(c, unix.IPPROTO_TCP, unix.TCP_INFO, 1000)
	if err != nil || len(info) == 0 || len(info) > tcpInfoMax {
		t.Errorf("TCP_INFO: %d bytes, %v", len(info), err)
	}
	// A port below 1024 needs CAP_NET_BIND_SERVICE.
	if err := s.Bind(c, inet4(80, [4]byte{127, 0, 0, 1}, 16)); err != unix.EACCES {
		t.Errorf("bind port 80 without the capability: %v", err)
	}
	if _, err := New(c, unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP); err != unix.EPERM {
		t.Errorf("raw socket: %v", err)
	}
	if _, err := New(c, unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_UDP); err != unix.EPROTONOSUPPORT {
		t.Errorf("stream UDP: %v", err)
	}
}

// TestNetlinkRequests: only complete GET requests pass.
func TestNetlinkRequests(t *testing.T) {
	msg := func(l uint32, typ, flags uint16) []byte {
		b := make([]byte, 20)
		binary.LittleEndian.PutUint32(b, l)
		binary.LittleEndian.PutUint16(b[4:], typ)
		binary.LittleEndian.PutUint16(b[6:], flags)
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"getlink dump", msg(20, unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_DUMP), nil},
		{"getaddr", msg(20, unix.RTM_GETADDR, unix.NLM_F_REQUEST), nil},
		{"two gets", append(msg(20, unix.RTM_GETLINK, unix.NLM_F_REQUEST), msg(20, unix.RTM_GETROUTE, unix.NLM_F_REQUEST)...), nil},
		{"get then new", append(msg(20, unix.RTM_GETLINK, unix.NLM_F_REQUEST), msg(20, unix.RTM_NEWROUTE, unix.NLM_F_REQUEST)...), unix.EPERM},
		{"newaddr", msg(20, unix.RTM_NEWADDR, unix.NLM_F_REQUEST|unix.NLM_F_CREATE), unix.EPERM},
		{"not a request", msg(20, unix.RTM_GETLINK, 0), unix.EPERM},
		{"length past the end", msg(200, unix.RTM_GETLINK, unix.NLM_F_REQUEST), unix.EINVAL},
		{"length below the header", msg(8, unix.RTM_GETLINK, unix.NLM_F_REQUEST), unix.EINVAL},
		{"short", make([]byte, 10), unix.EINVAL},
	} {
		if err := checkRequests(tc.b); err != tc.err {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
}
