package control_test

import (
	"strings"
	"testing"

	"moat.dev/moat/sentry/control"
)

func TestCheckSysctl(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		hostNet     bool
		kind        control.SysctlKind
		err         string // a part of the error; "" for none
	}{
		{"net.ipv4.ip_unprivileged_port_start", "0", false, control.SysctlNet, ""},
		{"net.ipv4.ping_group_range", "0 2147483647", false, control.SysctlNet, ""},
		{"net.ipv4.conf.eth0.rp_filter", "1", false, control.SysctlNet, ""},
		{"kernel.shm_rmid_forced", "1", false, control.SysctlSandbox, ""},
		{"fs.mqueue.msg_max", "100", true, control.SysctlSandbox, ""},
		{"kernel.sem", "250 32000 32 128", false, control.SysctlSandbox, ""},
		{"net.ipv4.ip_forward", "1", true, 0, "host's network namespace"},
		{"net.ipv4..ip_forward", "1", false, 0, "empty component"},
		{"net.ipv4/../../kernel.panic", "1", false, 0, "character"},
		{"net.core.somaxconn", "1\n2", false, 0, "newline"},
		{"net.core.somaxconn", strings.Repeat("1", 5000), false, 0, "longer"},
		{"kernel.panic", "1", false, 0, `"kernel.panic" is not supported`},
		{"vm.swappiness", "1", false, 0, `"vm.swappiness" is not supported`},
		{"kernel.shm_rmid_forced", "2", false, 0, "kernel.shm_rmid_forced"},
		{"kernel.msgmax", "x", false, 0, "kernel.msgmax"},
		{"kernel.hostname", strings.Repeat("h", 65), false, 0, "64 bytes"},
	} {
		kind, err := control.CheckSysctl(tc.name, tc.value, tc.hostNet)
		switch {
		case tc.err == "" && (err != nil || kind != tc.kind):
			t.Errorf("CheckSysctl(%q, %q, %v) = %v, %v; want %v", tc.name, tc.value, tc.hostNet, kind, err, tc.kind)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("CheckSysctl(%q, %q, %v) = %v, %v; want an error with %q", tc.name, tc.value, tc.hostNet, kind, err, tc.err)
		}
	}
}

func TestSplitSysctls(t *testing.T) {
	n, s, err := control.SplitSysctls(map[string]string{
		"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1",
	}, false)
	if err != nil || n["net.ipv4.ip_unprivileged_port_start"] != "0" || len(n) != 1 || s["kernel.shm_rmid_forced"] != "1" || len(s) != 1 {
		t.Fatalf("SplitSysctls = %v, %v, %v", n, s, err)
	}
	if _, _, err := control.SplitSysctls(map[string]string{"kernel.shm_rmid_forced": "1", "user.max_user_namespaces": "0"}, false); err == nil ||
		!strings.Contains(err.Error(), "user.max_user_namespaces") {
		t.Fatalf("an unsupported sysctl: %v", err)
	}
	if p, err := control.NetSysctlPath("net.ipv4.ip_forward"); err != nil || p != "net/ipv4/ip_forward" {
		t.Fatalf("NetSysctlPath = %q, %v", p, err)
	}
}
