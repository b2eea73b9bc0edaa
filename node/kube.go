package node

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Node labels and the extended resource moat publishes.
const (
	LabelKVM       = "moat.dev/kvm"     // "true" when the node can run moat sandboxes
	LabelNested    = "moat.dev/nested"  // "true" when the node is itself a virtual machine
	LabelRuntime   = "moat.dev/runtime" // install state: installing, ready, cleanup
	ResourceName   = "moat.dev/sandbox" // extended resource: moat pods the node can host
	eventComponent = "moat-node"
)

// Install states, the values of LabelRuntime.
const (
	StateInstalling = "installing"
	StateReady      = "ready"
	StateCleanup    = "cleanup"
	StateFailed     = "failed"
)

// Kube is the agent's view of its own Node object.
type Kube struct {
	Client    kubernetes.Interface
	NodeName  string
	Namespace string // where Events go when the node has none of its own; "default" if empty
}

// SetLabels sets (value non-nil) or removes (nil) labels on the node with a
// merge patch, touching no other label.
func (k Kube) SetLabels(ctx context.Context, labels map[string]*string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		return err
	}
	if _, err := k.Client.CoreV1().Nodes().Patch(ctx, k.NodeName, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: eventComponent}); err != nil {
		return fmt.Errorf("patch labels of node %s: %w", k.NodeName, err)
	}
	return nil
}

// SetCapacity advertises n moat sandboxes in the node's capacity and
// allocatable; n < 0 removes the resource.
func (k Kube) SetCapacity(ctx context.Context, n int) error {
	var v any
	if n >= 0 {
		v = strconv.Itoa(n)
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"capacity":    map[string]any{ResourceName: v},
		"allocatable": map[string]any{ResourceName: v},
	}})
	if err != nil {
		return err
	}
	if _, err := k.Client.CoreV1().Nodes().Patch(ctx, k.NodeName, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: eventComponent}, "status"); err != nil {
		return fmt.Errorf("patch capacity of node %s: %w", k.NodeName, err)
	}
	return nil
}

// Node returns the agent's node.
func (k Kube) Node(ctx context.Context) (*corev1.Node, error) {
	n, err := k.Client.CoreV1().Nodes().Get(ctx, k.NodeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", k.NodeName, err)
	}
	return n, nil
}

// Event records an event about the node (type is corev1.EventTypeNormal or
// EventTypeWarning).
func (k Kube) Event(ctx context.Context, eventType, reason, message string) error {
	ns := k.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	now := metav1.NewTime(time.Now())
	if len(message) > 1024 {
		message = message[:1024]
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: k.NodeName + ".moat-", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Node", Name: k.NodeName, UID: types.UID(k.NodeName), APIVersion: "v1",
		},
		Reason:              reason,
		Message:             message,
		Type:                eventType,
		Source:              corev1.EventSource{Component: eventComponent, Host: k.NodeName},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: "moat.dev/moat-node",
		ReportingInstance:   eventComponent + "-" + k.NodeName,
	}
	if _, err := k.Client.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create event %s for node %s: %w", reason, k.NodeName, err)
	}
	return nil
}

// CapacityLimits are the inputs of the sandbox count a node advertises.
type CapacityLimits struct {
	Max             int               // configured maximum of moat pods per node
	SandboxMemory   resource.Quantity // memory one sandbox needs beyond its containers (the RuntimeClass overhead)
	SystemReserve   resource.Quantity // memory kept back for everything else
	KVMAvailable    bool
	NodeMemory      resource.Quantity
	NodePodCapacity int
}

// Capacity computes how many moat pods the node can host: zero without KVM;
// otherwise the smallest of the configured maximum, the node's pod
// capacity, the memory left after the reserve divided by one sandbox's
// overhead.
func (l CapacityLimits) Capacity() (n int, why string) {
	if !l.KVMAvailable {
		return 0, "KVM is not available"
	}
	n, why = l.Max, "configured maximum"
	if l.NodePodCapacity > 0 && l.NodePodCapacity < n {
		n, why = l.NodePodCapacity, "node pod capacity"
	}
	if per := l.SandboxMemory.Value(); per > 0 && !l.NodeMemory.IsZero() {
		free := l.NodeMemory.Value() - l.SystemReserve.Value()
		if free < 0 {
			free = 0
		}
		if m := int(free / per); m < n {
			n, why = m, "node memory"
		}
	}
	if n < 0 {
		n = 0
	}
	return n, why
}

func ptr(s string) *string { return &s }

func boolLabel(b bool) *string { return ptr(strconv.FormatBool(b)) }
