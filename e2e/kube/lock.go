package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Machine-wide locks: one cluster runs on a machine at a time (fixed
// ports, the kubelet's fixed paths and the host's sysctls), and one test
// process at a time drives it. A second waits instead of failing.
const (
	LockDir = "/run/moat-cluster"
	// ClusterLock is held by the process that runs a cluster.
	ClusterLock = LockDir + "/cluster.lock"
	// TestsLock is held by a process running the scenarios.
	TestsLock = LockDir + "/tests.lock"
)

// Lock takes the flock on path, waiting while another process holds it
// (logging who, every 30 s) until ctx ends. The lock goes with the
// process: release, exit or death. The file then names the holder.
func Lock(ctx context.Context, path string, logf func(string, ...any)) (release func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	var last time.Time
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Since(last) > 30*time.Second {
			b, _ := os.ReadFile(path)
			logf("waiting for %s, held by %s", path, holder(strings.TrimSpace(string(b))))
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for lock %s: %w", path, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

func holder(pid string) string {
	if n, err := strconv.Atoi(pid); err == nil {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n)); err == nil {
			cl := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
			if len(cl) > 120 {
				cl = cl[:120] + "…"
			}
			return fmt.Sprintf("pid %d (%s)", n, cl)
		}
	}
	return "pid " + pid
}
