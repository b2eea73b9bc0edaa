package abi

import (
	"errors"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Errno is a Linux error number, as a system call returns it negated in rax.
type Errno uint32

// Error numbers that the kernel uses inside a system call to ask for a
// restart after a signal handler ran. They never reach user space: the
// signal code turns them into EINTR or a restart (include/linux/errno.h).
const (
	ERESTARTSYS           Errno = 512
	ERESTARTNOINTR        Errno = 513
	ERESTARTNOHAND        Errno = 514
	ENOIOCTLCMD           Errno = 515
	ERESTART_RESTARTBLOCK Errno = 516
)

// MaxErrno is the highest value the kernel returns as an error: a system call
// result r with -MaxErrno <= r < 0 is an error (include/linux/err.h).
const MaxErrno = 4095

// Name returns the constant's name, "ENOENT", or "errno N" for a number
// without one.
func (e Errno) Name() string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	switch e {
	case ERESTARTSYS:
		return "ERESTARTSYS"
	case ERESTARTNOINTR:
		return "ERESTARTNOINTR"
	case ERESTARTNOHAND:
		return "ERESTARTNOHAND"
	case ENOIOCTLCMD:
		return "ENOIOCTLCMD"
	case ERESTART_RESTARTBLOCK:
		return "ERESTART_RESTARTBLOCK"
	}
	return "errno " + strconv.FormatUint(uint64(e), 10)
}

// Error returns the name, so that a wrapped error reads
// "open /etc/passwd: ENOENT".
func (e Errno) Error() string { return e.Name() }

// Description returns the C library's text for the error, "no such file or
// directory".
func (e Errno) Description() string { return unix.Errno(e).Error() }

// Is reports whether target is the same error number, as an Errno or a
// host syscall.Errno: errors.Is(err, unix.ENOENT) holds for an err that
// wraps abi.ENOENT. (The other way round, use AsErrno.)
func (e Errno) Is(target error) bool {
	switch t := target.(type) {
	case syscall.Errno:
		return uint32(t) == uint32(e)
	case Errno:
		return t == e
	}
	return false
}

// AsErrno finds the error number in err's chain: an Errno, or a host
// syscall.Errno (as the sentry's own system calls return them) converted to
// the same number.
func AsErrno(err error) (Errno, bool) {
	var e Errno
	if errors.As(err, &e) {
		return e, true
	}
	var h syscall.Errno
	if errors.As(err, &h) {
		return Errno(h), true
	}
	return 0, false
}

// Return returns the value a system call that failed with e leaves in rax.
func (e Errno) Return() uint64 { return uint64(-int64(e)) }

// ErrnoFromReturn reports the error a system call result r holds, if any.
func ErrnoFromReturn(r uint64) (Errno, bool) {
	if int64(r) < 0 && int64(r) >= -MaxErrno {
		return Errno(-int64(r)), true
	}
	return 0, false
}
