package k8s

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"moat.dev/moat/e2e/kube"
)

// The figures of docs/benchmarks.md ("moat on a Kubernetes node"):
//
//	go test -run '^$' -bench . -benchtime 1x -v ./e2e/k8s/
//
// Each benchmark does its whole measurement once, whatever b.N.

// BenchmarkPodStart: pod start to Running in the kubelet's view — from
// the kubelet's "SyncLoop ADD" of the pod to its "Observed pod startup
// duration" line (both in its log, microsecond timestamps) — for moat and
// for runc on the same node, ten pods each, one after another; the median.
func BenchmarkPodStart(b *testing.B) {
	requireMoat(b)
	ctx := testCtx(b, 15*time.Minute)
	ns := namespace(b, ctx)
	log := filepath.Join(st.Dir, "logs", "kubelet.log")
	const n = 10
	for _, rc := range []string{"moat", ""} {
		var starts, slos []time.Duration
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("start-%s-%d", runtimeName(rc), i)
			spec := podSpec{Name: name, Namespace: ns, RuntimeClass: rc, Containers: []containerSpec{{
				Name: "c", Script: "trap 'exit 0' TERM; while true; do sleep 1; done"}}}
			if err := kc.Apply(ctx, spec.YAML()); err != nil {
				b.Fatal(err)
			}
			if _, err := kc.WaitPodPhase(ctx, ns, name, corev1.PodRunning); err != nil {
				b.Fatal(err)
			}
			var start, slo time.Duration
			err := kube.Poll(ctx, "the kubelet's startup line for "+name, 100*time.Millisecond, func() (bool, error) {
				var err error
				start, slo, err = kubeletStartup(log, ns+"/"+name)
				return err == nil, err
			})
			if err != nil {
				b.Fatal(err)
			}
			starts, slos = append(starts, start), append(slos, slo)
			if _, err := kc.Kubectl(ctx, "delete", "pod", name, "-n", ns, "--wait=true"); err != nil {
				b.Fatal(err)
			}
		}
		rt := runtimeName(rc)
		b.ReportMetric(median(starts).Seconds(), rt+"-start-s")
		b.ReportMetric(median(slos).Seconds(), rt+"-slo-s")
		b.Logf("%s: pod start to Running (kubelet's view), median of %d: %v (min %v, max %v); kubelet's podStartSLOduration median %v",
			rt, n, median(starts), slices.Min(starts), slices.Max(starts), median(slos))
	}
}

// BenchmarkIdlePodsMemory: the node's memory with 50 idle pods (busybox
// sleep), moat then runc: the pods' cgroups' working set (kubepods), the
// resident memory of the pods' shims and every process under them, and
// the host's MemAvailable, each against the same node without the pods.
//
// 50 moat pods at the chart's default RuntimeClass CPU overhead (50m)
// would ask 2.5 CPUs of this 2-CPU node, so the overhead's CPU is lowered
// to 10m for the measurement and set back after.
func BenchmarkIdlePodsMemory(b *testing.B) {
	requireMoat(b)
	ctx := testCtx(b, 20*time.Minute)
	chart := filepath.Join(repoRoot, "charts", "moat")
	if _, err := kc.Helm(ctx, "upgrade", release, chart, "-n", moatNS, "-f", st.MoatValues, "--set", "runtimeClass.overhead.cpu=10m"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := kc.Helm(ctx, "upgrade", release, chart, "-n", moatNS, "-f", st.MoatValues); err != nil {
			b.Errorf("set the chart's values back: %v", err)
		}
	})
	ns := namespace(b, ctx)
	const n = 50
	for _, rc := range []string{"moat", ""} {
		rt := runtimeName(rc)
		before := measureMemory(b)
		name := "idle-" + rt
		var rcLine string
		if rc != "" {
			rcLine = "      runtimeClassName: " + rc + "\n"
		}
		deploy := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %s, namespace: %s}
spec:
  replicas: %d
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
%s      terminationGracePeriodSeconds: 1
      enableServiceLinks: false
      containers:
      - name: idle
        image: %s
        imagePullPolicy: Never
        command: ["sleep", "100000"]
`, name, ns, n, name, name, rcLine, busybox)
		t0 := time.Now()
		if err := kc.Apply(ctx, deploy); err != nil {
			b.Fatal(err)
		}
		err := kube.Poll(ctx, fmt.Sprintf("%d ready pods of %s", n, name), time.Second, func() (bool, error) {
			var d appsv1.Deployment
			err := kc.GetJSON(ctx, &d, "deployment", name, "-n", ns)
			return err == nil && d.Status.ReadyReplicas == n, err
		})
		if err != nil {
			b.Fatalf("%v\n%s", err, kc.Describe(ctx, "deployment", ns, name))
		}
		ready := time.Since(t0)
		time.Sleep(15 * time.Second) // let the pods settle
		after := measureMemory(b)
		if err := kc.Delete(ctx, deploy); err != nil {
			b.Fatal(err)
		}
		if err := kube.Poll(ctx, "pods of "+name+" gone", time.Second, func() (bool, error) {
			pods, err := kc.Pods(ctx, ns, "app="+name)
			return err == nil && len(pods) == 0, err
		}); err != nil {
			b.Fatal(err)
		}
		mib := func(v int64) float64 { return float64(v) / (1 << 20) }
		ws, rss, avail := after.workingSet-before.workingSet, after.rss-before.rss, before.available-after.available
		b.ReportMetric(mib(ws), rt+"-cgroup-MiB")
		b.ReportMetric(mib(rss), rt+"-rss-MiB")
		b.Logf("%s: %d idle pods Ready in %v; pods' cgroups +%.0f MiB (%.1f MiB/pod), shims and their processes RSS +%.0f MiB (%.1f MiB/pod), host MemAvailable -%.0f MiB",
			rt, n, ready.Round(time.Second), mib(ws), mib(ws)/n, mib(rss), mib(rss)/n, mib(avail))
	}
}

type memory struct{ workingSet, rss, available int64 }

// measureMemory reads the kubepods cgroup's working set (usage minus
// inactive file pages, as the kubelet counts it), the resident memory of
// the node containerd's shims and all their descendants, and the host's
// MemAvailable.
func measureMemory(b *testing.B) memory {
	b.Helper()
	var m memory
	cg := filepath.Join("/sys/fs/cgroup/memory", "moat-e2e-"+st.HarnessID, "kubepods")
	usage, err := readInt(filepath.Join(cg, "memory.usage_in_bytes"))
	if err != nil {
		b.Fatal(err)
	}
	stat, err := readKV(filepath.Join(cg, "memory.stat"), " ")
	if err != nil {
		b.Fatal(err)
	}
	m.workingSet = usage - stat["total_inactive_file"]
	mi, err := readKV("/proc/meminfo", ":")
	if err != nil {
		b.Fatal(err)
	}
	m.available = mi["MemAvailable"] * 1024
	// The shims of this node's containerd and everything under them.
	children := map[int][]int{}
	var shims []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st2, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(st2)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+2:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
		cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cl), "containerd-shim") && strings.Contains(string(cl), st.Socket) {
			shims = append(shims, pid)
		}
	}
	seen := map[int]bool{}
	var walk func(int)
	walk = func(pid int) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		if kv, err := readKV(fmt.Sprintf("/proc/%d/status", pid), ":"); err == nil {
			m.rss += kv["VmRSS"] * 1024
		}
		for _, c := range children[pid] {
			walk(c)
		}
	}
	for _, p := range shims {
		walk(p)
	}
	return m
}

func readInt(p string) (int64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// readKV reads "key<sep> value [unit]" lines into numbers.
func readKV(p, sep string) (map[string]int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if !ok {
			continue
		}
		if fs := strings.Fields(v); len(fs) > 0 {
			if n, err := strconv.ParseInt(fs[0], 10, 64); err == nil {
				out[strings.TrimSpace(k)] = n
			}
		}
	}
	return out, sc.Err()
}

var (
	klogTime = regexp.MustCompile(`^[IWE](\d{4} \d{2}:\d{2}:\d{2}\.\d{6})`)
	sloRE    = regexp.MustCompile(`podStartSLOduration=([0-9.]+)`)
)

// kubeletStartup reads the kubelet's log for the pod ns/name: the time
// from its "SyncLoop ADD" to its "Observed pod startup duration" line, and
// the podStartSLOduration that line reports.
func kubeletStartup(log, pod string) (start, slo time.Duration, err error) {
	f, err := os.Open(log)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var add, seen time.Time
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case add.IsZero() && strings.Contains(l, `"SyncLoop ADD"`) && strings.Contains(l, `"`+pod+`"`):
			add = klogStamp(l)
		case !add.IsZero() && strings.Contains(l, `"Observed pod startup duration"`) && strings.Contains(l, `pod="`+pod+`"`):
			seen = klogStamp(l)
			if m := sloRE.FindStringSubmatch(l); m != nil {
				v, _ := strconv.ParseFloat(m[1], 64)
				slo = time.Duration(v * float64(time.Second))
			}
		}
	}
	if add.IsZero() || seen.IsZero() {
		return 0, 0, fmt.Errorf("no SyncLoop ADD and startup lines for %s in %s yet", pod, log)
	}
	return seen.Sub(add), slo, sc.Err()
}

func klogStamp(l string) time.Time {
	m := klogTime.FindStringSubmatch(l)
	if m == nil {
		return time.Time{}
	}
	t, _ := time.Parse("0102 15:04:05.000000", m[1])
	return t
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
