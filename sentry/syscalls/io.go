package syscalls

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/fs/sock"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// maxRW bounds one read or write, as Linux's MAX_RW_COUNT.
const maxRW = 0x7ffff000

// ioChunk is the bounce buffer size between user memory and files.
const ioChunk = 64 << 10

// blocking runs op until it does not return EAGAIN, waiting for mask on f
// between tries, unless f is non-blocking.
func blocking(t *kernel.Task, f *vfs.File, mask waiter.EventMask, op func() (int, error)) (int, error) {
	n, err := op()
	if err != unix.EAGAIN || f.StatusFlags()&unix.O_NONBLOCK != 0 {
		return n, err
	}
	e, ch := waiter.NewChannelEntry(mask | waiter.EventErr | waiter.EventHUp)
	if err := f.EventRegister(e); err != nil {
		return 0, unix.EAGAIN
	}
	defer f.EventUnregister(e)
	for {
		n, err = op()
		if err != unix.EAGAIN {
			return n, err
		}
		if err := t.Block(ch, time.Time{}); err != nil {
			if errors.Is(err, kernel.ErrInterrupted) {
				return 0, kernel.ErrRestartSys
			}
			return 0, err
		}
	}
}

// readTo reads from f into user memory at addr, up to n bytes.
func readTo(t *kernel.Task, f *vfs.File, addr, n uint64, off int64) (uint64, error) {
	if s := sock.FromFile(f); s != nil && off < 0 {
		return sockIO(t, f, s, []abi.Iovec{{Base: addr, Len: n}}, false)
	}
	n = min(n, maxRW)
	buf := make([]byte, min(n, ioChunk))
	var total uint64
	for total < n {
		want := min(n-total, uint64(len(buf)))
		var c int
		var err error
		if total == 0 {
			c, err = blocking(t, f, waiter.EventIn, func() (int, error) { return doRead(t, f, buf[:want], off) })
		} else {
			c, err = doRead(t, f, buf[:want], off)
			if err == unix.EAGAIN {
				break
			}
		}
		if c > 0 {
			if _, cerr := t.CopyOut(addr+total, buf[:c]); cerr != nil {
				if total == 0 {
					return 0, unix.EFAULT
				}
				return total, nil
			}
			total += uint64(c)
			if off >= 0 {
				off += int64(c)
			}
		}
		if err != nil {
			if total > 0 {
				return total, nil
			}
			return 0, err
		}
		if uint64(c) < want {
			break
		}
	}
	return total, nil
}

func doRead(t *kernel.Task, f *vfs.File, b []byte, off int64) (int, error) {
	if off >= 0 {
		return f.Pread(t.Ctx(), b, off)
	}
	return f.Read(t.Ctx(), b)
}

func doWrite(t *kernel.Task, f *vfs.File, b []byte, off int64) (int, error) {
	if off >= 0 {
		return f.Pwrite(t.Ctx(), b, off)
	}
	return f.Write(t.Ctx(), b)
}

// writeFrom writes n bytes from user memory at addr to f.
func writeFrom(t *kernel.Task, f *vfs.File, addr, n uint64, off int64) (uint64, error) {
	if s := sock.FromFile(f); s != nil && off < 0 {
		return sockIO(t, f, s, []abi.Iovec{{Base: addr, Len: n}}, true)
	}
	n = min(n, maxRW)
	buf := make([]byte, min(n, ioChunk))
	var total uint64
	for total < n {
		want := min(n-total, uint64(len(buf)))
		c0, cerr := t.CopyIn(addr+total, buf[:want])
		if cerr != nil && c0 == 0 {
			if total == 0 {
				return 0, unix.EFAULT
			}
			return total, nil
		}
		chunk := buf[:c0]
		done := 0
		for done < len(chunk) {
			c, err := blocking(t, f, waiter.EventOut, func() (int, error) {
				c, err := doWrite(t, f, chunk[done:], off)
				if c == 0 && err == nil {
					return 0, unix.EAGAIN
				}
				return c, err
			})
			if c > 0 {
				done += c
				total += uint64(c)
				if off >= 0 {
					off += int64(c)
				}
			}
			if err != nil {
				if err == unix.EPIPE {
					t.Kernel().SendTaskSignal(t, kernel.SignalInfoKill(abi.SIGPIPE, abi.SI_USER, t.LocalPID(), 0))
				}
				if total > 0 {
					return total, nil
				}
				return 0, err
			}
		}
		if c0 < int(want) {
			break
		}
	}
	return total, nil
}

// iovecs reads an iovec array.
func iovecs(t *kernel.Task, addr uint64, n uint64) ([]abi.Iovec, error) {
	if n > 1024 {
		return nil, unix.EINVAL
	}
	b := make([]byte, n*16)
	if _, err := t.CopyIn(addr, b); err != nil {
		return nil, unix.EFAULT
	}
	out := make([]abi.Iovec, n)
	var total uint64
	for i := range out {
		out[i].Unmarshal(b[i*16:])
		total += out[i].Len
		if int64(out[i].Len) < 0 || int64(total) < 0 {
			return nil, unix.EINVAL
		}
	}
	return out, nil
}
