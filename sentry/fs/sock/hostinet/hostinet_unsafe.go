package hostinet

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// connectUnspec connects fd to an AF_UNSPEC address, which dissolves a
// datagram socket's association (x/sys/unix has no such Sockaddr).
func connectUnspec(fd int) error {
	var sa [16]byte // sa_family = AF_UNSPEC (0)
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
	if e != 0 {
		return e
	}
	return nil
}

// getsockoptBytes reads an option of at most size bytes as the host
// returns it (TCP_INFO).
func getsockoptBytes(fd, level, name, size int) ([]byte, error) {
	b := make([]byte, max(size, 1))
	l := uint32(size)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name),
		uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return nil, e
	}
	return b[:min(int(l), size)], nil
}

// ioctlBuf runs an ioctl whose argument is the buffer b (a struct ifreq).
func ioctlBuf(fd int, req uint, b []byte) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&b[0])))
	if e != 0 {
		return e
	}
	return nil
}

// ifconf runs SIOCGIFCONF into buf (nil: ask only for the length needed)
// and returns the length the host filled in or needs.
func ifconf(fd int, buf []byte) (int, error) {
	var c struct {
		len int32
		_   int32
		buf uintptr
	}
	c.len = int32(len(buf))
	if len(buf) > 0 {
		c.buf = uintptr(unsafe.Pointer(&buf[0]))
	}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCGIFCONF, uintptr(unsafe.Pointer(&c)))
	if e != 0 {
		return 0, e
	}
	return int(c.len), nil
}
