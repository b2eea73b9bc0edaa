package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"moat.dev/moat/sentry/sandbox/sandboxtest"
)

// moatBinary builds the moat command once per test binary.
func moatBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "moat")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestRunCommand drives `moat run` as a user does: exit status, stdin and
// stdout passed through, the environment and working directory, and
// SIGTERM forwarded to the container's init.
func TestRunCommand(t *testing.T) {
	sandboxtest.RequireKVM(t)
	bin := moatBinary(t)
	root := sandboxtest.Rootfs(t, true)
	os.MkdirAll(filepath.Join(root, "work"), 0o755)

	run := func(stdin string, args ...string) (string, string, int) {
		cmd := exec.Command(bin, append([]string{"run", "--rootfs", root}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
	if out, _, code := run("", "--", "sh", "-c", "echo out; exit 7"); out != "out\n" || code != 7 {
		t.Errorf("exit status: %q %d", out, code)
	}
	if out, _, code := run("line one\nline two\n", "--", "sh", "-c", "wc -l; cat"); out != "0\n" && out != "2\n" || code != 0 {
		t.Errorf("stdin: %q %d", out, code)
	}
	if out, _, _ := run("", "--env", "A=1", "--workdir", "/work", "--hostname", "box", "--", "sh", "-c", `echo "$A $(pwd) $(hostname)"`); out != "1 /work box\n" {
		t.Errorf("env/workdir/hostname: %q", out)
	}
	if out, _, _ := run("", "--user", "65534:65534", "--", "id"); !strings.HasPrefix(out, "uid=65534") {
		t.Errorf("--user: %q", out)
	}
	if _, errOut, code := run("", "--", "/bin/nonexistent"); code == 0 || !strings.Contains(errOut, "nonexistent") {
		t.Errorf("missing program: exit %d %q", code, errOut)
	}
	if _, errOut, code := run("", "--memory", "lots", "--", "true"); code != 2 || !strings.Contains(errOut, "lots") {
		t.Errorf("bad --memory: exit %d %q", code, errOut)
	}
	// --seccomp: a profile in the form of an OCI config's linux.seccomp.
	prof := filepath.Join(t.TempDir(), "profile.json")
	os.WriteFile(prof, []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
		{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30},
		{"names": ["sethostname"], "action": "SCMP_ACT_KILL_PROCESS"}]}`), 0o644)
	if out, _, code := run("", "--seccomp", prof, "--", "sh", "-c", "grep Seccomp: /proc/self/status; mkdir /work/d 2>&1"); !strings.Contains(out, "Seccomp:\t2\n") || !strings.Contains(out, "Read-only file system") || code == 0 {
		t.Errorf("--seccomp: %q, exit %d; want mode 2 and EROFS from mkdir", out, code)
	}
	if _, _, code := run("", "--seccomp", prof, "--", "hostname", "box"); code != 128+31 {
		t.Errorf("--seccomp with a killing rule: exit %d, want %d (SIGSYS)", code, 128+31)
	}
	os.WriteFile(prof, []byte(`{"defaultAction": "SCMP_ACT_NOTIFY"}`), 0o644)
	if _, errOut, code := run("", "--seccomp", prof, "--", "true"); code != 2 || !strings.Contains(errOut, "SCMP_ACT_NOTIFY") {
		t.Errorf("an unenforceable profile: exit %d %q", code, errOut)
	}

	// SIGTERM to moat run reaches the container's init, whose trap runs.
	cmd := exec.Command(bin, "run", "--rootfs", root, "--", "sh", "-c", `trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 1; done`)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && !strings.Contains(out.String(), "ready"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != 3 || !strings.Contains(out.String(), "got TERM") {
			t.Errorf("SIGTERM: exit %d output %q", code, out.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("SIGTERM was not forwarded; output %q", out.String())
	}
}
