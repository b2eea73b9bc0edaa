// Package syscalls implements the Linux x86-64 system calls on top of the
// sentry's kernel, memory manager and VFS. Handlers are grouped by family
// (sys_file.go, sys_mm.go, sys_signal.go, …); Table maps numbers to them.
package syscalls

import (
	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/kernel"
)

// handlers is filled by the init functions of the family files.
var handlers = map[uint64]kernel.SyscallFunc{}

func register(nr uint64, fn kernel.SyscallFunc) {
	if _, dup := handlers[nr]; dup {
		panic("syscall registered twice: " + abi.SyscallName(nr))
	}
	handlers[nr] = fn
}

// Table returns the syscall table for kernel.Config.
func Table() []kernel.SyscallFunc {
	t := make([]kernel.SyscallFunc, abi.MaxSyscall)
	for nr, fn := range handlers {
		t[nr] = fn
	}
	return t
}

// Supported reports whether nr has an implementation.
func Supported(nr uint64) bool { _, ok := handlers[nr]; return ok }

// taskMem lets VFS ioctls reach the caller's memory.
type taskMem struct{ t *kernel.Task }

func (m taskMem) CopyIn(addr uint64, dst []byte) error {
	if _, err := m.t.CopyIn(addr, dst); err != nil {
		return unix.EFAULT
	}
	return nil
}

func (m taskMem) CopyOut(addr uint64, src []byte) error {
	if _, err := m.t.CopyOut(addr, src); err != nil {
		return unix.EFAULT
	}
	return nil
}

func copyInU64(t *kernel.Task, addr uint64) (uint64, error) {
	var b [8]byte
	if _, err := t.CopyIn(addr, b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return le.Uint64(b[:]), nil
}

func copyOutU32(t *kernel.Task, addr uint64, v uint32) error {
	var b [4]byte
	le.PutUint32(b[:], v)
	if _, err := t.CopyOut(addr, b[:]); err != nil {
		return unix.EFAULT
	}
	return nil
}

func copyOutU64(t *kernel.Task, addr uint64, v uint64) error {
	var b [8]byte
	le.PutUint64(b[:], v)
	if _, err := t.CopyOut(addr, b[:]); err != nil {
		return unix.EFAULT
	}
	return nil
}

// copyInStrings reads a NULL-terminated array of string pointers (argv).
func copyInStrings(t *kernel.Task, addr uint64) ([]string, error) {
	var out []string
	total := 0
	for i := 0; addr != 0; i++ {
		if i > 1<<17 {
			return nil, unix.E2BIG
		}
		p, err := copyInU64(t, addr+uint64(i)*8)
		if err != nil {
			return nil, err
		}
		if p == 0 {
			break
		}
		s, err := t.CopyInString(p, 128<<10)
		if err != nil {
			if err == unix.ENAMETOOLONG {
				return nil, unix.E2BIG
			}
			return nil, err
		}
		total += len(s) + 1
		if total > 2<<20 {
			return nil, unix.E2BIG
		}
		out = append(out, s)
	}
	return out, nil
}

func copyInPath(t *kernel.Task, addr uint64) (string, error) {
	s, err := t.CopyInString(addr, unix.PathMax)
	if err != nil {
		return "", err
	}
	return s, nil
}
