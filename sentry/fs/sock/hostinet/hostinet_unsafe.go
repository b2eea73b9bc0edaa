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
