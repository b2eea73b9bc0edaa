package vfs

import (
	"context"
	"strings"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
)

// Extended attribute limits, as in Linux.
const (
	XattrNameMax = 255   // XATTR_NAME_MAX
	XattrSizeMax = 65536 // XATTR_SIZE_MAX
)

// XattrInode is implemented by inodes that store extended attributes.
// The VFS checks names, sizes, namespaces and permissions first.
type XattrInode interface {
	// Getxattr returns the value of name, or unix.ENODATA.
	Getxattr(ctx context.Context, name string) ([]byte, error)
	// Setxattr sets name; flags is 0, unix.XATTR_CREATE (unix.EEXIST if
	// present) or unix.XATTR_REPLACE (unix.ENODATA if absent).
	Setxattr(ctx context.Context, name string, value []byte, flags uint32) error
	// Listxattr returns the names present.
	Listxattr(ctx context.Context) ([]string, error)
	// Removexattr removes name, or gives unix.ENODATA.
	Removexattr(ctx context.Context, name string) error
}

// xattrAccess checks an extended attribute access (xattr_permission):
// user.* needs read or write permission on a regular file or directory,
// trusted.* and writes of security.* need CAP_SYS_ADMIN, system.* (ACLs)
// and unknown namespaces are not supported.
func (v *VirtualFilesystem) xattrAccess(ctx context.Context, creds *auth.Credentials, vd VirtualDentry, name string, write bool) (XattrInode, error) {
	if name == "" || len(name) > XattrNameMax {
		return nil, unix.ERANGE
	}
	if write && vd.Mount.ReadOnly() {
		return nil, unix.EROFS
	}
	st, err := vd.Dentry.inode.Stat(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasPrefix(name, "user."):
		if st.Type() != unix.S_IFREG && st.Type() != unix.S_IFDIR {
			if write {
				return nil, unix.EPERM
			}
			return nil, unix.ENODATA
		}
		if write && st.IsDir() && st.Mode&unix.S_ISVTX != 0 && !isOwner(creds, &st) {
			return nil, unix.EPERM
		}
		ats := MayRead
		if write {
			ats = MayWrite
		}
		if err := CheckPermissions(creds, ats, st.Mode, st.UID, st.GID); err != nil {
			return nil, err
		}
	case strings.HasPrefix(name, "trusted."):
		if !creds.HasCap(auth.CapSysAdmin) {
			if write {
				return nil, unix.EPERM
			}
			return nil, unix.ENODATA
		}
	case strings.HasPrefix(name, "security."):
		if write && !creds.HasCap(auth.CapSysAdmin) {
			return nil, unix.EPERM
		}
	default:
		return nil, unix.EOPNOTSUPP
	}
	xi, ok := vd.Dentry.inode.(XattrInode)
	if !ok {
		return nil, unix.EOPNOTSUPP
	}
	return xi, nil
}

// GetxattrAt returns an extended attribute of the file at vd (resolve a
// path with GetDentryAt, or use File.VirtualDentry).
func (v *VirtualFilesystem) GetxattrAt(ctx context.Context, creds *auth.Credentials, vd VirtualDentry, name string) ([]byte, error) {
	xi, err := v.xattrAccess(ctx, creds, vd, name, false)
	if err != nil {
		return nil, err
	}
	return xi.Getxattr(ctx, name)
}

// SetxattrAt sets an extended attribute of the file at vd.
func (v *VirtualFilesystem) SetxattrAt(ctx context.Context, creds *auth.Credentials, vd VirtualDentry, name string, value []byte, flags uint32) error {
	if flags&^uint32(unix.XATTR_CREATE|unix.XATTR_REPLACE) != 0 || flags == unix.XATTR_CREATE|unix.XATTR_REPLACE {
		return unix.EINVAL
	}
	if len(value) > XattrSizeMax {
		return unix.E2BIG
	}
	xi, err := v.xattrAccess(ctx, creds, vd, name, true)
	if err != nil {
		return err
	}
	return xi.Setxattr(ctx, name, value, flags)
}

// RemovexattrAt removes an extended attribute of the file at vd.
func (v *VirtualFilesystem) RemovexattrAt(ctx context.Context, creds *auth.Credentials, vd VirtualDentry, name string) error {
	xi, err := v.xattrAccess(ctx, creds, vd, name, true)
	if err != nil {
		return err
	}
	return xi.Removexattr(ctx, name)
}

// ListxattrAt lists the extended attribute names of the file at vd that
// creds may see (trusted.* only with CAP_SYS_ADMIN). A filesystem without
// extended attributes has none.
func (v *VirtualFilesystem) ListxattrAt(ctx context.Context, creds *auth.Credentials, vd VirtualDentry) ([]string, error) {
	xi, ok := vd.Dentry.inode.(XattrInode)
	if !ok {
		return nil, nil
	}
	names, err := xi.Listxattr(ctx)
	if err != nil {
		return nil, err
	}
	out := names[:0]
	for _, n := range names {
		if strings.HasPrefix(n, "trusted.") && !creds.HasCap(auth.CapSysAdmin) {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}
