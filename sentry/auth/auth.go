// Package auth holds the credentials a task acts with: user and group
// ids, supplementary groups and effective capabilities. The VFS checks
// Unix permissions against them.
package auth

import "slices"

// Capability is a Linux capability number (capabilities(7)).
type Capability uint

// The capabilities the file code checks, numbered as in Linux.
const (
	CapChown          Capability = 0
	CapDACOverride    Capability = 1
	CapDACReadSearch  Capability = 2
	CapFowner         Capability = 3
	CapFsetid         Capability = 4
	CapKill           Capability = 5
	CapSetgid         Capability = 6
	CapSetuid         Capability = 7
	CapLinuxImmutable Capability = 9
	CapSysAdmin       Capability = 21
	CapSysResource    Capability = 24
	CapMknod          Capability = 27
	CapLastCap        Capability = 40
)

// CapSet is a set of capabilities, bit n for capability n.
type CapSet uint64

// CapSetOf returns the set holding caps.
func CapSetOf(caps ...Capability) CapSet {
	var s CapSet
	for _, c := range caps {
		s |= 1 << c
	}
	return s
}

// AllCaps holds every capability up to CapLastCap.
const AllCaps CapSet = 1<<(CapLastCap+1) - 1

// Credentials is who an operation acts as. The file system uses the
// filesystem ids (which equal the effective ids unless setfsuid was
// called); the caller decides which ids to put here (access(2) passes the
// real ids).
type Credentials struct {
	UID    uint32
	GID    uint32
	Groups []uint32
	// Effective is the effective capability set.
	Effective CapSet
}

// Root returns credentials of uid 0 holding every capability.
func Root() *Credentials {
	return &Credentials{Effective: AllCaps}
}

// User returns credentials of an unprivileged user.
func User(uid, gid uint32, groups ...uint32) *Credentials {
	return &Credentials{UID: uid, GID: gid, Groups: groups}
}

// HasCap says whether c holds capability cap.
func (c *Credentials) HasCap(cap Capability) bool {
	return c.Effective&(1<<cap) != 0
}

// InGroup says whether gid is c's group or one of its supplementary groups.
func (c *Credentials) InGroup(gid uint32) bool {
	return c.GID == gid || slices.Contains(c.Groups, gid)
}
