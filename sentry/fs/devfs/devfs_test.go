package devfs_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/devfs"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/vfs"
)

func TestDev(t *testing.T) {
	ctx := context.Background()
	v, err := vfs.New(ctx, tmpfs.New(tmpfs.Options{RootMode: 0o755}), vfs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := v.Root()
	defer root.DecRef(ctx)
	creds := auth.Root()
	user := auth.User(1000, 1000)
	pop := func(p string) vfs.PathOperation {
		return vfs.PathOperation{Root: root, Start: root, Path: p, FollowFinal: true}
	}
	if err := v.Mkdir(ctx, creds, pop("/dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	dev, err := devfs.New(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Mount(ctx, creds, pop("/dev"), dev, vfs.MountOptions{Flags: vfs.MountNoSuid}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		pp := pop("/dev/" + tc.name)
		pp.FollowFinal = false
		st, err := v.Stat(ctx, creds, pp)
		if err != nil {
			t.Fatalf("stat /dev/%s: %v", tc.name, err)
		}
		if st.Type() != unix.S_IFCHR || unix.Major(st.Rdev) != tc.major || unix.Minor(st.Rdev) != tc.minor || st.Mode&0o777 != 0o666 {
			t.Fatalf("/dev/%s: mode %#o rdev %d:%d", tc.name, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
	}
	open := func(p string, flags uint32) *vfs.File {
		t.Helper()
		f, err := v.Open(ctx, user, pop(p), vfs.OpenOptions{Flags: flags})
		if err != nil {
			t.Fatalf("open %s as a user: %v", p, err)
		}
		return f
	}
	buf := bytes.Repeat([]byte{0xff}, 64)
	null := open("/dev/null", unix.O_RDWR)
	if n, err := null.Read(ctx, buf); n != 0 || err != nil {
		t.Fatalf("read /dev/null = %d, %v", n, err)
	}
	if n, err := null.Write(ctx, buf); n != 64 || err != nil {
		t.Fatalf("write /dev/null = %d, %v", n, err)
	}
	null.DecRef(ctx)
	zero := open("/dev/zero", unix.O_RDONLY)
	if n, _ := zero.Read(ctx, buf); n != 64 || !bytes.Equal(buf, make([]byte, 64)) {
		t.Fatalf("read /dev/zero gave %d bytes %x", n, buf)
	}
	zero.DecRef(ctx)
	full := open("/dev/full", unix.O_WRONLY)
	if _, err := full.Write(ctx, buf); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("write /dev/full: %v", err)
	}
	full.DecRef(ctx)
	ur := open("/dev/urandom", unix.O_RDONLY)
	if n, _ := ur.Read(ctx, buf); n != 64 || bytes.Equal(buf, make([]byte, 64)) {
		t.Fatalf("read /dev/urandom gave %d bytes %x", n, buf)
	}
	ur.DecRef(ctx)
	if _, err := v.Open(ctx, user, pop("/dev/tty"), vfs.OpenOptions{Flags: unix.O_RDWR}); !errors.Is(err, unix.ENXIO) {
		t.Fatalf("open /dev/tty: %v", err)
	}
	for name, want := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if got, err := v.Readlink(ctx, user, pop("/dev/"+name)); err != nil || got != want {
			t.Fatalf("readlink /dev/%s = %q, %v", name, got, err)
		}
	}
	// /dev/shm is a world-writable sticky directory.
	f := open("/dev/shm/seg", unix.O_RDWR|unix.O_CREAT)
	f.DecRef(ctx)
	if st, err := v.Stat(ctx, user, pop("/dev/pts")); err != nil || !st.IsDir() {
		t.Fatalf("/dev/pts: %+v %v", st, err)
	}
	// A node made elsewhere with a registered number opens the sentry device.
	if err := v.Mknod(ctx, creds, pop("/dev/mynull"), unix.S_IFCHR|0o666, unix.Mkdev(1, 3)); err != nil {
		t.Fatalf("mknod in devfs: %v", err)
	}
	if err := v.Mknod(ctx, creds, pop("/dev/nothing"), unix.S_IFCHR|0o666, unix.Mkdev(42, 42)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Open(ctx, creds, pop("/dev/nothing"), vfs.OpenOptions{}); !errors.Is(err, unix.ENXIO) {
		t.Fatalf("open of an unregistered device: %v", err)
	}
	open("/dev/mynull", unix.O_WRONLY).DecRef(ctx)
}
