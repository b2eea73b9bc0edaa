package node

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// AnnotationCleanup on the moat-node DaemonSet asks every agent to undo its
// node's install while the agents and their permissions still exist. The
// chart's pre-delete hook sets it and waits for the nodes to be clean.
const AnnotationCleanup = "moat.dev/cleanup"

// CleanupRequested is AnnotationCleanup's value that asks for cleanup.
const CleanupRequested = "requested"

// Uninstall says whether moat is being uninstalled, from the agent's view of
// its own DaemonSet.
type Uninstall struct {
	Client    kubernetes.Interface
	Namespace string
	DaemonSet string
}

// Requested reports whether the DaemonSet asks for cleanup (the pre-delete
// hook ran) or is gone or going (moat was deleted without the hook). A
// Forbidden answer also counts as gone: the agent's own RBAC is deleted with
// the chart.
func (u Uninstall) Requested(ctx context.Context) (bool, string, error) {
	ds, err := u.Client.AppsV1().DaemonSets(u.Namespace).Get(ctx, u.DaemonSet, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return true, "the DaemonSet " + u.Namespace + "/" + u.DaemonSet + " is gone", nil
	case apierrors.IsForbidden(err):
		return true, "the agent may no longer read its DaemonSet (its RBAC was deleted)", nil
	case err != nil:
		return false, "", fmt.Errorf("get DaemonSet %s/%s: %w", u.Namespace, u.DaemonSet, err)
	case ds.DeletionTimestamp != nil:
		return true, "the DaemonSet is being deleted", nil
	case ds.Annotations[AnnotationCleanup] == CleanupRequested:
		return true, "the DaemonSet asks for cleanup (" + AnnotationCleanup + ")", nil
	}
	return false, "", nil
}

// Request annotates the DaemonSet to ask every agent to clean up its node.
func (u Uninstall) Request(ctx context.Context) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationCleanup: CleanupRequested}}})
	if _, err := u.Client.AppsV1().DaemonSets(u.Namespace).Patch(ctx, u.DaemonSet, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: eventComponent}); err != nil {
		return fmt.Errorf("annotate DaemonSet %s/%s for cleanup: %w", u.Namespace, u.DaemonSet, err)
	}
	return nil
}

// WaitClean waits until no node carries the moat.dev/runtime label, or
// timeout passes; it returns the nodes still labelled.
func (u Uninstall) WaitClean(ctx context.Context, timeout, poll time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		nodes, err := u.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: LabelRuntime})
		if err != nil {
			return nil, fmt.Errorf("list nodes labelled %s: %w", LabelRuntime, err)
		}
		var left []string
		for _, n := range nodes.Items {
			left = append(left, n.Name+"="+n.Labels[LabelRuntime])
		}
		if len(left) == 0 {
			return nil, nil
		}
		if time.Now().After(deadline) {
			return left, fmt.Errorf("nodes not cleaned up after %v: %v", timeout, left)
		}
		select {
		case <-ctx.Done():
			return left, ctx.Err()
		case <-time.After(poll):
		}
	}
}
