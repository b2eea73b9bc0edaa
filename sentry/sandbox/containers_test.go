package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/vfs"
)

func needKVM(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/kvm"); err != nil {
		if os.Getenv("MOAT_REQUIRE_KVM") == "1" {
			t.Fatalf("/dev/kvm is missing and MOAT_REQUIRE_KVM=1: %v", err)
		}
		t.Skipf("no /dev/kvm: %v", err)
	}
}

func TestAddContainer(t *testing.T) {
	needKVM(t)
	ctx := context.Background()
	sb, err := New(Config{CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "bin/prog"), []byte("x"), 0o755)
	os.Symlink("/etc/passwd", filepath.Join(dir, "bin/escape"))
	root, err := sb.AddContainer(ctx, "c1", ContainerSpec{RootFS: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer root.DecRef(ctx)
	p, err := sb.LookPath(ctx, root, "prog", nil)
	if err != nil || p != "/bin/prog" {
		t.Errorf("LookPath(prog) = %q, %v", p, err)
	}
	if _, err := sb.LookPath(ctx, root, "escape", []string{"PATH=/bin"}); err == nil {
		t.Errorf("LookPath followed a symlink out of the container's root")
	}
}

// TestContainerMountOptions: a container's tmpfs takes size= and mode=,
// and a bad option is refused with the mount named.
func TestContainerMountOptions(t *testing.T) {
	needKVM(t)
	ctx := context.Background()
	sb, err := New(Config{CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	root, err := sb.AddContainer(ctx, "c1", ContainerSpec{RootFS: t.TempDir(), Mounts: []Mount{
		{Destination: "/data", Type: "tmpfs", Options: []string{"size=8k", "mode=0700", "nosuid"}},
		{Destination: "/proc", Type: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer root.DecRef(ctx)
	creds := auth.Root()
	pop := vfs.PathOperation{Root: root, Start: root, Path: "/data", FollowFinal: true}
	fs, err := sb.VFS.Statfs(ctx, creds, pop)
	if err != nil || fs.Blocks != 2 || fs.Flags&unix.ST_NOSUID == 0 {
		t.Errorf("statfs /data: %+v, %v; want 2 blocks of 4 KiB, nosuid", fs, err)
	}
	st, err := sb.VFS.Stat(ctx, creds, pop)
	if err != nil || st.Mode&0o7777 != 0o700 {
		t.Errorf("stat /data: mode %#o, %v; want 0700", st.Mode, err)
	}
	if _, err := sb.VFS.Stat(ctx, creds, vfs.PathOperation{Root: root, Start: root, Path: "/proc/cpuinfo"}); err != nil {
		t.Errorf("stat /proc/cpuinfo: %v", err)
	}
	_, err = sb.AddContainer(ctx, "c2", ContainerSpec{RootFS: t.TempDir(), Mounts: []Mount{
		{Destination: "/data", Type: "tmpfs", Options: []string{"size=lots"}},
	}})
	if err == nil || !strings.Contains(err.Error(), "/data") {
		t.Errorf("a bad size: %v", err)
	}
}
