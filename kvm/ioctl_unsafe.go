package kvm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ptrOf returns p as an ioctl argument.
func ptrOf[T any](p *T) unsafe.Pointer { return unsafe.Pointer(p) }

// ioctlPtr issues an ioctl whose argument is a pointer to a structure.
// It retries when a signal interrupts the call.
func ioctlPtr(fd int, req uintptr, p unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(p))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// ioctlBuf issues an ioctl whose argument is a byte buffer.
func ioctlBuf(fd int, req uintptr, b []byte) error {
	return ioctlPtr(fd, req, unsafe.Pointer(&b[0]))
}

// hostAddrOf returns the host address of mem[off].
func hostAddrOf(mem []byte, off uint64) uint64 {
	return uint64(uintptr(unsafe.Pointer(&mem[0]))) + off
}

// syncRegsOf returns the kvm_sync_regs area of a vCPU's run page.
func syncRegsOf(run []byte) *kvmSyncRegs {
	return (*kvmSyncRegs)(unsafe.Pointer(&run[runSyncRegs]))
}

// u64At returns a pointer to the 64-bit word at run[off].
func u64At(run []byte, off int) *uint64 {
	return (*uint64)(unsafe.Pointer(&run[off]))
}

// drainSignal dequeues every pending instance of sig on the calling
// thread without waiting (rt_sigtimedwait with a zero timeout).
func drainSignal(sig unix.Signal) {
	set := uint64(1) << (uint(sig) - 1)
	var ts unix.Timespec
	for {
		_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGTIMEDWAIT, uintptr(unsafe.Pointer(&set)), 0, uintptr(unsafe.Pointer(&ts)), 8, 0, 0)
		if e != 0 {
			return
		}
	}
}
