package loader

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestParseRealBinaries checks Parse against the standard library's ELF
// reader, an independent parser, on real executables.
func TestParseRealBinaries(t *testing.T) {
	for _, rb := range realBinaries {
		t.Run(rb.name, func(t *testing.T) {
			path := rb.path(t)
			img, raw := parseFile(t, path)
			ef, err := elf.NewFile(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			wantType := map[string]elf.Type{"exec": elf.ET_EXEC, "dyn": elf.ET_DYN}[rb.typ]
			if img.Type != wantType || ef.Type != wantType {
				t.Errorf("type %v (debug/elf %v), want %v", img.Type, ef.Type, wantType)
			}
			if img.Entry != ef.Entry {
				t.Errorf("entry %#x, debug/elf %#x", img.Entry, ef.Entry)
			}
			var loads []*elf.Prog
			var interp string
			stackExec := false
			var phdr uint64
			for _, p := range ef.Progs {
				switch p.Type {
				case elf.PT_LOAD:
					loads = append(loads, p)
				case elf.PT_INTERP:
					b := make([]byte, p.Filesz)
					p.ReadAt(b, 0)
					interp = strings.TrimRight(string(b), "\x00")
				case elf.PT_GNU_STACK:
					stackExec = p.Flags&elf.PF_X != 0
				case elf.PT_PHDR:
					phdr = p.Vaddr
				}
			}
			if len(img.Segments) != len(loads) {
				t.Fatalf("%d segments, debug/elf %d", len(img.Segments), len(loads))
			}
			for i, p := range loads {
				s := img.Segments[i]
				prot := Prot(0)
				if p.Flags&elf.PF_R != 0 {
					prot |= ProtRead
				}
				if p.Flags&elf.PF_W != 0 {
					prot |= ProtWrite
				}
				if p.Flags&elf.PF_X != 0 {
					prot |= ProtExec
				}
				if s.Vaddr != p.Vaddr || s.Memsz != p.Memsz || s.Filesz != p.Filesz || s.Offset != p.Off || s.Prot != prot || s.Align != p.Align {
					t.Errorf("segment %d = %+v, debug/elf %+v", i, s, p.ProgHeader)
				}
			}
			if img.Interp != interp || (interp != "") != rb.interp {
				t.Errorf("interp %q, debug/elf %q", img.Interp, interp)
			}
			if img.StackExec != stackExec || img.StackExec {
				t.Errorf("StackExec %v, debug/elf %v", img.StackExec, stackExec)
			}
			if phdr != 0 && img.PhdrVaddr != phdr {
				t.Errorf("PhdrVaddr %#x, PT_PHDR %#x", img.PhdrVaddr, phdr)
			}
			if img.PhdrVaddr == 0 {
				t.Errorf("PhdrVaddr is 0")
			}
			if int(img.Phnum) != len(ef.Progs) || img.Phent != 56 {
				t.Errorf("phnum %d phent %d, debug/elf %d progs", img.Phnum, img.Phent, len(ef.Progs))
			}
			last := loads[len(loads)-1]
			if img.MaxVaddr != last.Vaddr+last.Memsz || img.MinVaddr != loads[0].Vaddr&^4095 {
				t.Errorf("vaddr bounds [%#x, %#x)", img.MinVaddr, img.MaxVaddr)
			}
			if img.Align < PageSize || img.Align&(img.Align-1) != 0 {
				t.Errorf("align %#x", img.Align)
			}
			t.Logf("%s: %v entry %#x phdr %#x interp %q, %d segments, align %#x, span %#x", path, img.Type, img.Entry, img.PhdrVaddr, img.Interp, len(img.Segments), img.Align, img.Span())
		})
	}
}

// TestParseMatchesKernel runs C programs and compares what the kernel told
// them (AT_PHDR, AT_ENTRY, AT_PHNUM) with Parse's image at the same load
// bias, and checks their data and bss lie in the planned mappings.
func TestParseMatchesKernel(t *testing.T) {
	for _, rb := range realBinaries {
		if !rb.runs {
			continue
		}
		t.Run(rb.name, func(t *testing.T) {
			path := rb.path(t)
			img, _ := parseFile(t, path)
			out, err := exec.Command(path).Output()
			if err != nil {
				t.Fatalf("run %s: %v", path, err)
			}
			got := map[string]uint64{}
			var maps []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if m, ok := strings.CutPrefix(line, "map "); ok {
					maps = append(maps, m)
					continue
				}
				f := strings.Fields(line)
				v, err := strconv.ParseUint(f[1], 16, 64)
				if err != nil {
					t.Fatalf("parse %q: %v", line, err)
				}
				got[f[0]] = v
			}
			bias := got["entry"] - img.Entry
			if img.Type == elf.ET_EXEC && bias != 0 {
				t.Errorf("ET_EXEC loaded with bias %#x", bias)
			}
			if got["phdr"] != img.PhdrVaddr+bias {
				t.Errorf("AT_PHDR %#x, Parse says %#x + bias %#x", got["phdr"], img.PhdrVaddr, bias)
			}
			if got["phnum"] != uint64(img.Phnum) || got["phent"] != uint64(img.Phent) {
				t.Errorf("AT_PHNUM %d AT_PHENT %d, Parse %d %d", got["phnum"], got["phent"], img.Phnum, img.Phent)
			}
			if (got["base"] != 0) != (img.Interp != "") {
				t.Errorf("AT_BASE %#x with interp %q", got["base"], img.Interp)
			}
			plan, err := Plan(img, bias)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Entry != got["entry"] || plan.Phdr != got["phdr"] {
				t.Errorf("plan entry %#x phdr %#x", plan.Entry, plan.Phdr)
			}
			checkKernelMaps(t, path, maps, plan)
			for _, sym := range []string{"data", "bss"} {
				a := got[sym]
				found := false
				for _, m := range plan.Mappings {
					if a >= m.Start && a < m.End && m.Prot&ProtWrite != 0 {
						found = true
					}
				}
				if !found {
					t.Errorf("%s at %#x is in no writable mapping of %v", sym, a, plan.Mappings)
				}
			}
		})
	}
}

func TestParseMachineNames(t *testing.T) {
	for _, c := range []struct {
		m    elf.Machine
		want string
	}{
		{elf.EM_AARCH64, "elf: machine is aarch64 (183), want x86-64"},
		{elf.EM_RISCV, "elf: machine is riscv (243), want x86-64"},
		{elf.EM_PPC64, "elf: machine is ppc64 (21), want x86-64"},
		{elf.EM_S390, "elf: machine is s390 (22), want x86-64"},
		{elf.EM_SH, "elf: machine is sh (42), want x86-64"},
		{elf.Machine(0xfff0), "elf: machine is unknown (65520), want x86-64"},
	} {
		b := newELF().build()
		le.PutUint16(b[18:], uint16(c.m))
		_, err := Parse(bytes.NewReader(b), int64(len(b)))
		if err == nil || err.Error() != c.want || !errors.Is(err, ErrNoExec) {
			t.Errorf("machine %d: %v, want %q", c.m, err, c.want)
		}
	}
	// A 32-bit i386 executable.
	b := newELF().build()
	b[elf.EI_CLASS] = byte(elf.ELFCLASS32)
	le.PutUint16(b[18:], uint16(elf.EM_386))
	if _, err := Parse(bytes.NewReader(b), int64(len(b))); err == nil || err.Error() != "elf: 32-bit executable for i386 (3), want x86-64" {
		t.Errorf("i386: %v", err)
	}
}

// checkKernelMaps checks that each mapping of the executable the kernel made
// (from /proc/self/maps) lies inside a file mapping of the plan, at the same
// file offset, with the plan's protection or less (the C library makes
// RELRO read-only after relocating). And each planned file mapping must be
// covered by the kernel's mappings.
func checkKernelMaps(t *testing.T, path string, maps []string, plan *LoadPlan) {
	t.Helper()
	covered := map[int]uint64{}
	n := 0
	for _, line := range maps {
		f := strings.Fields(line)
		if len(f) < 6 || f[5] != path {
			continue
		}
		n++
		var lo, hi, off uint64
		fmt.Sscanf(f[0], "%x-%x", &lo, &hi)
		fmt.Sscanf(f[2], "%x", &off)
		var prot Prot
		if f[1][0] == 'r' {
			prot |= ProtRead
		}
		if f[1][1] == 'w' {
			prot |= ProtWrite
		}
		if f[1][2] == 'x' {
			prot |= ProtExec
		}
		ok := false
		for i, m := range plan.Mappings {
			if m.File && lo >= m.Start && hi <= m.End && off == m.Offset+(lo-m.Start) && prot&^m.Prot == 0 {
				ok = true
				covered[i] += hi - lo
			}
		}
		if !ok {
			t.Errorf("kernel mapping %s matches no planned file mapping:\n%v", line, plan.Mappings)
		}
	}
	if n == 0 {
		t.Fatalf("no mapping of %s in /proc/self/maps", path)
	}
	for i, m := range plan.Mappings {
		if m.File && covered[i] != m.End-m.Start {
			t.Errorf("planned %v: the kernel mapped %#x bytes of it", m, covered[i])
		}
	}
}
