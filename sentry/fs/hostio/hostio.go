// Package hostio gives a sandbox's processes host file descriptors as
// files: the container's stdin, stdout and stderr (terminals, pipes or
// containerd's FIFOs). Reads happen on a goroutine of their own so that a
// task waiting for input never holds a CPU.
package hostio

import (
	"context"
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// File is a host file descriptor.
type File struct {
	vfs.FileDefaults
	fd  int
	tty bool

	queue waiter.Queue

	mu      sync.Mutex
	buf     []byte
	eof     bool
	readErr error
	reading bool
	more    *sync.Cond
	fg      int32 // the terminal's foreground process group (TIOCSPGRP), its root PID namespace ID; 0: unset
	running int   // reader goroutines not yet ended (a new one may start while the last ends, after ^D)
	closed  bool  // Release was called
	wake    int   // eventfd that stops the reader; 0: not made yet
}

// New wraps host descriptor fd (which it now owns) as a vfs file opened
// with flags.
func New(ctx context.Context, v *vfs.VirtualFilesystem, fd int, flags uint32) (*vfs.File, error) {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	f := &File{fd: fd, tty: err == nil}
	f.more = sync.NewCond(&f.mu)
	return v.NewAnonFile(ctx, inode{f}, f, flags, true)
}

type inode struct{ f *File }

func (i inode) Stat(context.Context) (vfs.Stat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(i.f.fd, &st); err != nil {
		return vfs.Stat{}, err
	}
	return vfs.Stat{Dev: 0x16, Ino: st.Ino, Mode: st.Mode, Nlink: 1, Rdev: st.Rdev,
		Blksize: 4096, Atime: st.Atim, Mtime: st.Mtim, Ctime: st.Ctim}, nil
}

// SetStat implements vfs.Inode: only the truncation that opening
// /dev/stdout with O_TRUNC makes reaches a host file (with its times,
// which the host sets itself); the rest is refused.
func (i inode) SetStat(_ context.Context, s vfs.SetStat) error {
	if s.Mask&^(vfs.SetSize|vfs.SetMtime|vfs.SetCtime) != 0 || s.Mask&vfs.SetSize == 0 {
		return unix.EPERM
	}
	if err := unix.Ftruncate(i.f.fd, s.Size); err != nil && err != unix.EINVAL {
		return err
	}
	return nil
}

// Open implements vfs.Inode: /proc/[pid]/fd/N (and so /dev/stdout)
// leads here, and opening it opens a duplicate of the host descriptor.
func (i inode) Open(context.Context, uint32) (vfs.FileImpl, error) {
	fd, err := unix.FcntlInt(uintptr(i.f.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := &File{fd: fd, tty: i.f.tty}
	f.more = sync.NewCond(&f.mu)
	return f, nil
}

// reader moves host input into buf as the guest consumes it. It waits
// for input with poll on the descriptor and f.wake, so Release can stop
// it: a read blocked on a terminal would keep the host descriptor open
// after close (the other end of a pty would never see its last user go,
// and an exec's output never end). The reader closes the descriptor when
// Release came first.
func (f *File) reader() {
	defer func() {
		f.mu.Lock()
		f.running--
		closed := f.closed && f.running == 0
		f.mu.Unlock()
		if closed {
			unix.Close(f.fd)
			unix.Close(f.wake)
		}
	}()
	b := make([]byte, 32<<10)
	for {
		fds := []unix.PollFd{{Fd: int32(f.fd), Events: unix.POLLIN}, {Fd: int32(f.wake), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			f.mu.Lock()
			f.eof, f.readErr = true, err
			f.queue.Notify(waiter.EventIn)
			f.mu.Unlock()
			return
		}
		if fds[1].Revents != 0 {
			return // released
		}
		if fds[0].Revents == 0 {
			continue
		}
		n, err := unix.Read(f.fd, b)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		f.mu.Lock()
		if n > 0 {
			f.buf = append(f.buf, b[:n]...)
		}
		if n == 0 || err != nil {
			f.eof = true
			if err != nil && err != unix.EIO {
				f.readErr = err
			}
		}
		f.queue.Notify(waiter.EventIn)
		done := f.eof
		// Do not read ahead more than one buffer.
		for len(f.buf) >= len(b) && !done && !f.closed {
			f.more.Wait()
		}
		done = done || f.closed
		f.mu.Unlock()
		if done {
			return
		}
	}
}

func (f *File) startReader() {
	if f.reading || f.closed {
		return
	}
	if f.wake <= 0 {
		w, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			f.eof, f.readErr = true, err
			return
		}
		f.wake = w
	}
	f.reading = true
	f.running++
	go f.reader()
}

// Read returns buffered input, EAGAIN when there is none yet, 0 at EOF.
func (f *File) Read(_ context.Context, p []byte, _ int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.startReader()
	if len(f.buf) == 0 {
		if f.eof {
			if f.tty {
				// ^D on a terminal ends one read, not the input.
				f.eof = false
				f.reading = false
			}
			return 0, nil
		}
		return 0, unix.EAGAIN
	}
	n := copy(p, f.buf)
	f.buf = f.buf[n:]
	f.more.Signal()
	return n, nil
}

// Write writes to the host descriptor.
func (f *File) Write(_ context.Context, p []byte, _ int64) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Write(f.fd, p[done:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			fds := []unix.PollFd{{Fd: int32(f.fd), Events: unix.POLLOUT}}
			unix.Poll(fds, -1)
			continue
		}
		if err != nil {
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
		done += n
	}
	return done, nil
}

// Readiness: input when buffered or at EOF; output always.
func (f *File) Readiness(mask waiter.EventMask) waiter.EventMask {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.startReader()
	var r waiter.EventMask = waiter.EventOut
	if len(f.buf) > 0 || f.eof {
		r |= waiter.EventIn
	}
	return r & mask
}

func (f *File) EventRegister(e *waiter.Entry) error {
	f.queue.EventRegister(e)
	return nil
}
func (f *File) EventUnregister(e *waiter.Entry) { f.queue.EventUnregister(e) }

// Release closes the host descriptor, at once or, while the reader
// runs, by stopping it (it closes the descriptor as it ends).
func (f *File) Release(context.Context) {
	f.mu.Lock()
	f.closed = true
	if f.running > 0 {
		// The eventfd stays readable: every reader still ending sees it.
		var one [8]byte
		one[0] = 1
		unix.Write(f.wake, one[:])
		f.more.Broadcast()
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	unix.Close(f.fd)
	if f.wake > 0 {
		unix.Close(f.wake)
	}
}

// Ioctl passes terminal requests to the host terminal.
func (f *File) Ioctl(ctx context.Context, mem vfs.Memory, cmd uint32, arg uint64) (uint64, error) {
	switch cmd {
	case abi.FIONREAD:
		f.mu.Lock()
		n := len(f.buf)
		f.mu.Unlock()
		var b [4]byte
		b[0], b[1], b[2], b[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
		return 0, mem.CopyOut(arg, b[:])
	}
	if !f.tty {
		return 0, unix.ENOTTY
	}
	switch cmd {
	case abi.TCGETS:
		t, err := unix.IoctlGetTermios(f.fd, unix.TCGETS)
		if err != nil {
			return 0, err
		}
		var at abi.Termios
		at.Iflag, at.Oflag, at.Cflag, at.Lflag, at.Line = t.Iflag, t.Oflag, t.Cflag, t.Lflag, t.Line
		copy(at.CC[:], t.Cc[:])
		b := make([]byte, abi.TermiosSize)
		at.Marshal(b)
		return 0, mem.CopyOut(arg, b)
	case abi.TCSETS, abi.TCSETSW, abi.TCSETSF:
		b := make([]byte, abi.TermiosSize)
		if err := mem.CopyIn(arg, b); err != nil {
			return 0, err
		}
		var at abi.Termios
		at.Unmarshal(b)
		t := &unix.Termios{Iflag: at.Iflag, Oflag: at.Oflag, Cflag: at.Cflag, Lflag: at.Lflag, Line: at.Line}
		copy(t.Cc[:], at.CC[:])
		return 0, unix.IoctlSetTermios(f.fd, uint(cmd), t)
	case abi.TIOCGWINSZ:
		w, err := unix.IoctlGetWinsize(f.fd, unix.TIOCGWINSZ)
		if err != nil {
			return 0, err
		}
		ws := abi.Winsize{Row: w.Row, Col: w.Col, Xpixel: w.Xpixel, Ypixel: w.Ypixel}
		b := make([]byte, abi.WinsizeSize)
		ws.Marshal(b)
		return 0, mem.CopyOut(arg, b)
	case abi.TIOCSWINSZ:
		b := make([]byte, abi.WinsizeSize)
		if err := mem.CopyIn(arg, b); err != nil {
			return 0, err
		}
		var ws abi.Winsize
		ws.Unmarshal(b)
		return 0, unix.IoctlSetWinsize(f.fd, unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Row, Col: ws.Col, Xpixel: ws.Xpixel, Ypixel: ws.Ypixel})
	case abi.TIOCGPGRP:
		// The terminal's foreground group: the one a process set, else
		// the caller's own. Each process given a terminal (a container's
		// or an exec's, in a session of its own) owns it, so an
		// interactive shell finds itself in the foreground and does not
		// stop itself with SIGTTIN waiting for it. The group is kept by
		// its root ID and numbered as the caller's PID namespace numbers
		// it: a shell compares it with its getpgrp().
		f.mu.Lock()
		pg := f.fg
		f.mu.Unlock()
		if t := kernel.TaskFromContext(ctx); t != nil {
			if pg == 0 {
				var err error
				if pg, err = t.LocalPGID(0); err != nil {
					return 0, err
				}
			} else {
				pg = t.PIDNamespace().IDOf(pg)
			}
		} else if pg == 0 {
			pg = 1
		}
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(pg))
		return 0, mem.CopyOut(arg, b[:])
	case abi.TIOCSPGRP:
		var b [4]byte
		if err := mem.CopyIn(arg, b[:]); err != nil {
			return 0, err
		}
		pg := int32(binary.LittleEndian.Uint32(b[:]))
		if pg <= 0 {
			return 0, unix.EINVAL
		}
		if t := kernel.TaskFromContext(ctx); t != nil {
			root, err := t.RootPGID(pg)
			if err != nil {
				return 0, err
			}
			pg = root
		}
		f.mu.Lock()
		f.fg = pg
		f.mu.Unlock()
		return 0, nil
	case abi.TIOCSCTTY, abi.TIOCNOTTY:
		// The terminal is the process's already.
		return 0, nil
	}
	return 0, unix.ENOTTY
}
