package vfs_test

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/vfs"
)

func TestPathResolution(t *testing.T) {
	e := newEnv(t)
	e.mkdir("/a", 0o755)
	e.mkdir("/a/b", 0o755)
	e.writeFile("/a/b/c", "c", 0o644)
	e.writeFile("/file", "f", 0o644)
	e.symlink("b", "/a/link")
	e.symlink("/a/b", "/abs")
	e.symlink("../../../../a", "/dotdot")
	e.symlink("loop2", "/loop1")
	e.symlink("loop1", "/loop2")
	e.symlink("/nowhere/x", "/dangling")
	e.symlink("file", "/filelink")
	// A chain of 40 links resolves; 41 do not.
	e.writeFile("/end", "end", 0o644)
	prev := "end"
	for i := 1; i <= 41; i++ {
		name := "/chain" + strings.Repeat("x", i)
		e.symlink(prev, name)
		prev = name[1:]
	}
	c := e.stat("/a/b/c")
	b := e.stat("/a/b")
	root := e.stat("/")
	end := e.stat("/end")

	tests := []struct {
		path    string
		follow  bool
		wantIno uint64
		wantErr error
	}{
		{path: "/a/b/c", follow: true, wantIno: c.Ino},
		{path: "a/b/c", follow: true, wantIno: c.Ino},
		{path: "//a///b//c", follow: true, wantIno: c.Ino},
		{path: "/a/./b/../b/c", follow: true, wantIno: c.Ino},
		{path: "/a/link/c", follow: true, wantIno: c.Ino},
		{path: "/abs/c", follow: true, wantIno: c.Ino},
		{path: "/abs", follow: true, wantIno: b.Ino},
		{path: "/a/link/", follow: false, wantIno: b.Ino},
		{path: "/..", follow: true, wantIno: root.Ino},
		{path: "/../../..", follow: true, wantIno: root.Ino},
		{path: "/../a/../../a/b/c", follow: true, wantIno: c.Ino},
		{path: "/dotdot/b/c", follow: true, wantIno: c.Ino},
		{path: "/", follow: true, wantIno: root.Ino},
		{path: ".", follow: true, wantIno: root.Ino},
		{path: "/loop1", follow: true, wantErr: unix.ELOOP},
		{path: "/loop1/x", follow: false, wantErr: unix.ELOOP},
		{path: "/dangling", follow: true, wantErr: unix.ENOENT},
		{path: "/missing", follow: true, wantErr: unix.ENOENT},
		{path: "/missing/x", follow: true, wantErr: unix.ENOENT},
		{path: "", follow: true, wantErr: unix.ENOENT},
		{path: "/file/", follow: true, wantErr: unix.ENOTDIR},
		{path: "/file/.", follow: true, wantErr: unix.ENOTDIR},
		{path: "/file/x", follow: true, wantErr: unix.ENOTDIR},
		{path: "/filelink/", follow: false, wantErr: unix.ENOTDIR},
		{path: "/a/b/c/..", follow: true, wantErr: unix.ENOTDIR},
		{path: "/" + strings.Repeat("n", 256), follow: true, wantErr: unix.ENAMETOOLONG},
		{path: strings.Repeat("/a", 2048), follow: true, wantErr: unix.ENAMETOOLONG},
		{path: "/chain" + strings.Repeat("x", 40), follow: true, wantIno: end.Ino},
		{path: "/chain" + strings.Repeat("x", 41), follow: true, wantErr: unix.ELOOP},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			pop := e.pop(tc.path)
			pop.FollowFinal = tc.follow
			st, err := e.v.Stat(e.ctx, e.cred, pop)
			wantErr(t, "stat "+tc.path, err, tc.wantErr)
			if tc.wantErr == nil && st.Ino != tc.wantIno {
				t.Fatalf("stat %s: ino %d, want %d", tc.path, st.Ino, tc.wantIno)
			}
		})
	}
	// Without following, the last component is the link itself.
	st, err := e.v.Stat(e.ctx, e.cred, e.nofollow("/a/link"))
	wantErr(t, "lstat /a/link", err, nil)
	if st.Type() != unix.S_IFLNK {
		t.Fatalf("lstat /a/link: mode %#o, want a symlink", st.Mode)
	}
	// AT_EMPTY_PATH names the start.
	pop := e.pop("")
	pop.EmptyPath = true
	if st, err := e.v.Stat(e.ctx, e.cred, pop); err != nil || st.Ino != root.Ino {
		t.Fatalf("stat with AT_EMPTY_PATH: %+v, %v", st, err)
	}
	if target, err := e.v.Readlink(e.ctx, e.cred, e.pop("/abs")); err != nil || target != "/a/b" {
		t.Fatalf("readlink /abs = %q, %v", target, err)
	}
	_, err = e.v.Readlink(e.ctx, e.cred, e.pop("/file"))
	wantErr(t, "readlink of a file", err, unix.EINVAL)
}

func TestMountsAndChroot(t *testing.T) {
	e := newEnv(t)
	e.mkdir("/a", 0o755)
	e.mkdir("/a/mnt", 0o755)
	e.writeFile("/a/mnt/hidden", "under", 0o644)
	sub := tmpfs.New(tmpfs.Options{})
	if err := e.v.Mount(e.ctx, e.cred, e.pop("/a/mnt"), sub, vfs.MountOptions{}); err != nil {
		t.Fatalf("mount: %v", err)
	}
	wantErr(t, "file under the mount", func() error { _, err := e.v.Stat(e.ctx, e.cred, e.pop("/a/mnt/hidden")); return err }(), unix.ENOENT)
	e.mkdir("/a/mnt/d", 0o755)
	e.writeFile("/a/mnt/d/f", "in mount", 0o644)
	e.symlink("/d/f", "/a/mnt/abs")
	if got := e.stat("/a/mnt/..").Ino; got != e.stat("/a").Ino {
		t.Fatalf("/a/mnt/.. is ino %d, want /a's %d", got, e.stat("/a").Ino)
	}
	// Rename and link across mounts.
	wantErr(t, "rename across mounts", e.v.Rename(e.ctx, e.cred, e.pop("/a/mnt/d/f"), e.pop("/a/f"), 0), unix.EXDEV)
	wantErr(t, "link across mounts", e.v.Link(e.ctx, e.cred, e.pop("/a/mnt/d/f"), e.pop("/a/f")), unix.EXDEV)
	wantErr(t, "rmdir of a mountpoint", e.v.Rmdir(e.ctx, e.cred, e.pop("/a/mnt")), unix.EBUSY)

	// A task rooted at the mount: ".." and absolute symlinks stay inside.
	newRoot, err := e.v.GetDirectoryAt(e.ctx, e.cred, e.pop("/a/mnt"))
	if err != nil {
		t.Fatalf("chroot target: %v", err)
	}
	defer newRoot.DecRef(e.ctx)
	in := func(path string) vfs.PathOperation {
		return vfs.PathOperation{Root: newRoot, Start: newRoot, Path: path, FollowFinal: true}
	}
	for _, p := range []string{"/../../d/f", "../d/f", "/abs", "/d/../../../abs"} {
		f, err := e.v.Open(e.ctx, e.cred, in(p), vfs.OpenOptions{})
		if err != nil {
			t.Fatalf("open %s in chroot: %v", p, err)
		}
		buf := make([]byte, 64)
		n, _ := f.Read(e.ctx, buf)
		f.DecRef(e.ctx)
		if string(buf[:n]) != "in mount" {
			t.Fatalf("open %s in chroot read %q", p, buf[:n])
		}
	}
	vd, err := e.v.GetDentryAt(e.ctx, e.cred, in("/d/.."))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := e.v.PathOf(newRoot, vd); p != "/" || !ok {
		t.Fatalf("PathOf chroot root = %q, %v", p, ok)
	}
	if p, _ := e.v.PathOf(e.root, vd); p != "/a/mnt" {
		t.Fatalf("PathOf from the real root = %q", p)
	}
	vd.DecRef(e.ctx)

	// Unmounting uncovers the old contents; files open inside stay usable.
	f, err := e.v.Open(e.ctx, e.cred, e.pop("/a/mnt/d/f"), vfs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.DecRef(e.ctx)
	wantErr(t, "umount of a non-root", e.v.Umount(e.ctx, e.cred, e.pop("/a/mnt/d")), unix.EINVAL)
	if err := e.v.Umount(e.ctx, e.cred, e.pop("/a/mnt")); err != nil {
		t.Fatalf("umount: %v", err)
	}
	if got, err := e.readFile(e.cred, "/a/mnt/hidden"); err != nil || got != "under" {
		t.Fatalf("after umount read %q, %v", got, err)
	}
	buf := make([]byte, 8)
	if n, err := f.Read(e.ctx, buf); err != nil || string(buf[:n]) != "in mount" {
		t.Fatalf("read of a file in a detached mount: %q, %v", buf[:n], err)
	}
	wantErr(t, "umount of /", e.v.Umount(e.ctx, e.cred, e.pop("/")), unix.EBUSY)
	user := auth.User(1000, 1000)
	wantErr(t, "mount as a user", e.v.Mount(e.ctx, user, e.pop("/a"), tmpfs.New(tmpfs.Options{}), vfs.MountOptions{}), unix.EPERM)
	wantErr(t, "umount as a user", e.v.Umount(e.ctx, user, e.pop("/a")), unix.EPERM)
}

func TestReadOnlyMount(t *testing.T) {
	e := newEnv(t)
	e.mkdir("/ro", 0o755)
	sub := tmpfs.New(tmpfs.Options{})
	if err := e.v.Mount(e.ctx, e.cred, e.pop("/ro"), sub, vfs.MountOptions{Flags: vfs.MountReadOnly}); err != nil {
		t.Fatal(err)
	}
	// Populate it through a second, writable mount of the same tmpfs.
	e.mkdir("/rw", 0o755)
	if err := e.v.Mount(e.ctx, e.cred, e.pop("/rw"), sub, vfs.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	e.writeFile("/rw/f", "data", 0o644)
	if got, err := e.readFile(e.cred, "/ro/f"); err != nil || got != "data" {
		t.Fatalf("read through ro mount: %q, %v", got, err)
	}
	_, err := e.v.Open(e.ctx, e.cred, e.pop("/ro/f"), vfs.OpenOptions{Flags: unix.O_WRONLY})
	wantErr(t, "open for write", err, unix.EROFS)
	_, err = e.v.Open(e.ctx, e.cred, e.pop("/ro/new"), vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_CREAT})
	wantErr(t, "create", err, unix.EROFS)
	wantErr(t, "mkdir", e.v.Mkdir(e.ctx, e.cred, e.pop("/ro/d"), 0o755), unix.EROFS)
	wantErr(t, "mkdir of an existing name", e.v.Mkdir(e.ctx, e.cred, e.pop("/ro/f"), 0o755), unix.EEXIST)
	wantErr(t, "unlink", e.v.Unlink(e.ctx, e.cred, e.pop("/ro/f")), unix.EROFS)
	wantErr(t, "chmod", e.v.Chmod(e.ctx, e.cred, e.pop("/ro/f"), 0o600), unix.EROFS)
	wantErr(t, "truncate", e.v.Truncate(e.ctx, e.cred, e.pop("/ro/f"), 0), unix.EROFS)
	wantErr(t, "access W_OK", e.v.Access(e.ctx, e.cred, e.pop("/ro/f"), unix.W_OK), unix.EROFS)
	st, err := e.v.Statfs(e.ctx, e.cred, e.pop("/ro"))
	if err != nil || st.Flags&unix.ST_RDONLY == 0 || st.Type != unix.TMPFS_MAGIC {
		t.Fatalf("statfs of ro mount: %+v, %v", st, err)
	}
}

func TestStackedMounts(t *testing.T) {
	e := newEnv(t)
	e.mkdir("/m", 0o755)
	e.writeFile("/m/base", "", 0o644)
	for i, name := range []string{"first", "second"} {
		if err := e.v.Mount(e.ctx, e.cred, e.pop("/m"), tmpfs.New(tmpfs.Options{}), vfs.MountOptions{}); err != nil {
			t.Fatalf("mount %d: %v", i, err)
		}
		e.writeFile("/m/"+name, "", 0o644)
	}
	ms := e.v.Mounts()
	if len(ms) != 3 || ms[0].Path != "/" || ms[1].Path != "/m" || ms[2].Path != "/m" || ms[1].Mount == ms[2].Mount {
		t.Fatalf("mount table %+v", ms)
	}
	seen := func(name string) bool {
		_, err := e.v.Stat(e.ctx, e.cred, e.pop("/m/"+name))
		return err == nil
	}
	if !seen("second") || seen("first") || seen("base") {
		t.Fatal("the newest mount is not the one seen")
	}
	for _, want := range []string{"first", "base"} {
		if err := e.v.Umount(e.ctx, e.cred, e.pop("/m")); err != nil {
			t.Fatal(err)
		}
		if !seen(want) {
			t.Fatalf("after umount %s is not visible", want)
		}
	}
	if err := e.v.Umount(e.ctx, e.cred, e.pop("/m")); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("umount of a plain directory: %v", err)
	}
}
