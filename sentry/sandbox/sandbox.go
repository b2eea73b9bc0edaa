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
	"sort"

	"moat.dev/moat/sentry/fs/hostfs"
	"moat.dev/moat/sentry/fs/procfs"
	"moat.dev/moat/sentry/fs/sock/hostinet"
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
	// Pids bounds the sandbox's threads (a pod's pids limit; 0: the
	// kernel's default).
	Pids int
	// ReadOnlyRoot mounts it read-only.
	ReadOnlyRoot bool
	Hostname     string
	// Mounts are mounted in order once the root is in place, making
	// their mount points when missing; nil means DefaultMounts (proc,
	// /dev, /dev/pts, /dev/shm, /dev/mqueue, sysfs, /sys/fs/cgroup).
	// An empty, non-nil list mounts nothing.
	Mounts []Mount
	// SharedProcesses runs the containers whose spec does not choose
	// (ContainerSpec.PIDMode PIDDefault) in the sandbox's PID namespace,
	// shared with the pod's init (a pod with shareProcessNamespace); by
	// default each container gets its own.
	SharedProcesses bool
	// Sysctls set the sandbox's own sysctls (IPC and UTS ones, see
	// procfs.IsSandboxSysctl) by their dotted names; any other is an
	// error. Network sysctls belong to the network namespace the sentry
	// runs in and are set there by whoever made it.
	Sysctls map[string]string
	Log     *slog.Logger
	Strace  io.Writer
}

// Sandbox is a running application kernel.
type Sandbox struct {
	Kernel  *kernel.Kernel
	Machine platform.Machine
	VFS     *vfs.VirtualFilesystem

	logger *slog.Logger
	c      containers
	// sharedProcesses is Config.SharedProcesses: the PID mode of a
	// container that does not choose.
	sharedProcesses bool
	// sysctls are what /proc/sys shows, for the /proc of each container.
	sysctls *procfs.Sysctls
}

// procOptions configure a container's /proc.
func (s *Sandbox) procOptions() procfs.Options {
	return procfs.Options{Sysctls: s.sysctls}
}

// SetSysctls sets sandbox sysctls (see Config.Sysctls), checking them all
// before setting any.
func (s *Sandbox) SetSysctls(sysctls map[string]string) error {
	return setSysctls(s.sysctls, s.Kernel, sysctls)
}

func setSysctls(st *procfs.Sysctls, k *kernel.Kernel, sysctls map[string]string) error {
	names := make([]string, 0, len(sysctls))
	for name, v := range sysctls {
		if _, err := procfs.CheckSandboxSysctl(name, v); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := st.Set(k, name, sysctls[name]); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	return nil
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
	var root vfs.Filesystem = tmpfs.New(tmpfs.Options{RootMode: 0o755})
	if cfg.RootFS != "" {
		root, err = rootFilesystem(ctx, cfg.RootFS, cfg.ReadOnlyRoot)
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	v, err := vfs.New(ctx, root, vfs.MountOptions{})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("sandbox: root filesystem: %w", err)
	}
	k := kernel.New(kernel.Config{
		Machine: m, VFS: v, Hostname: cfg.Hostname, MemoryLimit: cfg.Memory, MaxTasks: cfg.Pids,
		Syscalls: syscalls.Table(), Log: cfg.Log, Strace: cfg.Strace, StraceFormat: syscalls.Trace,
	})
	st := procfs.NewSysctls()
	if err := st.OpenHostNet(); err != nil {
		// /proc/sys/net and /proc/net then read as missing or empty.
		cfg.Log.Warn("sandbox: no host network files for /proc", "err", err)
	} else {
		// The guest's sockets follow the network namespace's
		// ip_unprivileged_port_start and ping_group_range.
		hostinet.SetNetSysctlReader(st.NetSysctl)
	}
	if err := setSysctls(st, k, cfg.Sysctls); err != nil {
		st.Close()
		k.Shutdown()
		m.Close()
		return nil, err
	}
	mounts := cfg.Mounts
	if mounts == nil {
		mounts = DefaultMounts()
	}
	sb := &Sandbox{Kernel: k, Machine: m, VFS: v, logger: cfg.Log, sharedProcesses: cfg.SharedProcesses, sysctls: st}
	if err := mountAll(ctx, v, k, mounts, sb.procOptions()); err != nil {
		st.Close()
		k.Shutdown() // stops the kernel's clock before the memory goes
		m.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	sb.c.roots = map[string]vfs.VirtualDentry{}
	sb.c.pidns = map[string]*kernel.PIDNamespace{}
	return sb, nil
}

// rootFilesystem returns the container's root: the host directory,
// reached only through descriptors the sentry holds (hostfs), so no path or
// symlink of the container leads outside it.
func rootFilesystem(ctx context.Context, dir string, readOnly bool) (vfs.Filesystem, error) {
	fs, err := hostfs.New(dir, hostfs.Options{ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("sandbox: root filesystem: %w", err)
	}
	return fs, nil
}

// Start starts a process in the sandbox.
func (s *Sandbox) Start(spec kernel.ProcessSpec) (*kernel.ThreadGroup, error) {
	return s.Kernel.CreateProcess(spec)
}

// Close kills every process and releases the machine.
func (s *Sandbox) Close() error {
	s.Kernel.Shutdown()
	s.sysctls.Close()
	return s.Machine.Close()
}
