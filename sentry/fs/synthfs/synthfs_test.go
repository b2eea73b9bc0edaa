package synthfs_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/devfs"
	"moat.dev/moat/sentry/fs/synthfs"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/vfs"
)

type pidKey struct{}

// miniProc is a tiny procfs: /proc/self -> <pid of the caller>,
// /proc/<pid>/status, /proc/<pid>/fd/<n> -> a path, /proc/mounts.
func miniProc(v *vfs.VirtualFilesystem, pids []int) *synthfs.Filesystem {
	fs := synthfs.New("proc", 0x9fa0)
	root := fs.RootDir()
	root.Add("self", fs.NewSymlink(synthfs.Attr{}, func(ctx context.Context) (string, error) {
		return strconv.Itoa(ctx.Value(pidKey{}).(int)), nil
	}))
	root.Add("mounts", fs.NewFile(synthfs.Attr{Mode: 0o444}, func(context.Context) ([]byte, error) {
		var b strings.Builder
		for _, m := range v.Mounts() {
			fmt.Fprintf(&b, "%s %s %s\n", m.FS, m.Path, m.FS)
		}
		return []byte(b.String()), nil
	}))
	perPid := map[int]*synthfs.Dir{}
	for _, pid := range pids {
		d := fs.NewDir(synthfs.Attr{Mode: 0o555})
		pid := pid
		d.Add("status", fs.NewFile(synthfs.Attr{Mode: 0o444}, func(context.Context) ([]byte, error) {
			return []byte(fmt.Sprintf("Pid:\t%d\n", pid)), nil
		}))
		fd := fs.NewDir(synthfs.Attr{Mode: 0o500})
		fd.Add("0", fs.NewSymlink(synthfs.Attr{}, func(context.Context) (string, error) { return "/dev/null", nil }))
		d.Add("fd", fd)
		perPid[pid] = d
	}
	root.Dynamic = func(context.Context) ([]synthfs.Child, error) {
		var out []synthfs.Child
		for _, pid := range pids {
			out = append(out, synthfs.Child{Name: strconv.Itoa(pid), Inode: perPid[pid]})
		}
		return out, nil
	}
	return fs
}

// TestMagicLinkToAnUnlinkedFile opens /proc/self/fd/3 of a file that no
// longer has a name, as a shell's process substitution does.
func TestMagicLinkToAnUnlinkedFile(t *testing.T) {
	ctx := context.Background()
	v, err := vfs.New(ctx, tmpfs.New(tmpfs.Options{RootMode: 0o755}), vfs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := v.Root()
	defer root.DecRef(ctx)
	creds := auth.Root()
	pop := func(p string) vfs.PathOperation {
		return vfs.PathOperation{Root: root, Start: root, Path: p, FollowFinal: true}
	}
	v.Mkdir(ctx, creds, pop("/proc"), 0o555)
	f, err := v.Open(ctx, creds, pop("/tmpfile"), vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_CREAT, Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	defer f.DecRef(ctx)
	f.Write(ctx, []byte("still here"))
	if err := v.Unlink(ctx, creds, pop("/tmpfile")); err != nil {
		t.Fatal(err)
	}
	proc := synthfs.New("proc", 0x9fa0)
	fd := proc.NewDir(synthfs.Attr{Mode: 0o500})
	fd.Add("3", proc.NewMagicLink(synthfs.Attr{},
		func(context.Context) (string, error) {
			p, _ := v.PathOf(root, f.VirtualDentryNoRef())
			return p + " (deleted)", nil
		},
		func(context.Context) (vfs.VirtualDentry, error) { return f.VirtualDentry(), nil }))
	proc.RootDir().Add("fd", fd)
	if err := v.Mount(ctx, creds, pop("/proc"), proc, vfs.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Readlink(ctx, creds, pop("/proc/fd/3")); err != nil || got != "/tmpfile (deleted)" {
		t.Fatalf("readlink = %q, %v", got, err)
	}
	for _, flags := range []uint32{unix.O_RDONLY, unix.O_RDONLY | unix.O_CREAT} {
		g, err := v.Open(ctx, creds, pop("/proc/fd/3"), vfs.OpenOptions{Flags: flags})
		if err != nil {
			t.Fatalf("open through the magic link (flags %#o): %v", flags, err)
		}
		buf := make([]byte, 32)
		n, _ := g.Read(ctx, buf)
		g.DecRef(ctx)
		if string(buf[:n]) != "still here" {
			t.Fatalf("read through the magic link: %q", buf[:n])
		}
	}
}

func TestSyntheticProcMountedInTheVFS(t *testing.T) {
	ctx := context.WithValue(context.Background(), pidKey{}, 7)
	v, err := vfs.New(ctx, tmpfs.New(tmpfs.Options{RootMode: 0o755}), vfs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := v.Root()
	defer root.DecRef(ctx)
	creds := auth.Root()
	pop := func(p string) vfs.PathOperation {
		return vfs.PathOperation{Root: root, Start: root, Path: p, FollowFinal: true}
	}
	for _, d := range []string{"/proc", "/dev"} {
		if err := v.Mkdir(ctx, creds, pop(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Mount(ctx, creds, pop("/proc"), miniProc(v, []int{1, 7}), vfs.MountOptions{Flags: vfs.MountNoExec}); err != nil {
		t.Fatal(err)
	}
	dev, err := devfs.New(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Mount(ctx, creds, pop("/dev"), dev, vfs.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	read := func(c context.Context, p string) (string, error) {
		f, err := v.Open(c, creds, pop(p), vfs.OpenOptions{})
		if err != nil {
			return "", err
		}
		defer f.DecRef(c)
		buf := make([]byte, 512)
		n, err := f.Read(c, buf)
		return string(buf[:n]), err
	}
	if got, err := read(ctx, "/proc/self/status"); err != nil || got != "Pid:\t7\n" {
		t.Fatalf("/proc/self/status as pid 7: %q, %v", got, err)
	}
	other := context.WithValue(context.Background(), pidKey{}, 1)
	if got, err := read(other, "/proc/self/status"); err != nil || got != "Pid:\t1\n" {
		t.Fatalf("/proc/self/status as pid 1: %q, %v", got, err)
	}
	// /dev/stdin -> /proc/self/fd/0 -> /dev/null crosses both mounts.
	st, err := v.Stat(ctx, creds, pop("/dev/stdin"))
	if err != nil || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Fatalf("stat /dev/stdin: %+v, %v", st, err)
	}
	mounts, err := read(ctx, "/proc/mounts")
	if err != nil || !strings.Contains(mounts, "proc /proc") || !strings.Contains(mounts, "devtmpfs /dev") {
		t.Fatalf("/proc/mounts = %q, %v", mounts, err)
	}
	if _, err := read(ctx, "/proc/99/status"); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("missing pid: %v", err)
	}
	if err := v.Mkdir(ctx, creds, pop("/proc/new"), 0o755); !errors.Is(err, unix.EACCES) {
		t.Fatalf("mkdir in proc: %v", err)
	}
	if _, err := v.Open(ctx, creds, pop("/proc/mounts"), vfs.OpenOptions{Flags: unix.O_WRONLY}); !errors.Is(err, unix.EACCES) {
		t.Fatalf("write open of /proc/mounts: %v", err)
	}
	f, err := v.Open(ctx, creds, pop("/proc"), vfs.OpenOptions{Flags: unix.O_DIRECTORY})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	f.Getdents(ctx, func(d vfs.Dirent) bool { names = append(names, d.Name); return true })
	f.DecRef(ctx)
	if strings.Join(names, " ") != ". .. 1 7 mounts self" {
		t.Fatalf("ls /proc = %v", names)
	}
}
