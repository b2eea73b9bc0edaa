package pipe_test

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/fs/pipe"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// blockingRead is how the syscall layer turns the never-blocking File.Read
// into read(2) for a descriptor without O_NONBLOCK: register, retry,
// wait for the file or for an interruption (a signal), retry.
func blockingRead(ctx context.Context, f *vfs.File, p []byte, interrupt <-chan struct{}) (int, error) {
	n, err := f.Read(ctx, p)
	if !errors.Is(err, unix.EAGAIN) || f.StatusFlags()&unix.O_NONBLOCK != 0 {
		return n, err
	}
	e, ready := waiter.NewChannelEntry(waiter.ReadableEvents | waiter.EventHUp)
	f.EventRegister(e)
	defer f.EventUnregister(e)
	for {
		// Registered before this retry, so no wake-up is missed.
		n, err := f.Read(ctx, p)
		if !errors.Is(err, unix.EAGAIN) {
			return n, err
		}
		select {
		case <-ready:
		case <-interrupt:
			return 0, unix.EINTR
		}
	}
}

func Example_blockingRead() {
	ctx := context.Background()
	v, _ := vfs.New(ctx, tmpfs.New(tmpfs.Options{}), vfs.MountOptions{})
	r, w, _ := pipe.NewPipe(ctx, v, 0)
	defer r.DecRef(ctx)
	go func() {
		w.Write(ctx, []byte("hello"))
		w.DecRef(ctx)
	}()
	buf := make([]byte, 16)
	n, err := blockingRead(ctx, r, buf, nil)
	fmt.Printf("%q %v\n", buf[:n], err)
	n, err = blockingRead(ctx, r, buf, nil)
	fmt.Println(n, err) // end of file once the writer is gone
	// Output:
	// "hello" <nil>
	// 0 <nil>
}
