package auth

import "testing"

func TestCredentials(t *testing.T) {
	c := User(1000, 100, 20, 30)
	for _, tc := range []struct {
		gid  uint32
		want bool
	}{{100, true}, {20, true}, {30, true}, {0, false}, {1000, false}} {
		if got := c.InGroup(tc.gid); got != tc.want {
			t.Errorf("InGroup(%d) = %v, want %v", tc.gid, got, tc.want)
		}
	}
	if c.HasCap(CapChown) {
		t.Error("an unprivileged user holds CAP_CHOWN")
	}
	r := Root()
	for _, cp := range []Capability{CapChown, CapDACOverride, CapFowner, CapSysAdmin, CapLastCap} {
		if !r.HasCap(cp) {
			t.Errorf("root lacks capability %d", cp)
		}
	}
	s := CapSetOf(CapFowner, CapMknod)
	c.Effective = s
	if !c.HasCap(CapFowner) || !c.HasCap(CapMknod) || c.HasCap(CapDACOverride) {
		t.Errorf("CapSetOf(CAP_FOWNER, CAP_MKNOD) = %#x", s)
	}
}
