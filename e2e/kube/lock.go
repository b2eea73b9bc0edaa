package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// LockFile is the machine-wide lock a cluster holds for its lifetime: the
// cluster's ports (6443, 2379, the kubelet's) and host paths
// (/var/lib/kubelet/device-plugins, /var/log/containers) are fixed, so two
// clusters on one machine would break each other. Start takes it before
// anything else and Close releases it (the kernel releases it when the
// process dies, so a crash never leaves it held).
const LockFile = "/run/moat-kube.lock"

// lockMachine takes LockFile exclusively, waiting while another cluster
// holds it, until ctx ends. logf is told once that it waits.
func lockMachine(ctx context.Context, logf func(string, ...any)) (*os.File, error) {
	f, err := os.OpenFile(LockFile, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", LockFile, err)
	}
	told := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			// Who holds it, for whoever waits next.
			if err := f.Truncate(0); err == nil {
				fmt.Fprintf(f, "%d\n", os.Getpid())
			}
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", LockFile, err)
		}
		if !told {
			holder, _ := os.ReadFile(LockFile)
			logf("cluster: another cluster holds %s (pid %s); waiting", LockFile, string(trimNL(holder)))
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("another cluster holds %s: %w", LockFile, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// unlockMachine releases the lock taken by lockMachine (nil: nothing).
func unlockMachine(f *os.File) {
	if f != nil {
		f.Close()
	}
}
