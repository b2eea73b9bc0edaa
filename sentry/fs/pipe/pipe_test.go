package pipe_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/fs/pipe"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

func newPipe(t *testing.T) (context.Context, *vfs.File, *vfs.File) {
	t.Helper()
	ctx := context.Background()
	v, err := vfs.New(ctx, tmpfs.New(tmpfs.Options{}), vfs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := pipe.NewPipe(ctx, v, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, r, w
}

type mem struct{ b [4]byte }

func (m *mem) CopyIn(addr uint64, dst []byte) error  { copy(dst, m.b[:]); return nil }
func (m *mem) CopyOut(addr uint64, src []byte) error { copy(m.b[:], src); return nil }

func TestPipeSemantics(t *testing.T) {
	ctx, r, w := newPipe(t)
	defer r.DecRef(ctx)
	buf := make([]byte, 100)
	if _, err := r.Read(ctx, buf); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("read of empty pipe: %v", err)
	}
	if got := r.Readiness(waiter.ReadableEvents); got != 0 {
		t.Fatalf("empty pipe readable: %#x", got)
	}
	if got := w.Readiness(waiter.WritableEvents); got&waiter.EventOut == 0 {
		t.Fatalf("empty pipe not writable: %#x", got)
	}
	st, err := r.Stat(ctx)
	if err != nil || st.Type() != unix.S_IFIFO {
		t.Fatalf("fstat pipe: %+v %v", st, err)
	}
	if _, err := r.Pread(ctx, buf, 0); !errors.Is(err, unix.ESPIPE) {
		t.Fatalf("pread on a pipe: %v", err)
	}
	if _, err := r.Seek(ctx, 0, unix.SEEK_SET); !errors.Is(err, unix.ESPIPE) {
		t.Fatalf("lseek on a pipe: %v", err)
	}
	if _, err := r.Write(ctx, buf); !errors.Is(err, unix.EBADF) {
		t.Fatalf("write to the read end: %v", err)
	}

	// Fill to capacity: 64 KiB by default.
	sizer := w.Impl().(pipe.Sizer)
	if sizer.PipeSize() != 65536 {
		t.Fatalf("default capacity %d", sizer.PipeSize())
	}
	chunk := bytes.Repeat([]byte("x"), 4096)
	total := 0
	for {
		n, err := w.Write(ctx, chunk)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != 65536 {
		t.Fatalf("pipe took %d bytes, want 65536", total)
	}
	if got := w.Readiness(waiter.WritableEvents); got != 0 {
		t.Fatalf("full pipe writable: %#x", got)
	}
	var m mem
	if _, err := r.Ioctl(ctx, &m, 0x541b, 0); err != nil || binary.LittleEndian.Uint32(m.b[:]) != 65536 {
		t.Fatalf("FIONREAD = %d, %v", binary.LittleEndian.Uint32(m.b[:]), err)
	}
	if _, err := sizer.SetPipeSize(4096); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("shrink below content: %v", err)
	}
	if _, err := sizer.SetPipeSize(2 << 20); !errors.Is(err, unix.EPERM) {
		t.Fatalf("grow above 1 MiB: %v", err)
	}

	// Atomic writes: with 100 bytes free, a 200-byte write takes nothing,
	// a 5000-byte write takes what fits.
	r.Read(ctx, buf)
	if _, err := w.Write(ctx, make([]byte, 200)); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("atomic write that does not fit: %v", err)
	}
	if n, err := w.Write(ctx, make([]byte, 5000)); n != 100 || err != nil {
		t.Fatalf("large write into 100 free bytes = %d, %v", n, err)
	}

	// A waiter is woken when the pipe becomes readable and on hang-up.
	if n, err := sizer.SetPipeSize(100000); err != nil || n != 131072 {
		t.Fatalf("F_SETPIPE_SZ 100000 = %d, %v", n, err)
	}
	e, ch := waiter.NewChannelEntry(waiter.EventHUp)
	r.EventRegister(e)
	defer r.EventUnregister(e)
	// Closing the write end: the reader drains, then sees EOF and HUP.
	w.DecRef(ctx)
	select {
	case <-ch:
	default:
		t.Fatal("closing the writer did not notify EventHUp")
	}
	drained := 0
	for {
		n, err := r.Read(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		drained += n
	}
	if drained != 65536 {
		t.Fatalf("drained %d bytes, want 65536", drained)
	}
	if got := r.Readiness(waiter.ReadableEvents); got&waiter.EventHUp == 0 {
		t.Fatalf("writerless pipe readiness %#x, want HUP", got)
	}
}

func TestWriteWithoutReaderIsEPIPE(t *testing.T) {
	ctx, r, w := newPipe(t)
	defer w.DecRef(ctx)
	r.DecRef(ctx)
	if _, err := w.Write(ctx, []byte("x")); !errors.Is(err, unix.EPIPE) {
		t.Fatalf("write without reader: %v", err)
	}
	if got := w.Readiness(waiter.WritableEvents); got&waiter.EventErr == 0 {
		t.Fatalf("readerless pipe readiness %#x, want ERR", got)
	}
}

// TestConcurrentAtomicWriters checks that writes of PIPE_BUF bytes from
// many goroutines never interleave, with a reader that waits through the
// waiter queue as the syscall layer will.
func TestConcurrentAtomicWriters(t *testing.T) {
	ctx, r, w := newPipe(t)
	defer r.DecRef(ctx)
	const writers, perWriter = 8, 200
	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(id byte) {
			defer wg.Done()
			msg := bytes.Repeat([]byte{id}, pipe.AtomicIOBytes)
			e, ch := waiter.NewChannelEntry(waiter.WritableEvents)
			w.EventRegister(e)
			defer w.EventUnregister(e)
			for k := 0; k < perWriter; k++ {
				for {
					n, err := w.Write(ctx, msg)
					if err == nil {
						if n != len(msg) {
							t.Errorf("atomic write split: %d of %d", n, len(msg))
						}
						break
					}
					if !errors.Is(err, unix.EAGAIN) {
						t.Error(err)
						return
					}
					if w.Readiness(waiter.WritableEvents) == 0 {
						<-ch
					}
				}
			}
		}(byte('a' + i))
	}
	go func() { wg.Wait(); w.DecRef(ctx) }()

	e, ch := waiter.NewChannelEntry(waiter.ReadableEvents | waiter.EventHUp)
	r.EventRegister(e)
	defer r.EventUnregister(e)
	var got []byte
	buf := make([]byte, 3000) // not a multiple of the message size
	for {
		n, err := r.Read(ctx, buf)
		if errors.Is(err, unix.EAGAIN) {
			if r.Readiness(waiter.ReadableEvents|waiter.EventHUp) == 0 {
				<-ch
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		got = append(got, buf[:n]...)
	}
	if len(got) != writers*perWriter*pipe.AtomicIOBytes {
		t.Fatalf("read %d bytes, want %d", len(got), writers*perWriter*pipe.AtomicIOBytes)
	}
	for off := 0; off < len(got); off += pipe.AtomicIOBytes {
		m := got[off : off+pipe.AtomicIOBytes]
		if bytes.Count(m, m[:1]) != len(m) {
			t.Fatalf("message at %d interleaved", off)
		}
	}
}

// BenchmarkPipe64K measures moving 64 KiB through a pipe in 4 KiB writes
// and 64 KiB reads.
func BenchmarkPipe64K(b *testing.B) {
	ctx, r, w := newPipe(&testing.T{})
	chunk := make([]byte, 4096)
	buf := make([]byte, 65536)
	b.SetBytes(65536)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < 16; k++ {
			w.Write(ctx, chunk)
		}
		r.Read(ctx, buf)
	}
}
