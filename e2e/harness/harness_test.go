package harness

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestHarnessLifecycle starts a harness, runs a pod with one container,
// checks what CRI reports, and checks that Close leaves nothing behind.
func TestHarnessLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e, err := New(ctx, Options{Logf: t.Logf})
	if err != nil {
		SkipOrFail(t, err)
	}
	id := e.ID
	closed := false
	defer func() {
		if !closed {
			e.Close()
		}
	}()

	rc, err := e.CRI.RuntimeConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := rc.GetLinux().GetCgroupDriver().String(); d != "CGROUPFS" {
		t.Errorf("cgroup driver = %s, want CGROUPFS", d)
	}
	hs, err := e.CRI.RuntimeHandlers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(hs, HandlerRunc) {
		t.Errorf("runtime handlers %v lack %q", hs, HandlerRunc)
	}

	pod, err := e.RunPod(ctx, e.PodConfig("lifecycle"), HandlerRunc)
	if err != nil {
		t.Fatal(err)
	}
	cid, err := pod.Start(ctx, ContainerConfig("hello", BusyboxImage, "sh", "-c", "echo hello-from-busybox; exit 7"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.WaitExited(ctx, cid)
	if err != nil {
		t.Fatal(err)
	}
	if st.ExitCode != 7 {
		t.Errorf("exit code = %d, want 7", st.ExitCode)
	}
	logs, err := e.Logs(ctx, cid, "stdout")
	if err != nil {
		t.Fatal(err)
	}
	if logs != "hello-from-busybox\n" {
		t.Errorf("stdout log = %q, want %q", logs, "hello-from-busybox\n")
	}
	if ports, err := e.BridgePorts(); err != nil || len(ports) != 1 {
		t.Errorf("bridge ports with one pod = %v, %v; want one veth", ports, err)
	}

	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	if left := Leftovers(id); len(left) > 0 {
		t.Errorf("after Close, left behind: %s", strings.Join(left, "; "))
	}
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}
