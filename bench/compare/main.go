// Command compare runs moat's benchmark workloads natively, under runc,
// under gVisor's runsc and under moat run, one after another in one run,
// and prints one Markdown table. bench/compare.sh builds what it needs and
// runs it; it needs root for runc and runsc.
//
//	compare -workloads PATH -moat PATH [-runc PATH] [-runsc PATH] [-n N] [-scale F]
package main

import (
	"bufio"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A runtime runs the workloads program with arguments and gives back the
// command to start.
type runner struct {
	name    string
	version string
	cmd     func(args ...string) *exec.Cmd
	// cleanup removes what a command left behind (a container's state).
	cleanup func()
}

// loop is a workload that times itself.
type loop struct {
	mode, what, unit string
	n                int
	div              float64 // ns per unit
}

var loops = []loop{
	{"getppid", "getppid loop", "ns", 20000, 1},
	{"forkexec", "fork+exec+wait", "µs", 100, 1e3},
	{"pipe", "pipe ping-pong (round trip)", "µs", 2000, 1e3},
	{"mmap", "4 KiB mmap+touch+munmap", "µs", 1000, 1e3},
}

func main() {
	workloads := flag.String("workloads", "", "static workloads program (gcc -static bench/workloads/workloads.c)")
	moat := flag.String("moat", "", "moat binary (\"\": skip moat)")
	moatRev := flag.String("moat-version", "", "what the moat binary was built from (default: its build information)")
	runc := flag.String("runc", lookPath("runc"), "runc binary (\"\": skip runc)")
	runsc := flag.String("runsc", lookPath("runsc"), "gVisor's runsc binary (\"\": skip runsc)")
	platform := flag.String("runsc-platform", "systrap", "runsc's platform")
	n := flag.Int("n", 20, "starts to time for start to exit")
	scale := flag.Float64("scale", 1, "multiplies each loop's iteration count")
	repeat := flag.Int("repeat", 3, "runs of each loop; the table shows their median")
	command := flag.String("command", "", "the command line to print as the one that reproduces the table")
	only := flag.String("only", "", "comma-separated runtimes to run (native,runc,runsc,moat); all by default")
	flag.Parse()
	if *workloads == "" {
		fatalf("-workloads is required")
	}
	dir, err := os.MkdirTemp("", "moat-compare-")
	if err != nil {
		fatalf("%v", err)
	}
	defer os.RemoveAll(dir)
	rootfs := filepath.Join(dir, "bundle/rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		fatalf("%v", err)
	}
	if err := copyFile(*workloads, filepath.Join(rootfs, "bin/workloads")); err != nil {
		fatalf("%v", err)
	}
	host, err := filepath.Abs(*workloads)
	if err != nil {
		fatalf("%v", err)
	}
	runners := []*runner{{name: "native", version: "host kernel " + unameRelease(),
		cmd: func(args ...string) *exec.Cmd { return exec.Command(host, args...) }}}
	if *runc != "" {
		r, err := ociRunner("runc", *runc, nil, filepath.Join(dir, "bundle"))
		if err != nil {
			fatalf("%v", err)
		}
		runners = append(runners, r)
	}
	if *runsc != "" {
		state := filepath.Join(dir, "runsc-state")
		flags := []string{"--root", state, "--rootless=false", "--network=none", "--platform=" + *platform}
		r, err := ociRunner("runsc", *runsc, flags, filepath.Join(dir, "bundle"))
		if err != nil {
			fatalf("%v", err)
		}
		r.name = "runsc (" + *platform + ")"
		runners = append(runners, r)
	}
	if *moat != "" {
		v := *moatRev
		if v == "" {
			v = moatVersion(*moat)
		}
		runners = append(runners, &runner{name: "moat", version: v,
			cmd: func(args ...string) *exec.Cmd {
				return exec.Command(*moat, append([]string{"run", "--rootfs", rootfs, "--", "/bin/workloads"}, args...)...)
			}})
	}
	if *only != "" {
		keep := strings.Split(*only, ",")
		runners = slices.DeleteFunc(runners, func(r *runner) bool {
			return !slices.Contains(keep, strings.Fields(r.name)[0])
		})
	}

	fmt.Printf("date: %s\nmachine: %s, %d CPUs, Linux %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), cpuModel(), runtime.NumCPU(), unameRelease())
	if *command == "" {
		*command = strings.Join(os.Args, " ")
	}
	fmt.Printf("command: %s\n\n", *command)
	for _, r := range runners {
		fmt.Printf("- %s: %s\n", r.name, r.version)
	}
	fmt.Println()

	rows := [][]string{{"workload"}}
	for _, r := range runners {
		rows[0] = append(rows[0], r.name)
	}
	row := []string{fmt.Sprintf("start to exit of a static `true`, ms (median of %d)", *n)}
	for _, r := range runners {
		row = append(row, cell(startToExit(r, *n)))
	}
	rows = append(rows, row)
	for _, l := range loops {
		count := max(1, int(float64(l.n)**scale))
		row := []string{fmt.Sprintf("%s, %s/op (median of %d runs of %d)", l.what, l.unit, *repeat, count)}
		for _, r := range runners {
			var runs []float64
			var err error
			for i := 0; i < *repeat && err == nil; i++ {
				var ns float64
				ns, err = timeLoop(r, l.mode, count)
				runs = append(runs, ns)
			}
			slices.Sort(runs)
			row = append(row, cell(runs[len(runs)/2]/l.div, err))
		}
		rows = append(rows, row)
	}
	row = []string{"resident memory of an idle `sleep`, MiB (PSS of the process tree)"}
	for _, r := range runners {
		b, err := idlePSS(r)
		row = append(row, cell(float64(b)/(1<<20), err))
	}
	rows = append(rows, row)
	printTable(os.Stdout, rows)
}

func cell(v float64, err error) string {
	if err != nil {
		fmt.Fprintf(os.Stderr, "compare: %v\n", err)
		return "failed"
	}
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func printTable(w io.Writer, rows [][]string) {
	for i, r := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
		if i == 0 {
			fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(r)))
		}
	}
}

// run runs a workload to completion and returns its output.
func (r *runner) run(args ...string) (string, error) {
	cmd := r.cmd(args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if r.cleanup != nil {
		r.cleanup()
	}
	if err != nil {
		return "", fmt.Errorf("%s: workloads %s: %v\n%s", r.name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

func startToExit(r *runner, n int) (float64, error) {
	var times []float64
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := r.run("true"); err != nil {
			return 0, err
		}
		times = append(times, float64(time.Since(start).Microseconds())/1e3)
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

func timeLoop(r *runner, mode string, n int) (float64, error) {
	out, err := r.run(mode, strconv.Itoa(n))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(out)
	if len(f) != 4 || f[0] != mode || f[3] != "ns/op" {
		return 0, fmt.Errorf("%s: workloads %s %d printed %q", r.name, mode, n, out)
	}
	return strconv.ParseFloat(f[2], 64)
}

// idlePSS starts `workloads sleep`, waits for it to say ready and a second
// more, and sums the proportional set size of the started command's
// process tree.
func idlePSS(r *runner) (int64, error) {
	cmd := r.cmd("sleep", "60")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("%s: start: %w", r.name, err)
	}
	defer func() {
		tree := processTree(cmd.Process.Pid)
		for _, pid := range slices.Backward(tree) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		cmd.Wait()
		if r.cleanup != nil {
			r.cleanup()
		}
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		return 0, fmt.Errorf("%s: sleep: read %q, %v\n%s", r.name, line, err, stderr.String())
	}
	time.Sleep(time.Second)
	var sum int64
	for _, pid := range processTree(cmd.Process.Pid) {
		pss, err := pss(pid)
		if err != nil {
			return 0, err
		}
		sum += pss
	}
	return sum, nil
}

// processTree lists pid and its descendants.
func processTree(root int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parens.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

func pss(pid int) (int64, error) {
	p := fmt.Sprintf("/proc/%d/smaps_rollup", pid)
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil // gone since the listing
		}
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			f := strings.Fields(v)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("%s: no Pss line", p)
}

// ociRunner runs the workloads in an OCI bundle made by `runc spec`, as
// `NAME [flags] run --bundle DIR ID`.
func ociRunner(name, bin string, flags []string, bundle string) (*runner, error) {
	cfg := filepath.Join(bundle, "config.json")
	if _, err := os.Stat(cfg); err != nil {
		spec := exec.Command(lookPath("runc"), "spec", "--bundle", bundle)
		if out, err := spec.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("runc spec --bundle %s: %v\n%s", bundle, err, out)
		}
	}
	base, err := os.ReadFile(cfg)
	if err != nil {
		return nil, err
	}
	seq := 0
	var id string
	r := &runner{name: name, version: version(bin, "--version")}
	r.cmd = func(args ...string) *exec.Cmd {
		var spec map[string]any
		if err := json.Unmarshal(base, &spec); err != nil {
			fatalf("%s: %v", cfg, err)
		}
		proc := spec["process"].(map[string]any)
		proc["args"] = append([]string{"/bin/workloads"}, args...)
		proc["terminal"] = false
		b, _ := json.MarshalIndent(spec, "", "\t")
		if err := os.WriteFile(cfg, b, 0o644); err != nil {
			fatalf("%v", err)
		}
		seq++
		id = fmt.Sprintf("moat-compare-%d-%d", os.Getpid(), seq)
		return exec.Command(bin, append(append(slices.Clone(flags), "run", "--bundle", bundle), id)...)
	}
	r.cleanup = func() {
		exec.Command(bin, append(slices.Clone(flags), "delete", "--force", id)...).Run()
	}
	return r, nil
}

func version(bin string, arg string) string {
	out, err := exec.Command(bin, arg).CombinedOutput()
	if err != nil {
		return bin
	}
	v := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	if strings.Contains(v, "VERSION_MISSING") { // runsc built with go install
		if info, err := buildinfo.ReadFile(bin); err == nil {
			v = info.Main.Path + " " + info.Main.Version
		}
	}
	return v
}

// moatVersion names the commit a moat binary was built from.
func moatVersion(bin string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return bin
	}
	v := "moat " + info.Main.Version
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v += ", commit " + s.Value[:min(12, len(s.Value))]
		case "vcs.modified":
			if s.Value == "true" {
				v += " (modified)"
			}
		}
	}
	return v + ", " + info.GoVersion
}

func lookPath(name string) string {
	p, _ := exec.LookPath(name)
	return p
}

func unameRelease() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "?"
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "compare: "+format+"\n", args...)
	os.Exit(1)
}
