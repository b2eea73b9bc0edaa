package e2e

import (
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"moat.dev/moat/e2e/harness"
)

// TestPIDNamespaces: a container of NamespaceMode CONTAINER is PID 1 of
// its own namespace; one of NamespaceMode POD sees the pod's sandbox
// process as PID 1 and the other containers of that mode; the containers
// of a hostPID pod (NamespaceMode NODE) see each other (on moat: every
// process of the sandbox, never the host's). The same on both handlers.
func TestPIDNamespaces(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "pidns")
		withPID := func(c *runtimeapi.ContainerConfig, mode runtimeapi.NamespaceMode) *runtimeapi.ContainerConfig {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: mode, Network: runtimeapi.NamespaceMode_POD, Ipc: runtimeapi.NamespaceMode_POD}}}
			return c
		}
		own := start(t, pod, withPID(harness.ContainerConfig("own", harness.BusyboxImage, "sleep", "3600"), runtimeapi.NamespaceMode_CONTAINER))
		shared := start(t, pod, withPID(harness.ContainerConfig("shared", harness.BusyboxImage, "sleep", "3601"), runtimeapi.NamespaceMode_POD))
		for _, id := range []string{own, shared} {
			if _, err := e.WaitState(ctx, id, runtimeapi.ContainerState_CONTAINER_RUNNING); err != nil {
				t.Fatal(err)
			}
		}
		exec := func(id string, argv ...string) string {
			t.Helper()
			r, err := e.CRI.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: argv, Timeout: 60})
			if err != nil || r.ExitCode != 0 {
				t.Fatalf("exec %v in %s: %v (exit %d, stderr %q)", argv, id, err, r.GetExitCode(), r.GetStderr())
			}
			return string(r.Stdout)
		}
		if got := exec(own, "cat", "/proc/1/cmdline"); got != "sleep\x003600\x00" {
			t.Errorf("own namespace: /proc/1/cmdline = %q, want the container's sleep", got)
		}
		// An exec's parent is outside the namespace (0); it sees only
		// its own namespace's processes.
		if got := exec(own, "sh", "-c", "echo $PPID; cat /proc/[0-9]*/cmdline | tr '\\0' ' '"); !strings.HasPrefix(got, "0\n") || !strings.Contains(got, "sleep 3600") || strings.Contains(got, "sleep 3601") {
			t.Errorf("own namespace: ppid and processes %q, want 0 and only its own sleep", got)
		}
		if got := exec(shared, "cat", "/proc/1/cmdline"); strings.Contains(got, "sleep") {
			t.Errorf("pod namespace: /proc/1/cmdline = %q, want the pod's sandbox process", got)
		}
		if got := exec(shared, "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"); !strings.Contains(got, "sleep 3601") || strings.Contains(got, "sleep 3600") {
			t.Errorf("pod namespace sees %q: want its own sleep and not the other namespace's", got)
		}

		// A hostPID pod: its containers see each other (runc: with the
		// host's processes; moat: with the rest of the sandbox's).
		hostPod := runPod(t, e, h, "hostpid", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_NODE
		})
		a := start(t, hostPod, withPID(harness.ContainerConfig("a", harness.BusyboxImage, "sleep", "3603"), runtimeapi.NamespaceMode_NODE))
		b := start(t, hostPod, withPID(harness.ContainerConfig("b", harness.BusyboxImage, "sleep", "3604"), runtimeapi.NamespaceMode_NODE))
		for _, id := range []string{a, b} {
			if _, err := e.WaitState(ctx, id, runtimeapi.ContainerState_CONTAINER_RUNNING); err != nil {
				t.Fatal(err)
			}
		}
		if got := exec(b, "sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '"); !strings.Contains(got, "sleep 3603") || !strings.Contains(got, "sleep 3604") {
			t.Errorf("a hostPID container sees %q: want both containers' sleep", got)
		}
	})
}

// TestCapabilitiesAndPaths: the capability sets, no_new_privs and the
// read-only paths of the OCI spec as the container's processes see them,
// the same on both handlers.
func TestCapabilitiesAndPaths(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "caps")
		withSC := func(c *runtimeapi.ContainerConfig, sc *runtimeapi.LinuxContainerSecurityContext) *runtimeapi.ContainerConfig {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: sc}
			return c
		}
		def := start(t, pod, harness.ContainerConfig("default", harness.BusyboxImage, "sleep", "3600"))
		none := start(t, pod, withSC(harness.ContainerConfig("none", harness.BusyboxImage, "sleep", "3600"),
			&runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}},
				NoNewPrivs: true, ReadonlyPaths: []string{"/tmp"}}))
		for _, id := range []string{def, none} {
			if _, err := e.WaitState(ctx, id, runtimeapi.ContainerState_CONTAINER_RUNNING); err != nil {
				t.Fatal(err)
			}
		}
		status := func(id string) map[string]string {
			t.Helper()
			r, err := e.CRI.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"cat", "/proc/self/status"}, Timeout: 60})
			if err != nil || r.ExitCode != 0 {
				t.Fatalf("cat /proc/self/status in %s: %v %q", id, err, r.GetStderr())
			}
			out := map[string]string{}
			for _, l := range strings.Split(string(r.Stdout), "\n") {
				if k, v, ok := strings.Cut(l, ":"); ok {
					out[k] = strings.TrimSpace(v)
				}
			}
			return out
		}
		st := status(def)
		const defaults = "00000000a80425fb" // the runtimes' default set
		if st["CapEff"] != defaults || st["CapPrm"] != defaults || st["CapBnd"] != defaults || st["NoNewPrivs"] != "0" {
			t.Errorf("default container: CapEff %s CapPrm %s CapBnd %s NoNewPrivs %s; want %s and 0", st["CapEff"], st["CapPrm"], st["CapBnd"], st["NoNewPrivs"], defaults)
		}
		st = status(none)
		zero := "0000000000000000"
		if st["CapEff"] != zero || st["CapPrm"] != zero || st["CapBnd"] != zero || st["NoNewPrivs"] != "1" {
			t.Errorf("container without capabilities: CapEff %s CapPrm %s CapBnd %s NoNewPrivs %s; want zero and 1", st["CapEff"], st["CapPrm"], st["CapBnd"], st["NoNewPrivs"])
		}
		// Root without CAP_CHOWN cannot give a file away; /tmp is read-only.
		r, err := e.CRI.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: none, Cmd: []string{"sh", "-c", "chown 1:1 /etc/hostname; touch /tmp/x"}, Timeout: 60})
		if err != nil || r.ExitCode == 0 || !strings.Contains(string(r.Stderr), "Operation not permitted") || !strings.Contains(string(r.Stderr), "Read-only file system") {
			t.Errorf("chown and touch without capabilities: %v exit %d stderr %q; want EPERM and EROFS", err, r.GetExitCode(), r.GetStderr())
		}
	})
}
