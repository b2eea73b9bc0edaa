package tmpfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/vfs"
)

type env struct {
	ctx  context.Context
	v    *vfs.VirtualFilesystem
	root vfs.VirtualDentry
	cred *auth.Credentials
}

func newEnv(t *testing.T, opts tmpfs.Options) *env {
	t.Helper()
	ctx := context.Background()
	v, err := vfs.New(ctx, tmpfs.New(opts), vfs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{ctx: ctx, v: v, root: v.Root(), cred: auth.Root()}
	t.Cleanup(func() { e.root.DecRef(ctx) })
	return e
}

func (e *env) open(t *testing.T, p string, flags uint32) *vfs.File {
	t.Helper()
	f, err := e.v.Open(e.ctx, e.cred, vfs.PathOperation{Root: e.root, Start: e.root, Path: p}, vfs.OpenOptions{Flags: flags, Mode: 0o644})
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	return f
}

func TestSparseFile(t *testing.T) {
	e := newEnv(t, tmpfs.Options{})
	f := e.open(t, "/sparse", unix.O_RDWR|unix.O_CREAT)
	defer f.DecRef(e.ctx)
	const far = 1 << 30
	if n, err := f.Pwrite(e.ctx, []byte("end"), far); n != 3 || err != nil {
		t.Fatalf("pwrite at 1 GiB = %d, %v", n, err)
	}
	st, _ := f.Stat(e.ctx)
	if st.Size != far+3 || st.Blocks != 8 {
		t.Fatalf("sparse file: size %d blocks %d, want %d and 8", st.Size, st.Blocks, far+3)
	}
	buf := bytes.Repeat([]byte{1}, 10)
	if n, err := f.Pread(e.ctx, buf, 12345); n != 10 || err != nil || !bytes.Equal(buf, make([]byte, 10)) {
		t.Fatalf("read of a hole = %d %v %v", n, err, buf)
	}
	for _, tc := range []struct {
		whence  int
		off     int64
		want    int64
		wantErr error
	}{
		{unix.SEEK_DATA, 0, far, nil},
		{unix.SEEK_HOLE, 0, 0, nil},
		{unix.SEEK_HOLE, far, far + 3, nil},
		{unix.SEEK_DATA, far + 1, far + 1, nil},
		{unix.SEEK_DATA, far + 3, 0, unix.ENXIO},
		{unix.SEEK_END, -1, far + 2, nil},
		{unix.SEEK_SET, -1, 0, unix.EINVAL},
	} {
		got, err := f.Seek(e.ctx, tc.off, tc.whence)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("seek(%d, %d): %v, want %v", tc.off, tc.whence, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Fatalf("seek(%d, %d) = %d, %v; want %d", tc.off, tc.whence, got, err, tc.want)
		}
	}
	// Punch the data out again; the size stays.
	if err := f.Fallocate(e.ctx, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, far-4096, 8192); err != nil {
		t.Fatal(err)
	}
	st, _ = f.Stat(e.ctx)
	if st.Size != far+3 || st.Blocks != 0 {
		t.Fatalf("after punch: size %d blocks %d", st.Size, st.Blocks)
	}
	if err := f.Truncate(e.ctx, 5); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(e.ctx); st.Size != 5 {
		t.Fatalf("size after truncate %d", st.Size)
	}
}

func TestSizeLimit(t *testing.T) {
	e := newEnv(t, tmpfs.Options{MaxBytes: 16 * 4096})
	f := e.open(t, "/big", unix.O_RDWR|unix.O_CREAT)
	data := make([]byte, 10*4096)
	if n, err := f.Write(e.ctx, data); n != len(data) || err != nil {
		t.Fatalf("write 40 KiB = %d, %v", n, err)
	}
	// Only 6 pages are left: a 10-page write is cut short, then ENOSPC.
	if n, err := f.Write(e.ctx, data); n != 6*4096 || err != nil {
		t.Fatalf("write past the limit = %d, %v; want a short write", n, err)
	}
	if _, err := f.Write(e.ctx, data); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("write on a full tmpfs: %v", err)
	}
	if err := f.Fallocate(e.ctx, 0, 1<<20, 4096); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("fallocate on a full tmpfs: %v", err)
	}
	st, err := e.v.Statfs(e.ctx, e.cred, vfs.PathOperation{Root: e.root, Start: e.root, Path: "/", FollowFinal: true})
	if err != nil || st.Blocks != 16 || st.Bfree != 0 {
		t.Fatalf("statfs of full tmpfs: %+v %v", st, err)
	}
	// Deleting the open file frees nothing until it is closed.
	if err := e.v.Unlink(e.ctx, e.cred, vfs.PathOperation{Root: e.root, Start: e.root, Path: "/big"}); err != nil {
		t.Fatal(err)
	}
	g := e.open(t, "/other", unix.O_RDWR|unix.O_CREAT)
	defer g.DecRef(e.ctx)
	if _, err := g.Write(e.ctx, []byte("x")); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("space freed while the unlinked file is open: %v", err)
	}
	f.DecRef(e.ctx)
	if _, err := g.Write(e.ctx, []byte("x")); err != nil {
		t.Fatalf("space not freed after close: %v", err)
	}
}

func TestTimesAndLinks(t *testing.T) {
	e := newEnv(t, tmpfs.Options{})
	pop := func(p string) vfs.PathOperation {
		return vfs.PathOperation{Root: e.root, Start: e.root, Path: p}
	}
	if err := e.v.Mkdir(e.ctx, e.cred, pop("/d"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := e.open(t, "/d/f", unix.O_RDWR|unix.O_CREAT)
	defer f.DecRef(e.ctx)
	if err := f.SetStat(e.ctx, e.cred, vfs.SetStat{Mask: vfs.SetAtime | vfs.SetMtime, Atime: unix.Timespec{Sec: 1}, Mtime: unix.Timespec{Sec: 1}}); err != nil {
		t.Fatal(err)
	}
	f.Write(e.ctx, []byte("x"))
	st, _ := f.Stat(e.ctx)
	if st.Mtime.Sec == 1 || st.Atime.Sec != 1 || st.Btime.Sec == 0 {
		t.Fatalf("times after write: a %v m %v b %v", st.Atime, st.Mtime, st.Btime)
	}
	if err := e.v.Link(e.ctx, e.cred, pop("/d/f"), pop("/d/g")); err != nil {
		t.Fatal(err)
	}
	dst, _ := e.v.Stat(e.ctx, e.cred, pop("/d"))
	if st, _ := f.Stat(e.ctx); st.Nlink != 2 || dst.Nlink != 2 {
		t.Fatalf("nlink file %d dir %d", st.Nlink, dst.Nlink)
	}
	e.v.Mkdir(e.ctx, e.cred, pop("/d/sub"), 0o755)
	if dst, _ := e.v.Stat(e.ctx, e.cred, pop("/d")); dst.Nlink != 3 {
		t.Fatalf("dir nlink with a subdir %d", dst.Nlink)
	}
	if err := e.v.Mknod(e.ctx, e.cred, pop("/d/sock"), unix.S_IFSOCK|0o600, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.Open(e.ctx, e.cred, pop("/d/sock"), vfs.OpenOptions{}); !errors.Is(err, unix.ENXIO) {
		t.Fatalf("open of a socket file: %v", err)
	}
}

// TestConcurrentTree creates, writes, renames and removes files from
// many goroutines at once; run with -race.
func TestConcurrentTree(t *testing.T) {
	e := newEnv(t, tmpfs.Options{})
	pop := func(p string) vfs.PathOperation {
		return vfs.PathOperation{Root: e.root, Start: e.root, Path: p, FollowFinal: true}
	}
	if err := e.v.Mkdir(e.ctx, e.cred, pop("/shared"), 0o777); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			dir := fmt.Sprintf("/shared/g%d", g)
			if err := e.v.Mkdir(e.ctx, e.cred, pop(dir), 0o755); err != nil {
				t.Error(err)
				return
			}
			for i := 0; i < 100; i++ {
				name := fmt.Sprintf("%s/f%d", dir, i)
				f, err := e.v.Open(e.ctx, e.cred, pop(name), vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_CREAT | unix.O_APPEND, Mode: 0o644})
				if err != nil {
					t.Error(err)
					return
				}
				f.Write(e.ctx, []byte(name))
				f.DecRef(e.ctx)
				// Everyone appends to one common file too.
				c, err := e.v.Open(e.ctx, e.cred, pop("/shared/common"), vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_CREAT | unix.O_APPEND, Mode: 0o644})
				if err != nil {
					t.Error(err)
					return
				}
				c.Write(e.ctx, []byte("0123456789"))
				c.DecRef(e.ctx)
				if i%2 == 0 {
					if err := e.v.Rename(e.ctx, e.cred, pop(name), pop(name+"-r"), 0); err != nil {
						t.Error(err)
					}
				} else if err := e.v.Unlink(e.ctx, e.cred, pop(name)); err != nil {
					t.Error(err)
				}
				e.v.Stat(e.ctx, e.cred, pop("/shared/../shared/common"))
			}
		}(g)
	}
	wg.Wait()
	st, err := e.v.Stat(e.ctx, e.cred, pop("/shared/common"))
	if err != nil || st.Size != 8*100*10 {
		t.Fatalf("common file size %d, %v; want %d (appends lost)", st.Size, err, 8*100*10)
	}
	for g := 0; g < 8; g++ {
		d, err := e.v.Open(e.ctx, e.cred, pop(fmt.Sprintf("/shared/g%d", g)), vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		d.Getdents(e.ctx, func(vfs.Dirent) bool { n++; return true })
		d.DecRef(e.ctx)
		if n != 2+50 {
			t.Fatalf("g%d holds %d entries, want 52", g, n)
		}
	}
}

func TestInodeLimit(t *testing.T) {
	e := newEnv(t, tmpfs.Options{MaxInodes: 4})
	pop := func(p string) vfs.PathOperation {
		return vfs.PathOperation{Root: e.root, Start: e.root, Path: p}
	}
	for _, p := range []string{"/a", "/b", "/c"} {
		e.open(t, p, unix.O_WRONLY|unix.O_CREAT).DecRef(e.ctx)
	}
	if err := e.v.Mkdir(e.ctx, e.cred, pop("/d"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Hard links count too: they cost memory like names do.
	if err := e.v.Link(e.ctx, e.cred, pop("/a"), pop("/d/a2")); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("link past the limit: %v", err)
	}
	if err := e.v.Symlink(e.ctx, e.cred, "a", pop("/s")); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("symlink past the limit: %v", err)
	}
	st, err := e.v.Statfs(e.ctx, e.cred, pop("/"))
	if err != nil || st.Files != 4 || st.Ffree != 0 {
		t.Fatalf("statfs: %+v %v", st, err)
	}
	// Renames keep the count; removals free names.
	if err := e.v.Rename(e.ctx, e.cred, pop("/a"), pop("/d/a"), 0); err != nil {
		t.Fatal(err)
	}
	if err := e.v.Rename(e.ctx, e.cred, pop("/b"), pop("/c"), 0); err != nil {
		t.Fatal(err)
	}
	if err := e.v.Link(e.ctx, e.cred, pop("/d/a"), pop("/d/a2")); err != nil {
		t.Fatalf("link after a replacing rename freed a name: %v", err)
	}
	if err := e.v.Unlink(e.ctx, e.cred, pop("/c")); err != nil {
		t.Fatal(err)
	}
	if err := e.v.Mknod(e.ctx, e.cred, pop("/fifo"), unix.S_IFIFO|0o600, 0); err != nil {
		t.Fatalf("mknod after unlink: %v", err)
	}
}

func TestRelatime(t *testing.T) {
	e := newEnv(t, tmpfs.Options{})
	f := e.open(t, "/f", unix.O_RDWR|unix.O_CREAT)
	defer f.DecRef(e.ctx)
	f.Write(e.ctx, []byte("x"))
	old := unix.Timespec{Sec: 1000}
	set := func() {
		t.Helper()
		if err := f.SetStat(e.ctx, e.cred, vfs.SetStat{Mask: vfs.SetAtime, Atime: old}); err != nil {
			t.Fatal(err)
		}
	}
	set()
	buf := make([]byte, 1)
	f.Pread(e.ctx, buf, 0)
	if st, _ := f.Stat(e.ctx); st.Atime == old {
		t.Fatal("a read after a change left the access time alone")
	}
	// A second read soon after does not write the access time again.
	st1, _ := f.Stat(e.ctx)
	f.Pread(e.ctx, buf, 0)
	if st2, _ := f.Stat(e.ctx); st2.Atime != st1.Atime {
		t.Fatal("relatime updated the access time twice")
	}
	// O_NOATIME reads leave it alone.
	set()
	g := e.open(t, "/f", unix.O_RDONLY|unix.O_NOATIME)
	defer g.DecRef(e.ctx)
	g.Pread(e.ctx, buf, 0)
	if st, _ := g.Stat(e.ctx); st.Atime != old {
		t.Fatalf("O_NOATIME read changed the access time to %v", st.Atime)
	}
}
