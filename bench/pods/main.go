// Command pods measures what a pod costs through CRI, for each runtime
// handler in one run, on a private containerd started by the e2e harness
// (e2e/harness): pod start (RunPodSandbox + CreateContainer +
// StartContainer until the container's first log line), exec latency
// (`crictl exec` of /bin/true, and CRI ExecSync), the resident memory of an
// idle pod's runtime processes (PSS and RSS of the shim and everything
// under it), and 20 pods started at once. It prints Markdown tables with
// the machine it ran on. Times are printed, never judged.
//
//	sudo go run ./bench/pods -shim bin/containerd-shim-moat-v2 -n 20
//	sudo go run ./bench/pods -handlers moat -memory-only
//
// runsc (gVisor) is measured too when -runsc and -runsc-shim name its
// binaries, built from the Go module proxy with
//
//	CGO_ENABLED=0 GOBIN=DIR go install gvisor.dev/gvisor/runsc@VERSION gvisor.dev/gvisor/shim@VERSION
//
// (the shim binary is then DIR/shim). Set MOAT_BENCH_SMAPS to a folder to
// keep each measured process's /proc/PID/smaps there.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"moat.dev/moat/e2e/harness"
)

func main() {
	var (
		n          = flag.Int("n", 20, "pod starts and execs to take the median of")
		concurrent = flag.Int("concurrent", 20, "pods started at once (0: skip)")
		shim       = flag.String("shim", "", "containerd-shim-moat-v2 to measure (built from this tree when empty)")
		handlers   = flag.String("handlers", "runc,moat,runsc", "handlers to measure, in order")
		runscBin   = flag.String("runsc", "", "runsc binary (runsc is skipped without it)")
		runscShim  = flag.String("runsc-shim", "", "containerd-shim-runsc-v1 binary")
		platform   = flag.String("runsc-platform", "systrap", "runsc platform")
		memOnly    = flag.Bool("memory-only", false, "measure only the idle pod's memory")
		idle       = flag.Duration("idle", 3*time.Second, "how long a pod idles before its memory is read")
	)
	flag.Parse()
	if err := run(*n, *concurrent, *shim, strings.Split(*handlers, ","), *runscBin, *runscShim, *platform, *memOnly, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "pods:", err)
		os.Exit(1)
	}
}

func run(n, concurrent int, shim string, handlers []string, runscBin, runscShim, platform string, memOnly bool, idle time.Duration) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "moat-bench-pods-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if shim == "" {
		shim = filepath.Join(tmp, "containerd-shim-moat-v2")
		cmd := exec.Command("go", "build", "-o", shim, "moat.dev/moat/cmd/containerd-shim-moat-v2")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build the shim: %v\n%s", err, out)
		}
	}
	if shim, err = filepath.Abs(shim); err != nil {
		return err
	}
	cfg := filepath.Join(tmp, "moat.toml")
	if err := os.WriteFile(cfg, []byte("max_vcpus = 1\nlog_level = \"warn\"\n"), 0o644); err != nil {
		return err
	}
	env, err := harness.New(ctx, harness.Options{MoatShim: shim, MoatConfig: cfg})
	if err != nil {
		return fmt.Errorf("start the harness: %w", err)
	}
	defer func() {
		if err := env.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "pods: harness teardown:", err)
		}
	}()
	if slices.Contains(handlers, "runsc") {
		if runscBin == "" || runscShim == "" {
			fmt.Fprintln(os.Stderr, "pods: runsc skipped: -runsc and -runsc-shim not given")
			handlers = slices.DeleteFunc(handlers, func(h string) bool { return h == "runsc" })
		} else if err := addRunsc(ctx, env, tmp, runscBin, runscShim, platform); err != nil {
			return err
		}
	}

	fmt.Printf("## Pods through CRI: %s\n\n%s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine())
	res := map[string]*result{}
	for _, h := range handlers {
		r := &result{}
		res[h] = r
		fmt.Fprintf(os.Stderr, "pods: %s: idle memory\n", h)
		if r.mem, err = idleMemory(ctx, env, h, idle); err != nil {
			r.err = err
			fmt.Fprintf(os.Stderr, "pods: %s: %v\n", h, err)
			continue
		}
		if memOnly {
			continue
		}
		fmt.Fprintf(os.Stderr, "pods: %s: %d pod starts\n", h, n)
		if r.start, err = podStarts(ctx, env, h, n); err != nil {
			r.err = err
			continue
		}
		fmt.Fprintf(os.Stderr, "pods: %s: %d execs\n", h, n)
		if r.crictlExec, r.execSync, err = execLatency(ctx, env, h, n); err != nil {
			r.err = err
			continue
		}
		if concurrent > 0 {
			fmt.Fprintf(os.Stderr, "pods: %s: %d pods at once\n", h, concurrent)
			if r.allWall, r.each, err = concurrentStarts(ctx, env, h, concurrent); err != nil {
				r.err = err
			}
		}
	}
	fmt.Printf("Load average after the run: %s\n\n", loadavg())
	printTable(handlers, res, n, concurrent, memOnly)
	for _, h := range handlers {
		if r := res[h]; r.mem != nil {
			fmt.Printf("\n%s idle pod, by process:\n\n", h)
			for _, p := range r.mem.procs {
				fmt.Printf("- `%s` (pid %d): PSS %.2f MiB, RSS %.2f MiB — %s\n", p.name, p.pid, mib(p.pss), mib(p.rss), p.parts)
			}
		}
	}
	return nil
}

type result struct {
	err        error
	mem        *memory
	start      []time.Duration
	crictlExec []time.Duration
	execSync   []time.Duration
	allWall    time.Duration
	each       []time.Duration
}

func printTable(handlers []string, res map[string]*result, n, concurrent int, memOnly bool) {
	fmt.Printf("| figure | %s |\n|---|%s\n", strings.Join(handlers, " | "), strings.Repeat("---|", len(handlers)))
	row := func(name string, f func(r *result) string) {
		cells := []string{}
		for _, h := range handlers {
			r := res[h]
			switch {
			case r.err != nil && f(r) == "":
				cells = append(cells, "failed: "+strings.ReplaceAll(firstLine(r.err.Error()), "|", "/"))
			default:
				cells = append(cells, f(r))
			}
		}
		fmt.Printf("| %s | %s |\n", name, strings.Join(cells, " | "))
	}
	ms := func(d []time.Duration) string {
		if len(d) == 0 {
			return ""
		}
		return fmt.Sprintf("%.1f", float64(median(d))/1e6)
	}
	row("idle pod: runtime processes' PSS, MiB", func(r *result) string {
		if r.mem == nil {
			return ""
		}
		return fmt.Sprintf("%.1f", mib(r.mem.pss))
	})
	row("idle pod: runtime processes' RSS, MiB", func(r *result) string {
		if r.mem == nil {
			return ""
		}
		return fmt.Sprintf("%.1f", mib(r.mem.rss))
	})
	if memOnly {
		return
	}
	row(fmt.Sprintf("pod start to first log line, ms (median of %d)", n), func(r *result) string { return ms(r.start) })
	row(fmt.Sprintf("`crictl exec` of /bin/true, ms (median of %d)", n), func(r *result) string { return ms(r.crictlExec) })
	row(fmt.Sprintf("CRI ExecSync of /bin/true, ms (median of %d)", n), func(r *result) string { return ms(r.execSync) })
	if concurrent > 0 {
		row(fmt.Sprintf("%d pods at once: wall time until all log, ms", concurrent), func(r *result) string {
			if r.allWall == 0 {
				return ""
			}
			return fmt.Sprintf("%.0f", float64(r.allWall)/1e6)
		})
		row(fmt.Sprintf("%d pods at once: per-pod start, ms (median)", concurrent), func(r *result) string { return ms(r.each) })
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// startPod runs a pod with one container that logs a line and sleeps, and
// returns when the line is in the container's log.
func startPod(ctx context.Context, e *harness.Env, h, name string) (*harness.Pod, string, error) {
	cfg := e.PodConfig(name)
	pod, err := e.RunPod(ctx, cfg, h)
	if err != nil {
		return nil, "", err
	}
	c := harness.ContainerConfig("c", harness.BusyboxImage, "sh", "-c", "echo ready; exec sleep 3600")
	cid, err := pod.Start(ctx, c)
	if err != nil {
		return pod, cid, err
	}
	logPath := filepath.Join(cfg.LogDirectory, c.LogPath)
	for {
		if b, err := os.ReadFile(logPath); err == nil && strings.Contains(string(b), " ready\n") {
			return pod, cid, nil
		}
		select {
		case <-ctx.Done():
			return pod, cid, fmt.Errorf("pod %s: no log line: %w", name, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func podStarts(ctx context.Context, e *harness.Env, h string, n int) ([]time.Duration, error) {
	var out []time.Duration
	for i := range n {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		t0 := time.Now()
		pod, _, err := startPod(cctx, e, h, fmt.Sprintf("start-%02d", i))
		d := time.Since(t0)
		if pod != nil {
			_ = pod.Remove(ctx)
		}
		cancel()
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

func execLatency(ctx context.Context, e *harness.Env, h string, n int) (crictl, sync []time.Duration, err error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	pod, cid, err := startPod(cctx, e, h, "exec")
	if pod != nil {
		defer pod.Remove(ctx)
	}
	if err != nil {
		return nil, nil, err
	}
	for range n {
		t0 := time.Now()
		if _, _, err := e.Crictl(cctx, nil, "exec", cid, "/bin/true"); err != nil {
			return crictl, sync, err
		}
		crictl = append(crictl, time.Since(t0))
	}
	for range n {
		t0 := time.Now()
		r, err := e.CRI.Runtime.ExecSync(cctx, &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"/bin/true"}, Timeout: 30})
		if err != nil {
			return crictl, sync, fmt.Errorf("ExecSync: %w", err)
		}
		if r.ExitCode != 0 {
			return crictl, sync, fmt.Errorf("ExecSync of /bin/true: exit %d", r.ExitCode)
		}
		sync = append(sync, time.Since(t0))
	}
	return crictl, sync, nil
}

func concurrentStarts(ctx context.Context, e *harness.Env, h string, n int) (time.Duration, []time.Duration, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	pods := make([]*harness.Pod, n)
	each := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := time.Now()
			pods[i], _, errs[i] = startPod(cctx, e, h, fmt.Sprintf("many-%02d", i))
			each[i] = time.Since(s)
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	for _, p := range pods {
		if p != nil {
			wg.Add(1)
			go func() { defer wg.Done(); _ = p.Remove(ctx) }()
		}
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return 0, nil, fmt.Errorf("pod %d of %d: %w", i, n, err)
		}
	}
	return wall, each, nil
}

// memory is the resident memory of a pod's runtime processes.
type memory struct {
	pss, rss uint64
	procs    []procMem
}

type procMem struct {
	pid      int
	name     string
	pss, rss uint64
	parts    string
}

// idleMemory starts a pod with one sleeping container, lets it idle and
// reads the memory of its shim (the process started with the sandbox's id)
// and of every process under it: for runc the pause and the container's
// process, for moat the sentry, for runsc its sandbox and gofer.
func idleMemory(ctx context.Context, e *harness.Env, h string, idle time.Duration) (*memory, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pod, _, err := startPod(cctx, e, h, "idle")
	if pod != nil {
		defer pod.Remove(ctx)
	}
	if err != nil {
		return nil, err
	}
	time.Sleep(idle)
	pids, err := podProcesses(pod.ID)
	if err != nil {
		return nil, err
	}
	m := &memory{}
	for _, pid := range pids {
		if d := os.Getenv("MOAT_BENCH_SMAPS"); d != "" {
			// Keep each process's smaps for a closer look.
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid)); err == nil {
				os.WriteFile(filepath.Join(d, fmt.Sprintf("%s-%d.smaps", h, pid)), b, 0o644)
			}
		}
		pm, err := readSmaps(pid)
		if err != nil {
			return nil, err
		}
		m.pss += pm.pss
		m.rss += pm.rss
		m.procs = append(m.procs, pm)
	}
	return m, nil
}

// podProcesses finds the shim of sandbox id (its command line names the
// id) and every process under it.
func podProcesses(id string) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	var roots []int
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
		cmd, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		args := strings.Split(string(cmd), "\x00")
		if len(args) > 0 && strings.Contains(filepath.Base(args[0]), "containerd-shim") && slices.Contains(args, id) {
			roots = append(roots, pid)
		}
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("no shim process names sandbox %s", id)
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		out = append(out, p)
		for _, c := range children[p] {
			walk(c)
		}
	}
	for _, r := range roots {
		walk(r)
	}
	return out, nil
}

// readSmaps sums a process's PSS and RSS and splits its PSS by kind of
// mapping: its program file, other files, guest memory (a memfd), and
// anonymous memory (heap, stacks).
func readSmaps(pid int) (procMem, error) {
	p := procMem{pid: pid}
	cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
	p.name = filepath.Base(args[0])
	if len(args) > 1 && args[1] == "sentry" {
		p.name += " sentry"
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return p, fmt.Errorf("memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	kinds := map[string]uint64{}
	kind := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		fields := strings.Fields(l)
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") || strings.Contains(fields[0], "-") {
			// A mapping's header: "start-end perms offset dev inode [name]".
			name := ""
			if len(fields) >= 6 {
				name = strings.Join(fields[5:], " ")
			}
			switch {
			case name == exe || strings.HasPrefix(name, exe+" "):
				kind = "program"
			case strings.HasPrefix(name, "/memfd:"):
				kind = "memfd (guest memory)"
			case strings.HasPrefix(name, "/"):
				kind = "other files"
			default:
				kind = "anonymous"
			}
			continue
		}
		v, _ := strconv.ParseUint(fields[1], 10, 64)
		switch fields[0] {
		case "Pss:":
			p.pss += v << 10
			kinds[kind] += v << 10
		case "Rss:":
			p.rss += v << 10
		}
	}
	var parts []string
	for _, k := range []string{"anonymous", "memfd (guest memory)", "program", "other files"} {
		if kinds[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, mib(kinds[k])))
		}
	}
	p.parts = "PSS MiB: " + strings.Join(parts, ", ")
	return p, sc.Err()
}

// addRunsc configures the handler "runsc" (gVisor's containerd shim) with
// a drop-in and restarts containerd to load it.
func addRunsc(ctx context.Context, e *harness.Env, tmp, runscBin, runscShim, platform string) error {
	conf := filepath.Join(tmp, "runsc.toml")
	body := fmt.Sprintf("binary_name = %q\nroot = %q\n[runsc_config]\n  platform = %q\n",
		runscBin, filepath.Join(e.State, "runsc"), platform)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return err
	}
	drop := fmt.Sprintf(`version = 4
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc]
  runtime_type = 'io.containerd.runsc.v1'
  runtime_path = %q
  sandboxer = 'podsandbox'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc.options]
    TypeUrl = 'io.containerd.runsc.v1.options'
    ConfigPath = %q
`, runscShim, conf)
	if err := os.WriteFile(filepath.Join(e.ConfDir, "runsc.toml"), []byte(drop), 0o644); err != nil {
		return err
	}
	before := e.ContainerdStarts()
	if _, err := e.SignalContainerd(syscall.SIGTERM); err != nil {
		return fmt.Errorf("restart containerd for runsc: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := e.WaitRestarted(cctx, before); err != nil {
		return fmt.Errorf("restart containerd for runsc: %w", err)
	}
	return nil
}

func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	var u syscall.Utsname
	syscall.Uname(&u)
	rel := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	return fmt.Sprintf("Machine: %d CPUs (%s), kernel %s, %s; load average before: %s", runtime.NumCPU(), model, rel, runtime.Version(), loadavg())
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
