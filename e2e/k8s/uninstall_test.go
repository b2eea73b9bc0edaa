package k8s

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"moat.dev/moat/e2e/kube"
)

// Scenario 6: `helm uninstall moat` → the node's moat labels and
// moat.dev/sandbox capacity are gone, containerd no longer lists the
// handler, the drop-in and the installed binaries are removed, and
// containerd's config is byte for byte what it was before moat came.
// (It installs moat first if an earlier scenario did not.)
func TestHelmUninstall(t *testing.T) {
	requireMoat(t)
	ctx := testCtx(t, 6*time.Minute)
	installMu.Lock()
	defer installMu.Unlock()
	pidBefore := containerdPid(t)
	t0 := time.Now()
	if err := uninstallMoat(ctx); err != nil {
		t.Fatalf("helm uninstall moat: %v\nagent log:\n%s", err, agentLog(ctx))
	}
	t.Logf("helm uninstall took %v", time.Since(t0).Round(time.Millisecond))
	if installed(ctx) {
		t.Error("helm still lists the release")
	}

	n, err := kc.Node(ctx, st.NodeName)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range n.Labels {
		if len(k) > len("moat.dev/") && k[:len("moat.dev/")] == "moat.dev/" {
			t.Errorf("node label %s=%s left", k, v)
		}
	}
	if q, ok := n.Status.Capacity[sandboxResource]; ok {
		t.Errorf("node capacity %s=%s left", sandboxResource, q.String())
	}
	if q, ok := n.Status.Allocatable[sandboxResource]; ok {
		t.Errorf("node allocatable %s=%s left", sandboxResource, q.String())
	}
	if !kube.NodeReady(n) {
		t.Error("node not Ready after uninstall")
	}

	if pid := containerdPid(t); pid == pidBefore {
		t.Errorf("containerd still runs as pid %s: the agent did not restart it to drop the handler", pid)
	}
	if ok, err := handlerRegistered(ctx); err != nil || ok {
		t.Errorf("containerd lists handler moat after uninstall: %v (%v)", ok, err)
	}
	if _, err := os.Stat(filepath.Join(st.ContainerdConfDir, "moat.toml")); !os.IsNotExist(err) {
		t.Errorf("drop-in still there: %v", err)
	}
	cfg, err := os.ReadFile(st.ContainerdConfig)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cfg, ctdConfigBefore) {
		t.Errorf("containerd's config changed:\nbefore:\n%s\nafter:\n%s", ctdConfigBefore, cfg)
	}
	if names, err := listDir(st.ContainerdConfDir); err != nil || !slices.Equal(names, ctdConfDirBefore) {
		t.Errorf("containerd's drop-in folder holds %v (%v), before moat %v", names, err, ctdConfDirBefore)
	}
	for _, name := range []string{"containerd-shim-moat-v2", "moat"} {
		if _, err := os.Stat(filepath.Join(st.MoatPrefix, name)); !os.IsNotExist(err) {
			t.Errorf("installed %s still there: %v", name, err)
		}
	}
	if out := kubectl(t, ctx, "get", "runtimeclass", "--ignore-not-found", "-o", "name"); out != "" {
		t.Errorf("runtime classes left: %s", out)
	}

	// The node still runs pods, with runc.
	ns := namespace(t, ctx)
	apply(t, ctx, podSpec{Name: "after", Namespace: ns, Containers: []containerSpec{{Name: "c", Script: "echo still here"}}}.YAML())
	if _, err := kc.WaitPodPhase(ctx, ns, "after", corev1.PodSucceeded); err != nil {
		t.Fatal(err)
	}
	if logs, err := kc.Logs(ctx, ns, "after", ""); err != nil || logs != "still here\n" {
		t.Errorf("kubectl logs after = %q (%v)", logs, err)
	}
}
