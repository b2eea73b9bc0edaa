package k8s

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"moat.dev/moat/e2e/kube"
)

// Scenario 5: a pod that goes past its memory limit is OOM-killed and its
// status says so (state terminated, reason OOMKilled, exit 137), under
// moat as under runc.
func TestOOMKilled(t *testing.T) {
	requireMoat(t)
	ctx := testCtx(t, 5*time.Minute)
	ns := namespace(t, ctx)
	reasons := map[string]string{}
	for _, rc := range []string{"moat", ""} {
		name := "hog-" + runtimeName(rc)
		rcLine := ""
		if rc != "" {
			rcLine = "  runtimeClassName: " + rc + "\n"
		}
		// tail keeps everything since the last newline: /dev/zero has none.
		apply(t, ctx, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
spec:
%s  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: hog
    image: %s
    imagePullPolicy: Never
    command: ["sh", "-c", "echo eating; exec tail /dev/zero"]
    resources:
      limits: {memory: 48Mi}
`, name, ns, rcLine, busybox))
		p, err := kc.WaitPod(ctx, ns, name, "terminated", func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, kc.Describe(ctx, "pod", ns, name))
		}
		t.Logf("%s (%s): %s", name, runtimeName(rc), kube.PodSummary(p))
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].State.Terminated == nil {
			t.Fatalf("%s: %s, want container hog terminated", name, kube.PodSummary(p))
		}
		term := cs[0].State.Terminated
		reasons[runtimeName(rc)] = term.Reason
		if p.Status.Phase != corev1.PodFailed || term.Reason != "OOMKilled" || term.ExitCode != 137 {
			t.Errorf("%s under %s: phase %s, terminated reason %q exit %d; want Failed, OOMKilled, 137",
				name, runtimeName(rc), p.Status.Phase, term.Reason, term.ExitCode)
		}
		// As a user reads it.
		if out := kubectl(t, ctx, "get", "pod", name, "-n", ns, "-o", "jsonpath={.status.containerStatuses[0].state.terminated.reason}"); out != "OOMKilled" {
			t.Errorf("kubectl get pod %s -o jsonpath=...reason: %q", name, out)
		}
		if logs, err := kc.Logs(ctx, ns, name, ""); err != nil || logs != "eating\n" {
			t.Errorf("logs of %s: %q, %v; want \"eating\\n\"", name, logs, err)
		}
	}
	if reasons["moat"] != reasons["runc"] {
		t.Errorf("terminated reason: moat %q, runc %q", reasons["moat"], reasons["runc"])
	}
}
