// Package e2e holds moat's end-to-end scenarios: each runs against a real
// containerd (started by e2e/harness) for every runtime handler in
// handlers. See README.md and docs/e2e.md.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"moat.dev/moat/e2e/harness"
)

// ShimEnv names the environment variable that holds the absolute path of
// containerd-shim-moat-v2; when it is set, the handler "moat" is
// configured and every scenario runs for it as well as for runc.
const ShimEnv = "MOAT_E2E_SHIM"

// handlers are the runtime handlers every scenario runs for: runc, and
// moat when MOAT_E2E_SHIM names a shim.
func handlers() []string {
	hs := []string{harness.HandlerRunc}
	if os.Getenv(ShimEnv) != "" {
		hs = append(hs, harness.HandlerMoat)
	}
	return hs
}

// moatReady are the scenarios that run for moat even without
// MOAT_E2E_SHIM (with the shim built from this tree): those moat passes
// today (all but critest, whose run takes a harness and a registry of its
// own).
var moatReady = map[string]bool{
	"TestRunContainer": true, "TestCRIAnnotations": true, "TestExec": true, "TestAttach": true,
	"TestStopGracePeriod": true, "TestRemoveLeavesNothing": true, "TestManyPods": true,
	"TestContainerdRestart": true, "TestStats": true, "TestOOMKilled": true, "TestUpdateResources": true,
	"TestClearErrors": true, "TestStaticCProgram": true, "TestDebianImage": true,
	"TestPortForward": true, "TestSharedVolumeOverLocalhost": true, "TestPauseResume": true,
	"TestPIDNamespaces": true, "TestCapabilitiesAndPaths": true, "TestPodSysctls": true, "TestHostNetwork": true,
}

// handlersFor are the handlers the scenario t runs for.
func handlersFor(t *testing.T) []string {
	hs := handlers()
	if os.Getenv(ShimEnv) == "" && moatReady[strings.SplitN(t.Name(), "/", 2)[0]] {
		hs = append(hs, harness.HandlerMoat)
	}
	return hs
}

// The harness is shared by all tests of the package: started by the first
// test that needs it, torn down by TestMain.
var (
	sharedOnce sync.Once
	sharedEnv  *harness.Env
	sharedErr  error
)

func env(t *testing.T) *harness.Env {
	t.Helper()
	sharedOnce.Do(func() {
		opts := harness.Options{Logf: func(f string, a ...any) {
			if testing.Verbose() {
				fmt.Fprintf(os.Stderr, "e2e: "+f+"\n", a...)
			}
		}}
		defer func() { moatConfig = opts.MoatConfig }()
		if shim := os.Getenv(ShimEnv); shim != "" {
			opts.MoatShim = shim
			opts.MoatConfig = os.Getenv("MOAT_E2E_SHIM_CONFIG")
		} else {
			// The moat scenarios (moat_test.go) always run: build the
			// shim of this tree for them.
			opts.MoatShim, opts.MoatConfig, sharedErr = buildShim()
			if sharedErr != nil {
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		sharedEnv, sharedErr = harness.New(ctx, opts)
	})
	if sharedErr != nil {
		harness.SkipOrFail(t, sharedErr)
	}
	return sharedEnv
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedEnv != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "e2e: containerd log (last lines):\n%s\n", sharedEnv.ContainerdLogTail(60))
		}
		if err := sharedEnv.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: harness teardown: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// forEachHandler runs fn as a subtest per handler, in parallel with the
// other parallel tests of the package.
func forEachHandler(t *testing.T, fn func(t *testing.T, e *harness.Env, handler string)) {
	e := env(t)
	for _, h := range handlersFor(t) {
		t.Run(h, func(t *testing.T) {
			t.Parallel()
			fn(t, e, h)
		})
	}
}

// testCtx is a context bounded for one scenario.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// runPod runs a pod and removes it when the test ends (if the test did not).
func runPod(t *testing.T, e *harness.Env, handler, name string, mutate ...func(*runtimeapi.PodSandboxConfig)) *harness.Pod {
	t.Helper()
	cfg := e.PodConfig(name)
	for _, m := range mutate {
		m(cfg)
	}
	ctx := testCtx(t)
	pod, err := e.RunPod(ctx, cfg, handler)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := pod.Status(ctx); err != nil {
			return // already removed by the test
		}
		if err := pod.Remove(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return pod
}

// start creates and starts a container or fails the test.
func start(t *testing.T, pod *harness.Pod, c *runtimeapi.ContainerConfig) string {
	t.Helper()
	id, err := pod.Start(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// waitLog waits until the container's log holds want.
func waitLog(ctx context.Context, t *testing.T, e *harness.Env, id, want string) string {
	t.Helper()
	for {
		logs, err := e.Logs(ctx, id, "")
		if err == nil && strings.Contains(logs, want) {
			return logs
		}
		select {
		case <-ctx.Done():
			t.Fatalf("container %s log never showed %q; log so far: %q (%v)", id, want, logs, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logEquals reads a container's log stream until it equals want (the
// CRI plugin writes the log file behind the container's exit, so right
// after the exit it may still be short) or a few seconds pass; it returns
// what it read last.
func logEquals(ctx context.Context, e *harness.Env, id, stream, want string) (string, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := e.Logs(ctx, id, stream)
		if (err == nil && out == want) || time.Now().After(deadline) {
			return out, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verboseInfo decodes the "info" JSON of a verbose CRI status.
type verboseInfo struct {
	Pid         int         `json:"pid"`
	RuntimeType string      `json:"runtimeType"`
	RuntimeSpec *specs.Spec `json:"runtimeSpec"`
	SandboxID   string      `json:"sandboxID"`
}

// netns is the path of the network namespace in the OCI spec ("" if none).
func (v verboseInfo) netns() string {
	if v.RuntimeSpec == nil || v.RuntimeSpec.Linux == nil {
		return ""
	}
	for _, ns := range v.RuntimeSpec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			return ns.Path
		}
	}
	return ""
}

func podInfo(ctx context.Context, t *testing.T, e *harness.Env, id string) verboseInfo {
	t.Helper()
	r, err := e.CRI.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		t.Fatalf("PodSandboxStatus %s: %v", id, err)
	}
	return decodeInfo(t, r.Info["info"])
}

func containerInfo(ctx context.Context, t *testing.T, e *harness.Env, id string) verboseInfo {
	t.Helper()
	r, err := e.CRI.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	return decodeInfo(t, r.Info["info"])
}

func decodeInfo(t *testing.T, s string) verboseInfo {
	t.Helper()
	var v verboseInfo
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode verbose status info %q: %v", s, err)
	}
	return v
}

// volume makes an emptyDir-like host folder for a pod.
func volume(t *testing.T, e *harness.Env, pod *harness.Pod, name string) string {
	t.Helper()
	d := filepath.Join(e.VolumeDir, pod.Config.Metadata.Uid, name)
	if err := os.MkdirAll(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}
