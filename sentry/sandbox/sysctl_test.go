package sandbox_test

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"moat.dev/moat/sentry/sandbox"
	"moat.dev/moat/sentry/sandbox/sandboxtest"
)

// TestSysctls: the sandbox's own sysctls (IPC, UTS) take the values of
// its configuration and a privileged guest can change them; /proc/sys/net
// reads the network namespace the sentry runs in; unknown sysctls are
// refused by name.
func TestSysctls(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, true)
	script := `cat /proc/sys/kernel/shm_rmid_forced /proc/sys/fs/mqueue/msg_max /proc/sys/kernel/sem /proc/sys/kernel/domainname
echo 4096 > /proc/sys/kernel/msgmax && cat /proc/sys/kernel/msgmax
echo bad > /proc/sys/kernel/msgmni || echo refused
cat /proc/sys/net/ipv4/ip_local_port_range /proc/sys/net/ipv4/ip_unprivileged_port_start
echo 1 > /proc/sys/net/ipv4/ip_unprivileged_port_start || echo read-only
uname -n; domainname 2>/dev/null || cat /proc/sys/kernel/domainname`
	r := sandboxtest.Run(t, root, []string{"/bin/sh", "-c", script}, sandboxtest.Options{Sysctls: map[string]string{
		"kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "100", "kernel.sem": "250 32000 32 128",
		"kernel.domainname": "example.org",
	}})
	hostRange, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	hostStart, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Fatal(err)
	}
	want := "1\n100\n250\t32000\t32\t128\nexample.org\n4096\nrefused\n" + string(hostRange) + string(hostStart) +
		"read-only\nsandboxtest\nexample.org\n"
	if r.ExitCode() != 0 || r.Stdout != want {
		t.Fatalf("exit %d\nstdout %q\nwant   %q\nstderr %q", r.ExitCode(), r.Stdout, want, r.Stderr)
	}
}

// TestSysctlUnknown: a sysctl the sandbox does not keep is an error that
// names it.
func TestSysctlUnknown(t *testing.T) {
	sandboxtest.RequireKVM(t)
	for _, tc := range []struct{ name, value string }{
		{"kernel.panic", "1"},
		{"net.ipv4.ip_forward", "1"}, // the network namespace's, not the sandbox's
		{"kernel.shm_rmid_forced", "2"},
		{"kernel.msgmax", "1\n2"},
	} {
		sb, err := sandbox.New(sandbox.Config{Memory: 64 << 20, Sysctls: map[string]string{tc.name: tc.value}})
		if err == nil {
			sb.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("sysctl %s=%q: error %v, want one naming it", tc.name, tc.value, err)
		}
	}
}

// TestProcNet: /proc/net shows the sockets of the network namespace the
// sentry runs in (here the test's own), as netstat reads them: a
// listener made on the host side is listed.
func TestProcNet(t *testing.T) {
	sandboxtest.RequireKVM(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	root := sandboxtest.Rootfs(t, true)
	r := sandboxtest.Run(t, root, []string{"/bin/sh", "-c", "netstat -ltn; cat /proc/net/unix; head -1 /proc/self/net/tcp6"}, sandboxtest.Options{})
	if r.ExitCode() != 0 || !strings.Contains(r.Stdout, "127.0.0.1:"+strconv.Itoa(port)) || !strings.Contains(r.Stdout, "Num       RefCount") ||
		!strings.Contains(r.Stdout, "local_address") {
		t.Fatalf("listener 127.0.0.1:%d not in /proc/net: exit %d\nstdout %s\nstderr %s", port, r.ExitCode(), r.Stdout, r.Stderr)
	}
}
