package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"moat.dev/moat/cri"
	"moat.dev/moat/e2e/harness"
)

// TestRuntimeInfo: containerd offers every handler under test, uses the
// cgroupfs driver, and reports ready.
func TestRuntimeInfo(t *testing.T) {
	e := env(t)
	ctx := testCtx(t)
	hs, err := e.CRI.RuntimeHandlers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range e.Handlers {
		if ok, err := e.CRI.HasHandler(ctx, h); err != nil || !ok {
			t.Errorf("handler %q not offered (handlers %q, err %v)", h, hs, err)
		}
	}
	rc, err := e.CRI.RuntimeConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := rc.GetLinux().GetCgroupDriver(); d != runtimeapi.CgroupDriver_CGROUPFS {
		t.Errorf("cgroup driver %v, want CGROUPFS", d)
	}
	if err := e.CRI.Ready(ctx); err != nil {
		t.Error(err)
	}
}

// TestRunContainer: a pod runs, a container starts, its stdout and stderr
// reach the CRI log and its exit code and reason are reported.
func TestRunContainer(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "run")
		st, err := pod.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Fatalf("pod state %v, want SANDBOX_READY", st.State)
		}
		if st.GetNetwork().GetIp() == "" {
			t.Errorf("pod has no IP from CNI: %+v", st.GetNetwork())
		}

		failing := start(t, pod, harness.ContainerConfig("failing", harness.BusyboxImage,
			"sh", "-c", "echo out-line; echo err-line >&2; exit 3"))
		cs, err := e.WaitExited(ctx, failing)
		if err != nil {
			t.Fatal(err)
		}
		if cs.ExitCode != 3 || cs.Reason != "Error" {
			t.Errorf("exit code %d reason %q, want 3 and Error", cs.ExitCode, cs.Reason)
		}
		if out, err := logEquals(ctx, e, failing, "stdout", "out-line\n"); err != nil || out != "out-line\n" {
			t.Errorf("stdout log %q (%v), want %q", out, err, "out-line\n")
		}
		if out, err := logEquals(ctx, e, failing, "stderr", "err-line\n"); err != nil || out != "err-line\n" {
			t.Errorf("stderr log %q (%v), want %q", out, err, "err-line\n")
		}

		ok := start(t, pod, harness.ContainerConfig("ok", harness.BusyboxImage,
			"sh", "-c", "cat /etc/hostname; echo $((6*7))"))
		cs, err = e.WaitExited(ctx, ok)
		if err != nil {
			t.Fatal(err)
		}
		if cs.ExitCode != 0 || cs.Reason != "Completed" {
			t.Errorf("exit code %d reason %q, want 0 and Completed", cs.ExitCode, cs.Reason)
		}
		if out, _ := logEquals(ctx, e, ok, "stdout", "run\n42\n"); out != "run\n42\n" {
			t.Errorf("stdout log %q, want %q", out, "run\n42\n")
		}
	})
}

// TestCRIAnnotations: the annotations containerd writes into the OCI specs
// (what a shim reads) decode with cri.FromSpec, and the pod CPU limit maps
// to vCPUs by DESIGN.md's rule.
func TestCRIAnnotations(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "annotated", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Resources = &runtimeapi.LinuxContainerResources{
				CpuQuota: 150000, CpuPeriod: 100000, CpuShares: 1536, MemoryLimitInBytes: 256 << 20,
			}
		})
		sb := podInfo(ctx, t, e, pod.ID)
		if sb.RuntimeSpec == nil {
			t.Fatal("sandbox verbose status has no runtimeSpec")
		}
		info, err := cri.FromSpec(sb.RuntimeSpec)
		if err != nil {
			t.Fatal(err)
		}
		want := cri.Info{
			Type: cri.ContainerTypeSandbox, SandboxID: pod.ID,
			PodName: "annotated", PodNamespace: harness.PodNamespace, PodUID: pod.Config.Metadata.Uid,
			CPUQuota: 150000, CPUPeriod: 100000, CPUShares: 1536, MemoryLimit: 256 << 20,
		}
		if info.Type != want.Type || info.SandboxID != want.SandboxID || info.PodName != want.PodName ||
			info.PodNamespace != want.PodNamespace || info.PodUID != want.PodUID || info.CPUQuota != want.CPUQuota ||
			info.CPUPeriod != want.CPUPeriod || info.CPUShares != want.CPUShares || info.MemoryLimit != want.MemoryLimit {
			t.Errorf("sandbox annotations decode to\n%+v\nwant (at least)\n%+v", *info, want)
		}
		if n := cri.VCPUs(info.PodCPULimit(), 2, 0); n != 2 {
			t.Errorf("vCPUs for a 1.5 CPU pod = %d, want 2", n)
		}
		wantType := "io.containerd.runc.v2"
		if h == harness.HandlerMoat {
			wantType = harness.MoatRuntimeType
		}
		if sb.RuntimeType != wantType {
			t.Errorf("sandbox runtime type %q, want %q", sb.RuntimeType, wantType)
		}
		if info.Handler != "" && info.Handler != h {
			t.Errorf("runtime-handler annotation %q, want %q", info.Handler, h)
		}

		cid := start(t, pod, harness.ContainerConfig("app", harness.BusyboxImage, "sleep", "3600"))
		ci := containerInfo(ctx, t, e, cid)
		cinfo, err := cri.FromSpec(ci.RuntimeSpec)
		if err != nil {
			t.Fatal(err)
		}
		if cinfo.IsSandbox() || cinfo.SandboxID != pod.ID || cinfo.ContainerName != "app" ||
			!strings.Contains(cinfo.ImageName, "busybox") {
			t.Errorf("container annotations decode to %+v", *cinfo)
		}
	})
}

// TestStaticCProgram: a static glibc program built here runs in a
// scratch image with threads and fork, and its exit code comes back.
func TestStaticCProgram(t *testing.T) {
	t.Parallel()
	e := env(t)
	bin := filepath.Join(t.TempDir(), "hello")
	if err := e.Tools.BuildStaticC(bin, "testbin/cstatic/hello.c"); err != nil {
		harness.SkipOrFail(t, err)
	}
	const image = "moat.test/cstatic:e2e"
	err := e.ImportImage(testCtx(t), harness.Image{
		Name:       image,
		Files:      []harness.File{{Path: "/hello", HostPath: bin, Mode: 0o755}},
		Entrypoint: []string{"/hello"},
	})
	if err != nil {
		t.Fatal(err)
	}
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "cstatic")
		c := harness.ContainerConfig("hello", image)
		c.Command = nil
		c.Args = []string{"5"}
		cid := start(t, pod, c)
		st, err := e.WaitExited(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		want := "hello from static C, argc=2\nthread says hi\nchild exited 7\n"
		if out, _ := e.Logs(ctx, cid, "stdout"); st.ExitCode != 5 || out != want {
			t.Errorf("exit %d stdout %q; want 5 and %q", st.ExitCode, out, want)
		}
	})
}

// debianRootfs is the Debian 12 minbase tree .ci/install.d/30-debian-rootfs.sh
// makes (shared with the sentry's tests).
func debianRootfs() string {
	if d := os.Getenv("MOAT_DEBIAN_ROOTFS"); d != "" {
		return d
	}
	return "/var/cache/moat-test/debian-bookworm"
}

// TestDebianImage: an image made from a debootstrap minbase root
// filesystem runs dynamically linked glibc programs (bash, coreutils).
func TestDebianImage(t *testing.T) {
	t.Parallel()
	e := env(t)
	root := debianRootfs()
	if _, err := os.Stat(filepath.Join(root, ".moat-complete")); err != nil {
		harness.SkipOrFail(t, &harness.MissingToolsError{Missing: []string{root + " (.ci/install.d/30-debian-rootfs.sh)"}})
	}
	const image = "moat.test/debian:bookworm"
	if err := e.ImportImage(testCtx(t), harness.Image{Name: image, LayerDir: root, Cmd: []string{"bash"}}); err != nil {
		t.Fatal(err)
	}
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "debian")
		cid := start(t, pod, harness.ContainerConfig("bash", image, "bash", "-c",
			`. /etc/os-release; echo "$ID $VERSION_ID"; head -c 4 /dev/zero | od -An -tx1 | tr -d ' \n'; echo; id -un; exit 3`))
		st, err := e.WaitExited(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		want := "debian 12\n00000000\nroot\n"
		if out, _ := e.Logs(ctx, cid, ""); st.ExitCode != 3 || out != want {
			t.Errorf("exit %d log %q; want 3 and %q", st.ExitCode, out, want)
		}
	})
}
