// Package procfs is the sentry's /proc: a filesystem whose files are
// generated from the kernel's processes, threads, memory and mounts when
// they are read, as Linux's procfs does. It implements the VFS's inode
// interfaces; the VFS resolves paths, follows the symbolic links
// (/proc/self, /proc/[pid]/exe, fd/N) and checks permissions against the
// modes and owners the inodes report.
package procfs

import (
	"context"
	"hash/fnv"
	"sync"
	"time"
	"weak"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
)

// procSuperMagic is PROC_SUPER_MAGIC, what statfs reports.
const procSuperMagic = 0x9fa0

// Options configures a procfs. Which processes a reader sees is its PID
// namespace's business (see viewer), not the mount's.
type Options struct {
	// Sysctls are the sandbox's /proc/sys values, shared by its procfs
	// instances; nil: Linux's defaults and no host network files.
	Sysctls *Sysctls
}

// Filesystem is one procfs instance, showing the processes of one kernel.
type Filesystem struct {
	k    *kernel.Kernel
	opts Options
	dev  uint64
	// sysctls is opts.Sysctls or the defaults.
	sysctls *Sysctls
	// netDir is /proc/net, also every process's net/ (one network
	// namespace per sandbox).
	netDir *staticDir
	root   *rootDir

	mu          sync.Mutex
	mountIDs    map[weak.Pointer[vfs.Mount]]int
	nextMountID int

	load loadAvg
}

// New returns a procfs for k.
func New(k *kernel.Kernel, opts Options) *Filesystem {
	fs := &Filesystem{k: k, opts: opts, dev: vfs.NewAnonDev(), sysctls: opts.Sysctls}
	if fs.sysctls == nil {
		fs.sysctls = NewSysctls()
	}
	fs.root = newRootDir(fs)
	return fs
}

// Name implements vfs.Filesystem.
func (fs *Filesystem) Name() string { return "proc" }

// Root implements vfs.Filesystem.
func (fs *Filesystem) Root(context.Context) (vfs.Inode, error) { return fs.root, nil }

// Statfs implements vfs.Filesystem.
func (fs *Filesystem) Statfs(context.Context) (vfs.Statfs, error) {
	return vfs.Statfs{Type: procSuperMagic, Bsize: 4096, Frsize: 4096, NameLen: vfs.NameMax}, nil
}

// Release implements vfs.Filesystem.
func (fs *Filesystem) Release(context.Context) {}

// inoOf returns a stable inode number for a path inside /proc. Numbers
// stay the same for the life of the file, so tools that compare (dev,
// ino) pairs see one file where there is one.
func inoOf(path string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(path))
	ino := h.Sum64() >> 1
	if ino < 2 {
		ino += 2
	}
	return ino
}

// timespec converts a time for Stat.
func timespec(t time.Time) unix.Timespec { return unix.NsecToTimespec(t.UnixNano()) }

// viewer is the PID namespace whose view of the processes the caller
// gets: the caller's own (so a container's processes see their
// namespace, numbered as it numbers them), the sandbox's root one for the
// sentry itself.
func (fs *Filesystem) viewer(ctx context.Context) *kernel.PIDNamespace {
	if caller := kernel.TaskFromContext(ctx); caller != nil {
		return caller.PIDNamespace()
	}
	return fs.k.RootPIDNamespace()
}
