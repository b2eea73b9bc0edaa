package syscalls

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/kernel"
)

// argKind says how --strace prints a syscall argument.
type argKind uint8

const (
	aHex    argKind = iota // 0x...
	aInt                   // signed decimal
	aFD                    // file descriptor (AT_FDCWD by name)
	aPath                  // NUL-terminated string
	aInBuf                 // buffer whose length is the next argument
	aOutBuf                // buffer filled by the call; length is the return value
	aOct                   // mode
	aSig                   // signal number
	aStrv                  // NULL-terminated string array
)

var straceArgs = map[uint64][]argKind{
	abi.SYS_READ:         {aFD, aOutBuf, aInt},
	abi.SYS_WRITE:        {aFD, aInBuf, aInt},
	abi.SYS_PREAD64:      {aFD, aOutBuf, aInt, aInt},
	abi.SYS_PWRITE64:     {aFD, aInBuf, aInt, aInt},
	abi.SYS_OPEN:         {aPath, aHex, aOct},
	abi.SYS_OPENAT:       {aFD, aPath, aHex, aOct},
	abi.SYS_CLOSE:        {aFD},
	abi.SYS_STAT:         {aPath, aHex},
	abi.SYS_LSTAT:        {aPath, aHex},
	abi.SYS_FSTAT:        {aFD, aHex},
	abi.SYS_NEWFSTATAT:   {aFD, aPath, aHex, aHex},
	abi.SYS_STATX:        {aFD, aPath, aHex, aHex, aHex},
	abi.SYS_ACCESS:       {aPath, aOct},
	abi.SYS_FACCESSAT:    {aFD, aPath, aOct},
	abi.SYS_FACCESSAT2:   {aFD, aPath, aOct, aHex},
	abi.SYS_EXECVE:       {aPath, aStrv, aHex},
	abi.SYS_EXECVEAT:     {aFD, aPath, aStrv, aHex, aHex},
	abi.SYS_CHDIR:        {aPath},
	abi.SYS_MKDIR:        {aPath, aOct},
	abi.SYS_MKDIRAT:      {aFD, aPath, aOct},
	abi.SYS_UNLINK:       {aPath},
	abi.SYS_UNLINKAT:     {aFD, aPath, aHex},
	abi.SYS_RMDIR:        {aPath},
	abi.SYS_READLINK:     {aPath, aOutBuf, aInt},
	abi.SYS_READLINKAT:   {aFD, aPath, aOutBuf, aInt},
	abi.SYS_RENAME:       {aPath, aPath},
	abi.SYS_SYMLINK:      {aPath, aPath},
	abi.SYS_CHMOD:        {aPath, aOct},
	abi.SYS_LSEEK:        {aFD, aInt, aInt},
	abi.SYS_DUP:          {aFD},
	abi.SYS_DUP2:         {aFD, aFD},
	abi.SYS_DUP3:         {aFD, aFD, aHex},
	abi.SYS_FCNTL:        {aFD, aInt, aHex},
	abi.SYS_IOCTL:        {aFD, aHex, aHex},
	abi.SYS_GETDENTS64:   {aFD, aHex, aInt},
	abi.SYS_KILL:         {aInt, aSig},
	abi.SYS_TGKILL:       {aInt, aInt, aSig},
	abi.SYS_EXIT:         {aInt},
	abi.SYS_EXIT_GROUP:   {aInt},
	abi.SYS_WAIT4:        {aInt, aHex, aHex, aHex},
	abi.SYS_MMAP:         {aHex, aInt, aHex, aHex, aFD, aHex},
	abi.SYS_MUNMAP:       {aHex, aInt},
	abi.SYS_MPROTECT:     {aHex, aInt, aHex},
	abi.SYS_BRK:          {aHex},
	abi.SYS_RT_SIGACTION: {aSig, aHex, aHex, aInt},
}

// Trace formats one syscall for --strace, decoding the arguments of the
// common calls: paths and buffers as quoted strings, fds and numbers in
// decimal.
func Trace(t *kernel.Task, a *kernel.SyscallArgs, rv uint64, err error) string {
	name := abi.SyscallName(a.Nr)
	if name == "" {
		name = "syscall_" + strconv.FormatUint(a.Nr, 10)
	}
	kinds, known := straceArgs[a.Nr]
	n := 6
	if known {
		n = len(kinds)
	}
	var args []string
	for i := 0; i < n; i++ {
		k := aHex
		if known {
			k = kinds[i]
		}
		args = append(args, formatArg(t, k, a, i, rv, err))
	}
	res := "= " + strconv.FormatInt(int64(rv), 10)
	switch {
	case err == kernel.ErrNoReturn:
		res = "= ?"
	case int64(rv) < 0 && int64(rv) > -4096:
		res = fmt.Sprintf("= -1 %s (%s)", abi.Errno(-int64(rv)).Name(), unix.Errno(-int64(rv)).Error())
	case a.Nr == abi.SYS_MMAP || a.Nr == abi.SYS_BRK:
		res = fmt.Sprintf("= %#x", rv)
	}
	return fmt.Sprintf("%s(%s) %s", name, strings.Join(args, ", "), res)
}

func formatArg(t *kernel.Task, k argKind, a *kernel.SyscallArgs, i int, rv uint64, err error) string {
	v := a.Args[i]
	switch k {
	case aInt:
		return strconv.FormatInt(int64(v), 10)
	case aFD:
		if int32(v) == abi.AT_FDCWD {
			return "AT_FDCWD"
		}
		return strconv.FormatInt(int64(int32(v)), 10)
	case aOct:
		return "0" + strconv.FormatUint(v, 8)
	case aSig:
		if s := abi.Signal(v); s.Valid() {
			return s.Name()
		}
		return strconv.FormatUint(v, 10)
	case aPath:
		s, e := t.CopyInString(v, 256)
		if e != nil {
			return fmt.Sprintf("%#x", v)
		}
		return strconv.Quote(s)
	case aInBuf, aOutBuf:
		n := a.Args[i+1]
		if k == aOutBuf {
			if int64(rv) < 0 || err != nil {
				return fmt.Sprintf("%#x", v)
			}
			n = rv
		}
		b := make([]byte, min(n, 32))
		c, _ := t.CopyIn(v, b)
		s := strconv.Quote(string(b[:c]))
		if n > 32 {
			s += "..."
		}
		return s
	case aStrv:
		var out []string
		for j := uint64(0); j < 8; j++ {
			p, e := copyInU64(t, v+j*8)
			if e != nil || p == 0 {
				break
			}
			s, e := t.CopyInString(p, 64)
			if e != nil {
				break
			}
			out = append(out, strconv.Quote(s))
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	return fmt.Sprintf("%#x", v)
}
