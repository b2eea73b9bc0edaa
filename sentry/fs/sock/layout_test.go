package sock

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The socket layouts are checked against golang.org/x/sys/unix, whose
// types are generated from the C library's headers (the UAPI headers the
// other layout tests compile against do not declare struct msghdr).
func TestSocketLayouts(t *testing.T) {
	var m unix.Msghdr
	var c unix.Cmsghdr
	var u unix.Ucred
	var l unix.Linger
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(struct msghdr)", MsghdrSize, unsafe.Sizeof(m)},
		{"msg_name", 0, unsafe.Offsetof(m.Name)},
		{"msg_namelen", 8, unsafe.Offsetof(m.Namelen)},
		{"msg_iov", 16, unsafe.Offsetof(m.Iov)},
		{"msg_iovlen", 24, unsafe.Offsetof(m.Iovlen)},
		{"msg_control", 32, unsafe.Offsetof(m.Control)},
		{"msg_controllen", 40, unsafe.Offsetof(m.Controllen)},
		{"msg_flags", 48, unsafe.Offsetof(m.Flags)},
		{"sizeof(struct mmsghdr)", MmsghdrSize, unsafe.Sizeof(m) + 8},
		{"sizeof(struct cmsghdr)", CmsghdrSize, unsafe.Sizeof(c)},
		{"cmsg_level", 8, unsafe.Offsetof(c.Level)},
		{"cmsg_type", 12, unsafe.Offsetof(c.Type)},
		{"sizeof(struct ucred)", UcredSize, unsafe.Sizeof(u)},
		{"uid", 4, unsafe.Offsetof(u.Uid)},
		{"gid", 8, unsafe.Offsetof(u.Gid)},
		{"sizeof(struct linger)", LingerSize, unsafe.Sizeof(l)},
		{"sizeof(struct sockaddr_un)", SockaddrUnixSize, unix.SizeofSockaddrUnix},
		{"sizeof(struct sockaddr_in)", SockaddrInetSize, unix.SizeofSockaddrInet4},
		{"sizeof(struct sockaddr_in6)", SockaddrInet6Size, unix.SizeofSockaddrInet6},
		{"CMSG_SPACE(4)", uintptr(CmsgSpace(4)), uintptr(unix.CmsgSpace(4))},
		{"CMSG_LEN(12)", uintptr(CmsgLen(12)), uintptr(unix.CmsgLen(12))},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: sentry says %d, C says %d", c.name, c.got, c.want)
		}
	}
	// A round trip keeps every field.
	in := Msghdr{Name: 1, NameLen: 2, Iov: 3, IovLen: 4, Control: 5, ControlLen: 6, Flags: 7}
	b := make([]byte, MsghdrSize)
	in.Marshal(b)
	var out Msghdr
	out.Unmarshal(b)
	if in != out {
		t.Errorf("msghdr round trip: %+v became %+v", in, out)
	}
}
