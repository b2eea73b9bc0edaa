package kernel

import (
	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
)

// Capabilities the process code checks.
const (
	capKill     auth.Capability = 5
	capSysAdmin auth.Capability = 21
)

// HasCap says whether the effective set holds c.
func (c *Creds) HasCap(cp auth.Capability) bool { return c.Caps&auth.CapSetOf(cp) != 0 }

// HasCapability says whether t's effective set holds c.
func (t *Task) HasCapability(c auth.Capability) bool { return t.creds.HasCap(c) }

// complete fills the capability sets of a Creds that gives only the
// effective one, and keeps the sets consistent as Linux does: effective
// within permitted, ambient within permitted and inheritable.
func (c *Creds) complete() {
	if c.Permitted == 0 && c.Inheritable == 0 && c.Bounding == 0 && c.Ambient == 0 && c.Caps != 0 {
		c.Permitted, c.Bounding = c.Caps, c.Caps
	}
	c.Caps &= c.Permitted
	c.Ambient &= c.Permitted & c.Inheritable
	c.Caps &= auth.AllCaps
	c.Permitted &= auth.AllCaps
	c.Inheritable &= auth.AllCaps
	c.Bounding &= auth.AllCaps
}

// execCreds returns the credentials a program runs with after execve
// (capabilities(7), "Transformation of capabilities during execve()"),
// for a file of mode, owner uid and group gid on a mount that honours
// set-user-ID bits or not. There are no file capabilities: a program is
// privileged when it runs as root (real or effective uid 0 after the
// set-user-ID step), and then gets its bounding and inheritable sets.
// With no_new_privs, set-user-ID and set-group-ID bits are ignored and
// the permitted set never grows. It also says whether the exec is
// secure (AT_SECURE).
func execCreds(old *Creds, mode, uid, gid uint32, nosuid bool) (*Creds, bool) {
	c := *old
	c.Groups = old.Groups
	setid := false
	if !nosuid && !old.NoNewPrivs {
		if mode&unix.S_ISUID != 0 && uid != c.EUID {
			c.EUID = uid
			setid = true
		}
		if mode&unix.S_ISGID != 0 && mode&0o010 != 0 && gid != c.EGID {
			c.EGID = gid
			setid = true
		}
	}
	c.SUID, c.FSUID = c.EUID, c.EUID
	c.SGID, c.FSGID = c.EGID, c.EGID
	c.KeepCaps = false
	privileged := c.EUID == 0 || c.RUID == 0
	if setid {
		// A privileged (set-id) file clears the ambient set.
		c.Ambient = 0
	}
	if privileged {
		c.Permitted = c.Inheritable | c.Bounding | c.Ambient
	} else {
		c.Permitted = c.Ambient
	}
	if old.NoNewPrivs {
		c.Permitted &= old.Permitted
	}
	if c.EUID == 0 {
		c.Caps = c.Permitted
	} else {
		c.Caps = c.Ambient
	}
	c.Ambient &= c.Permitted
	secure := setid || c.Permitted&^old.Permitted != 0 && !privileged
	return &c, secure
}

// FixupSetuid applies what Linux does to the capability sets when a
// setuid-family call changes the user ids (capabilities(7), "Effect of
// user ID changes on capabilities"), from the ids of old to those of c.
func FixupSetuid(old, c *Creds) {
	wasRoot := old.RUID == 0 || old.EUID == 0 || old.SUID == 0
	isRoot := c.RUID == 0 || c.EUID == 0 || c.SUID == 0
	if wasRoot && !isRoot {
		if !c.KeepCaps {
			c.Permitted = 0
		}
		c.Caps = 0
		c.Ambient = 0
	}
	if old.EUID == 0 && c.EUID != 0 {
		c.Caps = 0
	}
	if old.EUID != 0 && c.EUID == 0 {
		c.Caps = c.Permitted
	}
	if old.FSUID == 0 && c.FSUID != 0 {
		c.Caps &^= fsCaps
	}
	if old.FSUID != 0 && c.FSUID == 0 {
		c.Caps |= c.Permitted & fsCaps
	}
}

// fsCaps are the capabilities that follow the filesystem uid.
var fsCaps = auth.CapSetOf(auth.CapChown, auth.CapDACOverride, auth.CapDACReadSearch, auth.CapFowner, auth.CapFsetid, auth.CapLinuxImmutable, auth.CapMknod) | 1<<32 /* CAP_MAC_OVERRIDE */
