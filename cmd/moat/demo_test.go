package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"moat.dev/moat/kvm"
)

func requireKVM(t *testing.T) {
	t.Helper()
	d, err := kvm.OpenDevice("")
	if err == nil {
		d.Close()
		return
	}
	if errors.Is(err, kvm.ErrNoKVM) && os.Getenv("MOAT_REQUIRE_KVM") == "" {
		t.Skipf("no usable KVM (set MOAT_REQUIRE_KVM=1 to fail instead): %v", err)
	}
	t.Fatal(err)
}

// buildMoat builds the moat command as make does: static, without cgo.
func buildMoat(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "moat")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build moat: %v\n%s", err, out)
	}
	return bin
}

// TestDemo runs `moat demo` as `make run` does and checks that a program
// greeted from inside the sandbox and that every step either worked or
// named the syscalls it lacks.
func TestDemo(t *testing.T) {
	requireKVM(t)
	bin := buildMoat(t)
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, "demo", "--cpus", "2")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("moat demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	s := out.String()
	t.Logf("moat demo:\n%s", s)
	if !strings.Contains(s, "$ moat run -- /bin/moat-hello hello\n") {
		t.Fatalf("the demo did not run the static moat binary:\n%s", s)
	}
	if !strings.Contains(s, "Hello from inside a moat sandbox\n") {
		t.Fatalf("no greeting from the sandbox:\n%s", s)
	}
	goHello := strings.Contains(s, "I am a static Go program")
	if goHello {
		for _, want := range []string{", pid 1, uid 0\n", "  uname: Linux moat ", "  vCPUs: 2\n", "served by moat's sentry"} {
			if !strings.Contains(s, want) {
				t.Errorf("the Go program's greeting lacks %q:\n%s", want, s)
			}
		}
	} else if !strings.Contains(s, "Linux moat ") || !strings.Contains(s, " moat x86_64") {
		t.Errorf("neither the Go program nor busybox uname reported a moat kernel:\n%s", s)
	}
	// Each step ends with one status line: exited 0, or the syscalls
	// it still needs.
	steps := strings.Count(s, "\n$ moat run -- ")
	ok := strings.Count(s, "\n(exited 0 after ")
	lacking := strings.Count(s, "it needs syscalls this sentry does not serve yet: ")
	if steps == 0 || ok+lacking != steps {
		t.Fatalf("%d steps, %d exited 0, %d lacked syscalls:\n%s", steps, ok, lacking, s)
	}
	if _, err := os.Stat(busyboxPath); err == nil {
		if !strings.Contains(s, "$ moat run -- /bin/sh -c ") {
			t.Fatalf("busybox is installed but the demo ran no shell:\n%s", s)
		}
		if strings.Contains(s, "busybox sh, pid 1, in moat:\n") && !strings.Contains(s, "\n1\n2\n3\n(exited 0") {
			t.Errorf("the shell line's output is incomplete:\n%s", s)
		}
	}
}

func TestDemoWithoutBusybox(t *testing.T) {
	requireKVM(t)
	bin := buildMoat(t)
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, "demo", "--busybox", filepath.Join(t.TempDir(), "absent"))
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	s := out.String()
	if strings.Contains(s, "/bin/sh") || !strings.Contains(errb.String(), "absent, so no shell") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", s, errb.String())
	}
	// Without busybox, the demo succeeds exactly when the Go program does.
	if (err == nil) != strings.Contains(s, "Hello from inside a moat sandbox") {
		t.Fatalf("moat demo: %v\nstdout:\n%s\nstderr:\n%s", err, s, errb.String())
	}
}

// TestDemoRootfs: only static x86-64 executables go into the demo's root.
func TestDemoRootfs(t *testing.T) {
	root := t.TempDir()
	var errb bytes.Buffer
	dynamic := "/bin/ls" // a dynamically linked program on Debian
	hello, bb, err := demoRootfs(root, dynamic, &errb)
	if err != nil {
		t.Fatal(err)
	}
	if bb || !strings.Contains(errb.String(), "not a static binary") {
		t.Fatalf("%s went in as busybox (%v): %s", dynamic, bb, errb.String())
	}
	if _, err := os.Stat(filepath.Join(root, "bin/busybox")); err == nil {
		t.Fatalf("%s was copied", dynamic)
	}
	// The test binary is built like moat: static when cgo is off.
	if _, err := os.Stat(filepath.Join(root, "bin/moat-hello")); (err == nil) != hello {
		t.Fatalf("demoRootfs said hello=%v, stat: %v", hello, err)
	}
	if _, _, err := demoRootfs(t.TempDir(), filepath.Join(root, "etc/hostname"), &errb); err == nil {
		t.Fatalf("a file that is not ELF was accepted as busybox")
	}
}

// TestHelloOnTheHost: outside a sandbox the greeting says so.
func TestHelloOnTheHost(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"hello"}, &out, &out); code != 1 || !strings.Contains(out.String(), "this is the host's kernel") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
}

func TestUnsupportedSyscalls(t *testing.T) {
	log := `time=x level=WARN msg="unsupported syscall returns ENOSYS" syscall=openat nr=257 pid=1 comm=moat-hello
time=x level=WARN msg="something else" syscall=read
time=x level=WARN msg="unsupported syscall returns ENOSYS" syscall=fcntl nr=72 pid=1 comm=moat-hello
time=x level=WARN msg="unsupported syscall returns ENOSYS" syscall=openat nr=257 pid=2 comm=moat-hello
`
	if got := strings.Join(unsupportedSyscalls(log), ","); got != "openat,fcntl" {
		t.Fatalf("got %q", got)
	}
}

func TestShellQuote(t *testing.T) {
	if got := shellQuote([]string{"/bin/sh", "-c", "echo it's; ls"}); got != `/bin/sh -c 'echo it'\''s; ls'` {
		t.Fatalf("got %s", got)
	}
}
