package k8s

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"moat.dev/moat/e2e/kube"
)

// The figures of docs/benchmarks.md ("On Kubernetes"): never assertions
// on time or size, only measurements. They run when MOAT_K8S_BENCH=1
// (`make bench-k8s`), not in `make test`.
const benchEnv = "MOAT_K8S_BENCH"

func requireBench(t *testing.T) {
	t.Helper()
	if os.Getenv(benchEnv) != "1" {
		t.Skipf("a figure, not a test: set %s=1 (make bench-k8s) to measure it", benchEnv)
	}
}

// podWatch streams `kubectl get pods -n NS -w -o json` and records, for
// each pod, when this process first saw it Ready.
type podWatch struct {
	mu    sync.Mutex
	ready map[string]time.Time
	last  map[string]*corev1.Pod
}

func watchPods(t *testing.T, ctx context.Context, ns string) *podWatch {
	t.Helper()
	w := &podWatch{ready: map[string]time.Time{}, last: map[string]*corev1.Pod{}}
	wctx, cancel := context.WithCancel(ctx)
	cmd := kc.KubectlCommand(wctx, "get", "pods", "-n", ns, "-w", "-o", "json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", kube.CommandLine(cmd), err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	go func() {
		dec := json.NewDecoder(out)
		for {
			var p corev1.Pod
			if err := dec.Decode(&p); err != nil {
				return
			}
			now := time.Now()
			w.mu.Lock()
			w.last[p.Name] = &p
			if _, ok := w.ready[p.Name]; !ok && kube.PodReady(&p) {
				w.ready[p.Name] = now
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *podWatch) readyAt(name string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.ready[name]
	return t, ok
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Figure: pod start to Ready, moat beside runc on the same node, one pod
// at a time, 10 each (MOAT_K8S_BENCH_STARTS). Two clocks: this process's
// (from `kubectl apply` to the watch's first Ready event) and the
// kubelet's (status.startTime to the Ready condition's transition, whole
// seconds in the API).
func TestBenchPodStart(t *testing.T) {
	requireBench(t)
	requireMoat(t)
	n := envInt(t, "MOAT_K8S_BENCH_STARTS", 10)
	ctx := testCtx(t, 20*time.Minute)
	ns := namespace(t, ctx)
	w := watchPods(t, ctx, ns)
	results := map[string][]time.Duration{}
	kubelet := map[string][]time.Duration{}
	// Interleaved, so load from elsewhere falls on both alike.
	for i := 0; i < n; i++ {
		for _, rc := range []string{"moat", ""} {
			name := fmt.Sprintf("start-%s-%d", runtimeName(rc), i)
			manifest := podSpec{Name: name, Namespace: ns, RuntimeClass: rc,
				Containers: []containerSpec{{Name: "main", Script: "exec sleep 100000"}}}.YAML()
			t0 := time.Now()
			if err := kc.Apply(ctx, manifest); err != nil {
				t.Fatal(err)
			}
			var ready time.Time
			if err := kube.Poll(ctx, "pod "+name+" Ready", 20*time.Millisecond, func() (bool, error) {
				var ok bool
				ready, ok = w.readyAt(name)
				return ok, nil
			}); err != nil {
				t.Fatalf("%v\n%s", err, kc.Describe(ctx, "pod", ns, name))
			}
			results[runtimeName(rc)] = append(results[runtimeName(rc)], ready.Sub(t0))
			p, err := kc.Pod(ctx, ns, name)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && p.Status.StartTime != nil {
					kubelet[runtimeName(rc)] = append(kubelet[runtimeName(rc)], c.LastTransitionTime.Sub(p.Status.StartTime.Time))
				}
			}
			if _, err := kc.Kubectl(ctx, "delete", "pod", name, "-n", ns, "--grace-period=0", "--wait=true"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, r := range []string{"moat", "runc"} {
		t.Logf("FIGURE pod start to Ready, %s: median %v of %d (apply → Ready seen by a watch), all %v; kubelet's startTime → Ready median %v (1 s resolution)",
			r, median(results[r]).Round(time.Millisecond), len(results[r]), roundAll(results[r]), median(kubelet[r]))
	}
}

func roundAll(d []time.Duration) []time.Duration {
	out := make([]time.Duration, len(d))
	for i, x := range d {
		out[i] = x.Round(time.Millisecond)
	}
	return out
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// memAvailable is MemAvailable of /proc/meminfo, bytes.
func memAvailable() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/meminfo MemAvailable %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/meminfo: no MemAvailable")
}

// shimTreeMemory sums RSS and PSS (bytes) of every process whose
// executable's name is shim and of all their descendants: for moat the
// shims and the sentries they start, for runc the shims and the pods'
// processes. It returns the number of shims too.
func shimTreeMemory(shim string) (rss, pss int64, shims int, err error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, 0, err
	}
	parent := map[int]int{}
	isShim := map[int]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parent[pid] = ppid
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == shim {
			isShim[pid] = true
		}
	}
	under := func(pid int) bool {
		for p, hops := pid, 0; p > 1 && hops < 64; p, hops = parent[p], hops+1 {
			if isShim[p] {
				return true
			}
		}
		return false
	}
	for pid := range parent {
		if !under(pid) {
			continue
		}
		if isShim[pid] && !isShim[parent[pid]] {
			shims++
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue // gone
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "Rss:":
				rss += kb << 10
			case "Pss:":
				pss += kb << 10
			}
		}
	}
	return rss, pss, shims, nil
}

// Figure: the node's memory with N idle pods (MOAT_K8S_BENCH_PODS, 50)
// under moat, then under runc: the drop of MemAvailable and the RSS/PSS
// of the shims and everything they started. The chart's CPU overhead
// (50m a pod) would not let 50 moat pods onto a 2-CPU node, so it is
// lowered for the measurement and put back after.
func TestBenchIdlePodMemory(t *testing.T) {
	requireBench(t)
	requireMoat(t)
	n := envInt(t, "MOAT_K8S_BENCH_PODS", 50)
	ctx := testCtx(t, 30*time.Minute)
	ns := namespace(t, ctx)
	if err := setHelmValue(ctx, "runtimeClass.overhead.cpu", "10m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := setHelmValue(ctx, "runtimeClass.overhead.cpu", "50m"); err != nil {
			t.Errorf("restore the RuntimeClass's CPU overhead: %v", err)
		}
	})
	for _, rc := range []string{"moat", ""} {
		r := runtimeName(rc)
		shim := map[string]string{"moat": "containerd-shim-moat-v2", "runc": "containerd-shim-runc-v2"}[r]
		time.Sleep(5 * time.Second)
		before, err := memAvailable()
		if err != nil {
			t.Fatal(err)
		}
		rss0, pss0, _, err := shimTreeMemory(shim)
		if err != nil {
			t.Fatal(err)
		}
		cgu0, cga0, err := podsCgroupMemory()
		if err != nil {
			t.Fatal(err)
		}
		name := "idle-" + r
		manifest := idleDeployment(ns, name, rc, n)
		t0 := time.Now()
		if err := kc.Apply(ctx, manifest); err != nil {
			t.Fatal(err)
		}
		if _, err := waitDeploymentReady(ctx, ns, name, n); err != nil {
			t.Fatal(err)
		}
		allReady := time.Since(t0)
		// Let the pods settle (lazy allocations, the kubelet's first stats).
		time.Sleep(20 * time.Second)
		after, err := memAvailable()
		if err != nil {
			t.Fatal(err)
		}
		rss, pss, shims, err := shimTreeMemory(shim)
		if err != nil {
			t.Fatal(err)
		}
		cgu, cga, err := podsCgroupMemory()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("FIGURE %d idle %s pods: the pods' cgroups grew by %.1f MiB usage (%.2f a pod), %.1f MiB rss+shmem (%.2f a pod)",
			n, r, mib(cgu-cgu0), mib(cgu-cgu0)/float64(n), mib(cga-cga0), mib(cga-cga0)/float64(n))
		drop := before - after
		t.Logf("FIGURE %d idle %s pods: all Ready %v after apply; MemAvailable drop %.1f MiB (%.2f MiB a pod); %d shims, their trees RSS %.1f MiB (%.2f a pod), PSS %.1f MiB (%.2f a pod)",
			n, r, allReady.Round(100*time.Millisecond), mib(drop), mib(drop)/float64(n), shims,
			mib(rss-rss0), mib(rss-rss0)/float64(n), mib(pss-pss0), mib(pss-pss0)/float64(n))
		if _, err := kc.Kubectl(ctx, "delete", "deployment", name, "-n", ns, "--wait=true"); err != nil {
			t.Fatal(err)
		}
		if err := kube.Poll(ctx, "the "+name+" pods gone", time.Second, func() (bool, error) {
			pods, err := kc.Pods(ctx, ns, "app="+name)
			return err == nil && len(pods) == 0, err
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// podsCgroupMemory is the memory the kubelet's pods are charged in their
// cgroups (cgroup v1: <cgroupRoot>/kubepods): usage (with page cache) and
// rss+shmem (anonymous memory, and a sentry's guest memory, which is
// shared memory). The kubelet's cgroupRoot comes from its config.
func podsCgroupMemory() (usage, anon int64, err error) {
	cfg := filepath.Join(st.Dir, "kubelet.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		return 0, 0, err
	}
	root := ""
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "cgroupRoot: "); ok {
			root = strings.Trim(v, `"`)
		}
	}
	if root == "" || strings.Contains(root, "..") {
		return 0, 0, fmt.Errorf("%s: no usable cgroupRoot (%q)", cfg, root)
	}
	dir := filepath.Join("/sys/fs/cgroup/memory", root, "kubepods")
	u, err := os.ReadFile(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		return 0, 0, fmt.Errorf("pods' memory cgroup (cgroup v1): %w", err)
	}
	if usage, err = strconv.ParseInt(strings.TrimSpace(string(u)), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("%s/memory.usage_in_bytes %q: %w", dir, u, err)
	}
	stat, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(stat), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && (f[0] == "total_rss" || f[0] == "total_shmem") {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			anon += v
		}
	}
	return usage, anon, nil
}

// idleDeployment is n busybox pods sleeping, no limits.
func idleDeployment(ns, name, runtimeClass string, n int) string {
	rc := ""
	if runtimeClass != "" {
		rc = "      runtimeClassName: " + runtimeClass + "\n"
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  replicas: %[4]d
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
    spec:
%[3]s      terminationGracePeriodSeconds: 1
      enableServiceLinks: false
      automountServiceAccountToken: false
      containers:
      - name: main
        image: %[5]s
        imagePullPolicy: Never
        command: ["sleep", "100000"]
`, ns, name, rc, n, busybox)
}

// setHelmValue is `helm upgrade --reuse-values --set key=value`.
func setHelmValue(ctx context.Context, key, value string) error {
	installMu.Lock()
	defer installMu.Unlock()
	_, err := kc.Helm(ctx, "upgrade", release, repoRoot+"/charts/moat", "-n", moatNS, "--reuse-values",
		"--set-string", key+"="+value, "--wait", "--timeout", "5m")
	return err
}
