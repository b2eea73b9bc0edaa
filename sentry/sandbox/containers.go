package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/hostfs"
	"moat.dev/moat/sentry/fs/procfs"
	"moat.dev/moat/sentry/fs/sysfs"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
)

// A pod's sandbox holds several containers. Each gets its own root
// filesystem, mounted at a hidden place of the sandbox's VFS
// (/.moat/containers/<id>); its processes start with that directory as
// their root, so they never see the pod root or each other's files.
// Directory volumes are the host directories themselves (hostfs), so two
// containers of a pod that name one share it.
const (
	hiddenDir     = "/.moat"
	containersDir = hiddenDir + "/containers"
)

// ContainerSpec describes a container's filesystem.
type ContainerSpec struct {
	// RootFS is the host directory holding the container's root
	// filesystem (the bundle's rootfs, mounted by the shim); it is opened
	// only when RootFD is not given.
	RootFS string
	// RootFD (> 0) is that directory opened by the caller (O_PATH);
	// AddContainer takes it over.
	RootFD   int
	ReadOnly bool
	// Mounts are attached in order over the root.
	Mounts []Mount
	// PIDMode says which PID namespace the container's processes run in.
	PIDMode PIDMode
	// MaskedPaths are hidden from the container (OCI linux.maskedPaths):
	// a directory shows as an empty read-only one, anything else as an
	// empty file that cannot be executed and discards what is written. ReadonlyPaths (OCI
	// linux.readonlyPaths) become read-only. Paths that do not exist in
	// the container are skipped, as runc does.
	MaskedPaths, ReadonlyPaths []string
}

// PIDMode is the PID namespace of a container.
type PIDMode int

const (
	// PIDDefault leaves it to the sandbox's Config.SharedProcesses.
	PIDDefault PIDMode = iota
	// PIDContainer gives the container its own namespace, below the
	// sandbox's: its first process is PID 1 there, and it sees only its
	// own processes (CRI NamespaceMode CONTAINER).
	PIDContainer
	// PIDPod runs the container in the pod's namespace, where the pod's
	// init is PID 1 and every container of that mode sees the others
	// (CRI NamespaceMode POD).
	PIDPod
	// PIDSandbox runs the container in the sandbox's root namespace,
	// above the pod's and the containers' own: it sees every process of
	// the sandbox, numbered as the sandbox numbers them. It is what a
	// sandbox offers for the host's namespace (CRI NamespaceMode NODE):
	// the host's own processes are never visible.
	PIDSandbox
)

// The PID namespaces of a pod: the sandbox's root namespace sees every
// process; below it, the pod's namespace (whose init is the pod's init,
// PID 1 there) holds the containers of mode PIDPod, and each container
// of mode PIDContainer has a namespace of its own beside it, as on Linux
// a container's new namespace is not inside the pause container's.

// podNamespace returns the pod's PID namespace, made on first use.
func (s *Sandbox) podNamespace() (*kernel.PIDNamespace, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.podNamespaceLocked()
}

func (s *Sandbox) podNamespaceLocked() (*kernel.PIDNamespace, error) {
	if s.c.podNS == nil {
		ns, err := s.Kernel.NewPIDNamespace(nil)
		if err != nil {
			return nil, fmt.Errorf("the pod's PID namespace: %w", err)
		}
		s.c.podNS = ns
	}
	return s.c.podNS, nil
}

// closeFDs closes the descriptors of spec that are still owned (> 0).
func (spec *ContainerSpec) closeFDs() {
	if spec.RootFD > 0 {
		unix.Close(spec.RootFD)
		spec.RootFD = 0
	}
	for i := range spec.Mounts {
		if spec.Mounts[i].FD > 0 {
			unix.Close(spec.Mounts[i].FD)
			spec.Mounts[i].FD = 0
		}
	}
}

// containers tracks the containers of a sandbox.
type containers struct {
	mu    sync.Mutex
	roots map[string]vfs.VirtualDentry
	// pidns is each container's PID namespace; podNS is the pod's.
	pidns map[string]*kernel.PIDNamespace
	podNS *kernel.PIDNamespace
}

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ValidID reports whether id is usable as a container name inside the
// sandbox (containerd's identifier rules).
func ValidID(id string) bool { return validID.MatchString(id) }

// AddContainer attaches the filesystem of container id and returns its
// root, with a reference the caller drops.
func (s *Sandbox) AddContainer(ctx context.Context, id string, spec ContainerSpec) (vfs.VirtualDentry, error) {
	defer spec.closeFDs() // those not taken over on the way
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
	for _, d := range []string{hiddenDir, containersDir} {
		if err := mkdirAllMode(ctx, s.VFS, podRoot, d, 0o700); err != nil {
			return vfs.VirtualDentry{}, fmt.Errorf("add container %q: %s: %w", id, d, err)
		}
	}
	dir := containersDir + "/" + id
	if err := s.VFS.Mkdir(ctx, creds, vfs.PathOperation{Root: podRoot, Start: podRoot, Path: dir}, 0o755); err != nil {
		return vfs.VirtualDentry{}, fmt.Errorf("add container %q: mkdir %s: %w", id, dir, err)
	}
	if spec.ReadOnly {
		// The mount points must exist before the root turns read-only.
		if err := s.makeMountPoints(ctx, podRoot, id, &spec); err != nil {
			return vfs.VirtualDentry{}, fmt.Errorf("add container %q: mount points: %w", id, err)
		}
	}
	err := attachRootFS(ctx, s.VFS, podRoot, dir, spec.RootFS, spec.RootFD, spec.ReadOnly)
	spec.RootFD = 0
	if err != nil {
		return vfs.VirtualDentry{}, fmt.Errorf("add container %q: root filesystem %s: %w", id, spec.RootFS, err)
	}
	root, err := s.VFS.GetDirectoryAt(ctx, creds, vfs.PathOperation{Root: podRoot, Start: podRoot, Path: dir, FollowFinal: true})
	if err != nil {
		return vfs.VirtualDentry{}, fmt.Errorf("add container %q: %w", id, err)
	}
	if err := s.bindDev(ctx, podRoot, root); err != nil {
		// A read-only root without /dev: the container goes without.
		s.log().Warn("no /dev in the container", "container", id, "err", err)
	}
	for i, m := range spec.Mounts {
		err := s.attachMount(ctx, podRoot, root, m)
		spec.Mounts[i].FD = 0
		if err == nil {
			continue
		}
		if strings.HasPrefix(path.Clean("/"+m.Destination), "/dev/") {
			// /dev/shm, /dev/mqueue, /dev/termination-log...: devfs
			// decides what /dev holds.
			s.log().Warn("mount under /dev skipped", "container", id, "destination", m.Destination, "err", err)
			continue
		}
		root.DecRef(ctx)
		return vfs.VirtualDentry{}, fmt.Errorf("add container %q: mount %s (%s from %s): %w", id, m.Destination, m.Type, m.Source, err)
	}
	if err := s.applyPathRules(ctx, root, spec.MaskedPaths, spec.ReadonlyPaths); err != nil {
		root.DecRef(ctx)
		return vfs.VirtualDentry{}, fmt.Errorf("add container %q: %w", id, err)
	}
	mode := spec.PIDMode
	if mode == PIDDefault {
		mode = PIDContainer
		if s.sharedProcesses {
			mode = PIDPod
		}
	}
	var ns *kernel.PIDNamespace
	switch mode {
	case PIDContainer:
		ns, err = s.Kernel.NewPIDNamespace(nil)
	case PIDPod:
		ns, err = s.podNamespaceLocked()
	case PIDSandbox:
		ns = s.Kernel.RootPIDNamespace()
	default:
		err = fmt.Errorf("unknown PID mode %d", mode)
	}
	if err != nil {
		root.DecRef(ctx)
		return vfs.VirtualDentry{}, fmt.Errorf("add container %q: PID namespace: %w", id, err)
	}
	s.c.pidns[id] = ns
	s.c.roots[id] = root
	root.IncRef()
	return root, nil
}

// ContainerPIDNamespace returns the PID namespace the processes of
// container id run in.
func (s *Sandbox) ContainerPIDNamespace(id string) (*kernel.PIDNamespace, bool) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	ns, ok := s.c.pidns[id]
	return ns, ok
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

// RemoveContainer detaches the filesystem of container id (lazily: what
// its processes still hold keeps working until they let go). The caller
// ends the container's processes first so that the host directories are
// released.
func (s *Sandbox) RemoveContainer(ctx context.Context, id string) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	r, ok := s.c.roots[id]
	if !ok {
		return fmt.Errorf("remove container %q: no such container", id)
	}
	delete(s.c.roots, id)
	delete(s.c.pidns, id)
	r.DecRef(ctx)
	podRoot := s.VFS.Root()
	defer podRoot.DecRef(ctx)
	dir := containersDir + "/" + id
	pop := vfs.PathOperation{Root: podRoot, Start: podRoot, Path: dir, FollowFinal: true}
	if err := s.VFS.Umount(ctx, auth.Root(), pop); err != nil {
		return fmt.Errorf("remove container %q: umount %s: %w", id, dir, err)
	}
	if err := s.VFS.Rmdir(ctx, auth.Root(), vfs.PathOperation{Root: podRoot, Start: podRoot, Path: dir}); err != nil {
		return fmt.Errorf("remove container %q: rmdir %s: %w", id, dir, err)
	}
	return nil
}

// attachRootFS makes a host directory the content of the directory dir
// under root: a confined host filesystem (hostfs) is mounted there, so no
// path or symlink of the container leads outside it. The directory is fd
// when > 0 (taken over, even on error), else the host path hostDir.
func attachRootFS(ctx context.Context, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, dir, hostDir string, fd int, readOnly bool) error {
	var fs vfs.Filesystem
	if fd > 0 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			unix.Close(fd)
			return fmt.Errorf("descriptor %d (%s) is not a directory: %v", fd, hostDir, err)
		}
		fs = hostfs.NewFromFD(fd, hostfs.Options{ReadOnly: readOnly})
	} else {
		if st, err := os.Stat(hostDir); err != nil || !st.IsDir() {
			return fmt.Errorf("not a directory: %v", err)
		}
		f, err := rootFilesystem(ctx, hostDir, readOnly)
		if err != nil {
			return err
		}
		fs = f
	}
	var flags uint32
	if readOnly {
		flags = vfs.MountReadOnly
	}
	pop := vfs.PathOperation{Root: root, Start: root, Path: dir, FollowFinal: true}
	if err := v.Mount(ctx, auth.Root(), pop, fs, vfs.MountOptions{Flags: flags}); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	return nil
}

// attachMount attaches one OCI mount inside the container whose root is
// croot.
func (s *Sandbox) attachMount(ctx context.Context, podRoot, croot vfs.VirtualDentry, m Mount) error {
	taken := false // m.FD handed to attachRootFS
	defer func() {
		if !taken && m.FD > 0 {
			unix.Close(m.FD)
		}
	}()
	dest := path.Clean("/" + m.Destination)
	if dest == "/" {
		return fmt.Errorf("mount over the root is not supported")
	}
	creds := auth.Root()
	target := vfs.PathOperation{Root: croot, Start: croot, Path: dest, FollowFinal: true}
	o, err := parseOptions(m.Options)
	if err != nil {
		return err
	}
	flags := o.flags
	switch m.Type {
	case "proc", "sysfs":
		// The sentry's own /proc and /sys, generated from its kernel.
		if err := mkdirAllMode(ctx, s.VFS, croot, dest, 0o555); err != nil {
			return err
		}
		var fs vfs.Filesystem = procfs.New(s.Kernel, s.procOptions())
		if m.Type == "sysfs" {
			fs = sysfs.New(s.Kernel.CPUs)
			flags |= vfs.MountReadOnly
		}
		return s.VFS.Mount(ctx, creds, target, fs, vfs.MountOptions{Flags: flags})
	case "devpts", "mqueue", "cgroup", "cgroup2", "securityfs":
		// /dev is the sandbox's devfs (pts/ included); the cgroup and
		// security filesystems of the host are not for the container.
		return nil
	case "tmpfs":
		if dest == "/dev" {
			// /dev is the sandbox's devfs, bound in by AddContainer.
			return nil
		}
		if err := mkdirAllMode(ctx, s.VFS, croot, dest, 0o755); err != nil {
			return err
		}
		opts := tmpfs.Options{MaxBytes: o.size, RootMode: 0o1777, RootUID: o.uid, RootGID: o.gid}
		if o.hasMode {
			opts.RootMode = o.mode
		}
		return s.VFS.Mount(ctx, creds, target, tmpfs.New(opts), vfs.MountOptions{Flags: flags})
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
	isDir := m.FD > 0
	if m.FD <= 0 && m.Data == nil {
		if !path.IsAbs(m.Source) {
			return fmt.Errorf("bind source %q is not an absolute path", m.Source)
		}
		st, err := os.Stat(m.Source)
		if err != nil {
			return err
		}
		if isDir = st.IsDir(); !isDir {
			data, err := os.ReadFile(m.Source)
			if err != nil {
				return err
			}
			m.Data = data
		}
	}
	if !isDir {
		// A file (/etc/hosts, /etc/resolv.conf, /etc/hostname,
		// /dev/termination-log): mounts stand on directories only, so
		// its content is written at the destination.
		if err := mkdirAllMode(ctx, s.VFS, croot, path.Dir(dest), 0o755); err != nil {
			return err
		}
		err := writeFile(ctx, s.VFS, croot, dest, m.Data, 0o644)
		if errors.Is(err, unix.EROFS) {
			// A read-only root keeps the image's file: a file cannot be
			// a mount point of the VFS.
			s.log().Warn("bind-mounted file not written on a read-only root", "destination", dest)
			return nil
		}
		return err
	}
	// A directory (a volume): the host directory itself, confined, so the
	// containers of a pod that name it share it.
	if err := mkdirAllMode(ctx, s.VFS, croot, dest, 0o755); err != nil {
		return err
	}
	taken = true
	return attachRootFS(ctx, s.VFS, croot, dest, m.Source, m.FD, flags&vfs.MountReadOnly != 0)
}

// bindDev binds the sandbox's /dev (devfs) into a container root.
func (s *Sandbox) bindDev(ctx context.Context, podRoot, croot vfs.VirtualDentry) error {
	if err := mkdirAllMode(ctx, s.VFS, croot, "/dev", 0o755); err != nil {
		return err
	}
	src := vfs.PathOperation{Root: podRoot, Start: podRoot, Path: "/dev", FollowFinal: true}
	dst := vfs.PathOperation{Root: croot, Start: croot, Path: "/dev", FollowFinal: true}
	return s.VFS.BindMount(ctx, auth.Root(), src, dst, vfs.MountOptions{Flags: vfs.MountNoSuid | vfs.MountNoExec})
}

// mkdirAll makes dir and its parents under root.
func mkdirAllMode(ctx context.Context, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, dir string, mode uint32) error {
	cur := ""
	for _, part := range strings.Split(strings.Trim(path.Clean("/"+dir), "/"), "/") {
		if part == "" {
			continue
		}
		cur += "/" + part
		err := v.Mkdir(ctx, auth.Root(), vfs.PathOperation{Root: root, Start: root, Path: cur}, mode)
		if err != nil && err != unix.EEXIST {
			// A directory that exists on a read-only mount is fine.
			st, serr := v.Stat(ctx, auth.Root(), vfs.PathOperation{Root: root, Start: root, Path: cur, FollowFinal: true})
			if serr == nil && st.Type() == unix.S_IFDIR {
				continue
			}
			return fmt.Errorf("mkdir %s: %w", cur, err)
		}
	}
	return nil
}

// writeFile writes data at dst under root, replacing what was there.
func writeFile(ctx context.Context, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, dst string, data []byte, mode uint32) error {
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

// makeMountPoints creates, in a read-only container root, the directories
// its mounts stand on (as a runtime does before it remounts the root
// read-only): the root is attached writable at a hidden place for the
// while, from a copy of its descriptor.
func (s *Sandbox) makeMountPoints(ctx context.Context, podRoot vfs.VirtualDentry, id string, spec *ContainerSpec) error {
	fd := 0
	if spec.RootFD > 0 {
		d, err := unix.FcntlInt(uintptr(spec.RootFD), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return fmt.Errorf("dup root descriptor: %w", err)
		}
		fd = d
	}
	dir := hiddenDir + "/setup-" + id
	pop := vfs.PathOperation{Root: podRoot, Start: podRoot, Path: dir, FollowFinal: true}
	if err := s.VFS.Mkdir(ctx, auth.Root(), pop, 0o700); err != nil {
		if fd > 0 {
			unix.Close(fd)
		}
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	defer s.VFS.Rmdir(ctx, auth.Root(), vfs.PathOperation{Root: podRoot, Start: podRoot, Path: dir})
	if err := attachRootFS(ctx, s.VFS, podRoot, dir, spec.RootFS, fd, false); err != nil {
		return err
	}
	defer s.VFS.Umount(ctx, auth.Root(), pop)
	setup, err := s.VFS.GetDirectoryAt(ctx, auth.Root(), pop)
	if err != nil {
		return err
	}
	defer setup.DecRef(ctx)
	points := []string{"/dev"}
	for _, m := range spec.Mounts {
		dest := path.Clean("/" + m.Destination)
		switch {
		case m.Data != nil:
			// A file: its directory.
			points = append(points, path.Dir(dest))
		case isBindMount(m) && m.FD <= 0:
			// A host path the sentry opens itself: its kind is not
			// known here; attachMount makes what it needs.
		default:
			points = append(points, dest)
		}
	}
	for _, p := range points {
		if p == "/" {
			continue
		}
		if err := mkdirAllMode(ctx, s.VFS, setup, p, 0o755); err != nil {
			s.log().Warn("mount point not made in a read-only root", "container", id, "path", p, "err", err)
		}
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

// isBindMount reports whether m is a bind mount.
func isBindMount(m Mount) bool {
	if m.Type == "bind" || m.Type == "rbind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}
