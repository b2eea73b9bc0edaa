package hostinet

import (
	"context"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
)

// TestNetSysctls: binding a low port follows the network namespace's
// ip_unprivileged_port_start and an ICMP echo socket its
// ping_group_range, checked against the guest's groups.
func TestNetSysctls(t *testing.T) {
	vals := map[string]string{}
	SetNetSysctlReader(func(rel string) (string, error) {
		v, ok := vals[rel]
		if !ok {
			return "", unix.ENOENT
		}
		return v, nil
	})
	defer SetNetSysctlReader(nil)
	user := testCaller{auth.User(1000, 1000, 2000)}

	vals["ipv4/ip_unprivileged_port_start"] = "1024"
	if unprivilegedPortStart() != 1024 {
		t.Errorf("ip_unprivileged_port_start 1024 read as %d", unprivilegedPortStart())
	}
	vals["ipv4/ip_unprivileged_port_start"] = "0\n"
	s, err := New(user, unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(context.Background())
	// Port 1 on loopback: free on any test machine, and below 1024 (the
	// host lets the sentry, root, bind it).
	if err := s.Bind(user, inet4(1, [4]byte{127, 0, 0, 1}, 16)); err == unix.EACCES && os.Getuid() == 0 {
		t.Errorf("bind port 1 with ip_unprivileged_port_start=0: %v", err)
	}
	vals["ipv4/ip_unprivileged_port_start"] = "2000"
	s2, err := New(user, unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Release(context.Background())
	if err := s2.Bind(user, inet4(1500, [4]byte{127, 0, 0, 1}, 16)); err != unix.EACCES {
		t.Errorf("bind port 1500 with ip_unprivileged_port_start=2000: %v, want EACCES", err)
	}
	delete(vals, "ipv4/ip_unprivileged_port_start")
	if unprivilegedPortStart() != 1024 {
		t.Errorf("without the sysctl: %d, want Linux's 1024", unprivilegedPortStart())
	}

	for _, tc := range []struct {
		rng string
		err error
	}{
		{"1\t0", unix.EACCES},    // Linux's default: nobody
		{"0 999", unix.EACCES},   // neither 1000 nor 2000
		{"2000 2000", nil},       // the supplementary group
		{"0\t2147483647", nil},   // containerd's default for pods
		{"garbage", unix.EACCES}, // unreadable: refuse
	} {
		vals["ipv4/ping_group_range"] = tc.rng
		if err := pingAllowed(user); err != tc.err {
			t.Errorf("ping_group_range %q for gid 1000 (+2000): %v, want %v", tc.rng, err, tc.err)
		}
	}
}
