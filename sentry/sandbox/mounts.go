package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/devfs"
	"moat.dev/moat/sentry/fs/hostfs"
	"moat.dev/moat/sentry/fs/procfs"
	"moat.dev/moat/sentry/fs/sysfs"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
)

// Mount is one filesystem to mount in the container, as an OCI spec's
// mounts list it.
type Mount struct {
	// Destination is the absolute path inside the container.
	Destination string
	// Type is proc, sysfs, tmpfs, bind, or one of the types that become a
	// tmpfs here (devpts, mqueue, shm) or an empty read-only directory
	// (cgroup, cgroup2).
	Type string
	// Source is the host path of a bind mount.
	Source string
	// Options are mount(8) options: ro, rw, nosuid, nodev, noexec,
	// noatime, bind, rbind, size=, mode=, uid=, gid= (others, such as
	// propagation flags, are accepted and ignored).
	Options []string
	// FD (> 0) is the source directory of a bind mount, opened by the
	// caller (O_PATH); AddContainer takes it over. Source is opened only
	// when FD is not given.
	FD int
	// Data is the content of a bind-mounted file when not nil (the caller
	// read Source).
	Data []byte
}

// DefaultMounts are the mounts every container gets when the caller
// gives none: runc's defaults for an OCI spec.
func DefaultMounts() []Mount {
	return []Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// mountOpts is a parsed option list.
type mountOpts struct {
	flags         uint32
	bind          bool
	size          int64
	mode          uint32
	hasMode       bool
	uid, gid      uint32
	hasUID, hasGI bool
}

// parseOptions reads an option list, refusing values it cannot take.
func parseOptions(opts []string) (mountOpts, error) {
	var o mountOpts
	for _, opt := range opts {
		key, val, hasVal := strings.Cut(opt, "=")
		switch key {
		case "ro", "rro":
			// rro (recursive read-only) covers what lies below the
			// mount too: a host directory is one filesystem here, so
			// its host submounts are read-only with it; for a plain ro
			// the shim attaches them as mounts of their own.
			o.flags |= vfs.MountReadOnly
		case "rw":
			o.flags &^= vfs.MountReadOnly
		case "nosuid":
			o.flags |= vfs.MountNoSuid
		case "suid":
			o.flags &^= vfs.MountNoSuid
		case "nodev":
			o.flags |= vfs.MountNoDev
		case "dev":
			o.flags &^= vfs.MountNoDev
		case "noexec":
			o.flags |= vfs.MountNoExec
		case "exec":
			o.flags &^= vfs.MountNoExec
		case "noatime":
			o.flags |= vfs.MountNoAtime
		case "atime", "relatime", "strictatime", "norelatime", "nostrictatime", "nodiratime", "diratime":
			if key != "nodiratime" && key != "diratime" {
				o.flags &^= vfs.MountNoAtime
			}
		case "bind", "rbind":
			o.bind = true
		case "size":
			n, err := parseSize(val)
			if err != nil || !hasVal {
				return o, fmt.Errorf("option %q: not a size", opt)
			}
			o.size = n
		case "mode":
			m, err := strconv.ParseUint(val, 8, 32)
			if err != nil || m > 0o7777 {
				return o, fmt.Errorf("option %q: not a file mode", opt)
			}
			o.mode, o.hasMode = uint32(m), true
		case "uid", "gid":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return o, fmt.Errorf("option %q: not an id", opt)
			}
			if key == "uid" {
				o.uid, o.hasUID = uint32(n), true
			} else {
				o.gid, o.hasGI = uint32(n), true
			}
		default:
			// Propagation (private, rslave …), devpts' and mqueue's own
			// options, nr_inodes and the like change nothing here.
		}
	}
	return o, nil
}

// parseSize reads a tmpfs size= value: bytes with an optional k, m or g.
func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty size")
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// mountAll mounts ms in order, making missing mount points, and fills
// /dev when a tmpfs is mounted there.
func mountAll(ctx context.Context, v *vfs.VirtualFilesystem, k *kernel.Kernel, ms []Mount, popts procfs.Options) error {
	devices := false
	for _, m := range ms {
		if err := mountOne(ctx, v, k, m, &devices, popts); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Type, m.Destination, err)
		}
	}
	if !devices {
		// No /dev of the sentry's: device nodes of the image still
		// open the sentry's devices, never the host's.
		if err := devfs.RegisterDevices(v); err != nil {
			return err
		}
	}
	return nil
}

// mountOne mounts m; devices says whether the sentry's devices are
// registered (by the devfs of a /dev mount), and is set when this mount
// registers them; popts configure a /proc.
func mountOne(ctx context.Context, v *vfs.VirtualFilesystem, k *kernel.Kernel, m Mount, devices *bool, popts procfs.Options) error {
	dst := m.Destination
	if !path.IsAbs(dst) || path.Clean(dst) != dst && path.Clean(dst)+"/" != dst {
		return fmt.Errorf("destination %q is not a clean absolute path", dst)
	}
	dst = path.Clean(dst)
	if dst == "/" {
		return errors.New("cannot mount over the root")
	}
	o, err := parseOptions(m.Options)
	if err != nil {
		return err
	}
	creds := auth.Root()
	root := v.Root()
	defer root.DecRef(ctx)
	pop := vfs.PathOperation{Root: root, Start: root, Path: dst, FollowFinal: true}
	typ := m.Type
	if o.bind && typ == "" || typ == "none" && o.bind {
		typ = "bind"
	}
	if typ == "bind" {
		return bindMount(ctx, v, creds, root, m.Source, dst, o)
	}
	var fs vfs.Filesystem
	switch typ {
	case "proc":
		fs = procfs.New(k, popts)
	case "sysfs":
		fs = sysfs.New(k.CPUs)
		o.flags |= vfs.MountReadOnly
	case "tmpfs", "devpts", "mqueue", "shm":
		opts := tmpfs.Options{MaxBytes: o.size, RootMode: 0o1777, RootUID: o.uid, RootGID: o.gid}
		if o.hasMode {
			opts.RootMode = o.mode
		}
		if typ == "devpts" || typ == "mqueue" {
			// devpts' mode=, uid= and gid= are those of new terminals,
			// not of the directory.
			opts.Name = typ
			if !o.hasMode || typ == "devpts" {
				opts.RootMode = 0o755
			}
			if typ == "devpts" {
				opts.RootUID, opts.RootGID = 0, 0
			}
		}
		if dst == "/dev" && typ == "tmpfs" && !*devices {
			// The container's /dev: the sentry's devices, the links to
			// /proc/self/fd, and pts/, shm/ for the mounts that follow.
			dev, err := devfs.New(ctx, v)
			if err != nil {
				return err
			}
			*devices = true
			fs = dev
			break
		}
		fs = tmpfs.New(opts)
	case "cgroup", "cgroup2":
		fs = tmpfs.New(tmpfs.Options{RootMode: 0o555, Name: typ})
		o.flags |= vfs.MountReadOnly
	default:
		return fmt.Errorf("filesystem type %q is not supported", typ)
	}
	if err := mkdirAll(ctx, v, creds, root, dst); err != nil {
		return err
	}
	return v.Mount(ctx, creds, pop, fs, vfs.MountOptions{Flags: o.flags})
}

// mkdirAll makes dir and its missing parents in the container's tree.
func mkdirAll(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, root vfs.VirtualDentry, dir string) error {
	p := ""
	for _, c := range strings.Split(strings.Trim(dir, "/"), "/") {
		p += "/" + c
		pop := vfs.PathOperation{Root: root, Start: root, Path: p, FollowFinal: true}
		st, err := v.Stat(ctx, creds, pop)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s: %w", p, unix.ENOTDIR)
			}
			continue
		}
		if err != unix.ENOENT {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if err := v.Mkdir(ctx, creds, pop, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", p, err)
		}
	}
	return nil
}

// bindMount makes a host path visible at dst through a host filesystem
// mounted there (read-only if asked): a directory over a directory, a
// file (/etc/hosts, /etc/resolv.conf) over a file. A missing mount point
// is made: a directory, or an empty file, as runc does.
func bindMount(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, root vfs.VirtualDentry, src, dst string, o mountOpts) error {
	if !path.IsAbs(src) {
		return fmt.Errorf("bind source %q is not an absolute path", src)
	}
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	opts := hostfs.Options{ReadOnly: o.flags&vfs.MountReadOnly != 0}
	var fs vfs.Filesystem
	if st.IsDir() {
		if err := mkdirAll(ctx, v, creds, root, dst); err != nil {
			return err
		}
		if fs, err = hostfs.New(src, opts); err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
	} else {
		if err := mkdirAll(ctx, v, creds, root, path.Dir(dst)); err != nil {
			return err
		}
		if err := makeFile(ctx, v, creds, root, dst); err != nil {
			return err
		}
		if fs, err = hostfs.NewFile(src, opts); err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
	}
	pop := vfs.PathOperation{Root: root, Start: root, Path: dst, FollowFinal: true}
	return v.Mount(ctx, creds, pop, fs, vfs.MountOptions{Flags: o.flags})
}

// makeFile makes an empty file at dst to mount a file over, unless
// something is there already.
func makeFile(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, root vfs.VirtualDentry, dst string) error {
	pop := vfs.PathOperation{Root: root, Start: root, Path: dst, FollowFinal: true}
	if _, err := v.Stat(ctx, creds, pop); err == nil {
		return nil
	} else if err != unix.ENOENT {
		return fmt.Errorf("stat %s: %w", dst, err)
	}
	f, err := v.Open(ctx, creds, pop, vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL, Mode: 0o644})
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	f.DecRef(ctx)
	return nil
}
