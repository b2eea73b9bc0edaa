package vfs

import (
	"context"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
)

// Unix domain sockets bound to a path live in the sentry, not in any
// filesystem: bind makes a socket node (S_IFSOCK) at the path and records
// the listening endpoint against that node's identity; connect resolves
// the path like any other and finds the endpoint. A node survives the
// socket (connect then gets ECONNREFUSED) and the socket survives the
// unlink of its node, as on Linux.

// SocketBinding is a bound path; Release it when the socket closes.
type SocketBinding struct {
	v   *VirtualFilesystem
	key sockKey
}

// sockKey identifies a socket node by device and inode, so every mount
// and every hard link of one node reaches the same socket.
type sockKey struct{ dev, ino uint64 }

// BindSocket makes a socket node at pop (mode has the umask applied) and
// binds endpoint to it. An existing name gives EADDRINUSE.
func (v *VirtualFilesystem) BindSocket(ctx context.Context, creds *auth.Credentials, pop PathOperation, mode uint32, endpoint any) (*SocketBinding, error) {
	var b *SocketBinding
	err := v.create(ctx, creds, pop, false, func(dir Dir, st *Stat, name string) error {
		if err := dir.Mknod(ctx, name, createAttr(creds, st, unix.S_IFSOCK|mode&0o7777)); err != nil {
			return err
		}
		inode, err := dir.Lookup(ctx, name)
		if err != nil {
			return err
		}
		ist, err := inode.Stat(ctx)
		if err != nil {
			return err
		}
		if r, ok := inode.(InodeReleaser); ok {
			defer r.ReleaseInode()
		}
		b = &SocketBinding{v: v, key: sockKey{ist.Dev, ist.Ino}}
		return nil
	})
	if err == unix.EEXIST {
		return nil, unix.EADDRINUSE
	}
	if err != nil {
		return nil, err
	}
	v.sockMu.Lock()
	v.sockets[b.key] = endpoint
	v.sockMu.Unlock()
	return b, nil
}

// Release unbinds the socket from its node.
func (b *SocketBinding) Release() {
	b.v.sockMu.Lock()
	delete(b.v.sockets, b.key)
	b.v.sockMu.Unlock()
}

// ConnectSocket returns the endpoint bound to the socket node pop names:
// EACCES without write permission on it, ECONNREFUSED if it is not a
// socket or nothing is bound to it.
func (v *VirtualFilesystem) ConnectSocket(ctx context.Context, creds *auth.Credentials, pop PathOperation) (any, error) {
	pop.FollowFinal = true
	vd, err := v.GetDentryAt(ctx, creds, pop)
	if err != nil {
		return nil, err
	}
	defer vd.DecRef(ctx)
	if err := v.checkAccess(ctx, creds, vd, MayWrite); err != nil {
		return nil, err
	}
	if vd.Dentry.typ != unix.S_IFSOCK {
		return nil, unix.ECONNREFUSED
	}
	st, err := vd.Dentry.inode.Stat(ctx)
	if err != nil {
		return nil, err
	}
	v.sockMu.Lock()
	ep, ok := v.sockets[sockKey{st.Dev, st.Ino}]
	v.sockMu.Unlock()
	if !ok {
		return nil, unix.ECONNREFUSED
	}
	return ep, nil
}
