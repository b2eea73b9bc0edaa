package main

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/fs/hostio"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/sandbox"
	"moat.dev/moat/sentry/vfs"
)

// The demo is moat's first command for a newcomer: it needs nothing but
// /dev/kvm. It builds a root filesystem from the moat binary itself (a
// static Go program) and, when present, Debian's static busybox, and runs
// them in a sandbox.

// busyboxPath is where Debian's busybox-static puts busybox.
const busyboxPath = "/bin/busybox"

// demoApplets are the busybox applets the demo's shell line uses.
var demoApplets = []string{"sh", "echo", "ls", "head", "seq", "uname", "cat"}

// demoShell is the shell line the demo runs with busybox.
const demoShell = `echo "busybox sh, pid $$, in $(uname -n):"; ls / | head; seq 1 3`

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("moat demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cpus := fs.Int("cpus", min(2, runtime.NumCPU()), "vCPUs of the sandbox")
	strace := fs.Bool("strace", false, "print every syscall of the sandboxed programs")
	busybox := fs.String("busybox", busyboxPath, "static busybox to include (\"\" for none)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: moat demo [flags]\n\nRuns a static Go program and busybox in a KVM sandbox.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "moat demo: unexpected arguments %q\n", fs.Args())
		return 2
	}
	root, err := os.MkdirTemp("", "moat-demo-")
	if err != nil {
		fmt.Fprintf(stderr, "moat demo: %v\n", err)
		return 1
	}
	defer os.RemoveAll(root)
	haveHello, haveBusybox, err := demoRootfs(root, *busybox, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "moat demo: %v\n", err)
		return 1
	}
	if !haveHello && !haveBusybox {
		fmt.Fprintf(stderr, "moat demo: nothing to run: moat is not a static binary and %s is absent (apt-get install busybox-static)\n", *busybox)
		return 1
	}
	var traceTo io.Writer
	if *strace {
		traceTo = stderr
	}
	fmt.Fprintf(stdout, "moat demo: root filesystem %s, %d vCPU(s)\n", root, *cpus)
	// step runs argv in a fresh sandbox. A program that fails only for
	// syscalls this sentry does not serve yet is a known gap, not a
	// failure of the demo: step reports them and returns false, nil.
	step := func(argv ...string) (bool, error) {
		fmt.Fprintf(stdout, "\n$ moat run -- %s\n", shellQuote(argv))
		var out bytes.Buffer
		var mu sync.Mutex
		w := lockedWriter{&mu, &out} // stdout and stderr in the order written
		start := time.Now()
		res, err := sandboxRun(root, argv, *cpus, w, w, traceTo)
		if err != nil {
			return false, err
		}
		took := time.Since(start).Round(time.Millisecond)
		if res.code == 0 {
			stdout.Write(out.Bytes())
			fmt.Fprintf(stdout, "(exited 0 after %v)\n", took)
			return true, nil
		}
		if missing := unsupportedSyscalls(res.log); len(missing) > 0 {
			fmt.Fprintf(stdout, "(exit status %d: it needs syscalls this sentry does not serve yet: %s)\n", res.code, strings.Join(missing, ", "))
			return false, nil
		}
		stdout.Write(out.Bytes())
		return false, fmt.Errorf("%s exited with status %d\n%s", shellQuote(argv), res.code, res.log)
	}
	greeted := false
	if haveHello {
		if greeted, err = step("/bin/moat-hello", "hello"); err != nil {
			fmt.Fprintf(stderr, "moat demo: %v\n", err)
			return 1
		}
	} else {
		fmt.Fprintln(stdout, "\n(moat is not a static binary: build it with CGO_ENABLED=0 to run it in the sandbox)")
	}
	if haveBusybox {
		if !greeted {
			// The same facts from busybox, which needs less of the kernel.
			for _, argv := range [][]string{{"/bin/busybox", "echo", "Hello from inside a moat sandbox"}, {"/bin/busybox", "uname", "-a"}} {
				ok, err := step(argv...)
				if err != nil {
					fmt.Fprintf(stderr, "moat demo: %v\n", err)
					return 1
				}
				greeted = greeted || ok
			}
		}
		if _, err := step("/bin/sh", "-c", demoShell); err != nil {
			fmt.Fprintf(stderr, "moat demo: %v\n", err)
			return 1
		}
	}
	if !greeted {
		fmt.Fprintln(stderr, "moat demo: no program ran to completion in the sandbox")
		return 1
	}
	fmt.Fprintln(stdout, "\nmoat run --rootfs DIR -- CMD [ARG...] runs your own programs the same way.")
	return 0
}

// unsupportedSyscalls lists the syscalls a sandbox's log says returned
// ENOSYS because the sentry does not implement them.
func unsupportedSyscalls(log string) []string {
	var names []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "unsupported syscall") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if name, ok := strings.CutPrefix(f, "syscall="); ok && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	return names
}

// demoRootfs fills root with /bin/moat-hello (a copy of this binary, if it
// is static) and busybox with a few applet links (if bb is a static
// binary). It reports what it put there.
func demoRootfs(root, bb string, stderr io.Writer) (hello, busybox bool, err error) {
	for _, d := range []string{"bin", "tmp", "etc", "root", "dev", "proc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return false, false, err
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		return false, false, err
	}
	if err := os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("moat\n"), 0o644); err != nil {
		return false, false, err
	}
	self, err := os.Executable()
	if err != nil {
		return false, false, fmt.Errorf("find the moat binary: %w", err)
	}
	if hello, err = copyStatic(self, filepath.Join(root, "bin/moat-hello")); err != nil {
		return false, false, err
	}
	if bb == "" {
		return hello, false, nil
	}
	if busybox, err = copyStatic(bb, filepath.Join(root, "bin/busybox")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "moat demo: %s is absent, so no shell (apt-get install busybox-static)\n", bb)
			return hello, false, nil
		}
		return false, false, err
	}
	if !busybox {
		fmt.Fprintf(stderr, "moat demo: %s is not a static binary, so no shell (apt-get install busybox-static)\n", bb)
		return hello, false, nil
	}
	for _, a := range demoApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			return false, false, err
		}
	}
	return hello, true, nil
}

// copyStatic copies the ELF executable src to dst if it is statically
// linked (has no interpreter), and reports whether it did.
func copyStatic(src, dst string) (bool, error) {
	f, err := elf.Open(src)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", src, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return false, nil
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", src, err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		return false, fmt.Errorf("write %s: %w", dst, err)
	}
	return true, nil
}

type sandboxResult struct {
	code int
	log  string
}

// sandboxRun runs argv as the init of a fresh sandbox on rootfs, with
// /dev/null as stdin and its output copied to stdout and stderr.
func sandboxRun(rootfs string, argv []string, cpus int, stdout, stderr, strace io.Writer) (*sandboxResult, error) {
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logBuf}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sb, err := sandbox.New(sandbox.Config{CPUs: cpus, RootFS: rootfs, Hostname: "moat", Log: log, Strace: strace})
	if err != nil {
		return nil, err
	}
	defer sb.Close()
	ctx := context.Background()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		null.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		null.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	var copies sync.WaitGroup
	copies.Add(2)
	go func() { io.Copy(stdout, outR); outR.Close(); copies.Done() }()
	go func() { io.Copy(stderr, errR); errR.Close(); copies.Done() }()
	var stdio [3]*vfs.File
	for i, f := range []*os.File{null, outW, errW} {
		fd, err := unix.Dup(int(f.Fd()))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("dup stdio %d: %w", i, err)
		}
		if stdio[i], err = hostio.New(ctx, sb.VFS, fd, unix.O_RDWR); err != nil {
			return nil, fmt.Errorf("stdio %d: %w", i, err)
		}
	}
	_, err = sb.Start(kernel.ProcessSpec{
		Argv: argv, Envv: []string{"PATH=/bin", "HOME=/root", "HOSTNAME=moat"}, Path: argv[0], Cwd: "/",
		Creds: kernel.Creds{Caps: rootCaps}, Umask: 0o022, Stdio: stdio, Init: true, Container: "demo",
	})
	for _, f := range stdio {
		if f != nil {
			f.DecRef(ctx)
		}
	}
	if err != nil {
		sb.Close()
		copies.Wait()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	status, err := sb.Kernel.WaitInit(wctx)
	sb.Close()
	copies.Wait()
	if err != nil {
		return nil, fmt.Errorf("%s did not finish: %w", argv[0], err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	return &sandboxResult{code: status.ExitCode(), log: logBuf.String()}, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$;|&<>()*?`\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// cmdHello is what /bin/moat-hello runs inside the demo's sandbox: it
// prints what the program sees of its kernel.
func cmdHello(stdout io.Writer) int {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		fmt.Fprintf(stdout, "uname: %v\n", err)
		return 1
	}
	version := unix.ByteSliceToString(u.Version[:])
	fmt.Fprintln(stdout, "Hello from inside a moat sandbox")
	fmt.Fprintf(stdout, "  I am a static Go program (%s), pid %d, uid %d\n", runtime.Version(), os.Getpid(), os.Getuid())
	fmt.Fprintf(stdout, "  uname: %s %s %s %s %s\n", unix.ByteSliceToString(u.Sysname[:]), unix.ByteSliceToString(u.Nodename[:]),
		unix.ByteSliceToString(u.Release[:]), version, unix.ByteSliceToString(u.Machine[:]))
	fmt.Fprintf(stdout, "  vCPUs: %d\n", runtime.NumCPU())
	if strings.Contains(version, "moat") {
		fmt.Fprintln(stdout, "  every syscall I make is served by moat's sentry, not by the host's kernel")
		return 0
	}
	fmt.Fprintln(stdout, "  ...but uname's version does not name moat: this is the host's kernel, not a sandbox")
	return 1
}
