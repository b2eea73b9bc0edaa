package node

import (
	"context"
	"errors"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func ds(annotations map[string]string, deleting bool) *appsv1.DaemonSet {
	d := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "moat-node", Namespace: "moat-system", Annotations: annotations}}
	if deleting {
		now := metav1.Now()
		d.DeletionTimestamp = &now
		d.Finalizers = []string{"test"}
	}
	return d
}

func TestUninstallRequested(t *testing.T) {
	ctx := context.Background()
	forbidden := fake.NewClientset(ds(nil, false))
	forbidden.PrependReactor("get", "daemonsets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "daemonsets"}, "moat-node", errors.New("RBAC gone"))
	})
	broken := fake.NewClientset()
	broken.PrependReactor("get", "daemonsets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("apiserver restarting")
	})
	for _, tc := range []struct {
		name    string
		cs      *fake.Clientset
		want    bool
		wantErr bool
	}{
		{"running", fake.NewClientset(ds(nil, false)), false, false},
		{"annotated", fake.NewClientset(ds(map[string]string{AnnotationCleanup: CleanupRequested}, false)), true, false},
		{"other annotation value", fake.NewClientset(ds(map[string]string{AnnotationCleanup: "no"}, false)), false, false},
		{"deleting", fake.NewClientset(ds(nil, true)), true, false},
		{"gone", fake.NewClientset(), true, false},
		{"forbidden", forbidden, true, false},
		{"api error", broken, false, true},
	} {
		u := Uninstall{Client: tc.cs, Namespace: "moat-system", DaemonSet: "moat-node"}
		got, why, err := u.Requested(ctx)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s: Requested = %v (%s), %v; want %v, err=%v", tc.name, got, why, err, tc.want, tc.wantErr)
		}
		if got && why == "" {
			t.Errorf("%s: no reason given", tc.name)
		}
	}
}

func TestRequestAndWaitClean(t *testing.T) {
	ctx := context.Background()
	n1 := testNode("n1")
	n1.Labels[LabelRuntime] = StateReady
	cs := fake.NewClientset(ds(nil, false), n1, testNode("n2"))
	u := Uninstall{Client: cs, Namespace: "moat-system", DaemonSet: "moat-node"}
	if err := u.Request(ctx); err != nil {
		t.Fatal(err)
	}
	if req, _, err := u.Requested(ctx); err != nil || !req {
		t.Fatalf("after Request: %v %v", req, err)
	}
	left, err := u.WaitClean(ctx, 0, time.Millisecond)
	if err == nil || len(left) != 1 || left[0] != "n1=ready" {
		t.Fatalf("WaitClean with a labelled node: %v %v", left, err)
	}
	// The agent on n1 cleans up meanwhile.
	go func() {
		time.Sleep(20 * time.Millisecond)
		k := Kube{Client: cs, NodeName: "n1"}
		k.SetLabels(ctx, map[string]*string{LabelRuntime: nil})
	}()
	if left, err := u.WaitClean(ctx, 10*time.Second, 5*time.Millisecond); err != nil || len(left) != 0 {
		t.Fatalf("WaitClean: %v %v", left, err)
	}
	n, _ := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if _, ok := n.Labels[LabelRuntime]; ok {
		t.Fatal("label still there")
	}
}
