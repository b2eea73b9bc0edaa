package e2e

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"moat.dev/moat/e2e/harness"
)

// TestPodSysctls: a pod's sysctls reach its containers: an IPC one
// (kernel.shm_rmid_forced) and a network one (ip_local_port_range,
// written into the pod's network namespace); containerd's own
// ip_unprivileged_port_start=0 lets a non-root container listen on
// port 80, and netstat inside the pod lists that listener.
func TestPodSysctls(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "sysctls", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Sysctls = map[string]string{"kernel.shm_rmid_forced": "1", "net.ipv4.ip_local_port_range": "40000 50000"}
		})
		c := harness.ContainerConfig("sysctls", harness.BusyboxImage, "sh", "-c",
			`cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_local_port_range
nc -l -p 80 >/dev/null & sleep 1; netstat -ltn | grep -c ':80 '; kill $!`)
		c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			RunAsUser: &runtimeapi.Int64Value{Value: 1000}}}
		id := start(t, pod, c)
		cs, err := e.WaitExited(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := "1\n40000\t50000\n1\n"
		if out, _ := logEquals(ctx, e, id, "stdout", want); cs.ExitCode != 0 || out != want {
			logs, _ := e.Logs(ctx, id, "")
			t.Errorf("exit %d, stdout %q, want %q (log %q)", cs.ExitCode, out, want, logs)
		}
		// An unsupported sysctl fails the pod, naming it.
		cfg := e.PodConfig("bad-sysctl")
		cfg.Linux.Sysctls = map[string]string{"kernel.panic": "1"}
		if p, err := e.RunPod(ctx, cfg, h); err == nil {
			p.Remove(ctx)
			t.Errorf("a pod with kernel.panic ran")
		} else if !strings.Contains(err.Error(), "kernel.panic") {
			t.Errorf("a pod with kernel.panic: %v, want an error naming it", err)
		}
	})
}

// TestHostNetwork: a pod with host networking sees the host's sockets (a
// listener of the test process shows in its netstat, as critest checks)
// and has the host's hostname.
func TestHostNetwork(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() }) // after the handlers' parallel subtests
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "hostnet", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
			c.Hostname = "" // the host's UTS namespace goes with its network
		})
		id := start(t, pod, harness.ContainerConfig("netstat", harness.BusyboxImage, "sh", "-c", "netstat -ltn | grep -c ':"+port+" '; hostname"))
		cs, err := e.WaitExited(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := "1\n" + host + "\n"
		if out, _ := logEquals(ctx, e, id, "stdout", want); cs.ExitCode != 0 || out != want {
			t.Errorf("host listener :%s and hostname in the pod: exit %d, stdout %q, want %q", port, cs.ExitCode, out, want)
		}
	})
}
