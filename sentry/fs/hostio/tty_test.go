package hostio

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
)

// mem is guest memory of one 4-byte word at address 0.
type mem struct{ b [4]byte }

func (m *mem) CopyIn(addr uint64, dst []byte) error {
	if addr != 0 || len(dst) > len(m.b) {
		return unix.EFAULT
	}
	copy(dst, m.b[:])
	return nil
}

func (m *mem) CopyOut(addr uint64, src []byte) error {
	if addr != 0 || len(src) > len(m.b) {
		return unix.EFAULT
	}
	copy(m.b[:], src)
	return nil
}

// The terminal's foreground group is what a process set with TIOCSPGRP;
// before that, the caller's own (1 for the sentry itself, which has no
// task), so a shell given a terminal finds itself in the foreground.
func TestForegroundGroup(t *testing.T) {
	ptm, pts, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pty (/dev/ptmx): %v", err)
	}
	defer ptm.Close()
	defer pts.Close()
	f := &File{fd: int(pts.Fd()), tty: true}
	ctx := context.Background()
	get := func() int32 {
		t.Helper()
		var m mem
		if _, err := f.Ioctl(ctx, &m, abi.TIOCGPGRP, 0); err != nil {
			t.Fatalf("TIOCGPGRP: %v", err)
		}
		return int32(binary.LittleEndian.Uint32(m.b[:]))
	}
	set := func(pg int32) error {
		var m mem
		binary.LittleEndian.PutUint32(m.b[:], uint32(pg))
		_, err := f.Ioctl(ctx, &m, abi.TIOCSPGRP, 0)
		return err
	}
	if pg := get(); pg != 1 {
		t.Errorf("foreground group before any TIOCSPGRP, asked by the sentry: %d, want 1", pg)
	}
	if err := set(77); err != nil {
		t.Fatalf("TIOCSPGRP 77: %v", err)
	}
	if pg := get(); pg != 77 {
		t.Errorf("foreground group after TIOCSPGRP 77: %d", pg)
	}
	if err := set(0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("TIOCSPGRP 0: %v, want EINVAL", err)
	}
	if pg := get(); pg != 77 {
		t.Errorf("foreground group after a refused TIOCSPGRP: %d, want 77", pg)
	}
	// Not a terminal: ENOTTY, as the kernel says.
	nf := &File{fd: int(pts.Fd())}
	if _, err := nf.Ioctl(ctx, &mem{}, abi.TIOCGPGRP, 0); !errors.Is(err, unix.ENOTTY) {
		t.Errorf("TIOCGPGRP on a non-terminal: %v, want ENOTTY", err)
	}
}

// Closing a terminal file whose reader waits for input lets go of the
// host descriptor: the pty's other end sees its last user go (EIO), as an
// exec's output must end when its process does.
func TestReleaseStopsReader(t *testing.T) {
	ptm, pts, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pty (/dev/ptmx): %v", err)
	}
	defer ptm.Close()
	fd, err := unix.Dup(int(pts.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	pts.Close()
	f := &File{fd: fd, tty: true}
	f.more = sync.NewCond(&f.mu)
	// Input read through the reader, then nothing: it waits.
	if _, err := ptm.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	deadline := time.Now().Add(5 * time.Second)
	var got string
	for time.Now().Before(deadline) && !strings.Contains(got, "hello") {
		n, err := f.Read(context.Background(), buf, 0)
		if err != nil && !errors.Is(err, unix.EAGAIN) {
			t.Fatalf("read: %v", err)
		}
		got += string(buf[:n])
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(got, "hello") {
		t.Fatalf("read through the reader: %q", got)
	}
	// ^D ends one read on a terminal; the next read starts a new reader
	// while the last may still be ending.
	if _, err := ptm.Write([]byte{4}); err != nil {
		t.Fatal(err)
	}
	sawEOF := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !sawEOF; {
		n, err := f.Read(context.Background(), buf, 0)
		sawEOF = n == 0 && err == nil
		time.Sleep(10 * time.Millisecond)
	}
	if !sawEOF {
		t.Fatal("^D on the terminal gave no end of input")
	}
	if _, err := f.Read(context.Background(), buf, 0); err != nil && !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("read after ^D: %v", err)
	}
	f.Release(context.Background())
	done := make(chan error, 1)
	go func() {
		b := make([]byte, 256)
		for {
			if _, err := ptm.Read(b); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, unix.EIO) {
			t.Errorf("pty master read after the last slave closed: %v, want EIO", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the pty's slave is still open 5s after Release: the reader holds it")
	}
}
