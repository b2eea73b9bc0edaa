package syscalls_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"moat.dev/moat/sentry/sandbox/sandboxtest"
)

// The tests here run real static programs in a real sandbox (KVM) and the
// same programs natively, and compare what they print.

// buildProgram compiles testdata/<name>.c statically into dir/<name>.
func buildProgram(t *testing.T, dir, name string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatalf("gcc is needed to build test programs: %v", err)
	}
	src, err := filepath.Abs(filepath.Join("testdata", name+".c"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command(gcc, "-static", "-O1", "-Wall", "-Werror", "-o", out, src, "-lpthread")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc -static %s: %v\n%s", src, err, b)
	}
	return out
}

// runNative runs argv on the host.
func runNative(t *testing.T, argv []string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/bin:/usr/bin", "HOME=/", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run %v natively: %v", argv, err)
	}
	return string(out)
}

// requireRoot: the programs check root's view (chown, chroot, access).
func requireRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("MOAT_REQUIRE_KVM") != "" {
		t.Fatal("the program tests compare with a native run as root; run them as root")
	}
	t.Skip("the program tests compare with a native run as root (not root here; MOAT_REQUIRE_KVM unset)")
}

// TestPrograms runs each C test program natively (proving its
// expectations against Linux) and in a sandbox, and requires both to
// pass every check with the same output.
func TestPrograms(t *testing.T) {
	requireRoot(t)
	sandboxtest.RequireKVM(t)
	for _, name := range []string{"files", "fdlocks", "pipes", "polling", "seccomp"} {
		t.Run(name, func(t *testing.T) {
			rootfs := sandboxtest.Rootfs(t, false)
			for _, d := range []string{"work", "native"} {
				if err := os.Mkdir(filepath.Join(rootfs, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			bin := buildProgram(t, filepath.Join(rootfs, "bin"), name)
			want := runNative(t, []string{bin, filepath.Join(rootfs, "native")})
			if !regexpDone.MatchString(want) {
				t.Fatalf("%s fails natively, so its expectations are wrong:\n%s", name, want)
			}
			r := sandboxtest.Run(t, rootfs, []string{"/bin/" + name, "/work"}, sandboxtest.Options{
				CPUs: 2, Env: []string{"PATH=/bin", "HOME=/", "LC_ALL=C"}, Timeout: 3 * time.Minute,
			})
			got := r.Stdout + r.Stderr
			if got != want || r.ExitCode() != 0 {
				t.Errorf("%s in the sandbox (exit %d):\n%s\nnatively:\n%s\nlog:\n%s", name, r.ExitCode(), got, want, r.Log)
			}
		})
	}
}

var regexpDone = regexp.MustCompile(`(?m)^DONE failures=0$`)

// TestRandomArguments calls the file system calls with random arguments
// (bad pointers, pointers that run off the end of a mapping, random flags,
// descriptors and paths) in a sandbox: every call must return, and the
// sentry must neither panic nor hang. The program is never run natively:
// it renames and chmods paths such as /tmp at random.
func TestRandomArguments(t *testing.T) {
	sandboxtest.RequireKVM(t)
	rootfs := sandboxtest.Rootfs(t, false)
	if err := os.Mkdir(filepath.Join(rootfs, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	buildProgram(t, filepath.Join(rootfs, "bin"), "fuzz")
	for _, seed := range []string{"1", "2", "3", "0x5eed"} {
		r := sandboxtest.Run(t, rootfs, []string{"/bin/fuzz", "/work", seed, "10000"}, sandboxtest.Options{
			CPUs: 2, Timeout: 3 * time.Minute,
		})
		if r.ExitCode() != 0 {
			t.Errorf("seed %s: exit %d\nstdout: %s\nstderr: %s\nlog: %s", seed, r.ExitCode(), r.Stdout, r.Stderr, r.Log)
		}
	}
}
