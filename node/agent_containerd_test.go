package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"moat.dev/moat/e2e/harness"
	"moat.dev/moat/kvm"
)

func availableReport(context.Context) kvm.Report {
	return kvm.Report{Device: "/dev/kvm", Available: true, APIVersion: 12, MaxVCPUs: 710, Hypervisor: "pvm", Nested: true, ExitRoundTrip: 90 * time.Microsecond, ExitSamples: 100}
}

// fakeImage lays out the binaries the agent installs, as its image holds
// them.
func fakeImage(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range []string{"containerd-shim-moat-v2", "moat"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\necho "+n+" "+version+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newTestAgent(t *testing.T, ctd *supervisedContainerd, src string) (*Agent, *Metrics) {
	t.Helper()
	m := NewMetrics()
	a, err := New(Config{
		Handler: "moat",
		Check:   availableReport,
		Installer: Installer{
			SourceDir: src, Prefix: filepath.Join(ctd.Dir, "opt", "moat", "bin"),
			Binaries: []string{"containerd-shim-moat-v2", "moat"},
		},
		Containerd:     ContainerdConfig{MainPath: ctd.Config, DropInPath: filepath.Join(ctd.Dir, "etc", "conf.d", "moat.toml")},
		RuntimeOptions: []byte("# moat runtime options\nmax_vcpus = 4\n"),
		OptionsPath:    filepath.Join(ctd.Dir, "etc", "moat", "runtime.toml"),
		Runtime:        func() (Runtime, error) { return DialCRI(ctd.Socket) },
		Restarter:      SignalRestarter{Socket: ctd.Socket, Timeout: 30 * time.Second},
		RestartTimeout: 60 * time.Second,
		Capacity:       CapacityLimits{Max: 16},
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:        m,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a, m
}

func criHandlers(t *testing.T, socket string) []string {
	t.Helper()
	rt := dialWait(t, socket)
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := rt.Handlers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// The whole life of the agent on a node, against a real containerd that a
// supervisor restarts: install, register, restart, verify over CRI; a second
// run restarts nothing; cleanup gives back containerd's config byte for byte.
func TestAgentWithRealContainerd(t *testing.T) {
	for name, extra := range map[string]string{
		"plain config":    "\n[debug]\n  level = \"info\"\n",
		"existing import": "",
	} {
		t.Run(name, func(t *testing.T) {
			var orig string
			ctd := startContainerd(t, func(base, etc string) string {
				if extra == "" {
					os.WriteFile(filepath.Join(etc, "other.toml"), []byte("version = 3\n"), 0o644)
					// A user's own import of another file, which must survive.
					orig = strings.Replace(base, "version = 3\n", "version = 3\nimports = [\"other.toml\"]\n", 1)
				} else {
					orig = "# the node owner's containerd config\n" + base + extra
				}
				return orig
			})
			src := fakeImage(t, "v1")
			a, m := newTestAgent(t, ctd, src)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()

			if h := criHandlers(t, ctd.Socket); slices.Contains(h, "moat") {
				t.Fatalf("fresh containerd already lists moat: %v", h)
			}
			startsBefore := ctd.Starts()
			if err := a.Setup(ctx); err != nil {
				t.Fatalf("Setup: %v", err)
			}
			if a.State() != StateReady {
				t.Fatalf("state %q after Setup", a.State())
			}
			if got := ctd.Starts(); got != startsBefore+1 {
				t.Fatalf("containerd started %d times during Setup, want 1 restart", got-startsBefore)
			}
			if h := criHandlers(t, ctd.Socket); !slices.Contains(h, "moat") {
				t.Fatalf("CRI does not list moat after Setup: %v", h)
			}
			for _, n := range []string{"containerd-shim-moat-v2", "moat"} {
				st, err := os.Stat(filepath.Join(ctd.Dir, "opt", "moat", "bin", n))
				if err != nil || st.Mode().Perm() != 0o755 {
					t.Fatalf("installed %s: %v %v", n, st, err)
				}
			}
			if got := testutil.ToFloat64(m.restarts); got != 1 {
				t.Fatalf("restart counter %v, want 1", got)
			}

			// Second run: nothing changed, so no restart.
			if err := a.Setup(ctx); err != nil {
				t.Fatalf("second Setup: %v", err)
			}
			if got := ctd.Starts(); got != startsBefore+1 {
				t.Fatalf("second Setup restarted containerd (%d starts)", got-startsBefore)
			}

			// An upgrade of the binaries keeps the old ones and needs no restart.
			a.cfg.Installer.SourceDir = fakeImage(t, "v2")
			if err := a.Setup(ctx); err != nil {
				t.Fatalf("upgrade Setup: %v", err)
			}
			prev, err := os.ReadFile(filepath.Join(ctd.Dir, "opt", "moat", "bin", "containerd-shim-moat-v2"+PreviousSuffix))
			if err != nil || !bytes.Contains(prev, []byte("v1")) {
				t.Fatalf("previous version not kept: %q %v", prev, err)
			}
			if got := ctd.Starts(); got != startsBefore+1 {
				t.Fatalf("binary upgrade restarted containerd")
			}

			// New runtime options (the chart's ConfigMap) reach the node's
			// options file; the shim reads it for each new pod, so
			// containerd does not restart either.
			a.cfg.RuntimeOptions = []byte("max_vcpus = 3\n")
			if err := a.Setup(ctx); err != nil {
				t.Fatalf("options Setup: %v", err)
			}
			if got, _ := os.ReadFile(a.cfg.OptionsPath); string(got) != "max_vcpus = 3\n" {
				t.Fatalf("options file %q", got)
			}
			if got := ctd.Starts(); got != startsBefore+1 {
				t.Fatalf("new runtime options restarted containerd")
			}

			// The served status and metrics say ready.
			srv := httptest.NewServer(a.Handler())
			defer srv.Close()
			for path, want := range map[string]string{"/readyz": `"state": "ready"`, "/metrics": "moat_node_install_state{state=\"ready\"} 1"} {
				resp, err := srv.Client().Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
					t.Fatalf("GET %s: %d, want %q in:\n%.2000s", path, resp.StatusCode, want, body)
				}
			}

			if err := a.Cleanup(ctx); err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
			if got := ctd.Starts(); got != startsBefore+2 {
				t.Fatalf("Cleanup: %d containerd starts, want one more restart", got-startsBefore)
			}
			after, err := os.ReadFile(ctd.Config)
			if err != nil {
				t.Fatal(err)
			}
			if string(after) != orig {
				t.Fatalf("containerd config not restored:\n--- before\n%s\n--- after\n%s", orig, after)
			}
			if h := criHandlers(t, ctd.Socket); slices.Contains(h, "moat") {
				t.Fatalf("CRI still lists moat after Cleanup: %v", h)
			}
			for _, p := range []string{a.cfg.Containerd.DropInPath, a.cfg.OptionsPath, a.cfg.Installer.Prefix} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s left after Cleanup (%v)", p, err)
				}
			}
		})
	}
}

// A node whose config already holds the drop-in but whose containerd was
// never restarted (the agent died in between) gets the restart it lacks;
// cleanup run twice restarts containerd once.
func TestAgentRecoversAndCleansUpOnce(t *testing.T) {
	ctd := startContainerd(t, func(base, _ string) string { return base })
	orig, _ := os.ReadFile(ctd.Config)
	a, _ := newTestAgent(t, ctd, fakeImage(t, "v1"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := a.cfg.Containerd.Ensure(DropIn{Handler: "moat", RuntimePath: a.cfg.RuntimePath, ConfigVersion: 3}); err != nil {
		t.Fatal(err)
	}
	starts := ctd.Starts()
	// The options differ from what Ensure wrote above, so the drop-in
	// changes too; what matters is one restart, and the handler known after.
	if err := a.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ctd.Starts() - starts; got != 1 {
		t.Fatalf("%d restarts, want 1", got)
	}
	if err := a.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	// Now the config is in place but containerd forgot the handler: the
	// config is unchanged, yet the agent must restart.
	os.Remove(a.cfg.Containerd.DropInPath)
	rs := SignalRestarter{Socket: ctd.Socket, Timeout: 30 * time.Second}
	if err := rs.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	dialWait(t, ctd.Socket).Close()
	if _, err := a.cfg.Containerd.Ensure(DropIn{Handler: "moat", RuntimePath: a.cfg.RuntimePath, OptionsPath: a.cfg.OptionsPath, ConfigVersion: 3}); err != nil {
		t.Fatal(err)
	}
	if h := criHandlers(t, ctd.Socket); slices.Contains(h, "moat") {
		t.Fatalf("containerd knows moat before the agent restarted it: %v", h)
	}
	starts = ctd.Starts()
	if err := a.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ctd.Starts() - starts; got != 1 {
		t.Fatalf("%d restarts for a handler containerd did not know, want 1", got)
	}
	if h := criHandlers(t, ctd.Socket); !slices.Contains(h, "moat") {
		t.Fatalf("CRI handlers %v", h)
	}

	starts = ctd.Starts()
	if err := a.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ctd.Starts() - starts; got != 1 {
		t.Fatalf("two cleanups restarted containerd %d times, want 1", got)
	}
	if after, _ := os.ReadFile(ctd.Config); !bytes.Equal(after, orig) {
		t.Fatalf("config not restored:\n%s", after)
	}
}

// Runtime options that are not TOML are refused before anything on the
// node changes.
func TestAgentRefusesBadRuntimeOptions(t *testing.T) {
	ctd := startContainerd(t, func(base, _ string) string { return base })
	orig, _ := os.ReadFile(ctd.Config)
	a, _ := newTestAgent(t, ctd, fakeImage(t, "v1"))
	a.cfg.RuntimeOptions = []byte("max_vcpus = = 4\n")
	starts := ctd.Starts()
	err := a.Setup(context.Background())
	if err == nil || !strings.Contains(err.Error(), "TOML") {
		t.Fatalf("Setup with bad options: %v", err)
	}
	if a.State() != StateFailed || ctd.Starts() != starts {
		t.Fatalf("state %q, %d restarts", a.State(), ctd.Starts()-starts)
	}
	if after, _ := os.ReadFile(ctd.Config); !bytes.Equal(after, orig) {
		t.Fatal("config changed")
	}
	if _, err := os.Stat(a.cfg.Containerd.DropInPath); !os.IsNotExist(err) {
		t.Fatal("drop-in written")
	}
}

// The count of running sandboxes per handler, which decides whether cleanup
// may remove the shim, comes from CRI: a real runc pod counts for "runc" and
// not for "moat".
func TestSandboxCountOverCRI(t *testing.T) {
	e := harness.Start(t, harness.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rt, err := DialCRI(e.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if n, err := rt.Sandboxes(ctx, "runc"); err != nil || n != 0 {
		t.Fatalf("before: %d, %v", n, err)
	}
	pod, err := e.RunPod(ctx, e.PodConfig("count"), harness.HandlerRunc)
	if err != nil {
		t.Fatal(err)
	}
	defer pod.Remove(context.Background())
	if n, err := rt.Sandboxes(ctx, "runc"); err != nil || n != 1 {
		t.Fatalf("runc sandboxes with one pod: %d, %v", n, err)
	}
	if n, err := rt.Sandboxes(ctx, "moat"); err != nil || n != 0 {
		t.Fatalf("moat sandboxes: %d, %v", n, err)
	}
	if err := pod.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := rt.Sandboxes(ctx, "runc"); err != nil || n != 0 {
		t.Fatalf("after removal: %d, %v", n, err)
	}
}

// containerd 1.7 reads config version 2, its CRI plugin is
// io.containerd.grpc.v1.cri, and it does not list runtime handlers in its
// CRI status (the agent finds the handler in the verbose config). It
// replaces a whole plugin section with an imported one, so the agent puts
// the runtime into the main config between marker lines. The whole cycle
// runs against a real containerd 1.7; a config that relies on the built-in
// runc is refused without a change.
func TestAgentWithContainerd17(t *testing.T) {
	bin := toolPath(t, filepath.Join("containerd-1.7", "containerd"))
	t.Run("full config", func(t *testing.T) {
		var orig string
		ctd := startContainerdBin(t, bin, 2, func(base, _ string) string {
			orig = "# a containerd 1.7 node\n" + base + `
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
`
			return orig
		})
		a, _ := newTestAgent(t, ctd, fakeImage(t, "v1"))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		rt := dialWait(t, ctd.Socket)
		defer rt.Close()
		if _, v, err := rt.Version(ctx); err != nil || !strings.HasPrefix(strings.TrimPrefix(v, "v"), "1.7") {
			t.Fatalf("not containerd 1.7: %q %v", v, err)
		}
		starts := ctd.Starts()
		if err := a.Setup(ctx); err != nil {
			t.Fatalf("Setup on containerd 1.7: %v", err)
		}
		main, _ := os.ReadFile(ctd.Config)
		if !strings.Contains(string(main), `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.moat]`) {
			t.Fatalf("main config for 1.7:\n%s", main)
		}
		if _, err := os.Stat(a.cfg.Containerd.DropInPath); !os.IsNotExist(err) {
			t.Errorf("a drop-in was written for containerd 1.7: %v", err)
		}
		if got := ctd.Starts() - starts; got != 1 {
			t.Fatalf("%d restarts, want 1", got)
		}
		h := criHandlers(t, ctd.Socket)
		if !slices.Contains(h, "moat") || !slices.Contains(h, "runc") {
			t.Fatalf("containerd 1.7 handlers %v, want moat and runc", h)
		}
		if err := a.Setup(ctx); err != nil || ctd.Starts()-starts != 1 {
			t.Fatalf("second Setup: %v, %d restarts", err, ctd.Starts()-starts)
		}
		if err := a.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		if after, _ := os.ReadFile(ctd.Config); string(after) != orig {
			t.Fatalf("config not restored:\n%s", after)
		}
		if h := criHandlers(t, ctd.Socket); slices.Contains(h, "moat") {
			t.Fatalf("moat still known after cleanup: %v", h)
		}
	})
	t.Run("config without runtimes refused", func(t *testing.T) {
		ctd := startContainerdBin(t, bin, 2, func(base, _ string) string { return base })
		orig, _ := os.ReadFile(ctd.Config)
		a, _ := newTestAgent(t, ctd, fakeImage(t, "v1"))
		starts := ctd.Starts()
		err := a.Setup(context.Background())
		if err == nil || !strings.Contains(err.Error(), "containerd config default") {
			t.Fatalf("Setup: %v", err)
		}
		if after, _ := os.ReadFile(ctd.Config); !bytes.Equal(after, orig) || ctd.Starts() != starts {
			t.Fatalf("a refused setup changed the config or restarted containerd")
		}
	})
}

// Cleanup removes the handler while moat pods may still run, and keeps
// their shim; that is only right if containerd, restarted without the
// handler in its config, still stops and removes such a pod. This checks
// that property of containerd itself with a runc-typed handler that goes
// away under a running pod.
func TestPodOutlivesItsHandler(t *testing.T) {
	e := harness.Start(t, harness.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dropIn := filepath.Join(e.ConfDir, "gone.toml")
	os.WriteFile(dropIn, []byte(fmt.Sprintf(`version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.gone]
  runtime_type = 'io.containerd.runc.v2'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.gone.options]
    BinaryName = %q
    Root = %q
`, e.Tools.Runc, filepath.Join(e.State, "runc-gone"))), 0o644)
	restart := func() {
		t.Helper()
		before := e.ContainerdStarts()
		if _, err := e.SignalContainerd(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := e.WaitRestarted(ctx, before); err != nil {
			t.Fatal(err)
		}
	}
	restart()
	if ok, err := e.CRI.HasHandler(ctx, "gone"); err != nil || !ok {
		t.Fatalf("handler not loaded: %v %v", ok, err)
	}
	pod, err := e.RunPod(ctx, e.PodConfig("outlives"), "gone")
	if err != nil {
		t.Fatal(err)
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

	os.Remove(dropIn)
	restart()
	if ok, _ := e.CRI.HasHandler(ctx, "gone"); ok {
		t.Fatal("handler still loaded after its config went")
	}
	rt := dialWait(t, e.Socket)
	defer rt.Close()
	if n, err := rt.Sandboxes(ctx, "gone"); err != nil || n != 1 {
		t.Fatalf("the pod is not counted after the restart: %d %v", n, err)
	}
	if st, err := e.ContainerStatus(ctx, cid); err != nil || st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container after the restart: %+v %v", st, err)
	}
	if err := pod.Remove(ctx); err != nil {
		t.Fatalf("a pod whose handler went cannot be removed: %v", err)
	}
	if n, err := rt.Sandboxes(ctx, "gone"); err != nil || n != 0 {
		t.Fatalf("after removal: %d %v", n, err)
	}
}
