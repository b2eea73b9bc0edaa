package vfs

import (
	"context"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
)

// AccessTypes is a set of the accesses a permission check asks for.
type AccessTypes uint32

// The accesses, with access(2)'s bit values.
const (
	MayExec  AccessTypes = unix.X_OK
	MayWrite AccessTypes = unix.W_OK
	MayRead  AccessTypes = unix.R_OK
)

// CheckPermissions decides whether creds may access a file with the given
// mode and owner, as Linux's generic_permission does: the owner's bits
// for the owner, the group's for members, the others' for the rest, and
// CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH overriding them (execution
// still needs an execute bit somewhere, except on directories).
func CheckPermissions(creds *auth.Credentials, ats AccessTypes, mode, uid, gid uint32) error {
	perms := mode & 0o7
	switch {
	case creds.UID == uid:
		perms = (mode >> 6) & 0o7
	case creds.InGroup(gid):
		perms = (mode >> 3) & 0o7
	}
	if uint32(ats)&perms == uint32(ats) {
		return nil
	}
	isDir := mode&unix.S_IFMT == unix.S_IFDIR
	if creds.HasCap(auth.CapDACOverride) {
		if ats&MayExec == 0 || isDir || mode&0o111 != 0 {
			return nil
		}
	}
	if creds.HasCap(auth.CapDACReadSearch) && ats&MayWrite == 0 {
		if ats&MayExec == 0 || isDir {
			return nil
		}
	}
	return unix.EACCES
}

// checkAccess checks ats on vd.
func (v *VirtualFilesystem) checkAccess(ctx context.Context, creds *auth.Credentials, vd VirtualDentry, ats AccessTypes) error {
	st, err := vd.Dentry.inode.Stat(ctx)
	if err != nil {
		return err
	}
	if ats&MayExec != 0 && !st.IsDir() && vd.Mount.Flags()&MountNoExec != 0 {
		return unix.EACCES
	}
	return CheckPermissions(creds, ats, st.Mode, st.UID, st.GID)
}

// isOwner says whether creds own a file or hold CAP_FOWNER.
func isOwner(creds *auth.Credentials, st *Stat) bool {
	return creds.UID == st.UID || creds.HasCap(auth.CapFowner)
}

// checkSticky enforces the sticky bit of a directory: only the owner of
// the file, the owner of the directory or CAP_FOWNER may remove or rename
// it away.
func checkSticky(creds *auth.Credentials, dir, child *Stat) error {
	if dir.Mode&unix.S_ISVTX == 0 || creds.UID == dir.UID || isOwner(creds, child) {
		return nil
	}
	return unix.EPERM
}

// checkSetStat checks a metadata change against the rules of chmod,
// chown, utimes and truncate, and adjusts s the way the kernel does
// (set-group-ID cleared by chmod from outside the group, set-ID bits
// cleared by chown).
// Preconditions: s.Atime/Mtime have no UTIME_NOW or UTIME_OMIT left;
// timesNow says the caller asked for "now" for both.
func checkSetStat(creds *auth.Credentials, st *Stat, s *SetStat, timesNow bool) error {
	if s.Mask&SetMode != 0 {
		if !isOwner(creds, st) {
			return unix.EPERM
		}
		s.Mode &= 0o7777
		if st.Type() != unix.S_IFDIR && !creds.InGroup(st.GID) && !creds.HasCap(auth.CapFsetid) {
			s.Mode &^= unix.S_ISGID
		}
	}
	if s.Mask&(SetUID|SetGID) != 0 {
		if s.Mask&SetUID != 0 && s.UID != st.UID && !creds.HasCap(auth.CapChown) {
			return unix.EPERM
		}
		if s.Mask&SetGID != 0 && s.GID != st.GID && !creds.HasCap(auth.CapChown) {
			if creds.UID != st.UID || !creds.InGroup(s.GID) {
				return unix.EPERM
			}
		}
		if st.Type() != unix.S_IFDIR {
			mode := st.Mode
			if s.Mask&SetMode != 0 {
				mode = s.Mode
			}
			clear := uint32(unix.S_ISUID)
			if mode&unix.S_IXGRP != 0 {
				clear |= unix.S_ISGID
			}
			if mode&clear != 0 {
				s.Mask |= SetMode
				s.Mode = mode & 0o7777 &^ clear
			}
		}
	}
	if s.Mask&(SetAtime|SetMtime) != 0 && !isOwner(creds, st) {
		if !timesNow {
			return unix.EPERM
		}
		if err := CheckPermissions(creds, MayWrite, st.Mode, st.UID, st.GID); err != nil {
			return err
		}
	}
	if s.Mask&SetSize != 0 {
		if s.Size < 0 {
			return unix.EINVAL
		}
		switch st.Type() {
		case unix.S_IFDIR:
			return unix.EISDIR
		case unix.S_IFREG:
		default:
			return unix.EINVAL
		}
	}
	return nil
}
