package e2e

import (
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"moat.dev/moat/e2e/harness"
)

// TestStats: CRI reports CPU and memory use of a container that did some
// work (what `kubectl top` shows).
func TestStats(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "stats")
		cid := start(t, pod, harness.ContainerConfig("worker", harness.BusyboxImage, "sh", "-c",
			`i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; x=$(head -c 4000000 /dev/zero | tr '\0' a); echo worked; sleep 3600`))
		waitLog(ctx, t, e, cid, "worked")
		r, err := e.CRI.Runtime.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: cid})
		if err != nil {
			t.Fatalf("ContainerStats: %v", err)
		}
		st := r.GetStats()
		if st.GetAttributes().GetId() != cid {
			t.Errorf("stats are for %q, want %q", st.GetAttributes().GetId(), cid)
		}
		if st.GetCpu().GetUsageCoreNanoSeconds().GetValue() == 0 {
			t.Errorf("CPU usage 0 after a busy loop: %+v", st.GetCpu())
		}
		if st.GetMemory().GetWorkingSetBytes().GetValue() == 0 {
			t.Errorf("memory working set 0: %+v", st.GetMemory())
		}
		list, err := e.CRI.Runtime.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{
			Filter: &runtimeapi.ContainerStatsFilter{PodSandboxId: pod.ID}})
		if err != nil || len(list.GetStats()) != 1 {
			t.Errorf("ListContainerStats for the pod: %d entries (%v), want 1", len(list.GetStats()), err)
		}
		if h != harness.HandlerMoat {
			return
		}
		// CRI reads a pod's figures from its cgroup, where moat's sentry
		// runs: the host's count of the sentry's CPU time and memory
		// (guest memory included) holds what the sentry counts for the
		// container's processes, so those are no more than real.
		ps, err := e.CRI.Runtime.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: pod.ID})
		if err != nil {
			t.Fatalf("PodSandboxStats: %v", err)
		}
		lx := ps.GetStats().GetLinux()
		if lx.GetCpu().GetUsageCoreNanoSeconds().GetValue() < st.GetCpu().GetUsageCoreNanoSeconds().GetValue() ||
			lx.GetMemory().GetWorkingSetBytes().GetValue() < st.GetMemory().GetWorkingSetBytes().GetValue() {
			t.Errorf("pod stats %+v below the container's %+v", lx, st)
		}
	})
}

// TestOOMKilled: a container that outgrows its memory limit is killed and
// reported as OOMKilled with exit code 137, as runc reports it.
func TestOOMKilled(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "oom")
		c := harness.ContainerConfig("hog", harness.BusyboxImage, "sh", "-c",
			`echo start; x=$(head -c 200000000 /dev/zero | tr '\0' a); echo survived`)
		c.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}}
		cid := start(t, pod, c)
		st, err := e.WaitExited(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		logs, _ := e.Logs(ctx, cid, "")
		if st.Reason != "OOMKilled" || st.ExitCode != 137 || strings.Contains(logs, "survived") {
			t.Errorf("reason %q exit %d log %q; want OOMKilled, 137 and no survivor", st.Reason, st.ExitCode, logs)
		}
	})
}

// TestUpdateResources: UpdateContainerResources (in-place resize) changes
// the CPU and memory limits CRI reports and the OCI spec the runtime was
// given.
func TestUpdateResources(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "resize")
		c := harness.ContainerConfig("app", harness.BusyboxImage, "sleep", "3600")
		c.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
			CpuPeriod: 100000, CpuQuota: 100000, MemoryLimitInBytes: 64 << 20}}
		cid := start(t, pod, c)
		want := &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 250000, MemoryLimitInBytes: 96 << 20}
		if _, err := e.CRI.Runtime.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
			ContainerId: cid, Linux: want}); err != nil {
			t.Fatalf("UpdateContainerResources: %v", err)
		}
		st, err := e.ContainerStatus(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		got := st.GetResources().GetLinux()
		if got.GetCpuQuota() != want.CpuQuota || got.GetCpuPeriod() != want.CpuPeriod || got.GetMemoryLimitInBytes() != want.MemoryLimitInBytes {
			t.Errorf("status resources after update = %+v, want quota 250000 period 100000 memory 96Mi", got)
		}
		spec := containerInfo(ctx, t, e, cid).RuntimeSpec
		res := spec.Linux.Resources
		if res == nil || res.CPU == nil || res.CPU.Quota == nil || *res.CPU.Quota != 250000 ||
			res.Memory == nil || res.Memory.Limit == nil || *res.Memory.Limit != 96<<20 {
			t.Errorf("OCI spec resources after update = %+v", res)
		}
		if r, err := e.CRI.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"true"}, Timeout: 30}); err != nil || r.ExitCode != 0 {
			t.Errorf("container after update: exec %v (%v)", r.GetExitCode(), err)
		}
	})
}
