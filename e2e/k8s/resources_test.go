package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"moat.dev/moat/e2e/kube"
)

// deployment is a Deployment of busybox pods running `sleep` with the CPU
// limit cpu (a small request, so limits above the node's CPUs schedule).
func deployment(ns, name, runtimeClass, cpu string, replicas int) string {
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
  replicas: %[5]d
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
    spec:
%[3]s      terminationGracePeriodSeconds: 1
      enableServiceLinks: false
      containers:
      - name: main
        image: %[6]s
        imagePullPolicy: Never
        command: ["sleep", "100000"]
        resources:
          requests: {cpu: 10m, memory: 16Mi}
          limits: {cpu: "%[4]s", memory: 64Mi}
`, ns, name, rc, cpu, replicas, busybox)
}

// vcpusInPod is what the pod's processes see: nproc (sched_getaffinity)
// and the processor entries of /proc/cpuinfo; an error when they differ.
func vcpusInPod(ctx context.Context, ns, pod string) (int, error) {
	out, err := kc.Exec(ctx, ns, pod, "sh", "-c", "nproc; grep -c ^processor /proc/cpuinfo")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(out)
	if len(f) != 2 || f[0] != f[1] {
		return 0, fmt.Errorf("pod %s/%s: nproc and /proc/cpuinfo disagree: %q", ns, pod, out)
	}
	return strconv.Atoi(f[0])
}

var allocatedSandboxRE = regexp.MustCompile(`(?m)^\s*moat\.dev/sandbox\s+(\d+)\s+(\d+)\s*$`)

// allocatedSandboxes is the moat.dev/sandbox line of `kubectl describe
// node`'s "Allocated resources": the slots the scheduler counts as taken.
func allocatedSandboxes(ctx context.Context) (int, error) {
	out, err := kc.Kubectl(ctx, "describe", "node", st.NodeName)
	if err != nil {
		return 0, err
	}
	_, alloc, ok := strings.Cut(out, "Allocated resources:")
	if !ok {
		return 0, fmt.Errorf("kubectl describe node %s: no Allocated resources section", st.NodeName)
	}
	m := allocatedSandboxRE.FindStringSubmatch(alloc)
	if m == nil {
		// No pod takes a slot: describe lists the resource with 0.
		return 0, fmt.Errorf("kubectl describe node %s: no moat.dev/sandbox under Allocated resources:\n%s", st.NodeName, alloc)
	}
	return strconv.Atoi(m[1])
}

// moatPodsOnNode counts the node's moat pods that are not finished.
func moatPodsOnNode(ctx context.Context) (int, error) {
	var l corev1.PodList
	if err := kc.GetJSON(ctx, &l, "pods", "-A", "--field-selector", "spec.nodeName="+st.NodeName); err != nil {
		return 0, err
	}
	n := 0
	for _, p := range l.Items {
		if p.Spec.RuntimeClassName != nil && *p.Spec.RuntimeClassName == "moat" &&
			p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			n++
		}
	}
	return n, nil
}

// waitDeploymentReady waits for every replica of a Deployment to be ready
// and returns its pods.
func waitDeploymentReady(ctx context.Context, ns, name string, replicas int) ([]corev1.Pod, error) {
	var pods []corev1.Pod
	err := kube.Poll(ctx, fmt.Sprintf("deployment %s/%s: %d pods Ready", ns, name, replicas), 500*time.Millisecond, func() (bool, error) {
		var err error
		pods, err = kc.Pods(ctx, ns, "app="+name)
		if err != nil {
			return false, err
		}
		ready := 0
		for i := range pods {
			if kube.PodReady(&pods[i]) && pods[i].DeletionTimestamp == nil {
				ready++
			}
		}
		return ready == replicas && len(pods) == replicas, nil
	})
	if err != nil {
		var sum []string
		for i := range pods {
			sum = append(sum, pods[i].Name+": "+kube.PodSummary(&pods[i]))
		}
		err = fmt.Errorf("%w; pods: %s", err, strings.Join(sum, "; "))
	}
	return pods, err
}

// Scenario 3: Deployments of moat pods with CPU limits 500m and 2: each
// sandbox has ceil(limit) vCPUs; each pod takes one moat.dev/sandbox slot
// (the RuntimeClass's overhead); a pod beyond the node's capacity stays
// Pending with the scheduler's reason, and runs once capacity is raised.
func TestDeploymentVCPUsAndCapacity(t *testing.T) {
	requireMoat(t)
	ctx := testCtx(t, 10*time.Minute)
	ns := namespace(t, ctx)

	base, err := allocatedSandboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, err := moatPodsOnNode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if base != before {
		t.Errorf("before: %d moat.dev/sandbox allocated, %d moat pods on the node", base, before)
	}

	apply(t, ctx, deployment(ns, "half", "moat", "500m", 3))
	apply(t, ctx, deployment(ns, "two", "moat", "2", 2))
	want := map[string]int{"half": 1, "two": 2}
	for name, replicas := range map[string]int{"half": 3, "two": 2} {
		pods, err := waitDeploymentReady(ctx, ns, name, replicas)
		if err != nil {
			t.Fatalf("%v\nagent log:\n%s", err, agentLog(ctx))
		}
		for _, p := range pods {
			if q := p.Spec.Overhead[sandboxResource]; q.Value() != 1 {
				t.Errorf("pod %s: overhead %v, want %s: 1 from the RuntimeClass", p.Name, p.Spec.Overhead, sandboxResource)
			}
			n, err := vcpusInPod(ctx, ns, p.Name)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("pod %s (CPU limit %s): %d vCPUs", p.Name, p.Spec.Containers[0].Resources.Limits.Cpu(), n)
			if n != want[name] {
				t.Errorf("pod %s with CPU limit %s sees %d CPUs, want %d", p.Name, p.Spec.Containers[0].Resources.Limits.Cpu(), n, want[name])
			}
		}
	}
	alloc, err := allocatedSandboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("moat.dev/sandbox allocated: %d before, %d with 5 more moat pods", base, alloc)
	if alloc != base+5 {
		t.Errorf("moat.dev/sandbox allocated %d with 5 more moat pods, want %d", alloc, base+5)
	}

	// Capacity down to exactly what runs: the next pod cannot fit.
	vals, err := releaseValues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	orig := vals.Capacity.MaxSandboxes
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := setMaxSandboxes(ctx, orig); err != nil {
			t.Errorf("restore capacity.maxSandboxes=%d: %v", orig, err)
		}
	})
	if err := setMaxSandboxes(ctx, alloc); err != nil {
		t.Fatal(err)
	}
	kubectl(t, ctx, "scale", "deployment", "half", "-n", ns, "--replicas=4")
	var pending corev1.Pod
	err = kube.Poll(ctx, "a fourth half pod Pending as Unschedulable", 500*time.Millisecond, func() (bool, error) {
		pods, err := kc.Pods(ctx, ns, "app=half")
		if err != nil {
			return false, err
		}
		for _, p := range pods {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
					pending = p
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var msg string
	for _, c := range pending.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			msg = c.Message
		}
	}
	t.Logf("pod %s: %s; PodScheduled: %s", pending.Name, pending.Status.Phase, msg)
	if pending.Status.Phase != corev1.PodPending || !strings.Contains(msg, "Insufficient moat.dev/sandbox") {
		t.Errorf("pod beyond capacity: phase %s, scheduler's message %q, want Pending with Insufficient moat.dev/sandbox", pending.Status.Phase, msg)
	}
	// The same reason as a user reads it in the events.
	ev := kubectl(t, ctx, "get", "events", "-n", ns, "--field-selector", "involvedObject.name="+pending.Name+",reason=FailedScheduling", "-o", "jsonpath={.items[*].message}")
	if !strings.Contains(ev, "Insufficient moat.dev/sandbox") {
		t.Errorf("FailedScheduling events of %s: %q", pending.Name, ev)
	}

	// Capacity back: the pending pod runs.
	if err := setMaxSandboxes(ctx, orig); err != nil {
		t.Fatal(err)
	}
	if _, err := waitDeploymentReady(ctx, ns, "half", 4); err != nil {
		t.Fatal(err)
	}
}

// chartValues is the part of the release's values the tests change.
type chartValues struct {
	Capacity struct {
		MaxSandboxes int `json:"maxSandboxes"`
	} `json:"capacity"`
}

// releaseValues is `helm get values moat --all`.
func releaseValues(ctx context.Context) (chartValues, error) {
	var v chartValues
	out, err := kc.Helm(ctx, "get", "values", release, "-n", moatNS, "--all", "-o", "json")
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return v, fmt.Errorf("decode helm get values: %w", err)
	}
	return v, nil
}

// setMaxSandboxes is `helm upgrade --reuse-values --set
// capacity.maxSandboxes=n`, then waits for the node to advertise n.
func setMaxSandboxes(ctx context.Context, n int) error {
	installMu.Lock()
	defer installMu.Unlock()
	if _, err := kc.Helm(ctx, "upgrade", release, repoRoot+"/charts/moat", "-n", moatNS, "--reuse-values",
		"--set", fmt.Sprintf("capacity.maxSandboxes=%d", n), "--wait", "--timeout", "5m"); err != nil {
		return err
	}
	_, err := kc.WaitNode(ctx, st.NodeName, fmt.Sprintf("advertising %d %s", n, sandboxResource), func(node *corev1.Node) bool {
		q := node.Status.Allocatable[sandboxResource]
		return q.Value() == int64(n)
	})
	if err != nil {
		return fmt.Errorf("%w\nagent log:\n%s", err, agentLog(ctx))
	}
	return nil
}

// Scenario 4: in-place resize of a moat pod's CPU limit (`kubectl patch
// --subresource resize`): the sandbox's vCPUs follow.
func TestResizeCPU(t *testing.T) {
	requireMoat(t)
	ctx := testCtx(t, 5*time.Minute)
	ns := namespace(t, ctx)
	apply(t, ctx, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: resized
  namespace: %s
spec:
  runtimeClassName: moat
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    imagePullPolicy: Never
    command: ["sleep", "100000"]
    resources:
      requests: {cpu: 10m, memory: 16Mi}
      limits: {cpu: 500m, memory: 64Mi}
`, ns, busybox))
	if _, err := kc.WaitPodReady(ctx, ns, "resized"); err != nil {
		t.Fatal(err)
	}
	n, err := vcpusInPod(ctx, ns, "resized")
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("pod with CPU limit 500m sees %d CPUs, want 1", n)
	}
	for _, step := range []struct {
		limit string
		want  int
	}{{"2", 2}, {"1", 1}} {
		patch := fmt.Sprintf(`{"spec":{"containers":[{"name":"main","resources":{"limits":{"cpu":"%s"}}}]}}`, step.limit)
		kubectl(t, ctx, "patch", "pod", "resized", "-n", ns, "--subresource", "resize", "--patch", patch)
		p, err := kc.WaitPod(ctx, ns, "resized", "resized to CPU limit "+step.limit, func(p *corev1.Pod) bool {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodResizePending || c.Type == corev1.PodResizeInProgress {
					return false
				}
			}
			cs := p.Status.ContainerStatuses
			if len(cs) != 1 || cs[0].Resources == nil {
				return false
			}
			return cs[0].Resources.Limits.Cpu().String() == step.limit
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, kc.Describe(ctx, "pod", ns, "resized"))
		}
		if len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount != 0 {
			t.Errorf("the resize restarted the container: %s", kube.PodSummary(p))
		}
		got := -1
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = kube.Poll(wctx, fmt.Sprintf("%d vCPUs in the pod", step.want), 250*time.Millisecond, func() (bool, error) {
			n, err := vcpusInPod(wctx, ns, "resized")
			if err == nil {
				got = n
			}
			return n == step.want, err
		})
		cancel()
		t.Logf("resize to CPU limit %s: %d vCPUs in the pod", step.limit, got)
		if err != nil {
			t.Fatalf("after resize to CPU limit %s: the pod sees %d CPUs, want %d: %v", step.limit, got, step.want, err)
		}
	}
}
