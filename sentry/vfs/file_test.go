package vfs_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/vfs"
)

func TestFileOperationErrors(t *testing.T) {
	e := newEnv(t)
	e.mkdir("/d", 0o755)
	e.writeFile("/f", "data", 0o644)
	open := func(p string, flags uint32) *vfs.File {
		t.Helper()
		f, err := e.v.Open(e.ctx, e.cred, e.pop(p), vfs.OpenOptions{Flags: flags})
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		t.Cleanup(func() { f.DecRef(e.ctx) })
		return f
	}
	ro := open("/f", unix.O_RDONLY)
	wo := open("/f", unix.O_WRONLY)
	dir := open("/d", unix.O_RDONLY|unix.O_DIRECTORY)
	path := open("/f", unix.O_PATH)
	buf := make([]byte, 8)
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"write to O_RDONLY", func() error { _, err := ro.Write(e.ctx, buf); return err }(), unix.EBADF},
		{"read from O_WRONLY", func() error { _, err := wo.Read(e.ctx, buf); return err }(), unix.EBADF},
		{"ftruncate O_RDONLY", ro.Truncate(e.ctx, 0), unix.EINVAL},
		{"ftruncate negative", wo.Truncate(e.ctx, -1), unix.EINVAL},
		{"fallocate O_RDONLY", ro.Fallocate(e.ctx, 0, 0, 10), unix.EBADF},
		{"fallocate zero length", wo.Fallocate(e.ctx, 0, 0, 0), unix.EINVAL},
		{"read a directory", func() error { _, err := dir.Read(e.ctx, buf); return err }(), unix.EISDIR},
		{"getdents of a file", ro.Getdents(e.ctx, func(vfs.Dirent) bool { return true }), unix.ENOTDIR},
		{"SEEK_END on a directory", func() error { _, err := dir.Seek(e.ctx, 0, unix.SEEK_END); return err }(), unix.EINVAL},
		{"bad whence", func() error { _, err := ro.Seek(e.ctx, 0, 42); return err }(), unix.EINVAL},
		{"negative pread", func() error { _, err := ro.Pread(e.ctx, buf, -1); return err }(), unix.EINVAL},
		{"SEEK_DATA past EOF", func() error { _, err := ro.Seek(e.ctx, 4, unix.SEEK_DATA); return err }(), unix.ENXIO},
		{"ioctl on a file", func() error { _, err := ro.Ioctl(e.ctx, nil, 0x5401, 0); return err }(), unix.ENOTTY},
		{"fsync O_PATH", path.Fsync(e.ctx), unix.EBADF},
		{"fchmod O_PATH", path.SetStat(e.ctx, e.cred, vfs.SetStat{Mask: vfs.SetMode, Mode: 0o600}), unix.EBADF},
		{"setfl O_PATH", path.SetStatusFlags(e.ctx, e.cred, unix.O_APPEND), unix.EBADF},
		{"fchmod as a user", ro.SetStat(e.ctx, auth.User(7, 7), vfs.SetStat{Mask: vfs.SetMode, Mode: 0o600}), unix.EPERM},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.name, tc.err, tc.want) })
	}
	// Status flags: only the settable ones change; the access mode stays.
	if err := ro.SetStatusFlags(e.ctx, e.cred, unix.O_NONBLOCK|unix.O_APPEND|unix.O_TRUNC|unix.O_WRONLY); err != nil {
		t.Fatal(err)
	}
	if got := ro.StatusFlags(); got&unix.O_ACCMODE != unix.O_RDONLY || got&unix.O_NONBLOCK == 0 || got&unix.O_APPEND == 0 || got&unix.O_TRUNC != 0 {
		t.Fatalf("F_GETFL after F_SETFL = %#o", got)
	}
	// dup shares one open file description and its offset.
	ro.IncRef()
	n, _ := ro.Read(e.ctx, buf[:2])
	if n != 2 || ro.Offset() != 2 {
		t.Fatalf("shared offset %d after reading %d", ro.Offset(), n)
	}
	ro.DecRef(e.ctx)
	if st, err := path.Stat(e.ctx); err != nil || st.Size != 4 || st.Nlink != 1 || st.Blksize == 0 {
		t.Fatalf("fstat: %+v %v", st, err)
	}
}

func TestOTmpfile(t *testing.T) {
	e := newEnv(t)
	e.mkdir("/tmp", 0o1777)
	e.writeFile("/f", "", 0o644)
	user := auth.User(1000, 1000)
	f, err := e.v.Open(e.ctx, user, e.pop("/tmp"), vfs.OpenOptions{Flags: unix.O_TMPFILE | unix.O_RDWR, Mode: 0o600})
	if err != nil {
		t.Fatalf("O_TMPFILE: %v", err)
	}
	defer f.DecRef(e.ctx)
	f.Write(e.ctx, []byte("anonymous"))
	st, _ := f.Stat(e.ctx)
	if st.Nlink != 0 || st.UID != 1000 || st.Mode != unix.S_IFREG|0o600 {
		t.Fatalf("O_TMPFILE file: nlink %d uid %d mode %#o", st.Nlink, st.UID, st.Mode)
	}
	d, _ := e.v.Open(e.ctx, user, e.pop("/tmp"), vfs.OpenOptions{Flags: unix.O_DIRECTORY})
	if names := readDir(t, e.ctx, d, 100); len(names) != 2 {
		t.Fatalf("the unnamed file shows in the listing: %v", names)
	}
	d.DecRef(e.ctx)
	at := vfs.PathOperation{Root: e.root, Start: f.VirtualDentryNoRef(), EmptyPath: true}
	if err := e.v.Link(e.ctx, user, at, e.pop("/tmp/named")); err != nil {
		t.Fatalf("linkat of an O_TMPFILE file: %v", err)
	}
	if got, err := e.readFile(user, "/tmp/named"); err != nil || got != "anonymous" {
		t.Fatalf("read the linked file: %q %v", got, err)
	}
	g, err := e.v.Open(e.ctx, user, e.pop("/tmp"), vfs.OpenOptions{Flags: unix.O_TMPFILE | unix.O_WRONLY | unix.O_EXCL})
	if err != nil {
		t.Fatal(err)
	}
	defer g.DecRef(e.ctx)
	at.Start = g.VirtualDentryNoRef()
	wantErr(t, "linkat of an O_EXCL tmpfile", e.v.Link(e.ctx, user, at, e.pop("/tmp/other")), unix.ENOENT)
	_, err = e.v.Open(e.ctx, user, e.pop("/tmp"), vfs.OpenOptions{Flags: unix.O_TMPFILE | unix.O_RDONLY})
	wantErr(t, "O_TMPFILE|O_RDONLY", err, unix.EINVAL)
	_, err = e.v.Open(e.ctx, user, e.pop("/f"), vfs.OpenOptions{Flags: unix.O_TMPFILE | unix.O_RDWR})
	wantErr(t, "O_TMPFILE on a file", err, unix.ENOTDIR)
	_, err = e.v.Open(e.ctx, user, e.pop("/"), vfs.OpenOptions{Flags: unix.O_TMPFILE | unix.O_RDWR})
	wantErr(t, "O_TMPFILE without write permission", err, unix.EACCES)
}
