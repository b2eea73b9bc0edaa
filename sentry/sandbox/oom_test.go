package sandbox_test

import (
	"strings"
	"testing"

	"moat.dev/moat/sentry/sandbox/sandboxtest"
)

// TestOOMInsideSyscall: memory first touched by the sentry on a
// process's behalf (read(2) from /dev/zero into a fresh 20 MiB buffer,
// what critest's OOM case runs) counts against the limit like the
// process's own faults: the process is OOM-killed instead of seeing a
// short read and going round for ever.
func TestOOMInsideSyscall(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, true)
	r := sandboxtest.Run(t, root, []string{"/bin/sh", "-c", "dd if=/dev/zero of=/dev/null bs=20M count=4"},
		sandboxtest.Options{Memory: 15 << 20})
	if r.ExitCode() != 137 || !strings.Contains(r.Log, "out of memory") {
		t.Fatalf("exit %d, want 137 (OOM kill)\nstdout %q\nstderr %q\nlog %s", r.ExitCode(), r.Stdout, r.Stderr, r.Log)
	}
	// Under the limit the same copy works.
	r = sandboxtest.Run(t, root, []string{"/bin/sh", "-c", "dd if=/dev/zero of=/dev/null bs=4M count=4 2>&1"},
		sandboxtest.Options{Memory: 64 << 20})
	if r.ExitCode() != 0 || !strings.Contains(r.Stdout, "4+0 records in") {
		t.Fatalf("exit %d, stdout %q stderr %q", r.ExitCode(), r.Stdout, r.Stderr)
	}
}
