// Package sandbox assembles one sandbox: a KVM machine sized to the pod's
// CPUs, the application kernel with its syscall table, the container's
// root filesystem and mounts, and the processes that run in it. It is what
// `moat run` drives directly and what the shim drives in a sentry process.
package sandbox

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/platform"
	"moat.dev/moat/sentry/syscalls"
	"moat.dev/moat/sentry/vfs"
)

// Config configures a sandbox.
type Config struct {
	// Device is the KVM device ("" for the default).
	Device string
	// CPUs is how many vCPUs run user code at once (at least 1).
	CPUs int
	// Memory bounds the sandbox's RAM in bytes (0: none).
	Memory uint64
	// RootFS is the host directory with the root filesystem. Empty, the
	// sandbox root is an empty tmpfs and containers are added with
	// AddContainer (a pod).
	RootFS string
	// ReadOnlyRoot mounts it read-only.
	ReadOnlyRoot bool
	Hostname     string
	Log          *slog.Logger
	Strace       io.Writer
}

// Sandbox is a running application kernel.
type Sandbox struct {
	Kernel  *kernel.Kernel
	Machine platform.Machine
	VFS     *vfs.VirtualFilesystem

	logger *slog.Logger
	c      containers
}

func (s *Sandbox) log() *slog.Logger { return s.logger }

// New builds a sandbox; nothing runs until Start.
func New(cfg Config) (*Sandbox, error) {
	ctx := context.Background()
	if cfg.CPUs < 1 {
		cfg.CPUs = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RootFS != "" {
		if st, err := os.Stat(cfg.RootFS); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("sandbox: root filesystem %s is not a directory: %v", cfg.RootFS, err)
		}
	}
	m, err := platform.NewKVM(cfg.Device, cfg.CPUs)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	root, err := rootFilesystem(ctx, cfg.RootFS)
	if err != nil {
		m.Close()
		return nil, err
	}
	v, err := vfs.New(ctx, root, vfs.MountOptions{})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("sandbox: root filesystem: %w", err)
	}
	if cfg.RootFS != "" {
		root := v.Root()
		err := copyTree(ctx, v, root, "/", cfg.RootFS)
		root.DecRef(ctx)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("sandbox: root filesystem %s: %w", cfg.RootFS, err)
		}
	}
	k := kernel.New(kernel.Config{
		Machine: m, VFS: v, Hostname: cfg.Hostname, MemoryLimit: cfg.Memory,
		Syscalls: syscalls.Table(), Log: cfg.Log, Strace: cfg.Strace,
	})
	sb := &Sandbox{Kernel: k, Machine: m, VFS: v, logger: cfg.Log}
	sb.c.roots = map[string]vfs.VirtualDentry{}
	sb.c.volumes = map[string]string{}
	return sb, nil
}

// rootFilesystem returns the filesystem for the container's root.
func rootFilesystem(ctx context.Context, dir string) (vfs.Filesystem, error) {
	return tmpfs.New(tmpfs.Options{RootMode: 0o755}), nil
}

// copyTree copies the host tree at dir into the directory at (absolute)
// path prefix under root. Symbolic links are copied as links, never
// followed on the host.
func copyTree(ctx context.Context, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, prefix, dir string) error {
	creds := auth.Root()
	prefix = strings.TrimSuffix(prefix, "/")
	return filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		pop := vfs.PathOperation{Root: root, Start: root, Path: prefix + "/" + rel}
		st := info.Sys().(*syscall.Stat_t)
		mode := uint32(info.Mode().Perm())
		if info.Mode()&os.ModeSetuid != 0 {
			mode |= unix.S_ISUID
		}
		if info.Mode()&os.ModeSetgid != 0 {
			mode |= unix.S_ISGID
		}
		if info.Mode()&os.ModeSticky != 0 {
			mode |= unix.S_ISVTX
		}
		switch {
		case info.IsDir():
			if err := v.Mkdir(ctx, creds, pop, mode); err != nil {
				return fmt.Errorf("mkdir %s: %w", rel, err)
			}
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := v.Symlink(ctx, creds, target, pop); err != nil {
				return fmt.Errorf("symlink %s: %w", rel, err)
			}
			return nil
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			f, err := v.Open(ctx, creds, pop, vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL, Mode: mode})
			if err != nil {
				return fmt.Errorf("create %s: %w", rel, err)
			}
			_, err = f.Write(ctx, data)
			f.DecRef(ctx)
			if err != nil {
				return fmt.Errorf("write %s: %w", rel, err)
			}
		default:
			return nil
		}
		return v.Chown(ctx, creds, vfs.PathOperation{Root: root, Start: root, Path: prefix + "/" + rel}, st.Uid, st.Gid)
	})
}

// Start starts a process in the sandbox.
func (s *Sandbox) Start(spec kernel.ProcessSpec) (*kernel.ThreadGroup, error) {
	return s.Kernel.CreateProcess(spec)
}

// Close kills every process and releases the machine.
func (s *Sandbox) Close() error {
	s.Kernel.Shutdown()
	return s.Machine.Close()
}
