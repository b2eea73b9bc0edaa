package sandbox_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"moat.dev/moat/sentry/sandbox/sandboxtest"
)

// TestGoProgram runs a static Go program (CGO_ENABLED=0) that uses
// goroutines on several threads, channels, timers, os/exec, signal.Notify
// and a panic, with one and two vCPUs.
func TestGoProgram(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	bin := filepath.Join(root, "bin", "goprog")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/goprog")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	want := "goroutines total 80000800120\ntimers ok true\nexec: \"child says hello\\n\" exit 5\nsignal user defined signal 1\npanic exit 2 traceback true\n"
	for _, cpus := range []int{1, 2} {
		r := sandboxtest.Run(t, root, []string{"/bin/goprog", "all"}, sandboxtest.Options{CPUs: cpus})
		if r.ExitCode() != 0 || r.Stdout != want {
			t.Fatalf("--cpus %d: exit %d\nstdout %q\nwant   %q\nstderr %s\nlog %s", cpus, r.ExitCode(), r.Stdout, want, r.Stderr, r.Log)
		}
	}
}
