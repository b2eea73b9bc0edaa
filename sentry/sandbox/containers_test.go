package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"testing"
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
