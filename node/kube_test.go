package node

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"moat.dev/moat/kvm"
)

func testNode(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name, "team": "blue"}},
		Status: corev1.NodeStatus{
			Capacity: corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse("8Gi"),
				corev1.ResourcePods:   resource.MustParse("110"),
				corev1.ResourceCPU:    resource.MustParse("2"),
			},
			Allocatable: corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse("7Gi"),
				corev1.ResourcePods:   resource.MustParse("110"),
			},
		},
	}
}

func TestCapacity(t *testing.T) {
	q := resource.MustParse
	for _, tc := range []struct {
		name string
		l    CapacityLimits
		want int
		why  string
	}{
		{"no kvm", CapacityLimits{Max: 10, KVMAvailable: false}, 0, "KVM is not available"},
		{"max", CapacityLimits{Max: 10, KVMAvailable: true, SandboxMemory: q("64Mi"), NodeMemory: q("8Gi")}, 10, "configured maximum"},
		{"memory", CapacityLimits{Max: 500, KVMAvailable: true, SandboxMemory: q("64Mi"), SystemReserve: q("1Gi"), NodeMemory: q("2Gi")}, 16, "node memory"},
		{"pods", CapacityLimits{Max: 500, KVMAvailable: true, NodePodCapacity: 110}, 110, "node pod capacity"},
		{"reserve above memory", CapacityLimits{Max: 5, KVMAvailable: true, SandboxMemory: q("64Mi"), SystemReserve: q("4Gi"), NodeMemory: q("2Gi")}, 0, "node memory"},
	} {
		n, why := tc.l.Capacity()
		if n != tc.want || why != tc.why {
			t.Errorf("%s: Capacity() = %d (%s), want %d (%s)", tc.name, n, why, tc.want, tc.why)
		}
	}
}

// hostless is a Runtime for the paths that must not touch containerd: a node
// without KVM never connects.
func noRuntime() (Runtime, error) {
	panic("the agent connected to containerd on a node without KVM")
}

func TestAgentWithoutKVMLabelsAndEvents(t *testing.T) {
	cs := fake.NewClientset(testNode("n1"))
	dir := t.TempDir()
	a, err := New(Config{
		Check: func(context.Context) kvm.Report {
			return kvm.Report{Device: "/dev/kvm", Available: false, Reason: "open /dev/kvm: no such file or directory"}
		},
		Installer:  Installer{SourceDir: dir, Prefix: filepath.Join(dir, "bin"), Binaries: []string{"moat"}},
		Containerd: ContainerdConfig{MainPath: filepath.Join(dir, "config.toml"), DropInPath: filepath.Join(dir, "moat.toml")},
		Runtime:    noRuntime,
		Kube:       &Kube{Client: cs, NodeName: "n1", Namespace: "moat-system"},
		Capacity:   CapacityLimits{Max: 10},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if a.State() != StateUnsupported {
		t.Fatalf("state %q", a.State())
	}
	n, _ := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if n.Labels[LabelKVM] != "false" || n.Labels["team"] != "blue" {
		t.Fatalf("labels %v", n.Labels)
	}
	if _, ok := n.Labels[LabelRuntime]; ok {
		t.Fatalf("runtime label set on a node without KVM: %v", n.Labels)
	}
	if q := n.Status.Capacity[ResourceName]; q.Value() != 0 || q.String() != "0" {
		t.Fatalf("capacity %v", n.Status.Capacity)
	}
	evs, _ := cs.CoreV1().Events("moat-system").List(ctx, metav1.ListOptions{})
	if len(evs.Items) != 1 || evs.Items[0].Reason != "MoatKVMUnavailable" || !strings.Contains(evs.Items[0].Message, "no such file") || evs.Items[0].Type != corev1.EventTypeWarning {
		t.Fatalf("events %+v", evs.Items)
	}
	// A second check with the same finding records no second event.
	if err := a.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _ = cs.CoreV1().Events("moat-system").List(ctx, metav1.ListOptions{})
	if len(evs.Items) != 1 {
		t.Fatalf("%d events after a repeated check, want 1", len(evs.Items))
	}
}

// With a real containerd and a fake API server: the node ends up labelled
// ready with its capacity, and cleanup takes every label and the resource
// away again, leaving the node's other labels alone.
func TestAgentPublishesToNode(t *testing.T) {
	ctd := startContainerd(t, func(base, _ string) string { return base })
	a, _ := newTestAgent(t, ctd, fakeImage(t, "v1"))
	cs := fake.NewClientset(testNode("n1"))
	a.cfg.Kube = &Kube{Client: cs, NodeName: "n1"}
	a.cfg.Capacity = CapacityLimits{Max: 500, SandboxMemory: resource.MustParse("128Mi"), SystemReserve: resource.MustParse("1Gi")}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := a.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	want := map[string]string{LabelKVM: "true", LabelNested: "true", LabelRuntime: StateReady, "team": "blue"}
	for k, v := range want {
		if n.Labels[k] != v {
			t.Errorf("label %s = %q, want %q (all: %v)", k, n.Labels[k], v, n.Labels)
		}
	}
	// (7Gi allocatable - 1Gi reserve) / 128Mi = 48
	for _, rl := range []corev1.ResourceList{n.Status.Capacity, n.Status.Allocatable} {
		if q := rl[ResourceName]; q.Value() != 48 {
			t.Errorf("%s = %v, want 48", ResourceName, rl)
		}
	}
	if st := a.Status(); st.Capacity != 48 || !st.KVM.Available {
		t.Errorf("status %+v", st)
	}
	evs, _ := cs.CoreV1().Events(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
	if len(evs.Items) != 1 || evs.Items[0].Reason != "MoatReady" || evs.Items[0].InvolvedObject.Kind != "Node" {
		t.Errorf("events %+v", evs.Items)
	}

	if err := a.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ = cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	for _, k := range []string{LabelKVM, LabelNested, LabelRuntime} {
		if _, ok := n.Labels[k]; ok {
			t.Errorf("label %s left after cleanup: %v", k, n.Labels)
		}
	}
	if n.Labels["team"] != "blue" {
		t.Errorf("cleanup removed the node's own labels: %v", n.Labels)
	}
	if _, ok := n.Status.Capacity[ResourceName]; ok {
		t.Errorf("capacity left after cleanup: %v", n.Status.Capacity)
	}
	if _, ok := n.Status.Allocatable[ResourceName]; ok {
		t.Errorf("allocatable left after cleanup: %v", n.Status.Allocatable)
	}
}
