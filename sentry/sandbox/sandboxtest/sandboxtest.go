// Package sandboxtest runs real programs in real sandboxes for tests:
// static C programs compiled with gcc, busybox, Go programs.
package sandboxtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"moat.dev/moat/kvm"
	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/hostio"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/sandbox"
	"moat.dev/moat/sentry/vfs"
)

// RequireKVM skips t when /dev/kvm is unusable, unless MOAT_REQUIRE_KVM is
// set, in which case it fails.
func RequireKVM(t testing.TB) {
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

// Rootfs makes a root filesystem directory with /bin, /tmp, /etc and, when
// busybox is true, Debian's static busybox with its applet links.
func Rootfs(t testing.TB, busybox bool) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"bin", "tmp", "etc", "root", "dev", "proc", "sys"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)
	if busybox {
		src := "/bin/busybox"
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatalf("busybox-static is needed (apt-get install busybox-static): %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), b, 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(src, "--list").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, applet := range strings.Fields(string(out)) {
			if applet != "busybox" {
				os.Symlink("busybox", filepath.Join(dir, "bin", applet))
			}
		}
	}
	return dir
}

// BuildC compiles a static C program from src into rootfs at /bin/name.
func BuildC(t testing.TB, rootfs, name, src string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatalf("gcc is needed to build test programs: %v", err)
	}
	c := filepath.Join(t.TempDir(), name+".c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(rootfs, "bin", name)
	if b, err := exec.Command(gcc, "-static", "-O2", "-Wall", "-o", out, c, "-lpthread").CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", name, err, b)
	}
	return "/bin/" + name
}

// Options for Run.
type Options struct {
	CPUs   int
	Memory uint64
	Pids   int
	Env    []string
	Stdin  string
	// StdinTTY makes stdin a terminal (the slave of a new pty) that
	// Stdin is typed into, instead of a pipe.
	StdinTTY bool
	UID      uint32
	// Timeout bounds the run (default 60 s).
	Timeout time.Duration
	Strace  bool
	// Mounts replace the default mounts when not nil.
	Mounts []sandbox.Mount
	// Creds, when set, replace the credentials UID chooses (uid 0 with
	// every capability, or an unprivileged uid with none).
	Creds *kernel.Creds
	// Sysctls are the sandbox's own sysctls (sandbox.Config.Sysctls).
	Sysctls map[string]string
}

// Result of a run.
type Result struct {
	Stdout, Stderr string
	Status         kernel.WaitStatus
	// Log holds the kernel's log (unimplemented syscalls and the like).
	Log string
}

// ExitCode is the shell's view of the status.
func (r *Result) ExitCode() int { return r.Status.ExitCode() }

// Run runs argv as the init of a new sandbox on rootfs.
func Run(t testing.TB, rootfs string, argv []string, o Options) *Result {
	t.Helper()
	RequireKVM(t)
	if o.CPUs == 0 {
		o.CPUs = 1
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	var logBuf, straceBuf syncBuffer
	cfg := sandbox.Config{CPUs: o.CPUs, Memory: o.Memory, Pids: o.Pids, RootFS: rootfs, Hostname: "sandboxtest",
		Log: slog.New(slog.NewTextHandler(&logBuf, nil)), Mounts: o.Mounts, Sysctls: o.Sysctls}
	if o.Strace {
		cfg.Strace = &straceBuf
	}
	sb, err := sandbox.New(cfg)
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	defer sb.Close()
	ctx := context.Background()
	inR, inW, _ := os.Pipe()
	if o.StdinTTY {
		inR.Close()
		inW.Close()
		ptm, pts, err := pty.Open()
		if err != nil {
			t.Fatalf("open a pty (/dev/ptmx) for stdin: %v", err)
		}
		defer ptm.Close()
		inR, inW = pts, ptm
	}
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	var stdio [3]*vfs.File
	for i, f := range []*os.File{inR, outW, errW} {
		fd, err := unix.Dup(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		hf, err := hostio.New(ctx, sb.VFS, fd, unix.O_RDWR)
		if err != nil {
			t.Fatal(err)
		}
		stdio[i] = hf
	}
	go func() {
		io.WriteString(inW, o.Stdin)
		if !o.StdinTTY {
			// A terminal's master stays open until the run ends.
			inW.Close()
		}
	}()
	var stdout, stderr bytes.Buffer
	done := make(chan struct{}, 2)
	go func() { io.Copy(&stdout, outR); done <- struct{}{} }()
	go func() { io.Copy(&stderr, errR); done <- struct{}{} }()
	env := o.Env
	if env == nil {
		env = []string{"PATH=/bin:/usr/bin", "HOME=/root"}
	}
	creds := kernel.Creds{RUID: o.UID, EUID: o.UID, SUID: o.UID, FSUID: o.UID, RGID: o.UID, EGID: o.UID, SGID: o.UID, FSGID: o.UID}
	if o.UID == 0 {
		creds.Caps = auth.AllCaps
	}
	if o.Creds != nil {
		creds = *o.Creds
	}
	_, err = sb.Start(kernel.ProcessSpec{Argv: argv, Envv: env, Cwd: "/", Creds: creds, Umask: 0o022, Stdio: stdio, Init: true})
	for _, f := range stdio {
		f.DecRef(ctx)
	}
	if err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	status, err := sb.Kernel.WaitInit(wctx)
	if err != nil {
		t.Fatalf("%v did not finish in %v\nstdout: %s\nstderr: %s\nlog: %s", argv, o.Timeout, stdout.String(), stderr.String(), logBuf.String())
	}
	sb.Close()
	<-done
	<-done
	r := &Result{Stdout: stdout.String(), Stderr: stderr.String(), Status: status, Log: logBuf.String()}
	if o.Strace {
		r.Log += straceBuf.String()
	}
	return r
}
