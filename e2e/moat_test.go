package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"moat.dev/moat/cri"
	"moat.dev/moat/e2e/harness"
	"moat.dev/moat/sentry/control"
	"moat.dev/moat/shim"
)

// shimBuildDir holds the shim built for the moat scenarios; moatConfig is
// the moat handler's options file in use ("" for none).
var shimBuildDir, moatConfig string

// moatOptions reads the moat handler's options in use.
func moatOptions(t *testing.T) shim.Options {
	t.Helper()
	if moatConfig == "" {
		return shim.DefaultOptions()
	}
	b, err := os.ReadFile(moatConfig)
	if err != nil {
		t.Fatal(err)
	}
	o, err := shim.ParseOptions(b)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// buildShim builds containerd-shim-moat-v2 from this tree and writes its
// options file; it returns their paths.
func buildShim() (shim, config string, err error) {
	dir, err := os.MkdirTemp("", "moat-e2e-shim-")
	if err != nil {
		return "", "", err
	}
	shimBuildDir = dir
	shim = filepath.Join(dir, "containerd-shim-moat-v2")
	cmd := exec.Command("go", "build", "-o", shim, "moat.dev/moat/cmd/containerd-shim-moat-v2")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("build containerd-shim-moat-v2: %v\n%s", err, out)
	}
	config = filepath.Join(dir, "moat.toml")
	if err := os.WriteFile(config, []byte("max_vcpus = 1\nlog_level = \"info\"\n"), 0o644); err != nil {
		return "", "", err
	}
	return shim, config, nil
}

// needKVM skips a moat scenario on a machine without /dev/kvm unless
// MOAT_REQUIRE_KVM=1 makes that a failure.
func needKVM(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/kvm"); err != nil {
		if os.Getenv("MOAT_REQUIRE_KVM") == "1" || harness.Required() {
			t.Fatalf("/dev/kvm is missing: %v", err)
		}
		t.Skipf("moat needs /dev/kvm: %v", err)
	}
}

// moatPod runs a pod with the moat handler and returns it with the host
// pid of its sentry.
func moatPod(t *testing.T, e *harness.Env, name string) (*harness.Pod, int) {
	t.Helper()
	needKVM(t)
	pod := runPod(t, e, harness.HandlerMoat, name)
	ctx := testCtx(t)
	st, err := pod.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("moat pod state %v, want SANDBOX_READY", st.State)
	}
	info := podInfo(ctx, t, e, pod.ID)
	if info.RuntimeType != harness.MoatRuntimeType {
		t.Errorf("pod runtime type %q, want %q", info.RuntimeType, harness.MoatRuntimeType)
	}
	if info.Pid <= 0 {
		t.Fatalf("moat pod reports pid %d", info.Pid)
	}
	if cmd := procCmdline(info.Pid); !strings.Contains(cmd, "containerd-shim-moat-v2 sentry") {
		t.Errorf("pod pid %d is %q, want the pod's sentry", info.Pid, cmd)
	}
	// The sentry is shut in an empty root of its own.
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/root/", info.Pid)); err != nil || len(ents) != 0 {
		t.Errorf("the sentry's root holds %v (%v), want nothing", ents, err)
	}
	// It keeps only the capabilities it needs, with no_new_privs and its
	// seccomp filter.
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", info.Pid)); err != nil ||
		!strings.Contains(string(st), fmt.Sprintf("CapEff:\t%016x\n", uint64(control.SentryCaps))) ||
		!strings.Contains(string(st), fmt.Sprintf("CapBnd:\t%016x\n", uint64(control.SentryCaps))) ||
		!strings.Contains(string(st), "NoNewPrivs:\t1\n") || !strings.Contains(string(st), "Seccomp:\t2\n") {
		t.Errorf("sentry %d capabilities: want CapEff and CapBnd %016x and NoNewPrivs; status:\n%s (%v)", info.Pid, uint64(control.SentryCaps), st, err)
	}
	// The sentry is in the pod's network namespace (the one CNI set up).
	if ns := info.netns(); ns == "" {
		t.Errorf("the pod has no network namespace path")
	} else if want, got := nsID(t, ns), nsID(t, fmt.Sprintf("/proc/%d/ns/net", info.Pid)); want != got {
		t.Errorf("sentry network namespace %s, want the pod's %s (%s)", got, want, ns)
	}
	// The sentry runs in the pod's cgroup, so the pod's limits bound it.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", info.Pid)); err != nil || !strings.Contains(string(b), pod.Config.Linux.CgroupParent+"/") {
		t.Errorf("sentry %d is not in the pod's cgroup %s: %q (%v)", info.Pid, pod.Config.Linux.CgroupParent, b, err)
	}
	return pod, info.Pid
}

func procCmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// alive reports whether a process with this pid exists (not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// TestMoatEcho: a busybox container in a moat pod prints to its log and
// exits 0; another exits 3; every container of the pod runs in the
// pod's one sentry.
func TestMoatEcho(t *testing.T) {
	t.Parallel()
	e := env(t)
	ctx := testCtx(t)
	pod, sentry := moatPod(t, e, "moat-echo")

	id := start(t, pod, harness.ContainerConfig("echo", harness.BusyboxImage, "echo", "hello from moat"))
	cs, err := e.WaitExited(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if cs.ExitCode != 0 || cs.Reason != "Completed" {
		t.Errorf("echo: exit code %d reason %q, want 0 and Completed", cs.ExitCode, cs.Reason)
	}
	if out, err := logEquals(ctx, e, id, "stdout", "hello from moat\n"); err != nil || out != "hello from moat\n" {
		t.Errorf("echo: stdout log %q (%v), want %q", out, err, "hello from moat\n")
	}
	if pid := containerInfo(ctx, t, e, id).Pid; pid != 0 && pid != sentry {
		t.Errorf("container pid %d, want the pod's sentry %d", pid, sentry)
	}

	id3 := start(t, pod, harness.ContainerConfig("three", harness.BusyboxImage, "sh", "-c", "exit 3"))
	cs, err = e.WaitExited(ctx, id3)
	if err != nil {
		t.Fatal(err)
	}
	if cs.ExitCode != 3 || cs.Reason != "Error" {
		t.Errorf("exit 3: exit code %d reason %q, want 3 and Error", cs.ExitCode, cs.Reason)
	}

	// A read-only root filesystem (readOnlyRootFilesystem) refuses
	// writes; its tmpfs mounts do not.
	ro := harness.ContainerConfig("ro", harness.BusyboxImage, "sh", "-c", "{ echo y > /x; } 2>/dev/null || echo read-only")
	ro.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{ReadonlyRootfs: true}}
	idro := start(t, pod, ro)
	if cs, err := e.WaitExited(ctx, idro); err != nil || cs.ExitCode != 0 {
		t.Fatalf("read-only root container: %v, %v", cs, err)
	}
	if out, err := logEquals(ctx, e, idro, "stdout", "read-only\n"); err != nil || out != "read-only\n" {
		t.Errorf("read-only root: log %q (%v), want %q", out, err, "read-only\n")
	}

	if err := pod.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	waitGone(t, sentry)
}

// TestMoatExecStop: an exec runs beside a sleeping container; stats show
// its memory; stopping the pod with a grace period ends every process and
// removal leaves no sentry behind.
func TestMoatExecStop(t *testing.T) {
	t.Parallel()
	e := env(t)
	ctx := testCtx(t)
	pod, sentry := moatPod(t, e, "moat-exec")

	cfg := harness.ContainerConfig("sleeper", harness.BusyboxImage, "sleep", "3600")
	id := start(t, pod, cfg)
	if _, err := e.WaitState(ctx, id, runtimeapi.ContainerState_CONTAINER_RUNNING); err != nil {
		t.Fatal(err)
	}
	r, err := e.CRI.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"echo", "exec works"}, Timeout: 60})
	if err != nil {
		t.Fatalf("ExecSync: %v", err)
	}
	if string(r.Stdout) != "exec works\n" || r.ExitCode != 0 {
		t.Errorf("ExecSync: stdout %q stderr %q exit %d; want %q and 0", r.Stdout, r.Stderr, r.ExitCode, "exec works\n")
	}
	r, err = e.CRI.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"false"}, Timeout: 60})
	if err != nil || r.ExitCode != 1 {
		t.Errorf("ExecSync false: exit %d, %v; want 1", r.GetExitCode(), err)
	}

	st, err := e.CRI.Runtime.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStats: %v", err)
	}
	if st.GetStats().GetMemory().GetWorkingSetBytes().GetValue() == 0 {
		t.Errorf("ContainerStats shows no memory: %+v", st.GetStats())
	}

	// The stop's SIGTERM ends sleep (it has no handler): exit 128+15.
	if _, err := e.CRI.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 10}); err != nil {
		t.Fatal(err)
	}
	cs, err := e.ContainerStatus(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if cs.State != runtimeapi.ContainerState_CONTAINER_EXITED || cs.ExitCode != 128+int32(syscall.SIGTERM) {
		t.Errorf("stopped sleeper: state %v exit %d, want EXITED and 143", cs.State, cs.ExitCode)
	}
	if _, err := e.CRI.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if !alive(sentry) {
		t.Errorf("the sentry ended with a container while its pod still runs")
	}
	if err := pod.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	waitGone(t, sentry)
}

// waitGone waits for the sentry process to be gone.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for alive(pid) {
		select {
		case <-ctx.Done():
			t.Fatalf("the pod's sentry (pid %d, %q) still runs after the pod was removed", pid, procCmdline(pid))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// nproc runs busybox nproc in the pod and returns what it printed.
func nproc(ctx context.Context, t *testing.T, e *harness.Env, pod *harness.Pod, name string, mutate func(*runtimeapi.ContainerConfig)) string {
	t.Helper()
	cfg := harness.ContainerConfig(name, harness.BusyboxImage, "nproc")
	if mutate != nil {
		mutate(cfg)
	}
	id := start(t, pod, cfg)
	cs, err := e.WaitExited(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// The log file is written behind the exit: wait for the line.
	var out string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err = e.Logs(ctx, id, "stdout")
		if strings.HasSuffix(out, "\n") || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || cs.ExitCode != 0 {
		t.Fatalf("nproc: exit %d, log %q, %v", cs.ExitCode, out, err)
	}
	return strings.TrimSpace(out)
}

// TestMoatVCPUs: a pod's vCPUs follow its CPU limit: the pod-level limit
// (1.5 CPUs → 2), else its containers' limits (1 CPU → 1), else the
// handler's cap; a resource update of a running container changes the
// count (3 CPUs → 3).
func TestMoatVCPUs(t *testing.T) {
	t.Parallel()
	e := env(t)
	ctx := testCtx(t)
	needKVM(t)

	limited := runPod(t, e, harness.HandlerMoat, "moat-cpu-pod", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuQuota: 150000, CpuPeriod: 100000, MemoryLimitInBytes: 256 << 20}
	})
	if got := nproc(ctx, t, e, limited, "nproc", nil); got != "2" {
		t.Errorf("pod limit 1.5 CPUs: nproc %q, want 2", got)
	}

	// No limit at all: the host's CPUs, capped by max_vcpus of the
	// handler's options file (1 in the file buildShim writes).
	free := runPod(t, e, harness.HandlerMoat, "moat-cpu-free")
	max := moatOptions(t).MaxVCPUs
	want := strconv.Itoa(cri.VCPUs(0, runtime.NumCPU(), max))
	if got := nproc(ctx, t, e, free, "nproc", nil); got != want {
		t.Errorf("no CPU limit, max_vcpus = %d: nproc %q, want %s", max, got, want)
	}

	pod := runPod(t, e, harness.HandlerMoat, "moat-cpu-ctr")
	oneCPU := func(c *runtimeapi.ContainerConfig) {
		c.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{CpuQuota: 100000, CpuPeriod: 100000}}
	}
	sleeper := harness.ContainerConfig("sleeper", harness.BusyboxImage, "sleep", "3600")
	oneCPU(sleeper)
	sid := start(t, pod, sleeper)
	if _, err := e.WaitState(ctx, sid, runtimeapi.ContainerState_CONTAINER_RUNNING); err != nil {
		t.Fatal(err)
	}
	r, err := e.CRI.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: sid, Cmd: []string{"nproc"}, Timeout: 60})
	if err != nil || strings.TrimSpace(string(r.Stdout)) != "1" {
		t.Errorf("container limit 1 CPU: nproc %q (%v), want 1", r.GetStdout(), err)
	}
	if _, err := e.CRI.Runtime.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
		ContainerId: sid, Linux: &runtimeapi.LinuxContainerResources{CpuQuota: 300000, CpuPeriod: 100000},
	}); err != nil {
		t.Fatalf("UpdateContainerResources: %v", err)
	}
	r, err = e.CRI.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: sid, Cmd: []string{"nproc"}, Timeout: 60})
	if err != nil || strings.TrimSpace(string(r.Stdout)) != "3" {
		t.Errorf("after an update to 3 CPUs: nproc %q (%v), want 3", r.GetStdout(), err)
	}
}

// TestMoatOOM: a container that outgrows the pod's memory limit is killed
// by the sentry's kernel and reported as OOMKilled with exit code 137.
func TestMoatOOM(t *testing.T) {
	t.Parallel()
	e := env(t)
	ctx := testCtx(t)
	pod, _ := moatPod(t, e, "moat-oom")
	cfg := harness.ContainerConfig("hog", harness.BusyboxImage, "sh", "-c", "a=aaaaaaaaaaaaaaaa; while true; do a=$a$a; done")
	cfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}}
	id := start(t, pod, cfg)
	cs, err := e.WaitExited(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if cs.ExitCode != 137 || cs.Reason != "OOMKilled" {
		t.Errorf("memory hog: exit %d reason %q, want 137 and OOMKilled", cs.ExitCode, cs.Reason)
	}
}

// TestMoatSentryCrash: when a pod's sentry dies, its containers end with
// 128+SIGKILL instead of hanging, and the pod can still be removed.
func TestMoatSentryCrash(t *testing.T) {
	t.Parallel()
	e := env(t)
	ctx := testCtx(t)
	pod, sentry := moatPod(t, e, "moat-crash")
	id := start(t, pod, harness.ContainerConfig("sleeper", harness.BusyboxImage, "sleep", "3600"))
	if _, err := e.WaitState(ctx, id, runtimeapi.ContainerState_CONTAINER_RUNNING); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(sentry, syscall.SIGKILL); err != nil {
		t.Fatalf("kill sentry %d: %v", sentry, err)
	}
	cs, err := e.WaitExited(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if cs.ExitCode != 137 {
		t.Errorf("container of a crashed sentry: exit %d, want 137", cs.ExitCode)
	}
	if err := pod.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	waitGone(t, sentry)
}

// nsID identifies the namespace file at p (device and inode).
func nsID(t *testing.T, p string) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// TestMoatCtrRun: a container made outside CRI (ctr run, no pod
// annotations) is a pod of its own: it runs, prints and exits with its
// code, and nothing of it stays.
func TestMoatCtrRun(t *testing.T) {
	t.Parallel()
	e := env(t)
	ctx := testCtx(t)
	needKVM(t)
	id := fmt.Sprintf("ctr-moat-%d", time.Now().UnixNano())
	out, err := e.Ctr(ctx, "run", "--rm", "--runtime", harness.MoatRuntimeType, harness.BusyboxImage, id,
		"sh", "-c", "echo hello from ctr; exit 0")
	if err != nil || !strings.Contains(out, "hello from ctr\n") {
		t.Fatalf("ctr run with moat: %q, %v", out, err)
	}
	_, err = e.Ctr(ctx, "run", "--rm", "--runtime", harness.MoatRuntimeType, harness.BusyboxImage, id+"-3", "sh", "-c", "exit 3")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("ctr run of exit 3: %v, want exit status 3", err)
	}
	if out, err := e.Ctr(ctx, "containers", "ls", "-q"); err != nil || strings.Contains(out, id) {
		t.Errorf("containers left after ctr run --rm: %q, %v", out, err)
	}
}

// TestMoatSeccomp: the container's seccomp profile is enforced by the
// sentry: RuntimeDefault (containerd's profile, mode 2) and a Localhost
// profile file (mkdir refused with the profile's errno); Unconfined,
// none.
func TestMoatSeccomp(t *testing.T) {
	t.Parallel()
	e := env(t)
	ctx := testCtx(t)
	pod, sentry := moatPod(t, e, "moat-seccomp")
	profile := filepath.Join(t.TempDir(), "no-mkdir.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW",
		"syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, sp *runtimeapi.SecurityProfile, script string) string {
		t.Helper()
		c := harness.ContainerConfig(name, harness.BusyboxImage, "sh", "-c", script)
		c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{Seccomp: sp}}
		id := start(t, pod, c)
		if _, err := e.WaitExited(ctx, id); err != nil {
			t.Fatal(err)
		}
		// The log file is written behind the exit: wait for the end.
		var out string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if out, _ = e.Logs(ctx, id, "stdout"); strings.HasSuffix(out, "done\n") {
				break
			}
		}
		return out
	}
	status := "grep Seccomp: /proc/self/status; "
	if out := run("default", &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
		status+"echo done"); out != "Seccomp:\t2\ndone\n" {
		t.Errorf("RuntimeDefault: %q", out)
	}
	if out := run("localhost", &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: profile},
		status+"mkdir /tmp/d 2>&1; echo done"); out != "Seccomp:\t2\nmkdir: can't create directory '/tmp/d': Read-only file system\ndone\n" {
		t.Errorf("Localhost profile: %q", out)
	}
	if out := run("unconfined", &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined},
		status+"mkdir /tmp/d && echo made; echo done"); out != "Seccomp:\t0\nmade\ndone\n" {
		t.Errorf("Unconfined: %q", out)
	}
	if err := pod.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	waitGone(t, sentry)
}
