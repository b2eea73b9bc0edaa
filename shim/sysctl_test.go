package shim

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWriteNetSysctls writes net.* sysctls into a network namespace of
// its own and reads them back from inside it; the test's own namespace
// keeps its values.
func TestWriteNetSysctls(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("MOAT_REQUIRE_KVM") != "" {
			t.Fatal("needs root (CAP_SYS_ADMIN) to make a network namespace; MOAT_REQUIRE_KVM is set")
		}
		t.Skip("needs root (CAP_SYS_ADMIN) to make a network namespace (not root here; MOAT_REQUIRE_KVM unset)")
	}
	before, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Fatal(err)
	}
	type nsReq struct {
		read string
		resp chan string
	}
	paths := make(chan string)
	reqs := make(chan nsReq)
	errs := make(chan error, 1)
	go func() {
		// This thread lives in the new namespace and dies with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errs <- err
			return
		}
		paths <- fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		for r := range reqs {
			b, err := os.ReadFile(r.read)
			if err != nil {
				r.resp <- "error: " + err.Error()
				continue
			}
			r.resp <- strings.TrimSpace(string(b))
		}
	}()
	var ns string
	select {
	case ns = <-paths:
	case err := <-errs:
		t.Fatalf("unshare a network namespace: %v", err)
	}
	defer close(reqs)
	read := func(p string) string {
		r := nsReq{read: p, resp: make(chan string)}
		reqs <- r
		return <-r.resp
	}
	err = writeNetSysctls(ns, map[string]string{
		"net.ipv4.ip_unprivileged_port_start": "0",
		"net.ipv4.ping_group_range":           "0 2147483647",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := read("/proc/sys/net/ipv4/ip_unprivileged_port_start"); got != "0" {
		t.Errorf("ip_unprivileged_port_start in the namespace = %q, want 0", got)
	}
	if got := read("/proc/sys/net/ipv4/ping_group_range"); strings.Join(strings.Fields(got), " ") != "0 2147483647" {
		t.Errorf("ping_group_range in the namespace = %q", got)
	}
	after, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil || string(after) != string(before) {
		t.Errorf("the test's own namespace changed: %q -> %q (%v)", before, after, err)
	}
	if err := writeNetSysctls(ns, map[string]string{"net.ipv4.no_such_sysctl": "1"}); err == nil || !strings.Contains(err.Error(), "net.ipv4.no_such_sysctl") {
		t.Errorf("a missing sysctl: %v, want an error naming it", err)
	}
	if err := writeNetSysctls("", map[string]string{"net.ipv4.ip_forward": "1"}); err == nil {
		t.Errorf("net sysctls without a namespace were accepted")
	}
}
