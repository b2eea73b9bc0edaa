package control_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"moat.dev/moat/sentry/control"
)

// TestNewNetNSAndSysctls: a sentry asked for a network namespace of its
// own runs in a new one whose only interface is an up loopback, and the
// sandbox sysctls of its configuration and of AddContainer reach the
// guest's /proc/sys.
func TestNewNetNSAndSysctls(t *testing.T) {
	needKVM(t)
	if os.Getuid() != 0 {
		if os.Getenv("MOAT_REQUIRE_KVM") != "" {
			t.Fatal("needs root (CAP_SYS_ADMIN) for a new network namespace; MOAT_REQUIRE_KVM is set")
		}
		t.Skip("needs root (CAP_SYS_ADMIN) for a new network namespace (not root here; MOAT_REQUIRE_KVM unset)")
	}
	t.Setenv(sentryEnv, "1")
	c, err := control.Launch([]string{os.Args[0]}, control.Config{CPUs: 1, Memory: 256 << 20, Hostname: "pod", Confine: true,
		NewNetNS: true, Sysctls: map[string]string{"kernel.shm_rmid_forced": "1"}}, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill(); <-c.Exited() })
	mine, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", c.Pid()))
	if err != nil || theirs == mine {
		t.Fatalf("the sentry's network namespace %q (%v), the test's %q", theirs, err, mine)
	}
	a, dirs, err := control.PrepareContainer("c1", busyboxRoot(t), false, []control.Mount{{Destination: "/proc", Type: "proc"}})
	if err != nil {
		t.Fatal(err)
	}
	a.Sysctls = map[string]string{"fs.mqueue.msg_max": "100"}
	err = c.AddContainer(a, dirs)
	for _, d := range dirs {
		d.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	// One process reads everything: the container's init is the PID 1
	// of its namespace, which ends with it.
	out, st := run(t, c, "c1", "", "/bin/sh", "-c", "cat /proc/net/dev /proc/sys/kernel/shm_rmid_forced /proc/sys/fs/mqueue/msg_max; echo ---; cat /proc/net/if_inet6 2>/dev/null || true")
	first, inet6, _ := strings.Cut(out, "---\n")
	if st != 0 || !strings.Contains(first, " lo:") || strings.Count(first, ":") != 1 || !strings.HasSuffix(first, "\n1\n100\n") {
		t.Fatalf("exit %d, output:\n%s\nwant only lo in /proc/net/dev, then 1 and 100", st, out)
	}
	// An up loopback has ::1 (where the host has IPv6).
	if host, err := os.ReadFile("/proc/net/if_inet6"); err == nil && strings.Contains(string(host), " lo") {
		if !strings.Contains(inet6, "00000000000000000000000000000001") {
			t.Errorf("the loopback is not up: /proc/net/if_inet6 is %q", inet6)
		}
	}
	// An unsupported sysctl is refused by name.
	a, dirs, err = control.PrepareContainer("c2", busyboxRoot(t), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Sysctls = map[string]string{"kernel.panic": "1"}
	err = c.AddContainer(a, dirs)
	for _, d := range dirs {
		d.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "kernel.panic") {
		t.Fatalf("AddContainer with kernel.panic: %v, want an error naming it", err)
	}
}
