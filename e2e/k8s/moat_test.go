package k8s

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"moat.dev/moat/cri"
	"moat.dev/moat/e2e/harness"
	"moat.dev/moat/e2e/kube"
)

// The release as the tests install it.
const (
	release     = "moat"
	moatNS      = "moat-system"
	agentLabels = "app.kubernetes.io/name=moat,app.kubernetes.io/component=node-agent"
	// SandboxResource is what the agent advertises and each moat pod takes.
	sandboxResource = corev1.ResourceName("moat.dev/sandbox")
	kvmLabel        = "moat.dev/kvm"
)

// Images imported into the node (never pulled: no registry).
const (
	busybox    = harness.BusyboxImage
	httpserver = harness.HTTPServerImage
)

var installMu sync.Mutex

// installed reports whether the release exists.
func installed(ctx context.Context) bool {
	out, err := kc.Helm(ctx, "list", "-n", moatNS, "-q", "--filter", "^"+release+"$")
	return err == nil && strings.TrimSpace(out) == release
}

// installMoat runs `helm install moat charts/moat` as a user would, with
// this cluster's values file, and waits for the agent's pod to be Ready
// (helm's --wait passes a DaemonSet before its controller has made a pod).
func installMoat(ctx context.Context) (string, error) {
	out, err := kc.Helm(ctx, "install", release, filepath.Join(repoRoot, "charts", "moat"),
		"--namespace", moatNS, "--create-namespace", "-f", st.MoatValues, "--wait", "--timeout", "5m")
	if err != nil {
		return out, err
	}
	return out, kube.Poll(ctx, "a Ready moat-node pod", 250*time.Millisecond, func() (bool, error) {
		pods, err := kc.Pods(ctx, moatNS, agentLabels)
		return err == nil && len(pods) == 1 && kube.PodReady(&pods[0]), err
	})
}

// uninstallMoat runs `helm uninstall moat` and waits for the agents to be
// gone.
func uninstallMoat(ctx context.Context) error {
	if _, err := kc.Helm(ctx, "uninstall", release, "--namespace", moatNS, "--wait", "--timeout", "5m"); err != nil {
		return err
	}
	return kube.Poll(ctx, "moat-node pods gone", 250*time.Millisecond, func() (bool, error) {
		pods, err := kc.Pods(ctx, moatNS, agentLabels)
		return err == nil && len(pods) == 0, err
	})
}

// requireMoat makes sure moat is installed and the node is ready for moat
// pods (labelled, capacity advertised): scenarios that run moat pods call
// it first, in whatever order they run.
func requireMoat(t testing.TB) {
	t.Helper()
	installMu.Lock()
	defer installMu.Unlock()
	ctx := testCtx(t, 6*time.Minute)
	if !installed(ctx) {
		if out, err := installMoat(ctx); err != nil {
			t.Fatalf("helm install: %v\n%s\nagent log:\n%s", err, out, agentLog(ctx))
		}
	}
	if _, err := waitNodeReadyForMoat(ctx); err != nil {
		t.Fatalf("%v\nagent log:\n%s", err, agentLog(ctx))
	}
}

// waitNodeReadyForMoat waits for the agent's label and capacity.
func waitNodeReadyForMoat(ctx context.Context) (*corev1.Node, error) {
	return kc.WaitNode(ctx, st.NodeName, "labelled moat.dev/kvm=true with moat.dev/sandbox capacity", func(n *corev1.Node) bool {
		q, ok := n.Status.Allocatable[sandboxResource]
		return n.Labels[kvmLabel] == "true" && ok && q.Value() > 0
	})
}

// agentLog is the log of the moat-node pods, for failure messages.
func agentLog(ctx context.Context) string {
	out, err := kc.Kubectl(ctx, "logs", "-n", moatNS, "-l", agentLabels, "--tail=40", "--all-containers")
	if err != nil {
		return fmt.Sprintf("(no agent log: %v)", err)
	}
	return out
}

// handlerRegistered asks the node's containerd over CRI whether it lists
// the moat handler.
func handlerRegistered(ctx context.Context) (bool, error) {
	c, err := cri.Dial(ctx, st.Socket, 10*time.Second)
	if err != nil {
		return false, err
	}
	defer c.Close()
	return c.HasHandler(ctx, "moat")
}

// podSpec is a pod manifest: one busybox container running script, with
// the RuntimeClass runtimeClass ("" for the default, runc).
type podSpec struct {
	Name, Namespace, RuntimeClass string
	Containers                    []containerSpec
	RestartPolicy                 string // default Never
}

// containerSpec is one container: Script runs under sh -c as written
// (no Kubernetes $(VAR) expansion); Image defaults to busybox.
type containerSpec struct {
	Name, Image, Script string
}

func (p podSpec) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n", p.Name, p.Namespace)
	if p.RuntimeClass != "" {
		fmt.Fprintf(&b, "  runtimeClassName: %s\n", p.RuntimeClass)
	}
	rp := p.RestartPolicy
	if rp == "" {
		rp = "Never"
	}
	fmt.Fprintf(&b, "  restartPolicy: %s\n  terminationGracePeriodSeconds: 5\n  enableServiceLinks: false\n  containers:\n", rp)
	for _, c := range p.Containers {
		img := c.Image
		if img == "" {
			img = busybox
		}
		// Kubernetes expands $(VAR) in commands and turns $$ into $:
		// doubling every $ passes the script to sh as written.
		script := strings.ReplaceAll(c.Script, "$", "$$")
		fmt.Fprintf(&b, "  - name: %s\n    image: %s\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", %q]\n", c.Name, img, script)
	}
	return b.String()
}

// crictl runs crictl against the node's containerd.
func crictl(ctx context.Context, args ...string) (string, error) {
	return kc.Run(ctx, nil, st.Crictl, append([]string{"--runtime-endpoint", "unix://" + st.Socket, "--image-endpoint", "unix://" + st.Socket}, args...)...)
}
