package k8s

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"

	"moat.dev/moat/e2e/kube"
)

// Scenario 1: `helm install moat charts/moat` with the locally built
// moat-node image → the DaemonSet's pod is Ready, the shim is installed,
// containerd lists the moat handler, the node is labelled
// moat.dev/kvm=true and shows moat.dev/sandbox capacity, `kubectl get
// runtimeclass moat` answers; then a first pod with runtimeClassName: moat
// reaches Running and `kubectl logs` shows what it printed.
func TestHelmInstall(t *testing.T) {
	ctx := testCtx(t, 8*time.Minute)
	installMu.Lock()
	if installed(ctx) {
		if err := uninstallMoat(ctx); err != nil {
			installMu.Unlock()
			t.Fatalf("uninstall the release an earlier test left: %v", err)
		}
	}
	pidBefore := containerdPid(t)
	t0 := time.Now()
	out, err := installMoat(ctx)
	installMu.Unlock()
	if err != nil {
		t.Fatalf("helm install moat charts/moat: %v\n%s\nagent log:\n%s", err, out, agentLog(ctx))
	}
	t.Logf("helm install --wait took %v", time.Since(t0).Round(time.Millisecond))
	if !strings.Contains(out, "STATUS: deployed") {
		t.Errorf("helm install printed no deployed status:\n%s", out)
	}

	// The DaemonSet's pod is Ready on the node.
	pods, err := kc.Pods(ctx, moatNS, agentLabels)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 1 {
		t.Fatalf("want 1 moat-node pod, got %d", len(pods))
	}
	agent := pods[0]
	if !kube.PodReady(&agent) || agent.Spec.NodeName != st.NodeName {
		t.Fatalf("moat-node pod %s on node %q not Ready: %s", agent.Name, agent.Spec.NodeName, kube.PodSummary(&agent))
	}
	if got := agent.Spec.Containers[0].Image; got != kube.MoatNodeImage {
		t.Errorf("agent runs image %s, want the locally built %s", got, kube.MoatNodeImage)
	}

	// The node is labelled and shows capacity.
	node, err := waitNodeReadyForMoat(ctx)
	if err != nil {
		t.Fatalf("%v\nagent log:\n%s", err, agentLog(ctx))
	}
	capq := node.Status.Capacity[sandboxResource]
	allocq := node.Status.Allocatable[sandboxResource]
	t.Logf("node %s: %s=%s, %s capacity %s allocatable %s, runtime %s", node.Name, kvmLabel, node.Labels[kvmLabel],
		sandboxResource, capq.String(), allocq.String(), node.Labels["moat.dev/runtime"])
	if capq.Value() <= 0 {
		t.Errorf("capacity %s = %s", sandboxResource, capq.String())
	}
	// The same as a user sees it.
	if out := kubectl(t, ctx, "get", "nodes", "-l", "moat.dev/kvm=true", "-o", "name"); strings.TrimSpace(out) != "node/"+st.NodeName {
		t.Errorf("kubectl get nodes -l moat.dev/kvm=true: %q", out)
	}

	// The shim and the CLI are installed where containerd finds them,
	// byte for byte the image's.
	for _, name := range []string{"containerd-shim-moat-v2", "moat"} {
		got, err := os.ReadFile(filepath.Join(st.MoatPrefix, name))
		if err != nil {
			t.Errorf("installed %s: %v", name, err)
			continue
		}
		if want, err := os.ReadFile(filepath.Join(st.Root, "moat-image", name)); err == nil && !bytes.Equal(got, want) {
			t.Errorf("installed %s differs from the image's", name)
		}
		if fi, err := os.Stat(filepath.Join(st.MoatPrefix, name)); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("installed %s is not executable: %v", name, err)
		}
	}

	// The agent restarted containerd (strategy signal: SIGTERM to the pid
	// in the pid file; the node's supervisor started it again) ...
	if pid := containerdPid(t); pid == pidBefore {
		t.Errorf("containerd still runs as pid %s: the agent did not restart it", pid)
	}
	// ... and containerd lists the handler, through the drop-in the agent wrote.
	if ok, err := handlerRegistered(ctx); err != nil || !ok {
		t.Errorf("containerd lists handler moat: %v (%v)", ok, err)
	}
	dropIn, err := os.ReadFile(filepath.Join(st.ContainerdConfDir, "moat.toml"))
	if err != nil {
		t.Errorf("drop-in: %v", err)
	} else if !strings.Contains(string(dropIn), "runtimes.moat") {
		t.Errorf("drop-in does not define the moat runtime:\n%s", dropIn)
	}

	// kubectl get runtimeclass moat
	out = kubectl(t, ctx, "get", "runtimeclass", "moat")
	if !strings.Contains(out, "moat") {
		t.Errorf("kubectl get runtimeclass moat:\n%s", out)
	}
	var rc nodev1.RuntimeClass
	if err := kc.GetJSON(ctx, &rc, "runtimeclass", "moat"); err != nil {
		t.Fatal(err)
	}
	if rc.Handler != "moat" || rc.Scheduling == nil || rc.Scheduling.NodeSelector[kvmLabel] != "true" {
		b, _ := json.Marshal(rc)
		t.Errorf("RuntimeClass moat: %s", b)
	}

	// A first moat pod: Running, with its output in kubectl logs.
	ns := namespace(t, ctx)
	pod := podSpec{Name: "smoke", Namespace: ns, RuntimeClass: "moat", Containers: []containerSpec{{
		Name:   "smoke",
		Script: "echo hello from a moat sandbox; uname -s; trap 'exit 0' TERM; while true; do sleep 1; done",
	}}}
	t0 = time.Now()
	apply(t, ctx, pod.YAML())
	p, err := kc.WaitPodPhase(ctx, ns, "smoke", corev1.PodRunning)
	if err != nil {
		t.Fatalf("%v\n%s", err, kc.Describe(ctx, "pod", ns, "smoke"))
	}
	t.Logf("moat pod Running %v after apply", time.Since(t0).Round(time.Millisecond))
	if p.Spec.RuntimeClassName == nil || *p.Spec.RuntimeClassName != "moat" {
		t.Errorf("pod runtimeClassName %v", p.Spec.RuntimeClassName)
	}
	if p.Spec.Overhead == nil || p.Spec.Overhead.Name(sandboxResource, "").Value() != 1 {
		t.Errorf("pod overhead %v does not take a moat.dev/sandbox slot", p.Spec.Overhead)
	}
	var logs string
	err = kube.Poll(ctx, "kubectl logs smoke", 200*time.Millisecond, func() (bool, error) {
		var err error
		logs, err = kc.Logs(ctx, ns, "smoke", "")
		return strings.Count(logs, "\n") >= 2, err
	})
	if err != nil || logs != "hello from a moat sandbox\nLinux\n" {
		t.Errorf("kubectl logs smoke = %q (%v), want the two lines it printed", logs, err)
	}
	// The pod runs under the moat runtime: containerd's view of its sandbox.
	if h := sandboxHandler(t, ctx, ns, "smoke"); h != "moat" {
		t.Errorf("containerd runs pod smoke with handler %q, want moat", h)
	}
}

// sandboxHandler is the runtime handler containerd records for the pod.
func sandboxHandler(t *testing.T, ctx context.Context, ns, name string) string {
	t.Helper()
	out, err := crictl(ctx, "pods", "--namespace", ns, "--name", "^"+name+"$", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Items []struct {
			RuntimeHandler string `json:"runtimeHandler"`
			State          string `json:"state"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("decode crictl pods: %v\n%s", err, out)
	}
	for _, it := range l.Items {
		if it.State == "SANDBOX_READY" {
			return it.RuntimeHandler
		}
	}
	return ""
}

// containerdPid reads the node's containerd pid file.
func containerdPid(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(st.ContainerdPidFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
