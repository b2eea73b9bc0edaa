package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"moat.dev/moat/e2e/harness"
	"moat.dev/moat/kvm"
	"moat.dev/moat/node"
)

// shimForTest builds containerd-shim-moat-v2 from this tree, or takes the
// one $MOAT_E2E_SHIM names.
func shimForTest(t *testing.T, dir string) string {
	t.Helper()
	if _, err := os.Stat("../containerd-shim-moat-v2"); err == nil {
		out := filepath.Join(dir, "containerd-shim-moat-v2")
		if b, err := exec.Command("go", "build", "-o", out, "moat.dev/moat/cmd/containerd-shim-moat-v2").CombinedOutput(); err != nil {
			t.Fatalf("build the shim: %v\n%s", err, b)
		}
		return out
	}
	if p := os.Getenv("MOAT_E2E_SHIM"); p != "" {
		return p
	}
	t.Skip("this tree has no cmd/containerd-shim-moat-v2 and MOAT_E2E_SHIM names none")
	return ""
}

// The whole node story with the real shim: the agent installs it, containerd
// runs a moat pod with it, cleanup keeps the shim while that pod runs (and
// removes the handler), and a cleanup after the pod is gone removes it.
func TestAgentRunsAMoatPod(t *testing.T) {
	if _, err := os.Stat("/dev/kvm"); err != nil && os.Getenv("MOAT_REQUIRE_KVM") != "1" {
		t.Skipf("no /dev/kvm (%v); MOAT_REQUIRE_KVM=1 makes this a failure", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "image")
	os.MkdirAll(src, 0o755)
	shim := shimForTest(t, dir)
	b, err := os.ReadFile(shim)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "containerd-shim-moat-v2"), b, 0o755)
	if out, err := exec.Command("go", "build", "-o", filepath.Join(src, "moat"), "moat.dev/moat/cmd/moat").CombinedOutput(); err != nil {
		t.Fatalf("build moat: %v\n%s", err, out)
	}
	opts := filepath.Join(dir, "runtime.toml")
	os.WriteFile(opts, []byte("max_vcpus = 2\nlog_level = \"info\"\n"), 0o644)

	e := harness.Start(t, harness.Options{})
	prefix := filepath.Join(dir, "opt", "moat", "bin")
	cfg := node.Config{
		Handler:        "moat",
		Check:          func(context.Context) kvm.Report { return kvm.Check(kvm.CheckOptions{}) },
		Installer:      node.Installer{SourceDir: src, Prefix: prefix, Binaries: []string{"containerd-shim-moat-v2", "moat"}},
		Containerd:     node.ContainerdConfig{MainPath: e.ConfigPath, DropInPath: filepath.Join(e.ConfDir, "moat.toml")},
		RuntimeOptions: mustRead(t, opts),
		OptionsPath:    filepath.Join(dir, "etc", "moat", "runtime.toml"),
		Runtime:        func() (node.Runtime, error) { return node.DialCRI(e.Socket) },
		Restarter:      node.SignalRestarter{Socket: e.Socket},
		Capacity:       node.CapacityLimits{Max: 10},
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	a, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := a.Setup(ctx); err != nil {
		t.Fatalf("Setup: %v\n%s", err, e.ContainerdLogTail(30))
	}

	pod, err := e.RunPod(ctx, e.PodConfig("moat-agent"), "moat")
	if err != nil {
		t.Fatalf("a moat pod with the installed shim: %v", err)
	}
	cid, err := pod.Start(ctx, harness.ContainerConfig("sleeper", harness.BusyboxImage, "sleep", "300"))
	if err != nil {
		pod.Remove(context.Background())
		t.Fatal(err)
	}
	if _, err := e.WaitState(ctx, cid, runtimeapi.ContainerState_CONTAINER_RUNNING); err != nil {
		pod.Remove(context.Background())
		t.Fatal(err)
	}

	// Uninstall while the pod runs: containerd needs the handler to stop
	// the pod, so handler and shim stay and cleanup says why.
	if err := a.Cleanup(ctx); !errors.Is(err, node.ErrPodsRunning) {
		t.Fatalf("Cleanup with a running moat pod: %v, want ErrPodsRunning", err)
	}
	if ok, _ := e.CRI.HasHandler(ctx, "moat"); !ok {
		t.Error("containerd lost the moat handler while a moat pod runs")
	}
	if _, err := os.Stat(filepath.Join(prefix, "containerd-shim-moat-v2")); err != nil {
		t.Fatalf("the shim was removed under a running moat pod: %v", err)
	}
	// The pod can be stopped and removed; then cleanup completes.
	if err := pod.Remove(ctx); err != nil {
		t.Fatalf("remove the moat pod: %v", err)
	}
	if err := a.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup after the last moat pod: %v", err)
	}
	if ok, _ := e.CRI.HasHandler(ctx, "moat"); ok {
		t.Error("containerd still lists moat after cleanup")
	}
	if _, err := os.Stat(prefix); !os.IsNotExist(err) {
		t.Errorf("shim kept after the last moat pod went: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
