// Package devfs builds the container's /dev: a tmpfs holding the memory
// devices (null, zero, full, random, urandom) with Linux's device numbers,
// tty, the /proc/self/fd symlinks (fd, stdin, stdout, stderr), and the pts
// and shm directories. The devices themselves are registered in the VFS's
// device table, so a device node with the same number anywhere (in an
// image, made with mknod) opens the same sentry device and never a host
// one.
package devfs

import (
	"context"
	"crypto/rand"
	"fmt"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/vfs"
)

// Device numbers, as on Linux (Documentation/admin-guide/devices.txt).
const (
	MemMajor     = 1
	NullMinor    = 3
	ZeroMinor    = 5
	FullMinor    = 7
	RandomMinor  = 8
	URandomMinor = 9
	TTYMajor     = 5
	TTYMinor     = 0
)

type node struct {
	name         string
	major, minor uint32
	dev          vfs.Device
}

var nodes = []node{
	{"null", MemMajor, NullMinor, memDevice{kind: null}},
	{"zero", MemMajor, ZeroMinor, memDevice{kind: zero}},
	{"full", MemMajor, FullMinor, memDevice{kind: full}},
	{"random", MemMajor, RandomMinor, memDevice{kind: random}},
	{"urandom", MemMajor, URandomMinor, memDevice{kind: random}},
	{"tty", TTYMajor, TTYMinor, ttyDevice{}},
}

var links = []struct{ name, target string }{
	{"fd", "/proc/self/fd"},
	{"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"},
	{"ptmx", "pts/ptmx"},
}

// RegisterDevices adds the devices of /dev to v's device table.
func RegisterDevices(v *vfs.VirtualFilesystem) error {
	for _, n := range nodes {
		if err := v.RegisterDevice(unix.S_IFCHR, n.major, n.minor, n.dev); err != nil {
			return fmt.Errorf("devfs: register %s (%d:%d): %w", n.name, n.major, n.minor, err)
		}
	}
	return nil
}

// New registers the devices in v and returns a populated /dev to mount.
func New(ctx context.Context, v *vfs.VirtualFilesystem) (*tmpfs.Filesystem, error) {
	if err := RegisterDevices(v); err != nil {
		return nil, err
	}
	fs := tmpfs.New(tmpfs.Options{RootMode: 0o755, AllowDevices: true, Name: "devtmpfs"})
	root := fs.RootDir()
	creds := auth.Root()
	attr := func(mode uint32) vfs.CreateAttr { return vfs.CreateAttr{Mode: mode, UID: creds.UID, GID: creds.GID} }
	for _, n := range nodes {
		a := attr(unix.S_IFCHR | 0o666)
		a.Rdev = unix.Mkdev(n.major, n.minor)
		if err := root.Mknod(ctx, n.name, a); err != nil {
			return nil, fmt.Errorf("devfs: mknod %s: %w", n.name, err)
		}
	}
	for _, l := range links {
		if err := root.Symlink(ctx, l.name, l.target, attr(unix.S_IFLNK|0o777)); err != nil {
			return nil, fmt.Errorf("devfs: symlink %s: %w", l.name, err)
		}
	}
	if err := root.Mkdir(ctx, "pts", attr(unix.S_IFDIR|0o755)); err != nil {
		return nil, fmt.Errorf("devfs: mkdir pts: %w", err)
	}
	if err := root.Mkdir(ctx, "shm", attr(unix.S_IFDIR|0o1777)); err != nil {
		return nil, fmt.Errorf("devfs: mkdir shm: %w", err)
	}
	return fs, nil
}

type memKind int

const (
	null memKind = iota
	zero
	full
	random
)

// memDevice is one of the memory devices of major 1.
type memDevice struct{ kind memKind }

// Open implements vfs.Device.
func (d memDevice) Open(context.Context, vfs.VirtualDentry, uint32) (vfs.FileImpl, error) {
	return &memFile{kind: d.kind}, nil
}

type memFile struct {
	vfs.FileDefaults
	kind memKind
}

// Read implements vfs.FileImpl.
func (f *memFile) Read(_ context.Context, p []byte, _ int64) (int, error) {
	switch f.kind {
	case null:
		return 0, nil
	case random:
		return rand.Read(p)
	}
	clear(p)
	return len(p), nil
}

// Write implements vfs.FileImpl: /dev/full is always full; the others
// take and drop anything.
func (f *memFile) Write(_ context.Context, p []byte, _ int64) (int, error) {
	if f.kind == full {
		return 0, unix.ENOSPC
	}
	return len(p), nil
}

// Seek implements vfs.FileImpl: these devices stay at offset 0, as on
// Linux.
func (f *memFile) Seek(context.Context, int64, int64, int) (int64, error) { return 0, nil }

// ttyDevice is /dev/tty: the sentry gives tasks no controlling terminal
// yet, so opening it fails as on Linux without one.
type ttyDevice struct{}

// Open implements vfs.Device.
func (ttyDevice) Open(context.Context, vfs.VirtualDentry, uint32) (vfs.FileImpl, error) {
	return nil, unix.ENXIO
}
