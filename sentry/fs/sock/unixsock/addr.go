package unixsock

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/fs/sock"
	"moat.dev/moat/sentry/vfs"
)

// Namespace holds the names unix sockets are bound to in one sandbox:
// the abstract names (which belong to the network namespace, so to the
// whole pod) and the socket files of the VFS, identified by filesystem,
// device and inode so a rename or a hard link of the file still leads to
// the socket, and a host file by device and inode alone.
type Namespace struct {
	mu       sync.Mutex
	abstract map[string]*Socket
	paths    map[pathKey]*Socket
	autobind uint32
}

type pathKey struct {
	// fs is nil for a file of the host (hostfs): the same host file
	// reached through two mounts (one volume in two containers of a pod)
	// is one name, known by the host's device and inode.
	fs  vfs.Filesystem
	dev uint64
	ino uint64
}

// keyOf returns the key of the socket file at vd with status st.
func keyOf(vd vfs.VirtualDentry, st *vfs.Stat) pathKey {
	fs := vd.Mount.Filesystem()
	if fs.Name() == "hostfs" {
		fs = nil
	}
	return pathKey{fs: fs, dev: st.Dev, ino: st.Ino}
}

// NewNamespace returns an empty namespace.
func NewNamespace() *Namespace {
	return &Namespace{abstract: map[string]*Socket{}, paths: map[pathKey]*Socket{}}
}

// addr is a unix socket address: unbound, a path, or an abstract name.
type addr struct {
	bound    bool
	abstract bool
	name     string // path, or abstract name without the leading NUL
}

// bytes returns a in sockaddr_un form, as getsockname returns it.
func (a addr) bytes() []byte {
	b := []byte{unix.AF_UNIX, 0}
	if !a.bound {
		return b
	}
	if a.abstract {
		b = append(b, 0)
		return append(b, a.name...)
	}
	b = append(b, a.name...)
	return append(b, 0)
}

// from returns a as the sender address recvfrom reports: nothing for an
// unbound sender.
func (a addr) from() []byte {
	if !a.bound {
		return nil
	}
	return a.bytes()
}

func (a addr) String() string {
	switch {
	case !a.bound:
		return "(unbound)"
	case a.abstract:
		return fmt.Sprintf("@%q", a.name)
	}
	return a.name
}

// parseAddr checks a sockaddr_un from the guest. autobind is true for an
// address that is only the family (bind picks an abstract name).
func parseAddr(b []byte) (a addr, autobind bool, err error) {
	if len(b) < sock.SockaddrFamilySize || len(b) > abi.SockaddrUnixSize {
		return addr{}, false, unix.EINVAL
	}
	if le16(b) != unix.AF_UNIX {
		return addr{}, false, unix.EINVAL
	}
	p := b[sock.SockaddrFamilySize:]
	if len(p) == 0 {
		return addr{}, true, nil
	}
	if p[0] == 0 {
		return addr{bound: true, abstract: true, name: string(p[1:])}, false, nil
	}
	for i, c := range p {
		if c == 0 {
			p = p[:i]
			break
		}
	}
	return addr{bound: true, name: string(p)}, false, nil
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

// bindPath makes the socket file at a.name and records s under it.
func (ns *Namespace) bindPath(c sock.Caller, s *Socket, name string) (pathKey, error) {
	ctx := c.Ctx()
	creds := c.FSCreds()
	pop, done, err := c.PathOp(name, false)
	if err != nil {
		return pathKey{}, err
	}
	defer done()
	mode := uint32(unix.S_IFSOCK) | 0o777&^c.Umask()
	if err := c.VFS().Mknod(ctx, creds, pop, mode, 0); err != nil {
		if err == unix.EEXIST {
			return pathKey{}, unix.EADDRINUSE
		}
		return pathKey{}, err
	}
	vd, err := c.VFS().GetDentryAt(ctx, creds, pop)
	if err != nil {
		return pathKey{}, err
	}
	defer vd.DecRef(ctx)
	st, err := vd.Dentry.Inode().Stat(ctx)
	if err != nil {
		return pathKey{}, err
	}
	k := keyOf(vd, &st)
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if _, taken := ns.paths[k]; taken {
		return pathKey{}, unix.EADDRINUSE
	}
	ns.paths[k] = s
	return k, nil
}

// bindAbstract records s under an abstract name, or a fresh one if
// autobind.
func (ns *Namespace) bindAbstract(s *Socket, name string, autobind bool) (string, error) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if autobind {
		for range 1 << 20 {
			ns.autobind = (ns.autobind + 1) & 0xfffff
			n := fmt.Sprintf("%05x", ns.autobind)
			if _, taken := ns.abstract[n]; !taken {
				ns.abstract[n] = s
				return n, nil
			}
		}
		return "", unix.ENOSPC
	}
	if _, taken := ns.abstract[name]; taken {
		return "", unix.EADDRINUSE
	}
	ns.abstract[name] = s
	return name, nil
}

// unbind forgets s's name.
func (ns *Namespace) unbind(s *Socket, a addr, k *pathKey) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if a.abstract {
		if ns.abstract[a.name] == s {
			delete(ns.abstract, a.name)
		}
	} else if k != nil && ns.paths[*k] == s {
		delete(ns.paths, *k)
	}
}

// lookup finds the socket bound to a: a path is resolved in the caller's
// VFS (following symbolic links) and must be a socket file the caller
// may write.
func (ns *Namespace) lookup(c sock.Caller, a addr) (*Socket, error) {
	if a.abstract {
		ns.mu.Lock()
		defer ns.mu.Unlock()
		if s := ns.abstract[a.name]; s != nil {
			return s, nil
		}
		return nil, unix.ECONNREFUSED
	}
	ctx := c.Ctx()
	creds := c.FSCreds()
	pop, done, err := c.PathOp(a.name, true)
	if err != nil {
		return nil, err
	}
	defer done()
	vd, err := c.VFS().GetDentryAt(ctx, creds, pop)
	if err != nil {
		return nil, err
	}
	defer vd.DecRef(context.WithoutCancel(ctx))
	st, err := vd.Dentry.Inode().Stat(ctx)
	if err != nil {
		return nil, err
	}
	if st.Type() != unix.S_IFSOCK {
		return nil, unix.ECONNREFUSED
	}
	if err := vfs.CheckPermissions(creds, vfs.MayWrite, st.Mode, st.UID, st.GID); err != nil {
		return nil, err
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if s := ns.paths[keyOf(vd, &st)]; s != nil {
		return s, nil
	}
	return nil, unix.ECONNREFUSED
}
