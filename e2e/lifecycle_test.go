package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"moat.dev/moat/e2e/harness"
)

// TestSharedVolumeOverLocalhost: two containers of one pod share an
// emptyDir and talk over the pod's loopback: the client writes a file into
// the volume and fetches it back from the server container over
// 127.0.0.1.
func TestSharedVolumeOverLocalhost(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "shared")
		data := volume(t, e, pod, "data")
		mount := []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/data"}}

		server := harness.ContainerConfig("server", harness.HTTPServerImage, "/httpserver", "-addr", "127.0.0.1:8080", "-dir", "/data")
		server.Mounts = mount
		start(t, pod, server)

		client := harness.ContainerConfig("client", harness.BusyboxImage, "sh", "-c",
			`echo shared-content > /data/note.txt
for i in $(seq 100); do
  wget -qO- http://127.0.0.1:8080/files/note.txt && exit 0
  sleep 0.1
done
exit 1`)
		client.Mounts = mount
		cid := start(t, pod, client)
		st, err := e.WaitExited(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := e.Logs(ctx, cid, "stdout")
		if st.ExitCode != 0 || out != "shared-content\n" {
			all, _ := e.Logs(ctx, cid, "")
			t.Fatalf("client exit %d, stdout %q (log %q); want 0 and shared-content", st.ExitCode, out, all)
		}
		b, err := os.ReadFile(filepath.Join(data, "note.txt"))
		if err != nil || string(b) != "shared-content\n" {
			t.Errorf("volume file on the host = %q (%v), want shared-content", b, err)
		}
	})
}

// TestStopGracePeriod: StopContainer sends SIGTERM, whose handler runs
// and sets the exit code; a process that ignores SIGTERM is SIGKILLed
// once the grace period is over.
func TestStopGracePeriod(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "stop")
		graceful := start(t, pod, harness.ContainerConfig("graceful", harness.BusyboxImage, "sh", "-c",
			`trap 'echo got-sigterm; exit 42' TERM; echo ready; while true; do sleep 0.1; done`))
		stubborn := start(t, pod, harness.ContainerConfig("stubborn", harness.BusyboxImage, "sh", "-c",
			`trap 'echo ignored-sigterm' TERM; echo ready; while true; do sleep 0.1; done`))
		waitLog(ctx, t, e, graceful, "ready")
		waitLog(ctx, t, e, stubborn, "ready")

		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, c := range []struct {
			id      string
			timeout int64
		}{{graceful, 30}, {stubborn, 2}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = e.CRI.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.id, Timeout: c.timeout})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("StopContainer: %v", err)
			}
		}

		st, err := e.ContainerStatus(ctx, graceful)
		if err != nil {
			t.Fatal(err)
		}
		logs, _ := e.Logs(ctx, graceful, "stdout")
		if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 42 || !strings.Contains(logs, "got-sigterm") {
			t.Errorf("graceful: state %v exit %d log %q; want EXITED, 42 and got-sigterm", st.State, st.ExitCode, logs)
		}

		st, err = e.ContainerStatus(ctx, stubborn)
		if err != nil {
			t.Fatal(err)
		}
		logs, _ = e.Logs(ctx, stubborn, "stdout")
		// 128+9: killed by SIGKILL, after SIGTERM reached the handler.
		if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 128+int32(syscall.SIGKILL) ||
			!strings.Contains(logs, "ignored-sigterm") {
			t.Errorf("stubborn: state %v exit %d reason %q log %q; want EXITED, 137 and ignored-sigterm",
				st.State, st.ExitCode, st.Reason, logs)
		}
	})
}

// podTraces are the things a running pod puts on the host, by which
// TestRemoveLeavesNothing checks that removal took them all away.
type podTraces struct {
	ids       []string // pod and container ids
	netns     string
	ip        string
	cgroupDir []string
}

func tracesOf(ctx context.Context, t *testing.T, e *harness.Env, pod *harness.Pod, cids ...string) podTraces {
	t.Helper()
	st, err := pod.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info := podInfo(ctx, t, e, pod.ID)
	tr := podTraces{ids: append([]string{pod.ID}, cids...), netns: info.netns(), ip: st.GetNetwork().GetIp(), cgroupDir: pod.CgroupDirs()}
	if tr.netns == "" || tr.ip == "" || len(tr.cgroupDir) == 0 {
		t.Fatalf("pod %s: netns %q ip %q cgroups %v; want all three", pod.ID, tr.netns, tr.ip, tr.cgroupDir)
	}
	return tr
}

// leftovers lists what of a removed pod is still on the host.
func (tr podTraces) leftovers(ctx context.Context, e *harness.Env) []string {
	var left []string
	pods, err := e.CRI.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{
		Filter: &runtimeapi.PodSandboxFilter{Id: tr.ids[0]}})
	if err != nil || len(pods.Items) > 0 {
		left = append(left, fmt.Sprintf("pod listed by CRI (%v)", err))
	}
	ctrs, err := e.CRI.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{
		Filter: &runtimeapi.ContainerFilter{PodSandboxId: tr.ids[0]}})
	if err != nil || len(ctrs.Containers) > 0 {
		left = append(left, fmt.Sprintf("containers listed by CRI (%v)", err))
	}
	// Processes (the shim names the pod id; runc state names the container).
	procs, _ := os.ReadDir("/proc")
	for _, d := range procs {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, id := range tr.ids {
			if strings.Contains(string(b), id) {
				left = append(left, "process "+d.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		for _, id := range append(tr.ids, tr.netns) {
			if strings.Contains(l, id) {
				left = append(left, "mount "+l)
			}
		}
	}
	for _, p := range []string{tr.netns, filepath.Join(e.State, "cni", "ipam", "moat-e2e", tr.ip)} {
		if _, err := os.Lstat(p); err == nil {
			left = append(left, "file "+p)
		}
	}
	for _, id := range tr.ids {
		for _, p := range []string{
			filepath.Join(e.State, "runc", "k8s.io", id),
			filepath.Join(e.State, "containerd", "io.containerd.runtime.v2.task", "k8s.io", id),
			filepath.Join(e.Root, "io.containerd.snapshotter.v1.overlayfs", "snapshots", id),
		} {
			if _, err := os.Lstat(p); err == nil {
				left = append(left, "file "+p)
			}
		}
	}
	for _, c := range tr.cgroupDir {
		if _, err := os.Stat(c); err == nil {
			left = append(left, "cgroup "+c)
		}
	}
	return left
}

// TestRemoveLeavesNothing: after a pod with a running container is
// stopped and removed, nothing of it is left: no CRI object, process,
// mount, network namespace, IP lease, runtime state or cgroup.
func TestRemoveLeavesNothing(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "remove")
		cid := start(t, pod, harness.ContainerConfig("sleeper", harness.BusyboxImage, "sleep", "3600"))
		if _, err := e.WaitState(ctx, cid, runtimeapi.ContainerState_CONTAINER_RUNNING); err != nil {
			t.Fatal(err)
		}
		tr := tracesOf(ctx, t, e, pod, cid)
		if left := tr.leftovers(ctx, e); len(left) == 0 {
			t.Fatal("a running pod shows no traces: the leftover check would prove nothing")
		}
		if err := pod.Remove(ctx); err != nil {
			t.Fatal(err)
		}
		if left := tr.leftovers(ctx, e); len(left) > 0 {
			t.Errorf("removed pod left:\n%s", strings.Join(left, "\n"))
		}
	})
}

// TestManyPods: 20 pods are run at once, each with a running container
// and its own address, then removed at once, leaving nothing.
func TestManyPods(t *testing.T) {
	t.Parallel()
	const n = 20
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pods := make([]*harness.Pod, n)
		cids := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pod, err := e.RunPod(ctx, e.PodConfig(fmt.Sprintf("many-%02d", i)), h)
				if err != nil {
					errs[i] = err
					return
				}
				pods[i] = pod
				cids[i], errs[i] = pod.Start(ctx, harness.ContainerConfig("c", harness.BusyboxImage,
					"sh", "-c", fmt.Sprintf("echo pod-%02d; exec sleep 3600", i)))
			}()
		}
		wg.Wait()
		t.Cleanup(func() {
			for _, p := range pods {
				if p != nil {
					_ = p.Remove(context.Background())
				}
			}
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("pod %d: %v", i, err)
			}
		}
		ips := map[string]int{}
		traces := make([]podTraces, n)
		for i, p := range pods {
			waitLog(ctx, t, e, cids[i], fmt.Sprintf("pod-%02d", i))
			if st, err := e.ContainerStatus(ctx, cids[i]); err != nil || st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Errorf("pod %d container: %v (%v), want RUNNING", i, st.GetState(), err)
			}
			traces[i] = tracesOf(ctx, t, e, p, cids[i])
			if j, dup := ips[traces[i].ip]; dup {
				t.Errorf("pods %d and %d share IP %s", j, i, traces[i].ip)
			}
			ips[traces[i].ip] = i
		}

		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = pods[i].Remove(ctx)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("remove pod %d: %v", i, err)
			}
			if left := traces[i].leftovers(ctx, e); len(left) > 0 {
				t.Errorf("removed pod %d left:\n%s", i, strings.Join(left, "\n"))
			}
		}
	})
}

// TestContainerdRestart: containerd exits on a signal (as when the node
// agent restarts it) and the supervisor starts it again; running pods and
// containers survive and still answer exec. Not parallel: the other tests
// would see containerd go away.
func TestContainerdRestart(t *testing.T) {
	e := env(t)
	for _, h := range handlersFor(t) {
		t.Run(h, func(t *testing.T) {
			ctx := testCtx(t)
			pod, cid := sleeper(t, e, h, "restart")
			before := e.ContainerdStarts()
			oldPid, err := e.SignalContainerd(syscall.SIGTERM)
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := e.WaitRestarted(rctx, before); err != nil {
				t.Fatal(err)
			}
			if pid := e.ContainerdPID(); pid == oldPid || pid == 0 {
				t.Errorf("containerd pid after restart %d, before %d", pid, oldPid)
			}
			st, err := pod.Status(ctx)
			if err != nil || st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
				t.Fatalf("pod after restart: %v (%v), want SANDBOX_READY", st.GetState(), err)
			}
			r, err := e.CRI.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"echo", "alive"}, Timeout: 30})
			if err != nil || string(r.Stdout) != "alive\n" {
				t.Fatalf("exec after restart: %q (%v)", r.GetStdout(), err)
			}
		})
	}
}
