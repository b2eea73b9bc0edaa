package bench_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/fs/hostio"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/sandbox"
	"moat.dev/moat/sentry/sandbox/sandboxtest"
	"moat.dev/moat/sentry/vfs"
)

// The workloads of docs/benchmarks.md, each beside native in the same run.
// Times come from the programs themselves (CLOCK_MONOTONIC through the
// vDSO, which moat serves without a guest exit), so a sandbox's start-up
// is not in a per-operation figure; start-up has benchmarks of its own.
// Nothing here asserts a time: TestWorkloads only checks that every
// workload runs to completion everywhere.

var (
	setupOnce sync.Once
	setupErr  error
	workDir   string // holds rootfs/ and moat
)

// root is the root filesystem the workloads run in: /bin/workloads only.
func root() string { return filepath.Join(workDir, "rootfs") }

// workloadsPath is the program on the host (for native runs).
func workloadsPath() string { return filepath.Join(root(), "bin/workloads") }

func moatPath() string { return filepath.Join(workDir, "moat") }

func TestMain(m *testing.M) {
	code := m.Run()
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	os.Exit(code)
}

// setup builds workloads/workloads.c with gcc -static and the moat command, once.
func setup(tb testing.TB) {
	tb.Helper()
	sandboxtest.RequireKVM(tb)
	setupOnce.Do(func() {
		if workDir, setupErr = os.MkdirTemp("", "moat-bench-"); setupErr != nil {
			return
		}
		if setupErr = os.MkdirAll(filepath.Join(root(), "bin"), 0o755); setupErr != nil {
			return
		}
		gcc, err := exec.LookPath("gcc")
		if err != nil {
			setupErr = fmt.Errorf("gcc is needed to build the workloads: %w", err)
			return
		}
		if out, err := exec.Command(gcc, "-static", "-O2", "-Wall", "-o", workloadsPath(), "workloads/workloads.c").CombinedOutput(); err != nil {
			setupErr = fmt.Errorf("gcc workloads/workloads.c: %v\n%s", err, out)
			return
		}
		build := exec.Command("go", "build", "-o", moatPath(), "moat.dev/moat/cmd/moat")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			setupErr = fmt.Errorf("go build moat: %v\n%s", err, out)
		}
	})
	if setupErr != nil {
		tb.Fatal(setupErr)
	}
}

// parse reads the workloads' "MODE N NS ns/op" line.
func parse(out, mode string, n int) (float64, error) {
	f := strings.Fields(strings.TrimSpace(out))
	if len(f) != 4 || f[0] != mode || f[1] != strconv.Itoa(n) || f[3] != "ns/op" {
		return 0, fmt.Errorf("workloads %s %d printed %q", mode, n, out)
	}
	return strconv.ParseFloat(f[2], 64)
}

// A figure is what a workload reports (wall time per operation) and the
// CPU time, user and system, it took all told: on a machine shared with
// other work the second moves less.
type figure struct {
	ns, cpu time.Duration
	// In a sandbox: its guest exits and page-table invalidations, the
	// start-up's included.
	exits, flushes uint64
	counted        bool
}

func (f figure) report(b *testing.B) {
	b.ReportMetric(float64(f.ns), "ns/op")
	b.ReportMetric(float64(f.cpu)/float64(b.N), "cpu-ns/op")
	if f.counted {
		b.ReportMetric(float64(f.exits)/float64(b.N), "exits/op")
		b.ReportMetric(float64(f.flushes)/float64(b.N), "flushes/op")
	}
}

// native runs the workload on the host.
func native(tb testing.TB, mode string, n int) figure {
	tb.Helper()
	cmd := exec.Command(workloadsPath(), mode, strconv.Itoa(n))
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("native workloads %s %d: %v", mode, n, err)
	}
	ns, err := parse(string(out), mode, n)
	if err != nil {
		tb.Fatal(err)
	}
	return figure{ns: time.Duration(ns), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
}

// inSandbox runs the workload in a sandbox of this process (so that
// -cpuprofile profiles the sentry). Its CPU time is this process's, the
// sandbox's set-up included.
func inSandbox(tb testing.TB, mode string, n int, cpus int) figure {
	tb.Helper()
	r := runInSandbox(tb, []string{"/bin/workloads", mode, strconv.Itoa(n)}, cpus)
	if r.status.ExitCode() != 0 {
		tb.Fatalf("workloads %s %d in a sandbox: exit %d\nstdout: %s\nstderr: %s\nlog: %s", mode, n, r.status.ExitCode(), r.stdout, r.stderr, r.log)
	}
	ns, err := parse(r.stdout, mode, n)
	if err != nil {
		tb.Fatalf("%v\nlog: %s", err, r.log)
	}
	return figure{ns: time.Duration(ns), cpu: r.cpu, exits: r.exits, flushes: r.flushes, counted: r.counted}
}

// sandboxRun is what running one program as a sandbox's init gave.
type sandboxRun struct {
	stdout, stderr, log string
	status              kernel.WaitStatus
	cpu                 time.Duration
	// exits and flushes are the machine's guest exits and page-table
	// invalidations, when it counts them (counted).
	exits, flushes uint64
	counted        bool
}

// counters is what the KVM machine counts.
type counters interface {
	Exits() uint64
	Flushes() uint64
}

// runInSandbox runs argv as the init of a new sandbox on root().
func runInSandbox(tb testing.TB, argv []string, cpus int) *sandboxRun {
	tb.Helper()
	var logBuf lockedBuffer
	before := cpuTime(tb)
	sb, err := sandbox.New(sandbox.Config{CPUs: cpus, RootFS: root(), Hostname: "bench",
		Log: slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		tb.Fatal(err)
	}
	defer sb.Close()
	ctx := context.Background()
	var outputs [2]strings.Builder
	var stdio [3]*vfs.File
	var copies sync.WaitGroup
	for i := 1; i <= 2; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			tb.Fatal(err)
		}
		fd, err := unix.Dup(int(w.Fd()))
		w.Close()
		if err != nil {
			tb.Fatal(err)
		}
		if stdio[i], err = hostio.New(ctx, sb.VFS, fd, unix.O_RDWR); err != nil {
			tb.Fatal(err)
		}
		copies.Add(1)
		go func() { io.Copy(&outputs[i-1], r); r.Close(); copies.Done() }()
	}
	_, err = sb.Start(kernel.ProcessSpec{Argv: argv, Envv: []string{"PATH=/bin"}, Cwd: "/",
		Init: true, Umask: 0o022, Stdio: stdio})
	stdio[1].DecRef(ctx)
	stdio[2].DecRef(ctx)
	if err != nil {
		tb.Fatalf("start %v: %v", argv, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	status, err := sb.Kernel.WaitInit(wctx)
	if err != nil {
		tb.Fatalf("%v did not finish: %v\nlog: %s", argv, err, logBuf.String())
	}
	r := &sandboxRun{status: status}
	if c, ok := sb.Machine.(counters); ok {
		r.exits, r.flushes, r.counted = c.Exits(), c.Flushes(), true
	}
	sb.Close()
	copies.Wait()
	r.cpu = cpuTime(tb) - before
	r.stdout, r.stderr, r.log = outputs[0].String(), outputs[1].String(), logBuf.String()
	return r
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cpuTime is this process's user and system time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var loops = []struct{ mode, what string }{
	{"getppid", "one getppid(2)"},
	{"forkexec", "fork, exec of a static program, wait"},
	{"pipe", "one byte there and back between two processes over pipes"},
	{"mmap", "mmap of 4 KiB, a write to it, munmap"},
}

// TestWorkloads: every workload runs to completion natively and in a
// sandbox with one and two vCPUs, and reports a figure.
func TestWorkloads(t *testing.T) {
	setup(t)
	for _, l := range loops {
		native(t, l.mode, 3)
		for _, cpus := range []int{1, 2} {
			inSandbox(t, l.mode, 3, cpus)
		}
	}
	r := runInSandbox(t, []string{"/bin/workloads", "true"}, 1)
	if r.status.ExitCode() != 0 || r.stdout != "" {
		t.Fatalf("workloads true: exit %d stdout %q log %s", r.status.ExitCode(), r.stdout, r.log)
	}
	if !r.counted || r.exits == 0 {
		t.Fatalf("the sandbox counted no guest exits (counted %v)", r.counted)
	}
	rss := idleRSS(t, moatPath(), "run", "--rootfs", root(), "--", "/bin/workloads", "sleep", "30")
	if rss <= 0 {
		t.Fatalf("resident memory of moat run: %d", rss)
	}
}

// benchLoop runs a loop natively and in a sandbox with one vCPU, and with
// two when twoVCPUs is set.
func benchLoop(b *testing.B, mode string, twoVCPUs bool) {
	setup(b)
	b.Run("native", func(b *testing.B) { native(b, mode, b.N).report(b) })
	b.Run("moat", func(b *testing.B) { inSandbox(b, mode, b.N, 1).report(b) })
	if twoVCPUs {
		b.Run("moat-2vcpu", func(b *testing.B) { inSandbox(b, mode, b.N, 2).report(b) })
	}
}

func BenchmarkGetppid(b *testing.B)  { benchLoop(b, "getppid", false) }
func BenchmarkForkExec(b *testing.B) { benchLoop(b, "forkexec", false) }

// BenchmarkPipe with two vCPUs too: then each process can keep its own.
func BenchmarkPipe(b *testing.B) { benchLoop(b, "pipe", true) }
func BenchmarkMmap(b *testing.B) { benchLoop(b, "mmap", false) }

// BenchmarkStart is a container's start to exit with a static program
// that exits at once: natively (fork+exec from Go), as `moat run` (a new
// moat process: Go start-up, KVM machine, sentry, exit), and as a sandbox
// in this process, split into its phases.
func BenchmarkStart(b *testing.B) {
	setup(b)
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"native", []string{workloadsPath(), "true"}},
		{"moat-run", []string{moatPath(), "run", "--rootfs", root(), "--", "/bin/workloads", "true"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				cmd := exec.Command(c.argv[0], c.argv[1:]...)
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v: %v\n%s", c.argv, err, out)
				}
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		})
	}
	b.Run("sandbox", func(b *testing.B) {
		var phases [4]time.Duration
		var exits, flushes uint64
		before := cpuTime(b)
		for i := 0; i < b.N; i++ {
			d, e, f := startPhases(b)
			for j := range d {
				phases[j] += d[j]
			}
			exits += e
			flushes += f
		}
		b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(exits)/float64(b.N), "exits/op")
		b.ReportMetric(float64(flushes)/float64(b.N), "flushes/op")
		for j, name := range []string{"new", "start", "run", "close"} {
			b.ReportMetric(float64(phases[j].Microseconds())/float64(b.N), name+"-µs/op")
		}
	})
}

// startPhases times one sandbox's New, Start (process creation and ELF
// load), run to exit and Close, and counts its guest exits and page-table
// invalidations.
func startPhases(b *testing.B) (d [4]time.Duration, exits, flushes uint64) {
	t0 := time.Now()
	sb, err := sandbox.New(sandbox.Config{CPUs: 1, RootFS: root(), Hostname: "bench",
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	t1 := time.Now()
	_, err = sb.Start(kernel.ProcessSpec{Argv: []string{"/bin/workloads", "true"}, Envv: []string{"PATH=/bin"},
		Cwd: "/", Init: true, Umask: 0o022})
	if err != nil {
		b.Fatal(err)
	}
	t2 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := sb.Kernel.WaitInit(ctx)
	if err != nil || st.ExitCode() != 0 {
		b.Fatalf("workloads true in a sandbox: status %v, %v", st, err)
	}
	t3 := time.Now()
	if c, ok := sb.Machine.(counters); ok {
		exits, flushes = c.Exits(), c.Flushes()
	}
	if err := sb.Close(); err != nil {
		b.Fatal(err)
	}
	t4 := time.Now()
	d[0], d[1], d[2], d[3] = t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3)
	return d, exits, flushes
}

// BenchmarkIdleRSS is the resident memory of an idle `sleep`: the process
// itself natively, the whole moat process (sentry, Go runtime and guest
// memory) under moat run.
func BenchmarkIdleRSS(b *testing.B) {
	setup(b)
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"native", []string{workloadsPath(), "sleep", "30"}},
		{"moat-run", []string{moatPath(), "run", "--rootfs", root(), "--", "/bin/workloads", "sleep", "30"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var sum int64
			for i := 0; i < b.N; i++ {
				sum += idleRSS(b, c.argv[0], c.argv[1:]...)
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(sum)/float64(b.N)/(1<<20), "MiB")
		})
	}
}

// idleRSS starts the command, waits for its "ready" line and half a second
// more, and returns its resident bytes (VmRSS). It kills it afterwards.
func idleRSS(tb testing.TB, prog string, args ...string) int64 {
	tb.Helper()
	cmd := exec.Command(prog, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", prog, err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		tb.Fatalf("%s %v: read %q, %v\nstderr: %s", prog, args, line, err, stderr.String())
	}
	time.Sleep(500 * time.Millisecond)
	rss, err := vmRSS(cmd.Process.Pid)
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		tb.Fatalf("%s %v exited while idle: %v\nstderr: %s", prog, args, err, stderr.String())
	}
	return rss
}

// vmRSS reads a process's resident set size from /proc.
func vmRSS(pid int) (int64, error) {
	p := fmt.Sprintf("/proc/%d/status", pid)
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("%s: no VmRSS line", p)
}
