package vdso

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestImage: the embedded vDSO is a position-independent ELF exporting the
// versioned symbols glibc and the Go runtime look up, with no relocations,
// and it is what vdso.c builds to with this machine's compiler.
func TestImage(t *testing.T) {
	f, err := elf.NewFile(bytes.NewReader(Image))
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != elf.ET_DYN || f.Machine != elf.EM_X86_64 {
		t.Fatalf("type %v machine %v", f.Type, f.Machine)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"__vdso_clock_gettime": false, "__vdso_gettimeofday": false, "__vdso_time": false, "__vdso_getcpu": false, "__vdso_clock_getres": false}
	for _, s := range syms {
		if _, ok := want[s.Name]; ok && s.Version == "LINUX_2.6" {
			want[s.Name] = true
		}
	}
	for n, ok := range want {
		if !ok {
			t.Errorf("symbol %s@LINUX_2.6 missing", n)
		}
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_RELA || s.Type == elf.SHT_REL {
			t.Errorf("relocation section %s", s.Name)
		}
	}
	if Pages != 1 {
		t.Errorf("image takes %d pages", Pages)
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		if os.Getenv("MOAT_REQUIRE_KVM") != "" {
			t.Fatal("gcc is needed to check vdso.so is up to date")
		}
		t.Skip("gcc absent: cannot check vdso.so is up to date (MOAT_REQUIRE_KVM unset)")
	}
	dir := t.TempDir()
	cmd := exec.Command("./gen.sh")
	cmd.Env = append(os.Environ(), "OUT="+filepath.Join(dir, "vdso.so"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen.sh: %v\n%s", err, out)
	}
	built, _ := os.ReadFile(filepath.Join(dir, "vdso.so"))
	if !bytes.Equal(built, Image) {
		t.Errorf("vdso.so is stale: run go generate ./sentry/vdso")
	}
}
