package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"moat.dev/moat/e2e/harness"
	"moat.dev/moat/node"
)

func TestFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"run", "--restart=reboot", "--standalone"}, &out, &errb); code == 0 {
		t.Fatal("bad --restart accepted")
	}
	for _, args := range [][]string{
		{"run", "--cleanup-on-exit=sometimes"},
		{"run", "extra-arg"},
		{"frobnicate"},
	} {
		errb.Reset()
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
	errb.Reset()
	if code := run([]string{"cleanup", "--standalone", "--prefix=relative"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "absolute") {
		t.Errorf("relative prefix: exit %d: %s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"run"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "--node-name") {
		t.Errorf("no node name: exit %d: %s", code, errb.String())
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// The agent binary on a node without an API server: it checks the real
// /dev/kvm, installs into a prefix, registers the handler with a real
// containerd that a supervisor restarts, serves its status, and on SIGTERM
// with --cleanup-on-exit=always undoes everything.
func TestAgentBinaryStandalone(t *testing.T) {
	if _, err := os.Stat("/dev/kvm"); err != nil && os.Getenv("MOAT_REQUIRE_KVM") != "1" {
		t.Skipf("no /dev/kvm (%v); MOAT_REQUIRE_KVM=1 makes this a failure", err)
	}
	e := harness.Start(t, harness.Options{})
	dir := t.TempDir()
	bin := filepath.Join(dir, "moat-node")
	if b, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	src := filepath.Join(dir, "image")
	os.MkdirAll(src, 0o755)
	for _, n := range []string{"containerd-shim-moat-v2", "moat"} {
		os.WriteFile(filepath.Join(src, n), []byte("#!/bin/sh\necho "+n+"\n"), 0o755)
	}
	opts := filepath.Join(dir, "runtime.toml")
	os.WriteFile(opts, []byte("max_vcpus = 2\n"), 0o644)
	mainBefore, err := os.ReadFile(e.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	dropIn := filepath.Join(e.ConfDir, "moat.toml")
	prefix := filepath.Join(dir, "opt", "moat", "bin")
	cmd := exec.Command(bin, "run", "--standalone",
		"--source-dir="+src, "--prefix="+prefix,
		"--containerd-config="+e.ConfigPath, "--containerd-dropin="+dropIn,
		"--containerd-socket="+e.Socket,
		"--runtime-options-file="+opts, "--runtime-options-path="+filepath.Join(dir, "etc", "moat", "runtime.toml"),
		"--restart=signal", "--measure-exits=20",
		"--listen="+addr, "--cleanup-on-exit=always")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	starts := e.ContainerdStarts()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var ready string
	for ready == "" {
		if ctx.Err() != nil {
			t.Fatalf("agent never became ready:\n%s", logs.String())
		}
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ready = string(b)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(ready, `"state": "ready"`) || !strings.Contains(ready, `"available": true`) {
		t.Fatalf("readyz: %s\nlogs:\n%s", ready, logs.String())
	}
	if ok, err := e.CRI.HasHandler(ctx, "moat"); err != nil || !ok {
		t.Fatalf("CRI lists moat: %v, %v", ok, err)
	}
	if got := e.ContainerdStarts() - starts; got != 1 {
		t.Fatalf("%d containerd restarts, want 1", got)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"moat_node_kvm_available 1", "moat_node_containerd_restarts_total 1", "moat_node_sandboxes_running 0", `moat_node_install_state{state="ready"} 1`, `moat_node_info{containerd_version="`, `hypervisor="`} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("metrics lack %q", m)
		}
	}
	if !strings.Contains(string(metrics), "moat_node_kvm_exit_round_trip_seconds ") || strings.Contains(string(metrics), "moat_node_kvm_exit_round_trip_seconds 0\n") {
		t.Errorf("exit round trip not measured:\n%s", metrics)
	}
	// The drop-in went into the harness's conf.d, which its main config
	// already imports by a glob: the main config is untouched.
	if after, _ := os.ReadFile(e.ConfigPath); !bytes.Equal(after, mainBefore) {
		t.Error("main config changed though its imports already cover the drop-in")
	}

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent exit: %v\n%s", err, logs.String())
		}
	case <-ctx.Done():
		t.Fatalf("agent did not exit after SIGTERM:\n%s", logs.String())
	}
	if ok, err := e.CRI.HasHandler(ctx, "moat"); err != nil || ok {
		t.Fatalf("CRI still lists moat after cleanup: %v, %v", ok, err)
	}
	for _, p := range []string{dropIn, prefix} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after cleanup: %v", p, err)
		}
	}
	if got := e.ContainerdStarts() - starts; got != 2 {
		t.Errorf("%d containerd restarts in all, want 2", got)
	}
}

// newAgentForTest sets up options and an agent for the harness's containerd
// with a fake API server holding the node and the DaemonSet.
func newAgentForTest(t *testing.T, e *harness.Env, cs *fake.Clientset) (*options, *node.Agent, node.Config) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "image")
	os.MkdirAll(src, 0o755)
	for _, n := range []string{"containerd-shim-moat-v2", "moat"} {
		os.WriteFile(filepath.Join(src, n), []byte("#!/bin/sh\n"), 0o755)
	}
	var errb bytes.Buffer
	o, err := parseOptions("run", []string{"--standalone", "--source-dir=" + src, "--prefix=" + filepath.Join(dir, "bin"),
		"--containerd-config=" + e.ConfigPath, "--containerd-dropin=" + filepath.Join(e.ConfDir, "moat.toml"),
		"--containerd-socket=" + e.Socket, "--restart=signal", "--measure-exits=0", "--listen=",
		"--namespace=moat-system", "--daemonset=moat-node", "--node-name=n1"}, &errb)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg, err := o.config(log)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Kube = &node.Kube{Client: cs, NodeName: "n1", Namespace: "moat-system"}
	a, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o, a, cfg
}

func nodeLabels(t *testing.T, cs *fake.Clientset) map[string]string {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n.Labels
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The uninstall paths of a running agent: the pre-delete hook's annotation
// makes it clean up while it runs (and stay up); a DaemonSet that is gone
// when the pod stops makes it clean up on the way out; a DaemonSet that
// stays (a restart) does not.
func TestAgentUninstallPaths(t *testing.T) {
	if _, err := os.Stat("/dev/kvm"); err != nil && os.Getenv("MOAT_REQUIRE_KVM") != "1" {
		t.Skipf("no /dev/kvm (%v); MOAT_REQUIRE_KVM=1 makes this a failure", err)
	}
	e := harness.Start(t, harness.Options{})
	newCS := func() *fake.Clientset {
		return fake.NewClientset(
			&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{}}},
			&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "moat-node", Namespace: "moat-system"}})
	}
	ready := func(cs *fake.Clientset) func() bool {
		return func() bool { return nodeLabels(t, cs)[node.LabelRuntime] == node.StateReady }
	}
	clean := func(cs *fake.Clientset) func() bool {
		return func() bool { _, ok := nodeLabels(t, cs)[node.LabelRuntime]; return !ok }
	}

	t.Run("pre-delete request", func(t *testing.T) {
		cs := newCS()
		o, a, cfg := newAgentForTest(t, e, cs)
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- o.serve(ctx, a, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
		waitFor(t, "the node to be ready", time.Minute, ready(cs))
		if err := (node.Uninstall{Client: cs, Namespace: "moat-system", DaemonSet: "moat-node"}).Request(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the agent to clean up", time.Minute, clean(cs))
		if ok, _ := e.CRI.HasHandler(context.Background(), "moat"); ok {
			t.Error("containerd still lists moat after cleanup")
		}
		select {
		case err := <-done:
			t.Fatalf("agent exited after cleanup instead of waiting for its deletion: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("restart keeps the install, deletion cleans up", func(t *testing.T) {
		cs := newCS()
		o, a, cfg := newAgentForTest(t, e, cs)
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- o.serve(ctx, a, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
		waitFor(t, "the node to be ready", time.Minute, ready(cs))
		stop() // SIGTERM while the DaemonSet stays: a restart or upgrade
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !ready(cs)() {
			t.Fatalf("a restart cleaned the node up: %v", nodeLabels(t, cs))
		}
		if ok, _ := e.CRI.HasHandler(context.Background(), "moat"); !ok {
			t.Fatal("a restart removed the handler")
		}

		o, a, cfg = newAgentForTest(t, e, cs)
		ctx, stop = context.WithCancel(context.Background())
		go func() { done <- o.serve(ctx, a, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
		waitFor(t, "the agent to be ready again", time.Minute, func() bool { return a.State() == node.StateReady })
		if err := cs.AppsV1().DaemonSets("moat-system").Delete(context.Background(), "moat-node", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		stop() // the pod stops after its DaemonSet was deleted
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !clean(cs)() {
			t.Fatalf("labels after the DaemonSet was deleted: %v", nodeLabels(t, cs))
		}
		if ok, _ := e.CRI.HasHandler(context.Background(), "moat"); ok {
			t.Error("containerd still lists moat")
		}
	})
}
