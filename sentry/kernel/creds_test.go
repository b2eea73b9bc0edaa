package kernel

import (
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
)

// The capability rules of execve and of uid changes, against what
// capabilities(7) gives for them.

const (
	defaultCaps auth.CapSet = 0xa80425fb // a runtime's default set
	netRaw      auth.CapSet = 1 << 13
)

func TestExecCreds(t *testing.T) {
	root := &Creds{Caps: defaultCaps, Permitted: defaultCaps, Bounding: defaultCaps}
	user := func(nnp bool, amb auth.CapSet) *Creds {
		return &Creds{RUID: 1000, EUID: 1000, SUID: 1000, FSUID: 1000, RGID: 1000, EGID: 1000, SGID: 1000, FSGID: 1000,
			Permitted: amb, Inheritable: amb, Ambient: amb, Caps: amb, Bounding: defaultCaps, NoNewPrivs: nnp}
	}
	for _, c := range []struct {
		name           string
		old            *Creds
		mode, uid, gid uint32
		nosuid         bool
		euid, egid     uint32
		eff, prm, amb  auth.CapSet
		secure         bool
	}{
		{"root runs a program", root, 0o755, 0, 0, false, 0, 0, defaultCaps, defaultCaps, 0, false},
		{"root with an empty bounding set", &Creds{}, 0o755, 0, 0, false, 0, 0, 0, 0, 0, false},
		{"a user keeps only its ambient set", user(false, netRaw), 0o755, 0, 0, false, 1000, 1000, netRaw, netRaw, netRaw, false},
		{"a user without ambient gets nothing", user(false, 0), 0o755, 0, 0, false, 1000, 1000, 0, 0, 0, false},
		{"set-user-ID root makes a user root", user(false, netRaw), 0o4755, 0, 0, false, 0, 1000, defaultCaps, defaultCaps, 0, true},
		{"no_new_privs ignores set-user-ID", user(true, 0), 0o4755, 0, 0, false, 1000, 1000, 0, 0, 0, false},
		{"a nosuid mount ignores set-user-ID", user(false, 0), 0o4755, 0, 0, true, 1000, 1000, 0, 0, 0, false},
		{"set-group-ID needs group execute", user(false, 0), 0o2745, 0, 50, false, 1000, 1000, 0, 0, 0, false},
		{"set-group-ID", user(false, 0), 0o2755, 0, 50, false, 1000, 50, 0, 0, 0, true},
	} {
		got, secure := execCreds(c.old, unix.S_IFREG|c.mode, c.uid, c.gid, c.nosuid)
		if got.EUID != c.euid || got.SUID != c.euid || got.FSUID != c.euid || got.EGID != c.egid || got.SGID != c.egid ||
			got.Caps != c.eff || got.Permitted != c.prm || got.Ambient != c.amb || secure != c.secure {
			t.Errorf("%s: euid %d egid %d eff %#x prm %#x amb %#x secure %v; want euid %d egid %d eff %#x prm %#x amb %#x secure %v",
				c.name, got.EUID, got.EGID, got.Caps, got.Permitted, got.Ambient, secure, c.euid, c.egid, c.eff, c.prm, c.amb, c.secure)
		}
		if got.Bounding != c.old.Bounding || got.RUID != c.old.RUID {
			t.Errorf("%s: bounding %#x ruid %d changed", c.name, got.Bounding, got.RUID)
		}
	}
}

func TestFixupSetuid(t *testing.T) {
	all := &Creds{Caps: defaultCaps, Permitted: defaultCaps, Bounding: defaultCaps, Ambient: netRaw, Inheritable: netRaw}
	for _, c := range []struct {
		name          string
		keep          bool
		r, e, s, fs   uint32
		eff, prm, amb auth.CapSet
	}{
		{"leaving uid 0 entirely", false, 1000, 1000, 1000, 1000, 0, 0, 0},
		{"leaving it with keep-caps", true, 1000, 1000, 1000, 1000, 0, defaultCaps, 0},
		{"effective uid only: saved stays 0", false, 0, 1000, 0, 1000, 0, defaultCaps, netRaw},
		{"filesystem uid only", false, 0, 0, 0, 1000, defaultCaps &^ fsCaps, defaultCaps, netRaw},
	} {
		old := *all
		old.KeepCaps = c.keep
		n := old
		n.RUID, n.EUID, n.SUID, n.FSUID = c.r, c.e, c.s, c.fs
		FixupSetuid(&old, &n)
		if n.Caps != c.eff || n.Permitted != c.prm || n.Ambient != c.amb {
			t.Errorf("%s: eff %#x prm %#x amb %#x; want %#x %#x %#x", c.name, n.Caps, n.Permitted, n.Ambient, c.eff, c.prm, c.amb)
		}
	}
	// Back to euid 0 from a saved uid 0: the permitted set is effective again.
	old := Creds{RUID: 0, EUID: 1000, SUID: 0, FSUID: 1000, Permitted: defaultCaps}
	n := old
	n.EUID, n.FSUID = 0, 0
	FixupSetuid(&old, &n)
	if n.Caps != defaultCaps {
		t.Errorf("euid back to 0: eff %#x, want %#x", n.Caps, defaultCaps)
	}
}

func TestCompleteCreds(t *testing.T) {
	c := Creds{Caps: defaultCaps}
	c.complete()
	if c.Permitted != defaultCaps || c.Bounding != defaultCaps || c.Inheritable != 0 || c.Ambient != 0 {
		t.Errorf("an effective set alone: %+v", c)
	}
	c = Creds{Caps: defaultCaps | 1<<21, Permitted: defaultCaps, Ambient: netRaw | 1<<12, Inheritable: netRaw}
	c.complete()
	if c.Caps != defaultCaps || c.Ambient != netRaw {
		t.Errorf("effective beyond permitted or ambient beyond inheritable kept: %+v", c)
	}
}
