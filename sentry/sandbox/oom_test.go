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

// TestOOMKillsTheLargest: a fault past the memory limit ends the process
// with the most resident memory, as a memory cgroup's OOM killer does,
// not the one that happened to fault: the small process that faulted
// goes on once the big one's memory is back.
func TestOOMKillsTheLargest(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, true)
	script := `(x=$(head -c 20000000 /dev/zero | tr '\0' a); echo big-ready; sleep 30) &
big=$!
while [ ! -e /tmp/never ]; do sleep 0.2; grep -q . /proc/$big/status || break; [ "$(grep VmRSS /proc/$big/status | tr -dc 0-9)" -gt 19000 ] && break; done
grep VmRSS /proc/$big/status
y=$(head -c 10000000 /dev/zero | tr '\0' b)
echo small-got-${#y}
wait $big; echo big-status-$?`
	r := sandboxtest.Run(t, root, []string{"/bin/sh", "-c", script}, sandboxtest.Options{Memory: 30 << 20})
	if r.ExitCode() != 0 || !strings.Contains(r.Stdout, "small-got-10000000") || !strings.Contains(r.Stdout, "big-status-137") ||
		!strings.Contains(r.Log, "out of memory") {
		t.Fatalf("exit %d, want 0 with the big process OOM-killed and the small one done\nstdout %q\nstderr %q\nlog %s",
			r.ExitCode(), r.Stdout, r.Stderr, r.Log)
	}
}
