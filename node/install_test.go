package node

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func readString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInstallUpgradeRollbackUninstall(t *testing.T) {
	src := t.TempDir()
	prefix := filepath.Join(t.TempDir(), "opt", "moat", "bin")
	in := Installer{SourceDir: src, Prefix: prefix, Binaries: []string{"shim", "cli"}}
	put := func(v string) {
		for _, n := range in.Binaries {
			os.WriteFile(filepath.Join(src, n), []byte(n+" "+v), 0o600)
		}
	}
	put("v1")
	changed, err := in.Install()
	if err != nil || !slices.Equal(changed, []string{"shim", "cli"}) {
		t.Fatalf("first install: %v %v", changed, err)
	}
	st, _ := os.Stat(filepath.Join(prefix, "shim"))
	if st.Mode().Perm() != 0o755 {
		t.Fatalf("installed mode %v", st.Mode())
	}
	if _, err := os.Stat(filepath.Join(prefix, "shim"+PreviousSuffix)); !os.IsNotExist(err) {
		t.Fatal("a first install left a previous version")
	}
	if changed, err := in.Install(); err != nil || len(changed) != 0 {
		t.Fatalf("unchanged install: %v %v", changed, err)
	}

	put("v2")
	if changed, err := in.Install(); err != nil || len(changed) != 2 {
		t.Fatalf("upgrade: %v %v", changed, err)
	}
	if got := readString(t, filepath.Join(prefix, "shim")); got != "shim v2" {
		t.Fatalf("after upgrade: %q", got)
	}
	if got := readString(t, filepath.Join(prefix, "shim"+PreviousSuffix)); got != "shim v1" {
		t.Fatalf("previous after upgrade: %q", got)
	}
	// No temporary files are left beside the binaries.
	ents, _ := os.ReadDir(prefix)
	if len(ents) != 4 {
		t.Fatalf("prefix holds %d entries, want 4: %v", len(ents), ents)
	}

	rolled, err := in.Rollback()
	if err != nil || len(rolled) != 2 {
		t.Fatalf("rollback: %v %v", rolled, err)
	}
	if got := readString(t, filepath.Join(prefix, "cli")); got != "cli v1" {
		t.Fatalf("after rollback: %q", got)
	}
	if got := readString(t, filepath.Join(prefix, "cli"+PreviousSuffix)); got != "cli v2" {
		t.Fatalf("previous after rollback: %q", got)
	}

	removed, err := in.Uninstall()
	if err != nil || len(removed) != 4 {
		t.Fatalf("uninstall: %v %v", removed, err)
	}
	if _, err := os.Stat(prefix); !os.IsNotExist(err) {
		t.Fatalf("empty prefix left: %v", err)
	}
}

func TestInstallRefusesBadInput(t *testing.T) {
	src := t.TempDir()
	for _, in := range []Installer{
		{SourceDir: src, Prefix: "relative/bin", Binaries: []string{"x"}},
		{SourceDir: src, Prefix: t.TempDir(), Binaries: []string{"../escape"}},
		{SourceDir: src, Prefix: t.TempDir(), Binaries: []string{".hidden"}},
		{SourceDir: src, Prefix: t.TempDir(), Binaries: []string{"missing"}},
	} {
		if _, err := in.Install(); err == nil {
			t.Errorf("Install(%+v) accepted", in)
		}
	}
}
