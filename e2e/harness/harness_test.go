package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHarnessLifecycle starts a harness, runs a pod with one container,
// checks what CRI reports, and checks that Close leaves nothing behind.
func TestHarnessLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e, err := New(ctx, Options{Logf: t.Logf, ExtraPath: []string{"opt/bin", "/opt/extra"}})
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

	// The pid file names the running containerd (a node agent's signal
	// restart strategy reads it), and the extra PATH entries come first
	// on containerd's PATH, a relative one under the harness root.
	if b, err := os.ReadFile(e.PidFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(e.ContainerdPID()) {
		t.Errorf("pid file %s = %q (%v), containerd pid %d", e.PidFile, b, err, e.ContainerdPID())
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", e.ContainerdPID()))
	if err != nil {
		t.Fatal(err)
	}
	if want := "PATH=" + filepath.Join(e.Root, "opt/bin") + ":/opt/extra:" + e.Tools.Dir + ":"; !strings.Contains(string(environ), want) {
		t.Errorf("containerd's environment %q lacks %q", environ, want)
	}
	if filepath.Dir(e.Socket) != e.RunDir || filepath.Dir(e.ConfigPath) != e.EtcDir || filepath.Dir(e.ConfDir) != e.EtcDir {
		t.Errorf("socket %s, config %s, conf.d %s not in the run and etc folders %s, %s", e.Socket, e.ConfigPath, e.ConfDir, e.RunDir, e.EtcDir)
	}

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

// TestHarnessMoatHandler: given a shim path, the harness configures the
// handler "moat" (runtime type io.containerd.moat.v2, absolute
// runtime_path, options.ConfigPath) and containerd offers it through CRI.
// The shim binary here is a copy of the runc shim under the moat name: only
// the configuration is under test, no pod is run with it.
func TestHarnessMoatHandler(t *testing.T) {
	tools, err := FindTools(ToolsDir())
	if err != nil {
		SkipOrFail(t, err)
	}
	dir := t.TempDir()
	shim := filepath.Join(dir, "containerd-shim-moat-v2")
	b, err := os.ReadFile(tools.ShimRuncV2)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shim, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "moat.toml")
	e := Start(t, Options{MoatShim: shim, MoatConfig: cfg})
	ctx := context.Background()
	ok, err := e.CRI.HasHandler(ctx, HandlerMoat)
	if err != nil || !ok {
		hs, _ := e.CRI.RuntimeHandlers(ctx)
		t.Errorf("handler moat not offered (handlers %q, err %v)", hs, err)
	}
	if want := []string{HandlerRunc, HandlerMoat}; strings.Join(e.Handlers, ",") != strings.Join(want, ",") {
		t.Errorf("Env.Handlers = %q, want %q", e.Handlers, want)
	}
	conf, err := os.ReadFile(e.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`runtime_type = "io.containerd.moat.v2"`,
		`runtime_path = "` + shim + `"`,
		`ConfigPath = "` + cfg + `"`,
	} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("containerd config lacks %s", want)
		}
	}
}

// TestHarnessRejectsRelativeShim: the moat shim path must be absolute
// (containerd resolves runtime_path as given).
func TestHarnessRejectsRelativeShim(t *testing.T) {
	_, err := New(context.Background(), Options{MoatShim: "bin/containerd-shim-moat-v2"})
	if err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Errorf("New with a relative shim path: %v, want an error naming it", err)
	}
}
