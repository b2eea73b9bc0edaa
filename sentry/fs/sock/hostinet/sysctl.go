package hostinet

import (
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/fs/sock"
)

// NetSysctlReader reads a sysctl of the network namespace the sentry's
// sockets live in, by its path under /proc/sys/net
// ("ipv4/ip_unprivileged_port_start").
type NetSysctlReader func(rel string) (string, error)

var netSysctl atomic.Pointer[NetSysctlReader]

// SetNetSysctlReader tells the package how to read the network
// namespace's sysctls (the sentry gives up the host's /proc, so it reads
// them through a directory it opened before). Without one, Linux's
// defaults apply.
func SetNetSysctlReader(r NetSysctlReader) {
	if r == nil {
		netSysctl.Store(nil)
		return
	}
	netSysctl.Store(&r)
}

func readNetSysctl(rel string) (string, bool) {
	r := netSysctl.Load()
	if r == nil {
		return "", false
	}
	v, err := (*r)(rel)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(v), true
}

// unprivilegedPortStart is net.ipv4.ip_unprivileged_port_start of the
// network namespace (1024 unless set): ports below it need
// CAP_NET_BIND_SERVICE, as on Linux. A pod's is commonly 0 (containerd
// sets it for every pod with its own network).
func unprivilegedPortStart() int {
	v, ok := readNetSysctl("ipv4/ip_unprivileged_port_start")
	if !ok {
		return 1024
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 1024
	}
	return n
}

// pingAllowed says whether the caller may make an ICMP echo socket: its
// group or one of its supplementary groups must lie in the network
// namespace's net.ipv4.ping_group_range, as Linux checks it for the
// calling process (the host would check the sentry's own group).
func pingAllowed(c sock.Caller) error {
	v, ok := readNetSysctl("ipv4/ping_group_range")
	if !ok {
		return nil // the host's check alone
	}
	f := strings.Fields(v)
	if len(f) != 2 {
		return unix.EACCES
	}
	lo, err1 := strconv.ParseUint(f[0], 10, 32)
	hi, err2 := strconv.ParseUint(f[1], 10, 32)
	if err1 != nil || err2 != nil {
		return unix.EACCES
	}
	cr := c.FSCreds()
	in := func(g uint32) bool { return uint64(g) >= lo && uint64(g) <= hi }
	if in(cr.GID) {
		return nil
	}
	for _, g := range cr.Groups {
		if in(g) {
			return nil
		}
	}
	return unix.EACCES
}
