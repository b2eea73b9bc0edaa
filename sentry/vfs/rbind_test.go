package vfs_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/vfs"
)

// TestRecursiveBindMount: a recursive bind brings the mounts below its
// source (and those stacked on them) along; a plain bind shows the
// directories they cover; a bind under its own source is not copied
// into itself; unmounting the copy detaches its copies only.
func TestRecursiveBindMount(t *testing.T) {
	e := newEnv(t)
	e.mkdir("/src", 0o755)
	e.mkdir("/src/sub", 0o755)
	e.writeFile("/src/sub/under", "covered", 0o644)
	inner := tmpfs.New(tmpfs.Options{RootMode: 0o755})
	if err := e.v.Mount(e.ctx, e.cred, e.pop("/src/sub"), inner, vfs.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	e.mkdir("/src/sub/deeper", 0o755)
	e.writeFile("/src/sub/f", "inner", 0o644)
	deeper := tmpfs.New(tmpfs.Options{RootMode: 0o755})
	if err := e.v.Mount(e.ctx, e.cred, e.pop("/src/sub/deeper"), deeper, vfs.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	e.writeFile("/src/sub/deeper/g", "deeper", 0o644)

	e.mkdir("/rbind", 0o755)
	if err := e.v.BindMount(e.ctx, e.cred, e.pop("/src"), e.pop("/rbind"), vfs.MountOptions{Recursive: true}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/rbind/sub/f": "inner", "/rbind/sub/deeper/g": "deeper"} {
		if got, err := e.readFile(e.cred, path); err != nil || got != want {
			t.Errorf("%s through the recursive bind: %q, %v; want %q", path, got, err, want)
		}
	}
	e.mkdir("/bind", 0o755)
	if err := e.v.BindMount(e.ctx, e.cred, e.pop("/src"), e.pop("/bind"), vfs.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.readFile(e.cred, "/bind/sub/under"); err != nil || got != "covered" {
		t.Errorf("a plain bind shows %q, %v under /bind/sub; want the covered directory", got, err)
	}

	// A recursive bind of / onto a directory below it.
	e.mkdir("/src/loop", 0o755)
	if err := e.v.BindMount(e.ctx, e.cred, e.pop("/"), e.pop("/src/loop"), vfs.MountOptions{Recursive: true}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.readFile(e.cred, "/src/loop/src/sub/deeper/g"); err != nil || got != "deeper" {
		t.Errorf("/ bound under itself: %q, %v", got, err)
	}
	if _, err := e.readFile(e.cred, "/src/loop/src/loop/src/sub/f"); err != unix.ENOENT {
		t.Errorf("the bind was copied into itself: %v", err)
	}

	if err := e.v.Umount(e.ctx, e.cred, e.pop("/rbind")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.readFile(e.cred, "/rbind/sub/f"); err != unix.ENOENT {
		t.Errorf("after unmounting the recursive bind: %v", err)
	}
	if got, err := e.readFile(e.cred, "/src/sub/deeper/g"); err != nil || got != "deeper" {
		t.Errorf("the source's mounts after unmounting the copy: %q, %v", got, err)
	}
}
