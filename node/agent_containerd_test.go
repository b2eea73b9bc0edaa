package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

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
