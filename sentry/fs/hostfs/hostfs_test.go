package hostfs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/hostfs"
	"moat.dev/moat/sentry/vfs"
)

const secret = "SECRET-OUTSIDE-THE-ROOT"

// layout makes <tmp>/outside (with a secret) and <tmp>/rootfs, a small
// root filesystem full of links that try to leave it.
func layout(t *testing.T) (rootfs, outside string) {
	t.Helper()
	tmp := t.TempDir()
	outside = filepath.Join(tmp, "outside")
	rootfs = filepath.Join(tmp, "rootfs")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(outside, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(outside, "secret"), []byte(secret), 0o644))
	must(os.WriteFile(filepath.Join(outside, "etc", "passwd"), []byte(secret), 0o644))
	must(os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755))
	must(os.MkdirAll(filepath.Join(rootfs, "dir"), 0o755))
	must(os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	must(os.WriteFile(filepath.Join(rootfs, "dir", "f"), []byte("inside"), 0o644))
	links := map[string]string{
		"etclink":  "/etc",
		"hostetc":  filepath.Join(outside, "etc"),
		"abs":      outside,
		"abssec":   filepath.Join(outside, "secret"),
		"up":       "../../..",
		"rel":      "../outside",
		"relsec":   "../outside/secret",
		"dir/deep": "../../../../../../../../outside/secret",
		"loop1":    "loop2",
		"loop2":    "loop1",
		"self":     "self",
		"dangle":   filepath.Join(outside, "created"),
	}
	for name, target := range links {
		must(os.Symlink(target, filepath.Join(rootfs, name)))
	}
	return rootfs, outside
}

type env struct {
	t    *testing.T
	ctx  context.Context
	v    *vfs.VirtualFilesystem
	root vfs.VirtualDentry
	cred *auth.Credentials
}

func newEnv(t *testing.T, rootfs string, opts hostfs.Options, mopts vfs.MountOptions) *env {
	t.Helper()
	fs, err := hostfs.New(rootfs, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, err := vfs.New(ctx, fs, mopts)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, v: v, root: v.Root(), cred: auth.Root()}
	t.Cleanup(func() {
		e.root.DecRef(ctx)
		v.DropCaches()
	})
	return e
}

func (e *env) pop(p string) vfs.PathOperation {
	return vfs.PathOperation{Root: e.root, Start: e.root, Path: p, FollowFinal: true}
}

func (e *env) read(p string) (string, error) {
	f, err := e.v.Open(e.ctx, e.cred, e.pop(p), vfs.OpenOptions{Flags: unix.O_RDONLY})
	if err != nil {
		return "", err
	}
	defer f.DecRef(e.ctx)
	buf := make([]byte, 256)
	n, err := f.Read(e.ctx, buf)
	return string(buf[:n]), err
}

// snapshot records every file under dir with its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		c := info.Mode().String()
		if info.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			c += ":" + string(b)
		}
		m[p] = c
		return nil
	})
	return m
}

func sameSnapshot(t *testing.T, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("outside changed: %d entries before, %d after: %v", len(before), len(after), after)
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("outside changed at %s: %q -> %q", k, v, after[k])
		}
	}
}

func TestEscapeAttemptsRead(t *testing.T) {
	rootfs, outside := layout(t)
	e := newEnv(t, rootfs, hostfs.Options{}, vfs.MountOptions{})
	tests := []struct {
		path    string
		want    string
		wantErr error
	}{
		{path: "/etclink/passwd", want: "root:x:0:0::/root:/bin/sh\n"},
		{path: "/hostetc/passwd", wantErr: unix.ENOENT},
		{path: "/abssec", wantErr: unix.ENOENT},
		{path: "/abs/secret", wantErr: unix.ENOENT},
		{path: "/up/etc/passwd", want: "root:x:0:0::/root:/bin/sh\n"},
		{path: "/rel/secret", wantErr: unix.ENOENT},
		{path: "/relsec", wantErr: unix.ENOENT},
		{path: "/dir/deep", wantErr: unix.ENOENT},
		{path: "/../outside/secret", wantErr: unix.ENOENT},
		{path: "/../../../../" + outside + "/secret", wantErr: unix.ENOENT},
		{path: outside + "/secret", wantErr: unix.ENOENT},
		{path: "/dir/../../outside/secret", wantErr: unix.ENOENT},
		{path: "/loop1", wantErr: unix.ELOOP},
		{path: "/self/x", wantErr: unix.ELOOP},
		{path: "/dangle", wantErr: unix.ENOENT},
		{path: "/dir/f", want: "inside"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got, err := e.read(tc.path)
			if got == secret {
				t.Fatalf("read %s escaped the root and read the secret", tc.path)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("read %s: %q, %v; want %v", tc.path, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("read %s: %q, %v; want %q", tc.path, got, err, tc.want)
			}
		})
	}
	// Directory listings through the links stay inside as well.
	f, err := e.v.Open(e.ctx, e.cred, e.pop("/up"), vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
	if err != nil {
		t.Fatal(err)
	}
	defer f.DecRef(e.ctx)
	names := map[string]bool{}
	f.Getdents(e.ctx, func(d vfs.Dirent) bool { names[d.Name] = true; return true })
	if !names["etclink"] || names["outside"] || names["rootfs"] {
		t.Fatalf("listing of /up (the root) = %v", names)
	}
}

func TestEscapeAttemptsWrite(t *testing.T) {
	rootfs, outside := layout(t)
	before := snapshot(t, outside)
	e := newEnv(t, rootfs, hostfs.Options{}, vfs.MountOptions{})
	create := func(p string) error {
		f, err := e.v.Open(e.ctx, e.cred, e.pop(p), vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, Mode: 0o644})
		if err != nil {
			return err
		}
		defer f.DecRef(e.ctx)
		_, err = f.Write(e.ctx, []byte("pwned"))
		return err
	}
	for _, p := range []string{"/abssec", "/relsec", "/dangle", "/abs/new", "/rel/new", "/up/../outside/new", "/dir/deep", "/hostetc/passwd"} {
		create(p) // may fail or create inside the root; never outside
		e.v.Mkdir(e.ctx, e.cred, e.pop(p+"-d"), 0o755)
		e.v.Symlink(e.ctx, e.cred, "/x", e.pop(p+"-s"))
		e.v.Link(e.ctx, e.cred, e.pop("/dir/f"), e.pop(p+"-l"))
		e.v.Rename(e.ctx, e.cred, e.pop("/etc/passwd"), e.pop(p+"-r"), 0)
		e.v.Chmod(e.ctx, e.cred, e.pop(p), 0o777)
		e.v.Truncate(e.ctx, e.cred, e.pop(p), 0)
		e.v.Unlink(e.ctx, e.cred, e.pop(p))
	}
	sameSnapshot(t, before, snapshot(t, outside))
	// The symlinks of the image are still symlinks: nothing followed them.
	for _, name := range []string{"abssec", "relsec", "hostetc"} {
		if fi, err := os.Lstat(filepath.Join(rootfs, name)); err == nil && fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("%s is no longer a symlink", name)
		}
	}
}

func TestEscapeBySwapDuringWalk(t *testing.T) {
	rootfs, outside := layout(t)
	before := snapshot(t, outside)
	// "swap" flips between a real directory and a symlink to the outside.
	os.MkdirAll(filepath.Join(rootfs, "swapdir"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "swapdir", "secret"), []byte("inside"), 0o644)
	os.Symlink(outside, filepath.Join(rootfs, "swaplink"))
	os.WriteFile(filepath.Join(outside, "secret2"), []byte(secret), 0o644)
	before = snapshot(t, outside)
	e := newEnv(t, rootfs, hostfs.Options{}, vfs.MountOptions{})

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a, b := filepath.Join(rootfs, "swapdir"), filepath.Join(rootfs, "swaplink")
		for !stop.Load() {
			unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
		}
	}()
	var inside, failed int
	for i := 0; i < 3000; i++ {
		got, err := e.read("/swapdir/secret")
		if got == secret {
			stop.Store(true)
			wg.Wait()
			t.Fatal("a walk through a swapped directory read outside the root")
		}
		if err == nil {
			inside++
		} else {
			failed++
		}
		if i%10 == 0 {
			f, err := e.v.Open(e.ctx, e.cred, e.pop("/swapdir/made"), vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_CREAT, Mode: 0o644})
			if err == nil {
				f.DecRef(e.ctx)
			}
			e.v.Unlink(e.ctx, e.cred, e.pop("/swapdir/made"))
		}
	}
	stop.Store(true)
	wg.Wait()
	sameSnapshot(t, before, snapshot(t, outside))
	if inside == 0 {
		t.Fatalf("no read went through (%d failed): the test raced nothing", failed)
	}
	t.Logf("%d reads inside the root, %d refused, none outside", inside, failed)
}

func TestEscapeBySwappedFile(t *testing.T) {
	rootfs, outside := layout(t)
	os.WriteFile(filepath.Join(rootfs, "swapfile"), []byte("inside"), 0o644)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(rootfs, "swapsym"))
	before := snapshot(t, outside)
	e := newEnv(t, rootfs, hostfs.Options{}, vfs.MountOptions{})
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a, b := filepath.Join(rootfs, "swapfile"), filepath.Join(rootfs, "swapsym")
		for !stop.Load() {
			unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
		}
	}()
	inside := 0
	for i := 0; i < 3000; i++ {
		got, err := e.read("/swapfile")
		if got == secret {
			stop.Store(true)
			wg.Wait()
			t.Fatal("an open of a swapped file read outside the root")
		}
		if err == nil {
			inside++
		}
		// Writes through the swapped name never reach the outside.
		if f, err := e.v.Open(e.ctx, e.cred, e.pop("/swapfile"), vfs.OpenOptions{Flags: unix.O_WRONLY}); err == nil {
			f.Pwrite(e.ctx, []byte("inside"), 0)
			f.DecRef(e.ctx)
		}
	}
	stop.Store(true)
	wg.Wait()
	sameSnapshot(t, before, snapshot(t, outside))
	if inside == 0 {
		t.Fatal("no read went through: the test raced nothing")
	}
}

func TestHostOperations(t *testing.T) {
	rootfs, _ := layout(t)
	e := newEnv(t, rootfs, hostfs.Options{}, vfs.MountOptions{})
	user := auth.User(1000, 1000)
	if err := e.v.Mkdir(e.ctx, e.cred, e.pop("/work"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := e.v.Chown(e.ctx, e.cred, e.pop("/work"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	f, err := e.v.Open(e.ctx, user, e.pop("/work/a"), vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_CREAT | unix.O_EXCL, Mode: 0o640})
	if err != nil {
		t.Fatalf("create as user: %v", err)
	}
	if _, err := f.Write(e.ctx, []byte("hello world")); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(rootfs, "work", "a"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Gid != 1000 || st.Mode&0o7777 != 0o640 || st.Size != 11 {
		t.Fatalf("host sees uid %d gid %d mode %#o size %d", st.Uid, st.Gid, st.Mode, st.Size)
	}
	vst, err := f.Stat(e.ctx)
	if err != nil || vst.Ino != st.Ino || vst.Dev != st.Dev || vst.Size != 11 || vst.Nlink != 1 {
		t.Fatalf("fstat %+v, %v; host ino %d", vst, err, st.Ino)
	}
	// Append, truncate, seek, fallocate.
	f.SetStatusFlags(e.ctx, user, unix.O_APPEND)
	f.Write(e.ctx, []byte("!"))
	if err := f.Truncate(e.ctx, 5); err != nil {
		t.Fatal(err)
	}
	if off, err := f.Seek(e.ctx, 0, unix.SEEK_END); err != nil || off != 5 {
		t.Fatalf("SEEK_END = %d, %v", off, err)
	}
	if err := f.Fsync(e.ctx); err != nil {
		t.Fatal(err)
	}
	f.DecRef(e.ctx)
	if b, _ := os.ReadFile(filepath.Join(rootfs, "work", "a")); string(b) != "hello" {
		t.Fatalf("host file holds %q", b)
	}
	steps := []struct {
		name string
		err  error
	}{
		{"symlink", e.v.Symlink(e.ctx, user, "a", e.pop("/work/s"))},
		{"link", e.v.Link(e.ctx, user, e.pop("/work/a"), e.pop("/work/h"))},
		{"rename", e.v.Rename(e.ctx, user, e.pop("/work/h"), e.pop("/work/h2"), 0)},
		{"mkfifo", e.v.Mknod(e.ctx, user, e.pop("/work/fifo"), unix.S_IFIFO|0o600, 0)},
		{"mkdir", e.v.Mkdir(e.ctx, user, e.pop("/work/d"), 0o700)},
		{"exchange", e.v.Rename(e.ctx, user, e.pop("/work/d"), e.pop("/work/h2"), unix.RENAME_EXCHANGE)},
		{"utimes", e.v.Utimes(e.ctx, user, e.pop("/work/a"), unix.Timespec{Sec: 1000}, unix.Timespec{Sec: 2000})},
		{"chmod", e.v.Chmod(e.ctx, user, e.pop("/work/a"), 0o604)},
	}
	for _, s := range steps {
		if s.err != nil {
			t.Fatalf("%s as user: %v", s.name, s.err)
		}
	}
	if target, err := os.Readlink(filepath.Join(rootfs, "work", "s")); err != nil || target != "a" {
		t.Fatalf("host symlink: %q, %v", target, err)
	}
	if err := unix.Lstat(filepath.Join(rootfs, "work", "a"), &st); err != nil || st.Nlink != 2 || st.Mode&0o7777 != 0o604 || st.Mtim.Sec != 2000 {
		t.Fatalf("host a: nlink %d mode %#o mtime %d, %v", st.Nlink, st.Mode, st.Mtim.Sec, err)
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "work", "h2")); err != nil || !fi.IsDir() {
		t.Fatalf("after exchange h2 is %v, %v", fi, err)
	}
	if fi, err := os.Lstat(filepath.Join(rootfs, "work", "fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("fifo: %v %v", fi, err)
	}
	// A FIFO is served by a sentry pipe: a non-blocking open returns at once.
	r, err := e.v.Open(e.ctx, user, e.pop("/work/fifo"), vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_NONBLOCK})
	if err != nil {
		t.Fatal(err)
	}
	w, err := e.v.Open(e.ctx, user, e.pop("/work/fifo"), vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_NONBLOCK})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(e.ctx, []byte("via pipe"))
	buf := make([]byte, 16)
	if n, _ := r.Read(e.ctx, buf); string(buf[:n]) != "via pipe" {
		t.Fatalf("fifo read %q", buf[:n])
	}
	r.DecRef(e.ctx)
	w.DecRef(e.ctx)

	// Permission checks use the host's owner and mode.
	other := auth.User(2000, 2000)
	if _, err := e.v.Stat(e.ctx, other, e.pop("/work/a")); !errors.Is(err, unix.EACCES) {
		t.Fatalf("stat in another's 0750 dir: %v", err)
	}
	if err := e.v.Unlink(e.ctx, user, e.pop("/work/h2/..")); !errors.Is(err, unix.EISDIR) {
		t.Fatalf("unlink ..: %v", err)
	}
	if err := e.v.Rmdir(e.ctx, user, e.pop("/work/h2")); err != nil {
		t.Fatal(err)
	}
	if err := e.v.Rmdir(e.ctx, e.cred, e.pop("/work")); !errors.Is(err, unix.ENOTEMPTY) {
		t.Fatalf("rmdir non-empty: %v", err)
	}

	// Directory listing in pieces, with stable host offsets.
	for i := 0; i < 300; i++ {
		os.WriteFile(filepath.Join(rootfs, "work", "n"+string(rune('a'+i%26))+string(rune('a'+i/26))), nil, 0o644)
	}
	d, err := e.v.Open(e.ctx, user, e.pop("/work"), vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
	if err != nil {
		t.Fatal(err)
	}
	defer d.DecRef(e.ctx)
	seen := map[string]int{}
	for {
		got := 0
		d.Getdents(e.ctx, func(de vfs.Dirent) bool {
			if got == 5 {
				return false
			}
			got++
			seen[de.Name]++
			return true
		})
		if got == 0 {
			break
		}
	}
	ents, _ := os.ReadDir(filepath.Join(rootfs, "work"))
	if len(seen) != len(ents)+2 {
		t.Fatalf("getdents saw %d names, host has %d (+2)", len(seen), len(ents))
	}
	for n, c := range seen {
		if c != 1 {
			t.Fatalf("%s seen %d times", n, c)
		}
	}
}

func TestDeviceNodesAndReadOnly(t *testing.T) {
	rootfs, _ := layout(t)
	// A device node in the image must never open the host's device.
	if err := unix.Mknod(filepath.Join(rootfs, "disk"), unix.S_IFBLK|0o666, int(unix.Mkdev(8, 0))); err != nil {
		t.Fatalf("make a device node to test with (the test needs root): %v", err)
	}
	if err := unix.Mknod(filepath.Join(rootfs, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, rootfs)
	e := newEnv(t, rootfs, hostfs.Options{ReadOnly: true}, vfs.MountOptions{Flags: vfs.MountReadOnly})
	for _, p := range []string{"/disk", "/null"} {
		_, err := e.v.Open(e.ctx, e.cred, e.pop(p), vfs.OpenOptions{Flags: unix.O_RDWR})
		if !errors.Is(err, unix.ENXIO) {
			t.Fatalf("open of host device node %s: %v, want ENXIO", p, err)
		}
	}
	checks := []struct {
		name string
		err  error
	}{
		{"create", func() error {
			_, err := e.v.Open(e.ctx, e.cred, e.pop("/new"), vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_WRONLY})
			return err
		}()},
		{"write open", func() error {
			_, err := e.v.Open(e.ctx, e.cred, e.pop("/dir/f"), vfs.OpenOptions{Flags: unix.O_WRONLY})
			return err
		}()},
		{"mkdir", e.v.Mkdir(e.ctx, e.cred, e.pop("/d"), 0o755)},
		{"unlink", e.v.Unlink(e.ctx, e.cred, e.pop("/dir/f"))},
		{"rename", e.v.Rename(e.ctx, e.cred, e.pop("/dir/f"), e.pop("/g"), 0)},
		{"chmod", e.v.Chmod(e.ctx, e.cred, e.pop("/dir/f"), 0o777)},
		{"symlink", e.v.Symlink(e.ctx, e.cred, "x", e.pop("/s"))},
	}
	for _, c := range checks {
		if !errors.Is(c.err, unix.EROFS) {
			t.Fatalf("%s on a read-only host mount: %v, want EROFS", c.name, c.err)
		}
	}
	if got, err := e.read("/dir/f"); err != nil || got != "inside" {
		t.Fatalf("read on ro mount: %q %v", got, err)
	}
	sameSnapshot(t, before, snapshot(t, rootfs))
	st, err := e.v.Statfs(e.ctx, e.cred, e.pop("/"))
	if err != nil || st.Flags&unix.ST_RDONLY == 0 || st.Bsize == 0 {
		t.Fatalf("statfs: %+v %v", st, err)
	}
}

// TestVolumeMount mounts a host directory as a volume in a tmpfs root:
// a link in the volume pointing at "/" means the container's root.
func TestVolumeMount(t *testing.T) {
	rootfs, outside := layout(t)
	vol := t.TempDir()
	os.WriteFile(filepath.Join(vol, "data"), []byte("volume data"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(vol, "passwd"))
	os.Symlink("../../../../../../../../"+outside+"/secret", filepath.Join(vol, "up"))
	e := newEnv(t, rootfs, hostfs.Options{}, vfs.MountOptions{})
	if err := e.v.Mkdir(e.ctx, e.cred, e.pop("/data"), 0o755); err != nil {
		t.Fatal(err)
	}
	vfsVol, err := hostfs.New(vol, hostfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.v.Mount(e.ctx, e.cred, e.pop("/data"), vfsVol, vfs.MountOptions{Flags: vfs.MountNoExec}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"/data/data": "volume data", "/data/passwd": "root:x:0:0::/root:/bin/sh\n"} {
		if got, err := e.read(p); err != nil || got != want {
			t.Fatalf("read %s: %q %v", p, got, err)
		}
	}
	if got, err := e.read("/data/up"); err == nil || got == secret {
		t.Fatalf("read /data/up: %q %v", got, err)
	}
	if _, err := e.v.Open(e.ctx, e.cred, e.pop("/data/data"), vfs.OpenOptions{Exec: true}); !errors.Is(err, unix.EACCES) {
		t.Fatalf("exec on a noexec volume: %v", err)
	}
	if err := e.v.Rename(e.ctx, e.cred, e.pop("/data/data"), e.pop("/data2"), 0); !errors.Is(err, unix.EXDEV) {
		t.Fatalf("rename out of the volume: %v", err)
	}
}

// BenchmarkHostStatDepth5 measures a stat of /a/b/c/d/f on a host
// directory: each component is an openat2 and a statx or two.
func BenchmarkHostStatDepth5(b *testing.B) {
	dir := b.TempDir()
	os.MkdirAll(filepath.Join(dir, "a/b/c/d"), 0o755)
	os.WriteFile(filepath.Join(dir, "a/b/c/d/f"), []byte("x"), 0o644)
	e := newEnv(&testing.T{}, dir, hostfs.Options{}, vfs.MountOptions{})
	pop := e.pop("/a/b/c/d/f")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.v.Stat(e.ctx, e.cred, pop); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHostOpenReadClose measures open, a 4 KiB read and close of a
// host file.
func BenchmarkHostOpenReadClose(b *testing.B) {
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), make([]byte, 4096), 0o644)
	e := newEnv(&testing.T{}, dir, hostfs.Options{}, vfs.MountOptions{})
	buf := make([]byte, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := e.v.Open(e.ctx, e.cred, e.pop("/f"), vfs.OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		f.Read(e.ctx, buf)
		f.DecRef(e.ctx)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestHostChangesAndDescriptors changes files behind the VFS's back while
// their dentries are cached, and checks that no host descriptor leaks.
func TestHostChangesAndDescriptors(t *testing.T) {
	rootfs, _ := layout(t)
	e := newEnv(t, rootfs, hostfs.Options{}, vfs.MountOptions{})
	before := openFDs(t)
	if got, _ := e.read("/dir/f"); got != "inside" {
		t.Fatalf("read %q", got)
	}
	// Replace the file on the host: the cached dentry is stale.
	os.Remove(filepath.Join(rootfs, "dir", "f"))
	if _, err := e.read("/dir/f"); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("read of a file removed on the host: %v", err)
	}
	os.WriteFile(filepath.Join(rootfs, "dir", "f"), []byte("replaced"), 0o644)
	if got, err := e.read("/dir/f"); err != nil || got != "replaced" {
		t.Fatalf("read of a file replaced on the host: %q %v", got, err)
	}
	os.Remove(filepath.Join(rootfs, "dir", "f"))
	os.Symlink("/etc/passwd", filepath.Join(rootfs, "dir", "f"))
	if got, err := e.read("/dir/f"); err != nil || !strings.HasPrefix(got, "root:x") {
		t.Fatalf("read of a file turned symlink on the host: %q %v", got, err)
	}
	for i := 0; i < 200; i++ {
		e.read("/etclink/passwd")
		e.read("/dir/../etc/passwd")
	}
	e.v.DropCaches()
	if after := openFDs(t); after != before {
		t.Fatalf("%d host descriptors open before, %d after", before, after)
	}
}

// TestFileMount binds host files over files of the container, as
// Kubernetes does with /etc/hosts and /etc/resolv.conf.
func TestFileMount(t *testing.T) {
	rootfs, _ := layout(t)
	os.WriteFile(filepath.Join(rootfs, "etc", "hosts"), []byte("image hosts\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc", "resolv.conf"), []byte("image resolv\n"), 0o644)
	hostDir := t.TempDir()
	hosts := filepath.Join(hostDir, "etc-hosts")
	resolv := filepath.Join(hostDir, "resolv.conf")
	os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644)
	os.WriteFile(resolv, []byte("nameserver 10.0.0.10\n"), 0o644)
	e := newEnv(t, rootfs, hostfs.Options{}, vfs.MountOptions{})
	hfs, err := hostfs.NewFile(hosts, hostfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.v.Mount(e.ctx, e.cred, e.pop("/etc/hosts"), hfs, vfs.MountOptions{}); err != nil {
		t.Fatalf("mount a file over /etc/hosts: %v", err)
	}
	rfs, err := hostfs.NewFile(resolv, hostfs.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.v.Mount(e.ctx, e.cred, e.pop("/etc/resolv.conf"), rfs, vfs.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.read("/etc/hosts"); err != nil || got != "127.0.0.1 localhost\n" {
		t.Fatalf("read /etc/hosts: %q %v", got, err)
	}
	f, err := e.v.Open(e.ctx, e.cred, e.pop("/etc/hosts"), vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_APPEND})
	if err != nil {
		t.Fatal(err)
	}
	f.Write(e.ctx, []byte("10.1.2.3 pod\n"))
	f.DecRef(e.ctx)
	if b, _ := os.ReadFile(hosts); string(b) != "127.0.0.1 localhost\n10.1.2.3 pod\n" {
		t.Fatalf("host file holds %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(rootfs, "etc", "hosts")); string(b) != "image hosts\n" {
		t.Fatalf("the covered image file changed: %q", b)
	}
	_, err = e.v.Open(e.ctx, e.cred, e.pop("/etc/resolv.conf"), vfs.OpenOptions{Flags: unix.O_WRONLY})
	if !errors.Is(err, unix.EROFS) {
		t.Fatalf("write open of a read-only file mount: %v", err)
	}
	if st, err := e.v.Statfs(e.ctx, e.cred, e.pop("/etc/resolv.conf")); err != nil || st.Flags&unix.ST_RDONLY == 0 {
		t.Fatalf("statfs of a read-only file mount: %+v %v", st, err)
	}
	if err := e.v.Unlink(e.ctx, e.cred, e.pop("/etc/hosts")); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("unlink of a file mountpoint: %v", err)
	}
	if err := e.v.Mount(e.ctx, e.cred, e.pop("/etc"), hfs, vfs.MountOptions{}); !errors.Is(err, unix.ENOTDIR) {
		t.Fatalf("file over a directory: %v", err)
	}
	if err := e.v.Umount(e.ctx, e.cred, e.pop("/etc/hosts")); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.read("/etc/hosts"); got != "image hosts\n" {
		t.Fatalf("after umount /etc/hosts reads %q", got)
	}
}

// TestUmountReleasesDescriptors checks that unmounting a host directory
// closes the descriptors its cached dentries held.
func TestUmountReleasesDescriptors(t *testing.T) {
	rootfs, _ := layout(t)
	vol := t.TempDir()
	os.MkdirAll(filepath.Join(vol, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(vol, "a", "b", "f"), []byte("x"), 0o644)
	e := newEnv(t, rootfs, hostfs.Options{}, vfs.MountOptions{})
	e.v.Mkdir(e.ctx, e.cred, e.pop("/vol"), 0o755)
	e.v.Stat(e.ctx, e.cred, e.pop("/vol")) // the mountpoint's own dentry is cached
	before := openFDs(t)
	fs, err := hostfs.New(vol, hostfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.v.Mount(e.ctx, e.cred, e.pop("/vol"), fs, vfs.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if got, err := e.read("/vol/a/b/f"); err != nil || got != "x" {
			t.Fatalf("read: %q %v", got, err)
		}
	}
	if during := openFDs(t); during <= before {
		t.Fatalf("no descriptors cached while mounted (%d, %d before)", during, before)
	}
	if err := e.v.Umount(e.ctx, e.cred, e.pop("/vol")); err != nil {
		t.Fatal(err)
	}
	if after := openFDs(t); after != before {
		t.Fatalf("%d descriptors before the mount, %d after the umount", before, after)
	}
}

func TestCloseReleasesEverything(t *testing.T) {
	rootfs, _ := layout(t)
	before := openFDs(t)
	fs, err := hostfs.New(rootfs, hostfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, err := vfs.New(ctx, fs, vfs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := v.Root()
	pop := vfs.PathOperation{Root: root, Start: root, Path: "/dir", FollowFinal: true}
	vol, _ := hostfs.New(t.TempDir(), hostfs.Options{})
	if err := v.Mount(ctx, auth.Root(), pop, vol, vfs.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	pop.Path = "/etclink/passwd"
	f, err := v.Open(ctx, auth.Root(), pop, vfs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root.DecRef(ctx)
	v.Close(ctx)
	buf := make([]byte, 4)
	if n, err := f.Read(ctx, buf); n != 4 || err != nil {
		t.Fatalf("read of a file open across Close: %d %v", n, err)
	}
	f.DecRef(ctx)
	if after := openFDs(t); after != before {
		t.Fatalf("%d descriptors before, %d after Close", before, after)
	}
}

// TestConcurrentHostTree creates, renames, links and removes host files
// from many goroutines; run with -race.
func TestConcurrentHostTree(t *testing.T) {
	rootfs, _ := layout(t)
	e := newEnv(t, rootfs, hostfs.Options{}, vfs.MountOptions{})
	e.v.SetDentryCacheSize(16)
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			dir := "/dir/g" + string(rune('a'+g))
			if err := e.v.Mkdir(e.ctx, e.cred, e.pop(dir), 0o755); err != nil {
				t.Error(err)
				return
			}
			for i := 0; i < 60; i++ {
				name := dir + "/f" + string(rune('a'+i%26))
				f, err := e.v.Open(e.ctx, e.cred, e.pop(name), vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_CREAT | unix.O_APPEND, Mode: 0o644})
				if err != nil {
					t.Error(err)
					return
				}
				f.Write(e.ctx, []byte("x"))
				if err := e.v.Rename(e.ctx, e.cred, e.pop(name), e.pop(name+"-r"), 0); err != nil {
					t.Error(err)
				}
				if err := e.v.Link(e.ctx, e.cred, e.pop(name+"-r"), e.pop(name+"-l")); err != nil {
					t.Error(err)
				}
				// The open file follows its renamed name.
				f.Write(e.ctx, []byte("y"))
				f.DecRef(e.ctx)
				if got, err := e.read(name + "-l"); err != nil || got != "xy" {
					t.Errorf("%s-l holds %q, %v", name, got, err)
				}
				e.v.Unlink(e.ctx, e.cred, e.pop(name+"-r"))
				e.v.Unlink(e.ctx, e.cred, e.pop(name+"-l"))
				e.read("/dir/../etclink/passwd")
			}
		}(g)
	}
	wg.Wait()
	for g := 0; g < 6; g++ {
		ents, err := os.ReadDir(filepath.Join(rootfs, "dir", "g"+string(rune('a'+g))))
		if err != nil || len(ents) != 0 {
			t.Fatalf("g%d left %d entries, %v", g, len(ents), err)
		}
	}
}

func TestKeepHostOwner(t *testing.T) {
	rootfs, _ := layout(t)
	e := newEnv(t, rootfs, hostfs.Options{KeepHostOwner: true}, vfs.MountOptions{})
	os.Chmod(filepath.Join(rootfs, "dir"), 0o777)
	user := auth.User(1000, 1000)
	if err := e.v.Mkdir(e.ctx, user, e.pop("/dir/mine"), 0o700); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(rootfs, "dir", "mine"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != uint32(os.Geteuid()) || st.Mode&0o7777 != 0o700 {
		t.Fatalf("with KeepHostOwner the host sees uid %d mode %#o", st.Uid, st.Mode)
	}
}

func TestHostOTmpfile(t *testing.T) {
	rootfs, _ := layout(t)
	e := newEnv(t, rootfs, hostfs.Options{}, vfs.MountOptions{})
	f, err := e.v.Open(e.ctx, e.cred, e.pop("/dir"), vfs.OpenOptions{Flags: unix.O_TMPFILE | unix.O_RDWR, Mode: 0o640})
	if err != nil {
		t.Fatalf("O_TMPFILE on the host: %v", err)
	}
	defer f.DecRef(e.ctx)
	f.Write(e.ctx, []byte("tmp"))
	f.Write(e.ctx, []byte("file"))
	before, _ := os.ReadDir(filepath.Join(rootfs, "dir"))
	at := vfs.PathOperation{Root: e.root, Start: f.VirtualDentryNoRef(), EmptyPath: true}
	if err := e.v.Link(e.ctx, e.cred, at, e.pop("/dir/named")); err != nil {
		t.Fatalf("linkat: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "dir", "named")); err != nil || string(b) != "tmpfile" {
		t.Fatalf("host sees %q, %v", b, err)
	}
	if after, _ := os.ReadDir(filepath.Join(rootfs, "dir")); len(after) != len(before)+1 {
		t.Fatalf("%d entries before the link, %d after", len(before), len(after))
	}
}

// TestConcurrentWalksAndCacheEviction walks host paths from many
// goroutines while the dentry cache is tiny and dropped over and over;
// run with -race. No descriptor may leak.
func TestConcurrentWalksAndCacheEviction(t *testing.T) {
	rootfs, _ := layout(t)
	for i := 0; i < 20; i++ {
		d := filepath.Join(rootfs, "tree", string(rune('a'+i)), "sub")
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644)
	}
	e := newEnv(t, rootfs, hostfs.Options{}, vfs.MountOptions{})
	before := openFDs(t)
	e.v.SetDentryCacheSize(4)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			e.v.DropCaches()
		}
	}()
	var walkers sync.WaitGroup
	for g := 0; g < 4; g++ {
		walkers.Add(1)
		go func(g int) {
			defer walkers.Done()
			for i := 0; i < 300; i++ {
				p := "/tree/" + string(rune('a'+(i+g)%20)) + "/sub/../sub/f"
				if got, err := e.read(p); err != nil || got != "x" {
					t.Errorf("read %s: %q %v", p, got, err)
					return
				}
			}
		}(g)
	}
	walkers.Wait()
	stop.Store(true)
	wg.Wait()
	e.v.DropCaches()
	if after := openFDs(t); after != before {
		t.Fatalf("%d descriptors before, %d after", before, after)
	}
}
