package syscalls

import (
	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/fs/pipe"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// sendfile, copy_file_range, splice and tee, as copies through a buffer
// in the sentry.
func init() {
	register(abi.SYS_SENDFILE, sysSendfile)
	register(abi.SYS_COPY_FILE_RANGE, sysCopyFileRange)
	register(abi.SYS_SPLICE, sysSplice)
	register(abi.SYS_TEE, sysTee)
}

const spliceFlags = 1 | 2 | 4 | 8 // SPLICE_F_MOVE, _NONBLOCK, _MORE, _GIFT

// copyChunk moves up to n bytes from in (at *inOff, or its file offset
// when inOff is nil) to out (likewise). It waits for input only before
// the first byte unless nonblock, and for room in out as needed. It
// returns how much moved.
func copyChunk(t *kernel.Task, in, out *vfs.File, inOff, outOff *int64, n uint64, nonblock bool) (uint64, error) {
	n = min(n, maxRW)
	buf := make([]byte, min(n, ioChunk))
	var total uint64
	for total < n {
		want := buf[:min(n-total, uint64(len(buf)))]
		read := func() (int, error) {
			if inOff != nil {
				return in.Pread(t.Ctx(), want, *inOff)
			}
			return in.Read(t.Ctx(), want)
		}
		var c int
		var err error
		if total == 0 && !nonblock {
			c, err = blocking(t, in, waiter.EventIn, read)
		} else {
			c, err = read()
		}
		if c == 0 || err != nil {
			if total > 0 {
				return total, nil
			}
			return 0, err
		}
		if inOff != nil {
			*inOff += int64(c)
		}
		w, err := writeAll(t, out, want[:c], outOff, nonblock)
		total += uint64(w)
		if err != nil {
			if total > 0 {
				return total, nil
			}
			return 0, err
		}
		if c < len(want) {
			break
		}
	}
	return total, nil
}

// writeAll writes p to f (at *off, or at the file offset).
func writeAll(t *kernel.Task, f *vfs.File, p []byte, off *int64, nonblock bool) (int, error) {
	done := 0
	for done < len(p) {
		op := func() (int, error) {
			var c int
			var err error
			if off != nil {
				c, err = f.Pwrite(t.Ctx(), p[done:], *off)
			} else {
				c, err = f.Write(t.Ctx(), p[done:])
			}
			if c == 0 && err == nil {
				return 0, unix.EAGAIN
			}
			return c, err
		}
		var c int
		var err error
		if nonblock {
			c, err = op()
		} else {
			c, err = blocking(t, f, waiter.EventOut, op)
		}
		if c > 0 {
			done += c
			if off != nil {
				*off += int64(c)
			}
		}
		if err != nil {
			if err == unix.EPIPE {
				t.Kernel().SendTaskSignal(t, kernel.SignalInfoKill(abi.SIGPIPE, abi.SI_USER, t.LocalPID(), 0))
			}
			return done, err
		}
	}
	return done, nil
}

func copyInOff(t *kernel.Task, addr uint64) (*int64, error) {
	if addr == 0 {
		return nil, nil
	}
	v, err := copyInU64(t, addr)
	if err != nil {
		return nil, err
	}
	off := int64(v)
	if off < 0 {
		return nil, unix.EINVAL
	}
	return &off, nil
}

func isPipe(f *vfs.File) bool {
	_, ok := f.Impl().(pipe.Sizer)
	return ok
}

func fileType(t *kernel.Task, f *vfs.File) uint32 {
	st, err := f.Stat(t.Ctx())
	if err != nil {
		return 0
	}
	return st.Type()
}

func sysSendfile(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	out, err := getFile(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer out.DecRef(t.Ctx())
	in, err := getFile(t, a.Args[1])
	if err != nil {
		return 0, err
	}
	defer in.DecRef(t.Ctx())
	if !in.Readable() || !out.Writable() {
		return 0, unix.EBADF
	}
	if out.StatusFlags()&unix.O_APPEND != 0 || fileType(t, in) == unix.S_IFDIR {
		return 0, unix.EINVAL
	}
	off, err := copyInOff(t, a.Args[2])
	if err != nil {
		return 0, err
	}
	if off != nil && isPipe(in) {
		return 0, unix.ESPIPE
	}
	n, err := copyChunk(t, in, out, off, nil, a.Args[3], false)
	if off != nil && (err == nil || n > 0) {
		if err := copyOutU64(t, a.Args[2], uint64(*off)); err != nil {
			return 0, err
		}
	}
	return n, err
}

func sysCopyFileRange(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	if a.Args[5] != 0 {
		return 0, unix.EINVAL
	}
	in, err := getFile(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer in.DecRef(t.Ctx())
	out, err := getFile(t, a.Args[2])
	if err != nil {
		return 0, err
	}
	defer out.DecRef(t.Ctx())
	if !in.Readable() || !out.Writable() || out.StatusFlags()&unix.O_APPEND != 0 {
		return 0, unix.EBADF
	}
	it, ot := fileType(t, in), fileType(t, out)
	if it == unix.S_IFDIR || ot == unix.S_IFDIR {
		return 0, unix.EISDIR
	}
	if it != unix.S_IFREG || ot != unix.S_IFREG {
		return 0, unix.EINVAL
	}
	inOff, err := copyInOff(t, a.Args[1])
	if err != nil {
		return 0, err
	}
	outOff, err := copyInOff(t, a.Args[3])
	if err != nil {
		return 0, err
	}
	n := a.Args[4]
	if n == 0 {
		return 0, nil
	}
	// Overlapping ranges of one file are refused.
	ist, _ := in.Stat(t.Ctx())
	ost, _ := out.Stat(t.Ctx())
	if ist.Dev == ost.Dev && ist.Ino == ost.Ino {
		is, os := in.Offset(), out.Offset()
		if inOff != nil {
			is = *inOff
		}
		if outOff != nil {
			os = *outOff
		}
		l := int64(min(n, maxRW))
		if is < os+l && os < is+l {
			return 0, unix.EINVAL
		}
	}
	// Without an offset pointer, the file's offset is used and moved.
	useIn, useOut := inOff, outOff
	var curIn, curOut int64
	if useIn == nil {
		curIn = in.Offset()
		useIn = &curIn
	}
	if useOut == nil {
		curOut = out.Offset()
		useOut = &curOut
	}
	startIn, startOut := *useIn, *useOut
	c, err := copyChunk(t, in, out, useIn, useOut, n, false)
	if c > 0 {
		if inOff == nil {
			in.Seek(t.Ctx(), startIn+int64(c), unix.SEEK_SET)
		} else if err := copyOutU64(t, a.Args[1], uint64(*inOff)); err != nil {
			return 0, err
		}
		if outOff == nil {
			out.Seek(t.Ctx(), startOut+int64(c), unix.SEEK_SET)
		} else if err := copyOutU64(t, a.Args[3], uint64(*outOff)); err != nil {
			return 0, err
		}
	}
	return c, err
}

func sysSplice(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	flags := a.Args[5]
	if flags&^uint64(spliceFlags) != 0 {
		return 0, unix.EINVAL
	}
	in, err := getFile(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer in.DecRef(t.Ctx())
	out, err := getFile(t, a.Args[2])
	if err != nil {
		return 0, err
	}
	defer out.DecRef(t.Ctx())
	if !in.Readable() || !out.Writable() {
		return 0, unix.EBADF
	}
	inPipe, outPipe := isPipe(in), isPipe(out)
	if !inPipe && !outPipe {
		return 0, unix.EINVAL
	}
	if inPipe && outPipe {
		ist, _ := in.Stat(t.Ctx())
		ost, _ := out.Stat(t.Ctx())
		if ist.Ino == ost.Ino && ist.Dev == ost.Dev {
			return 0, unix.EINVAL
		}
	}
	if out.StatusFlags()&unix.O_APPEND != 0 {
		return 0, unix.EINVAL
	}
	if (inPipe && a.Args[1] != 0) || (outPipe && a.Args[3] != 0) {
		return 0, unix.ESPIPE
	}
	inOff, err := copyInOff(t, a.Args[1])
	if err != nil {
		return 0, err
	}
	outOff, err := copyInOff(t, a.Args[3])
	if err != nil {
		return 0, err
	}
	if a.Args[4] == 0 {
		return 0, nil
	}
	// One buffer's worth, like a pipe's capacity: splice may move less
	// than asked.
	n, err := copyChunk(t, in, out, inOff, outOff, min(a.Args[4], ioChunk), flags&2 != 0)
	if n > 0 {
		if inOff != nil {
			copyOutU64(t, a.Args[1], uint64(*inOff))
		}
		if outOff != nil {
			copyOutU64(t, a.Args[3], uint64(*outOff))
		}
	}
	return n, err
}

// sysTee copies up to len bytes from one pipe to another without
// consuming them.
func sysTee(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
	flags := a.Args[3]
	if flags&^uint64(spliceFlags) != 0 {
		return 0, unix.EINVAL
	}
	in, err := getFile(t, a.Args[0])
	if err != nil {
		return 0, err
	}
	defer in.DecRef(t.Ctx())
	out, err := getFile(t, a.Args[1])
	if err != nil {
		return 0, err
	}
	defer out.DecRef(t.Ctx())
	if !in.Readable() || !out.Writable() {
		return 0, unix.EBADF
	}
	pk, ok := in.Impl().(pipe.Peeker)
	if !ok || !isPipe(out) {
		return 0, unix.EINVAL
	}
	ist, _ := in.Stat(t.Ctx())
	ost, _ := out.Stat(t.Ctx())
	if ist.Ino == ost.Ino && ist.Dev == ost.Dev {
		return 0, unix.EINVAL
	}
	n := min(a.Args[2], ioChunk)
	if n == 0 {
		return 0, nil
	}
	nonblock := flags&2 != 0
	buf := make([]byte, n)
	peek := func() (int, error) { return pk.Peek(buf) }
	var c int
	if nonblock {
		c, err = peek()
	} else {
		c, err = blocking(t, in, waiter.EventIn, peek)
	}
	if c == 0 || err != nil {
		return 0, err
	}
	w, err := writeAll(t, out, buf[:c], nil, nonblock)
	if w > 0 {
		return uint64(w), nil
	}
	return 0, err
}
