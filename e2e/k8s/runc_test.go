package k8s

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"moat.dev/moat/e2e/kube"
)

// Scenario 7: the same pod spec with runtimeClassName removed runs under
// runc and gives the same logs and exit codes as under moat.
func TestRuncMatchesMoat(t *testing.T) {
	requireMoat(t)
	ctx := testCtx(t, 5*time.Minute)
	ns := namespace(t, ctx)
	containers := []containerSpec{
		{Name: "ok", Script: "echo one; echo two; printf 'no newline'"},
		{Name: "fails", Script: "echo to stdout; echo to stderr >&2; exit 3"},
		// Not pid 1 itself: init of a pid namespace ignores SIGKILL sent
		// from inside it. The child's death becomes the exit status.
		{Name: "signalled", Script: "echo about to be killed; sh -c 'kill -9 $$'; exit $?"},
		{Name: "env", Script: "echo $HOSTNAME; cat /etc/hostname; id -u; pwd; ls /tmp | wc -l"},
	}
	type result struct {
		logs  map[string]string
		codes map[string]int32
		phase corev1.PodPhase
	}
	results := map[string]result{}
	for _, rc := range []string{"moat", ""} {
		name := "same-" + map[string]string{"moat": "moat", "": "runc"}[rc]
		apply(t, ctx, podSpec{Name: name, Namespace: ns, RuntimeClass: rc, Containers: containers}.YAML())
		p, err := kc.WaitPod(ctx, ns, name, "finished", func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, kc.Describe(ctx, "pod", ns, name))
		}
		r := result{logs: map[string]string{}, codes: map[string]int32{}, phase: p.Status.Phase}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated == nil {
				t.Fatalf("%s: container %s not terminated: %s", name, cs.Name, kube.PodSummary(p))
			}
			r.codes[cs.Name] = cs.State.Terminated.ExitCode
			logs, err := kc.Logs(ctx, ns, name, cs.Name)
			if err != nil {
				t.Fatal(err)
			}
			// The hostname is the pod's name: the same spec, not the same name.
			r.logs[cs.Name] = strings.ReplaceAll(logs, name, "POD")
		}
		t.Logf("%s (%s): %s", name, runtimeName(rc), kube.PodSummary(p))
		results[runtimeName(rc)] = r
	}
	m, r := results["moat"], results["runc"]
	if m.phase != r.phase {
		t.Errorf("phase: moat %s, runc %s", m.phase, r.phase)
	}
	want := map[string]int32{"ok": 0, "fails": 3, "signalled": 137, "env": 0}
	for _, c := range containers {
		if m.codes[c.Name] != r.codes[c.Name] {
			t.Errorf("container %s: exit code moat %d, runc %d", c.Name, m.codes[c.Name], r.codes[c.Name])
		}
		if r.codes[c.Name] != want[c.Name] {
			t.Errorf("container %s: runc exit code %d, want %d", c.Name, r.codes[c.Name], want[c.Name])
		}
		// stdout and stderr are two pipes: their lines interleave in the
		// log in whatever order the runtime read them, so compare lines.
		if sortedLines(m.logs[c.Name]) != sortedLines(r.logs[c.Name]) {
			t.Errorf("container %s: kubectl logs differ:\nmoat: %q\nrunc: %q", c.Name, m.logs[c.Name], r.logs[c.Name])
		}
	}
	if r.logs["ok"] != "one\ntwo\nno newline" {
		t.Errorf("runc logs of ok: %q", r.logs["ok"])
	}
	if sortedLines(r.logs["fails"]) != "to stderr\nto stdout" {
		t.Errorf("runc logs of fails: %q", r.logs["fails"])
	}
}

func runtimeName(rc string) string {
	if rc == "" {
		return "runc"
	}
	return rc
}

// sortedLines is s's lines, sorted.
func sortedLines(s string) string {
	l := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	slices.Sort(l)
	return strings.Join(l, "\n")
}
