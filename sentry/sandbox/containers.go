package sandbox

import (
	"context"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/vfs"
)

// A pod's sandbox holds several containers. Each gets its own root
// filesystem, mounted at a hidden place of the sandbox's VFS
// (/.moat/containers/<id>); its processes start with that directory as
// their root, so they never see the pod root or each other's files.
// Directory volumes are attached once per pod (/.moat/volumes/<n>) and
// bound into every container that names the same host source, so two
// containers of a pod share an emptyDir.
const (
	hiddenDir     = "/.moat"
	containersDir = hiddenDir + "/containers"
	volumesDir    = hiddenDir + "/volumes"
)

// Mount is one entry of a container's OCI mount list.
type Mount struct {
	Destination string
	Type        string
	Source      string
	Options     []string
}

// ContainerSpec describes a container's filesystem.
type ContainerSpec struct {
	// RootFS is the host directory holding the container's root
	// filesystem (the bundle's rootfs, mounted by the shim).
	RootFS   string
	ReadOnly bool
	// Mounts are attached in order over the root.
	Mounts []Mount
}

// containers tracks the containers of a sandbox.
type containers struct {
	mu      sync.Mutex
	roots   map[string]vfs.VirtualDentry
	volumes map[string]string // host source → path under volumesDir
}

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ValidID reports whether id is usable as a container name inside the
// sandbox (containerd's identifier rules).
func ValidID(id string) bool { return validID.MatchString(id) }

// AddContainer attaches the filesystem of container id and returns its
// root, with a reference the caller drops.
func (s *Sandbox) AddContainer(ctx context.Context, id string, spec ContainerSpec) (vfs.VirtualDentry, error) {
	if !ValidID(id) {
		return vfs.VirtualDentry{}, fmt.Errorf("add container %q: invalid id", id)
	}
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if _, ok := s.c.roots[id]; ok {
		return vfs.VirtualDentry{}, fmt.Errorf("add container %q: already exists", id)
	}
	creds := auth.Root()
	podRoot := s.VFS.Root()
	defer podRoot.DecRef(ctx)
	for _, d := range []string{hiddenDir, containersDir, volumesDir} {
		if err := mkdirAll(ctx, s.VFS, podRoot, d, 0o700); err != nil {
			return vfs.VirtualDentry{}, fmt.Errorf("add container %q: %s: %w", id, d, err)
		}
	}
	dir := containersDir + "/" + id
	if err := s.VFS.Mkdir(ctx, creds, vfs.PathOperation{Root: podRoot, Start: podRoot, Path: dir}, 0o755); err != nil {
		return vfs.VirtualDentry{}, fmt.Errorf("add container %q: mkdir %s: %w", id, dir, err)
	}
	if err := attachRootFS(ctx, s.VFS, podRoot, dir, spec.RootFS); err != nil {
		return vfs.VirtualDentry{}, fmt.Errorf("add container %q: root filesystem %s: %w", id, spec.RootFS, err)
	}
	root, err := s.VFS.GetDirectoryAt(ctx, creds, vfs.PathOperation{Root: podRoot, Start: podRoot, Path: dir, FollowFinal: true})
	if err != nil {
		return vfs.VirtualDentry{}, fmt.Errorf("add container %q: %w", id, err)
	}
	for _, m := range spec.Mounts {
		if err := s.attachMount(ctx, podRoot, root, m); err != nil {
			root.DecRef(ctx)
			return vfs.VirtualDentry{}, fmt.Errorf("add container %q: mount %s (%s from %s): %w", id, m.Destination, m.Type, m.Source, err)
		}
	}
	if spec.ReadOnly {
		// The tmpfs copy stays writable for now: the read-only flag is
		// enforced once the root is a host filesystem mount.
		s.log().Debug("read-only root filesystem not enforced on a copied root", "container", id)
	}
	s.c.roots[id] = root
	root.IncRef()
	return root, nil
}

// ContainerRoot returns the root of container id, with a reference.
func (s *Sandbox) ContainerRoot(id string) (vfs.VirtualDentry, bool) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	r, ok := s.c.roots[id]
	if ok {
		r.IncRef()
	}
	return r, ok
}

// RemoveContainer forgets container id. Its files stay in the sandbox's
// memory until the sandbox ends (the VFS has no unmount yet).
func (s *Sandbox) RemoveContainer(ctx context.Context, id string) {
	s.c.mu.Lock()
	r, ok := s.c.roots[id]
	delete(s.c.roots, id)
	s.c.mu.Unlock()
	if ok {
		r.DecRef(ctx)
	}
}

// attachRootFS makes the host directory hostDir the content of the pod
// root's directory dir. Today it mounts a tmpfs there and copies the tree
// in; with a confined host filesystem this is the one place that changes.
func attachRootFS(ctx context.Context, v *vfs.VirtualFilesystem, podRoot vfs.VirtualDentry, dir, hostDir string) error {
	if st, err := os.Stat(hostDir); err != nil || !st.IsDir() {
		return fmt.Errorf("not a directory: %v", err)
	}
	pop := vfs.PathOperation{Root: podRoot, Start: podRoot, Path: dir, FollowFinal: true}
	if err := v.Mount(ctx, auth.Root(), pop, tmpfs.New(tmpfs.Options{RootMode: 0o755}), vfs.MountOptions{}); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	root, err := v.GetDirectoryAt(ctx, auth.Root(), pop)
	if err != nil {
		return err
	}
	defer root.DecRef(ctx)
	return copyTree(ctx, v, root, "/", hostDir)
}

// attachMount attaches one OCI mount inside the container whose root is
// croot.
func (s *Sandbox) attachMount(ctx context.Context, podRoot, croot vfs.VirtualDentry, m Mount) error {
	dest := path.Clean("/" + m.Destination)
	if dest == "/" {
		return fmt.Errorf("mount over the root is not supported")
	}
	creds := auth.Root()
	target := vfs.PathOperation{Root: croot, Start: croot, Path: dest, FollowFinal: true}
	var flags uint32
	for _, o := range m.Options {
		if o == "ro" {
			flags |= vfs.MountReadOnly
		}
	}
	switch m.Type {
	case "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2", "securityfs":
		// The sentry's own /proc, /sys and /dev are not mounted from the
		// spec; they are the kernel's business.
		return nil
	case "tmpfs":
		if dest == "/dev" {
			// /dev belongs to the sentry's devfs (not yet attached).
			return nil
		}
		if err := mkdirAll(ctx, s.VFS, croot, dest, 0o755); err != nil {
			return err
		}
		return s.VFS.Mount(ctx, creds, target, tmpfs.New(tmpfs.Options{RootMode: 0o1777}), vfs.MountOptions{Flags: flags})
	case "bind", "rbind", "":
		isBind := m.Type != ""
		for _, o := range m.Options {
			if o == "bind" || o == "rbind" {
				isBind = true
			}
		}
		if !isBind {
			return fmt.Errorf("unsupported mount type %q", m.Type)
		}
	default:
		return fmt.Errorf("unsupported mount type %q", m.Type)
	}
	if !path.IsAbs(m.Source) {
		return fmt.Errorf("bind source %q is not an absolute path", m.Source)
	}
	st, err := os.Stat(m.Source)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		// A file (/etc/hosts, /etc/resolv.conf, /etc/hostname,
		// /dev/termination-log): copied in at the destination.
		if err := mkdirAll(ctx, s.VFS, croot, path.Dir(dest), 0o755); err != nil {
			return err
		}
		return copyFile(ctx, s.VFS, croot, dest, m.Source, uint32(st.Mode().Perm()))
	}
	vol, err := s.volume(ctx, podRoot, m.Source)
	if err != nil {
		return err
	}
	if err := mkdirAll(ctx, s.VFS, croot, dest, 0o755); err != nil {
		return err
	}
	src := vfs.PathOperation{Root: podRoot, Start: podRoot, Path: vol, FollowFinal: true}
	return s.VFS.BindMount(ctx, creds, src, target, vfs.MountOptions{Flags: flags})
}

// volume returns the pod-root path of the volume for host directory src,
// attaching it on first use.
//
// Preconditions: s.c.mu is held.
func (s *Sandbox) volume(ctx context.Context, podRoot vfs.VirtualDentry, src string) (string, error) {
	if p, ok := s.c.volumes[src]; ok {
		return p, nil
	}
	p := fmt.Sprintf("%s/%d", volumesDir, len(s.c.volumes))
	if err := s.VFS.Mkdir(ctx, auth.Root(), vfs.PathOperation{Root: podRoot, Start: podRoot, Path: p}, 0o755); err != nil {
		return "", err
	}
	if err := attachRootFS(ctx, s.VFS, podRoot, p, src); err != nil {
		return "", err
	}
	s.c.volumes[src] = p
	return p, nil
}

// mkdirAll makes dir and its parents under root.
func mkdirAll(ctx context.Context, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, dir string, mode uint32) error {
	cur := ""
	for _, part := range strings.Split(strings.Trim(path.Clean("/"+dir), "/"), "/") {
		if part == "" {
			continue
		}
		cur += "/" + part
		err := v.Mkdir(ctx, auth.Root(), vfs.PathOperation{Root: root, Start: root, Path: cur}, mode)
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("mkdir %s: %w", cur, err)
		}
	}
	return nil
}

// copyFile writes the host file src at dst under root, replacing it.
func copyFile(ctx context.Context, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, dst, src string, mode uint32) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	pop := vfs.PathOperation{Root: root, Start: root, Path: dst}
	f, err := v.Open(ctx, auth.Root(), pop, vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, Mode: mode})
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	defer f.DecRef(ctx)
	if _, err := f.Write(ctx, data); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}

// RootCaps are the capabilities of a container's root user: the default
// set of container runtimes (chown, dac_override, fowner, fsetid, kill,
// setgid, setuid, setpcap, net_bind_service, net_raw, sys_chroot, mknod,
// audit_write, setfcap).
const RootCaps = 1<<0 | 1<<1 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<13 | 1<<18 | 1<<27 | 1<<29 | 1<<31

// DefaultPath is the PATH a container gets when its spec sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// LookPath finds cmd as execvp would, inside the tree whose root is root:
// a name with a slash is used as it is; else each directory of env's PATH
// is tried for an executable regular file.
func (s *Sandbox) LookPath(ctx context.Context, root vfs.VirtualDentry, cmd string, env []string) (string, error) {
	if cmd == "" {
		return "", fmt.Errorf("look up program: empty name")
	}
	if strings.Contains(cmd, "/") {
		return cmd, nil
	}
	p := DefaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			p = v
		}
	}
	for _, dir := range strings.Split(p, ":") {
		if dir == "" {
			dir = "."
		}
		cand := path.Join(dir, cmd)
		if !path.IsAbs(cand) {
			cand = "/" + cand
		}
		st, err := s.VFS.Stat(ctx, auth.Root(), vfs.PathOperation{Root: root, Start: root, Path: cand, FollowFinal: true})
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o111 != 0 {
			return cand, nil
		}
	}
	return "", fmt.Errorf("%s: executable file not found in $PATH (%s)", cmd, p)
}
