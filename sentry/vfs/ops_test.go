package vfs_test

import (
	"errors"
	"fmt"
	"sort"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/pipe"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/vfs/lock"
	"moat.dev/moat/sentry/waiter"
)

func TestOpenFlags(t *testing.T) {
	e := newEnv(t)
	e.mkdir("/d", 0o755)
	e.writeFile("/f", "hello", 0o644)
	e.symlink("f", "/link")
	e.symlink("new-target", "/dangling")
	tests := []struct {
		name    string
		path    string
		flags   uint32
		wantErr error
	}{
		{"read", "/f", unix.O_RDONLY, nil},
		{"excl on existing", "/f", unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY, unix.EEXIST},
		{"excl on symlink", "/link", unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY, unix.EEXIST},
		{"excl on dangling symlink", "/dangling", unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY, unix.EEXIST},
		{"nofollow on symlink", "/link", unix.O_RDONLY | unix.O_NOFOLLOW, unix.ELOOP},
		{"path nofollow on symlink", "/link", unix.O_PATH | unix.O_NOFOLLOW, nil},
		{"directory on file", "/f", unix.O_RDONLY | unix.O_DIRECTORY, unix.ENOTDIR},
		{"directory through symlink", "/link", unix.O_RDONLY | unix.O_DIRECTORY, unix.ENOTDIR},
		{"write a directory", "/d", unix.O_WRONLY, unix.EISDIR},
		{"creat a directory", "/d", unix.O_CREAT | unix.O_RDONLY, unix.EISDIR},
		{"creat with trailing slash", "/new/", unix.O_CREAT | unix.O_WRONLY, unix.EISDIR},
		{"creat|directory", "/new", unix.O_CREAT | unix.O_DIRECTORY, unix.EINVAL},
		{"creat in missing dir", "/missing/new", unix.O_CREAT | unix.O_WRONLY, unix.ENOENT},
		{"directory", "/d", unix.O_RDONLY | unix.O_DIRECTORY, nil},
		{"creat through dangling symlink", "/dangling", unix.O_CREAT | unix.O_WRONLY, nil},
		{"tmpfile", "/d", unix.O_TMPFILE | unix.O_RDWR, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := e.v.Open(e.ctx, e.cred, e.pop(tc.path), vfs.OpenOptions{Flags: tc.flags, Mode: 0o644})
			wantErr(t, fmt.Sprintf("open %s %#o", tc.path, tc.flags), err, tc.wantErr)
			if f != nil {
				f.DecRef(e.ctx)
			}
		})
	}
	// The dangling symlink's target was created.
	if st := e.stat("/new-target"); st.Type() != unix.S_IFREG {
		t.Fatalf("O_CREAT through a dangling symlink made mode %#o", st.Mode)
	}
	// O_PATH files do no I/O.
	f, err := e.v.Open(e.ctx, e.cred, e.pop("/f"), vfs.OpenOptions{Flags: unix.O_PATH | unix.O_RDWR})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Read(e.ctx, make([]byte, 1))
	wantErr(t, "read of O_PATH file", err, unix.EBADF)
	if st, err := f.Stat(e.ctx); err != nil || st.Size != 5 {
		t.Fatalf("fstat of O_PATH file: %+v, %v", st, err)
	}
	f.DecRef(e.ctx)

	// O_TRUNC and O_APPEND.
	f, err = e.v.Open(e.ctx, e.cred, e.pop("/f"), vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_TRUNC | unix.O_APPEND})
	if err != nil {
		t.Fatal(err)
	}
	if st := e.stat("/f"); st.Size != 0 {
		t.Fatalf("O_TRUNC left size %d", st.Size)
	}
	f.Write(e.ctx, []byte("ab"))
	f.Pwrite(e.ctx, []byte("cd"), 0) // appends anyway, as on Linux
	if off := f.Offset(); off != 2 {
		t.Fatalf("offset after append %d, want 2", off)
	}
	if err := f.SetStatusFlags(e.ctx, e.cred, 0); err != nil {
		t.Fatal(err)
	}
	f.Pwrite(e.ctx, []byte("X"), 0)
	f.DecRef(e.ctx)
	if got, _ := e.readFile(e.cred, "/f"); got != "Xbcd" {
		t.Fatalf("file holds %q, want %q", got, "Xbcd")
	}
	_, err = f.Read(e.ctx, nil)
	_ = err
}

func TestPermissionsAsUser(t *testing.T) {
	e := newEnv(t)
	user := auth.User(1000, 1000, 50)
	other := auth.User(2000, 2000)
	e.mkdir("/private", 0o700)
	e.writeFile("/private/secret", "s", 0o644)
	e.writeFile("/ro", "r", 0o644)
	e.writeFile("/none", "n", 0o000)
	e.writeFile("/script", "#!", 0o644)
	e.mkdir("/tmp", 0o1777)
	e.mkdir("/home", 0o755)
	if err := e.v.Chown(e.ctx, e.cred, e.pop("/home"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	e.mkdir("/grp", 0o2775)
	if err := e.v.Chown(e.ctx, e.cred, e.pop("/grp"), 0, 50); err != nil {
		t.Fatal(err)
	}

	_, err := e.readFile(user, "/private/secret")
	wantErr(t, "search a 0700 dir", err, unix.EACCES)
	if got, err := e.readFile(user, "/ro"); err != nil || got != "r" {
		t.Fatalf("read 0644 file: %q, %v", got, err)
	}
	_, err = e.v.Open(e.ctx, user, e.pop("/ro"), vfs.OpenOptions{Flags: unix.O_WRONLY})
	wantErr(t, "write another's 0644 file", err, unix.EACCES)
	_, err = e.v.Open(e.ctx, user, e.pop("/ro"), vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_TRUNC})
	wantErr(t, "O_TRUNC without write permission", err, unix.EACCES)
	_, err = e.v.Open(e.ctx, user, e.pop("/ro"), vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_NOATIME})
	wantErr(t, "O_NOATIME on another's file", err, unix.EPERM)
	if got, err := e.readFile(e.cred, "/none"); err != nil || got != "n" {
		t.Fatalf("root reads a 0000 file: %q, %v", got, err)
	}
	_, err = e.v.Open(e.ctx, e.cred, e.pop("/script"), vfs.OpenOptions{Exec: true})
	wantErr(t, "root executes a file with no x bit", err, unix.EACCES)
	wantErr(t, "access R_OK", e.v.Access(e.ctx, user, e.pop("/ro"), unix.R_OK), nil)
	wantErr(t, "access W_OK", e.v.Access(e.ctx, user, e.pop("/ro"), unix.W_OK), unix.EACCES)
	wantErr(t, "mkdir in /", e.v.Mkdir(e.ctx, user, e.pop("/mine"), 0o755), unix.EACCES)
	wantErr(t, "mkdir of existing name without write permission", e.v.Mkdir(e.ctx, user, e.pop("/ro"), 0o755), unix.EEXIST)
	wantErr(t, "unlink in /", e.v.Unlink(e.ctx, user, e.pop("/ro")), unix.EACCES)

	// Ownership rules.
	wantErr(t, "chmod another's file", e.v.Chmod(e.ctx, user, e.pop("/ro"), 0o777), unix.EPERM)
	e.writeFileAs(user, "/home/mine", "m", 0o644)
	wantErr(t, "chmod own file", e.v.Chmod(e.ctx, user, e.pop("/home/mine"), 0o4755), nil)
	wantErr(t, "chown own file away", e.v.Chown(e.ctx, user, e.pop("/home/mine"), 2000, ^uint32(0)), unix.EPERM)
	wantErr(t, "chgrp to a group of ours", e.v.Chown(e.ctx, user, e.pop("/home/mine"), ^uint32(0), 50), nil)
	if st := e.stat("/home/mine"); st.GID != 50 || st.Mode&unix.S_ISUID != 0 {
		t.Fatalf("after chgrp: gid %d mode %#o (set-user-ID must be cleared)", st.GID, st.Mode)
	}
	wantErr(t, "chgrp to a group not ours", e.v.Chown(e.ctx, user, e.pop("/home/mine"), ^uint32(0), 2000), unix.EPERM)
	now := unix.Timespec{Nsec: unix.UTIME_NOW}
	wantErr(t, "touch another's writable file", e.v.Utimes(e.ctx, user, e.pop("/tmp"), now, now), nil)
	wantErr(t, "set explicit times on another's file", e.v.Utimes(e.ctx, user, e.pop("/ro"), unix.Timespec{Sec: 1}, unix.Timespec{Sec: 1}), unix.EPERM)
	wantErr(t, "set explicit times on own file", e.v.Utimes(e.ctx, user, e.pop("/home/mine"), unix.Timespec{Sec: 7}, unix.Timespec{Nsec: unix.UTIME_OMIT}), nil)
	if st := e.stat("/home/mine"); st.Atime.Sec != 7 || st.Mtime.Sec == 7 {
		t.Fatalf("utimes: atime %v mtime %v", st.Atime, st.Mtime)
	}

	// Sticky directory: others cannot remove or rename our files.
	e.writeFileAs(user, "/tmp/u", "u", 0o666)
	wantErr(t, "unlink another's file in a sticky dir", e.v.Unlink(e.ctx, other, e.pop("/tmp/u")), unix.EPERM)
	wantErr(t, "rename another's file in a sticky dir", e.v.Rename(e.ctx, other, e.pop("/tmp/u"), e.pop("/tmp/v"), 0), unix.EPERM)
	wantErr(t, "unlink own file in a sticky dir", e.v.Unlink(e.ctx, user, e.pop("/tmp/u")), nil)

	// Set-group-ID directories hand down their group.
	e.mkdirAs(user, "/grp/sub", 0o755) // user is in group 50
	if st := e.stat("/grp/sub"); st.GID != 50 || st.Mode&unix.S_ISGID == 0 {
		t.Fatalf("dir in a setgid dir: gid %d mode %#o", st.GID, st.Mode)
	}
	// Mknod of devices needs CAP_MKNOD; plain tmpfs refuses them anyway.
	wantErr(t, "mknod a device as a user", e.v.Mknod(e.ctx, user, e.pop("/home/null"), unix.S_IFCHR|0o666, unix.Mkdev(1, 3)), unix.EPERM)
	wantErr(t, "mknod a device on tmpfs", e.v.Mknod(e.ctx, e.cred, e.pop("/null"), unix.S_IFCHR|0o666, unix.Mkdev(1, 3)), unix.EPERM)
}

func (e *env) writeFileAs(c *auth.Credentials, path, data string, mode uint32) {
	e.t.Helper()
	f, err := e.v.Open(e.ctx, c, e.pop(path), vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_CREAT, Mode: mode})
	if err != nil {
		e.t.Fatalf("create %s as %d: %v", path, c.UID, err)
	}
	f.Write(e.ctx, []byte(data))
	f.DecRef(e.ctx)
}

func (e *env) mkdirAs(c *auth.Credentials, path string, mode uint32) {
	e.t.Helper()
	if err := e.v.Mkdir(e.ctx, c, e.pop(path), mode); err != nil {
		e.t.Fatalf("mkdir %s as %d: %v", path, c.UID, err)
	}
}

func TestRenameLinkUnlink(t *testing.T) {
	e := newEnv(t)
	e.mkdir("/a", 0o755)
	e.mkdir("/a/sub", 0o755)
	e.mkdir("/b", 0o755)
	e.mkdir("/full", 0o755)
	e.writeFile("/full/x", "x", 0o644)
	e.writeFile("/f", "F", 0o644)
	e.writeFile("/g", "G", 0o644)
	if err := e.v.Link(e.ctx, e.cred, e.pop("/f"), e.pop("/f2")); err != nil {
		t.Fatal(err)
	}
	if st := e.stat("/f"); st.Nlink != 2 {
		t.Fatalf("nlink after link = %d", st.Nlink)
	}
	tests := []struct {
		name     string
		old, new string
		flags    uint32
		wantErr  error
	}{
		{"into own subdir", "/a", "/a/sub/a", 0, unix.EINVAL},
		{"dir over file", "/a", "/f", 0, unix.ENOTDIR},
		{"file over dir", "/f", "/b", 0, unix.EISDIR},
		{"over non-empty dir", "/a", "/full", 0, unix.ENOTEMPTY},
		{"noreplace", "/f", "/g", unix.RENAME_NOREPLACE, unix.EEXIST},
		{"exchange with missing", "/f", "/missing", unix.RENAME_EXCHANGE, unix.ENOENT},
		{"dot", "/a/.", "/c", 0, unix.EBUSY},
		{"missing source", "/missing", "/c", 0, unix.ENOENT},
		{"file with trailing slash", "/g/", "/h", 0, unix.ENOTDIR},
		{"hard links of one file", "/f", "/f2", 0, nil},
		{"exchange", "/f", "/g", unix.RENAME_EXCHANGE, nil},
		{"dir over empty dir", "/a", "/b", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.v.Rename(e.ctx, e.cred, e.pop(tc.old), e.pop(tc.new), tc.flags)
			wantErr(t, "rename "+tc.old+" "+tc.new, err, tc.wantErr)
		})
	}
	if got, _ := e.readFile(e.cred, "/f"); got != "G" {
		t.Fatalf("after exchange /f holds %q", got)
	}
	if got, _ := e.readFile(e.cred, "/g"); got != "F" {
		t.Fatalf("after exchange /g holds %q", got)
	}
	if _, err := e.v.Stat(e.ctx, e.cred, e.pop("/b/sub")); err != nil {
		t.Fatalf("/a moved over /b: /b/sub: %v", err)
	}
	if _, err := e.v.Stat(e.ctx, e.cred, e.pop("/a")); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("/a after rename: %v", err)
	}

	// An open file survives the rename of its directory and its unlink.
	f, err := e.v.Open(e.ctx, e.cred, e.pop("/b/sub/../../g"), vfs.OpenOptions{Flags: unix.O_RDWR})
	if err != nil {
		t.Fatal(err)
	}
	defer f.DecRef(e.ctx)
	cwd, err := e.v.GetDirectoryAt(e.ctx, e.cred, e.pop("/b/sub"))
	if err != nil {
		t.Fatal(err)
	}
	defer cwd.DecRef(e.ctx)
	if err := e.v.Rename(e.ctx, e.cred, e.pop("/b"), e.pop("/c"), 0); err != nil {
		t.Fatal(err)
	}
	if p, ok := e.v.PathOf(e.root, cwd); p != "/c/sub" || !ok {
		t.Fatalf("cwd after rename of its parent: %q %v", p, ok)
	}
	rel := vfs.PathOperation{Root: e.root, Start: cwd, Path: "../../f", FollowFinal: true}
	if _, err := e.v.Stat(e.ctx, e.cred, rel); err != nil {
		t.Fatalf("relative walk from moved cwd: %v", err)
	}
	// /g and /f2 are the two links of the file open as f.
	wantErr(t, "unlink", e.v.Unlink(e.ctx, e.cred, e.pop("/g")), nil)
	wantErr(t, "unlink", e.v.Unlink(e.ctx, e.cred, e.pop("/f2")), nil)
	if st, _ := f.Stat(e.ctx); st.Nlink != 0 {
		t.Fatalf("nlink of unlinked open file = %d", st.Nlink)
	}
	buf := make([]byte, 4)
	if n, err := f.Pread(e.ctx, buf, 0); err != nil || string(buf[:n]) != "F" {
		t.Fatalf("read unlinked file: %q, %v", buf[:n], err)
	}
	wantErr(t, "link an unlinked file", e.v.Link(e.ctx, e.cred, vfs.PathOperation{Root: e.root, Start: f.VirtualDentryNoRef(), EmptyPath: true}, e.pop("/back")), unix.ENOENT)
	wantErr(t, "unlink a dir", e.v.Unlink(e.ctx, e.cred, e.pop("/c")), unix.EISDIR)
	wantErr(t, "rmdir a file", e.v.Rmdir(e.ctx, e.cred, e.pop("/f")), unix.ENOTDIR)
	wantErr(t, "rmdir non-empty", e.v.Rmdir(e.ctx, e.cred, e.pop("/c")), unix.ENOTEMPTY)
	wantErr(t, "rmdir .", e.v.Rmdir(e.ctx, e.cred, e.pop("/c/sub/.")), unix.EINVAL)
	wantErr(t, "rmdir cwd", e.v.Rmdir(e.ctx, e.cred, e.pop("/c/sub")), nil)
	if _, ok := e.v.PathOf(e.root, cwd); ok {
		t.Fatal("removed cwd still reachable")
	}
	wantErr(t, "create in removed cwd", e.v.Mkdir(e.ctx, e.cred, vfs.PathOperation{Root: e.root, Start: cwd, Path: "x"}, 0o755), unix.ENOENT)
	wantErr(t, "link a dir", e.v.Link(e.ctx, e.cred, e.pop("/c"), e.pop("/c2")), unix.EPERM)
}

func TestGetdentsStableOffsets(t *testing.T) {
	e := newEnv(t)
	e.mkdir("/d", 0o755)
	const n = 200
	for i := 0; i < n; i++ {
		e.writeFile(fmt.Sprintf("/d/f%03d", i), "", 0o644)
	}
	f, err := e.v.Open(e.ctx, e.cred, e.pop("/d"), vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
	if err != nil {
		t.Fatal(err)
	}
	defer f.DecRef(e.ctx)
	seen := map[string]int{}
	removed := map[string]bool{}
	for round := 0; ; round++ {
		got := 0
		if err := f.Getdents(e.ctx, func(d vfs.Dirent) bool {
			if got == 7 {
				return false
			}
			got++
			seen[d.Name]++
			if seen[d.Name] > 1 {
				t.Fatalf("round %d: %+v seen twice", round, d)
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if got == 0 {
			break
		}
		if round > 1000 {
			t.Fatalf("directory read does not end: %d entries seen", len(seen))
		}
		// Between reads, remove an entry not yet read and add new ones.
		victim := fmt.Sprintf("/d/f%03d", n-1-round)
		if !removed[victim] && seen[victim[3:]] == 0 {
			if err := e.v.Unlink(e.ctx, e.cred, e.pop(victim)); err == nil {
				removed[victim[3:]] = true
			}
		}
		if round < 20 {
			e.writeFile(fmt.Sprintf("/d/new%03d", round), "", 0o644)
		}
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%03d", i)
		if removed[name] {
			continue
		}
		if seen[name] != 1 {
			t.Fatalf("%s seen %d times", name, seen[name])
		}
	}
	for name, c := range seen {
		if c != 1 {
			t.Fatalf("%s seen %d times", name, c)
		}
	}
	if seen["."] != 1 || seen[".."] != 1 {
		t.Fatal(". or .. missing")
	}
	// Rewind and read all in one go.
	if _, err := f.Seek(e.ctx, 0, unix.SEEK_SET); err != nil {
		t.Fatal(err)
	}
	all := readDir(t, e.ctx, f, 1000)
	sort.Strings(all)
	if want := 2 + n - len(removed) + 20; len(all) != want {
		t.Fatalf("rewound read found %d entries, want %d", len(all), want)
	}
}

func TestRecordLocksAndFlock(t *testing.T) {
	e := newEnv(t)
	e.writeFile("/f", "0123456789", 0o644)
	open := func() *vfs.File {
		f, err := e.v.Open(e.ctx, e.cred, e.pop("/f"), vfs.OpenOptions{Flags: unix.O_RDWR})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := open(), open()
	defer b.DecRef(e.ctx)
	procA, procB := "pid-1", "pid-2"
	if err := a.SetRecordLock(e.ctx, procA, 1, false, vfs.RecordLock{Type: lock.Write, Whence: unix.SEEK_SET, Start: 0, Len: 5}); err != nil {
		t.Fatal(err)
	}
	err := b.SetRecordLock(e.ctx, procB, 2, false, vfs.RecordLock{Type: lock.Read, Whence: unix.SEEK_END, Start: -8, Len: 2})
	wantErr(t, "conflicting F_SETLK", err, unix.EAGAIN)
	rec, ok, err := b.GetRecordLock(e.ctx, procB, false, vfs.RecordLock{Type: lock.Read, Whence: unix.SEEK_SET, Start: 4})
	if err != nil || !ok || rec.PID != 1 || rec.Start != 0 || rec.End != 5 {
		t.Fatalf("F_GETLK = %+v %v %v", rec, ok, err)
	}
	// An OFD lock from b conflicts with a's POSIX lock too.
	err = b.SetRecordLock(e.ctx, nil, 0, true, vfs.RecordLock{Type: lock.Write, Start: 4, Len: 1})
	wantErr(t, "conflicting F_OFD_SETLK", err, unix.EAGAIN)
	q, err := b.LockQueue(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, ch := waiter.NewChannelEntry(waiter.EventIn)
	q.EventRegister(w)
	defer q.EventUnregister(w)
	// Closing any descriptor of the file drops the process's POSIX locks.
	a.ReleasePOSIXLocks(e.ctx, procA)
	select {
	case <-ch:
	default:
		t.Fatal("lock release did not wake the waiter")
	}
	wantErr(t, "F_OFD_SETLK after release", b.SetRecordLock(e.ctx, nil, 0, true, vfs.RecordLock{Type: lock.Write, Start: 4, Len: 1}), nil)
	wantErr(t, "flock a", a.Flock(e.ctx, lock.Write), nil)
	wantErr(t, "flock b", b.Flock(e.ctx, lock.Read), unix.EWOULDBLOCK)
	a.DecRef(e.ctx) // the last reference drops a's flock
	wantErr(t, "flock b after a closed", b.Flock(e.ctx, lock.Read), nil)
	ro, err := e.v.Open(e.ctx, e.cred, e.pop("/f"), vfs.OpenOptions{Flags: unix.O_RDONLY})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.DecRef(e.ctx)
	wantErr(t, "write lock on a read-only file", ro.SetRecordLock(e.ctx, procA, 1, false, vfs.RecordLock{Type: lock.Write}), unix.EBADF)
}

func TestFIFOOpenRules(t *testing.T) {
	e := newEnv(t)
	if err := e.v.Mknod(e.ctx, e.cred, e.pop("/fifo"), unix.S_IFIFO|0o644, 0); err != nil {
		t.Fatal(err)
	}
	open := func(flags uint32) (*vfs.File, error) {
		return e.v.Open(e.ctx, e.cred, e.pop("/fifo"), vfs.OpenOptions{Flags: flags})
	}
	_, err := open(unix.O_WRONLY | unix.O_NONBLOCK)
	wantErr(t, "O_WRONLY|O_NONBLOCK without reader", err, unix.ENXIO)
	r, err := open(unix.O_RDONLY | unix.O_NONBLOCK)
	wantErr(t, "O_RDONLY|O_NONBLOCK", err, nil)
	if n, err := r.Read(e.ctx, make([]byte, 1)); n != 0 || err != nil {
		t.Fatalf("read of writerless FIFO = %d, %v; want EOF", n, err)
	}
	r.DecRef(e.ctx)

	// A blocking reader waits for a writer.
	_, err = open(unix.O_RDONLY)
	var pending *vfs.PendingOpenError
	if !errors.As(err, &pending) || !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("blocking O_RDONLY open: %v, want PendingOpenError", err)
	}
	rf := pending.File
	defer rf.DecRef(e.ctx)
	entry, ch := waiter.NewChannelEntry(pending.Mask)
	rf.EventRegister(entry)
	defer rf.EventUnregister(entry)
	// The waiting reader counts: a non-blocking writer now succeeds.
	wf, err := open(unix.O_WRONLY | unix.O_NONBLOCK)
	if err != nil {
		t.Fatalf("writer with a waiting reader: %v", err)
	}
	defer wf.DecRef(e.ctx)
	select {
	case <-ch:
	default:
		t.Fatal("writer's open did not wake the waiting reader")
	}
	if !rf.OpenReady() {
		t.Fatal("reader open not ready after writer arrived")
	}
	if _, err := wf.Write(e.ctx, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := rf.Read(e.ctx, buf); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("FIFO read %q, %v", buf[:n], err)
	}
	rw, err := open(unix.O_RDWR)
	wantErr(t, "O_RDWR never waits", err, nil)
	rw.DecRef(e.ctx)

	// A blocking writer on a fresh FIFO waits for a reader; giving up
	// (a signal) drops it without leaving a phantom writer behind.
	if err := e.v.Mknod(e.ctx, e.cred, e.pop("/fifo2"), unix.S_IFIFO|0o644, 0); err != nil {
		t.Fatal(err)
	}
	_, err = e.v.Open(e.ctx, e.cred, e.pop("/fifo2"), vfs.OpenOptions{Flags: unix.O_WRONLY})
	if !errors.As(err, &pending) {
		t.Fatalf("blocking O_WRONLY open: %v", err)
	}
	if pending.File.OpenReady() {
		t.Fatal("writer ready without a reader")
	}
	pending.File.DecRef(e.ctx) // interrupted
	r2, err := e.v.Open(e.ctx, e.cred, e.pop("/fifo2"), vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_NONBLOCK})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.DecRef(e.ctx)
	if n, err := r2.Read(e.ctx, buf); n != 0 || err != nil {
		t.Fatalf("read after the waiting writer gave up = %d, %v; want EOF", n, err)
	}
	if _, ok := rf.Impl().(pipe.Sizer); !ok {
		t.Fatal("FIFO file does not offer F_GETPIPE_SZ")
	}
}
