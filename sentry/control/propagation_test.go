package control_test

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/control"
)

// TestVolumePropagation: the descriptor of an rprivate volume is a copy
// of its mounts as they were, so a host mount made under it later does
// not show; an rslave (or unspecified) volume's descriptor follows the
// host's mounts.
func TestVolumePropagation(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("MOAT_REQUIRE_KVM") != "" {
			t.Fatal("needs root (CAP_SYS_ADMIN) to mount on the host; MOAT_REQUIRE_KVM is set")
		}
		t.Skip("needs root (CAP_SYS_ADMIN) to mount on the host (not root here; MOAT_REQUIRE_KVM unset)")
	}
	base := t.TempDir()
	src, content, root := filepath.Join(base, "src"), filepath.Join(base, "content"), filepath.Join(base, "root")
	for _, d := range []string{filepath.Join(src, "mnt"), content, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(content, "flag"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	args, files, err := control.PrepareContainer("c", root, false, []control.Mount{
		{Destination: "/private", Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}},
		{Destination: "/slave", Type: "bind", Source: src, Options: []string{"rbind", "rslave"}},
		{Destination: "/default", Type: "bind", Source: src, Options: []string{"rbind"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	if len(files) != 4 || len(args.Mounts) != 3 {
		t.Fatalf("%d descriptors and %d mounts, want 4 and 3", len(files), len(args.Mounts))
	}
	// The host mounts over src/mnt after the container is made.
	if err := unix.Mount(content, filepath.Join(src, "mnt"), "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s: %v", content, err)
	}
	defer unix.Unmount(filepath.Join(src, "mnt"), unix.MNT_DETACH)
	sees := func(f *os.File) bool {
		var st unix.Stat_t
		return unix.Fstatat(int(f.Fd()), "mnt/flag", &st, unix.AT_SYMLINK_NOFOLLOW) == nil
	}
	if sees(files[1]) {
		t.Errorf("the rprivate volume shows a host mount made after it was attached")
	}
	if !sees(files[2]) || !sees(files[3]) {
		t.Errorf("the rslave/default volume does not show the host's new mount (rslave %v, default %v)", sees(files[2]), sees(files[3]))
	}
	// Files (not mounts) are shared by all three.
	if err := os.WriteFile(filepath.Join(src, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(int(files[1].Fd()), "file", &st, 0); err != nil {
		t.Errorf("a file written on the host is missing from the rprivate volume: %v", err)
	}
}
