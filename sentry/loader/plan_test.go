package loader

import (
	"bytes"
	"debug/elf"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestPlanSynthetic(t *testing.T) {
	b := newELF().build()
	img, err := Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Plan(img, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Mapping{
		{Start: 0x400000, End: 0x401000, Prot: ProtRead, File: true, Offset: 0},
		{Start: 0x401000, End: 0x402000, Prot: ProtRead | ProtExec, File: true, Offset: 0x1000},
		{Start: 0x403000, End: 0x404000, Prot: ProtRead | ProtWrite, File: true, Offset: 0x2000, ZeroStart: 0x403800},
		{Start: 0x404000, End: 0x406000, Prot: ProtRead | ProtWrite},
	}
	if !reflect.DeepEqual(plan.Mappings, want) {
		t.Errorf("mappings\n got %v\nwant %v", plan.Mappings, want)
	}
	if plan.Entry != 0x401000 || plan.Phdr != 0x400040 || plan.Start != 0x400000 || plan.End != 0x406000 || plan.Brk != 0x406000 {
		t.Errorf("plan %+v", plan)
	}
	if s := want[2].String(); s != "[0x403000, 0x404000) rw- file@0x2000 zero from 0x403800" {
		t.Errorf("String() = %q", s)
	}

	// Unaligned segments: a bss-only segment, a file part ending on a page
	// boundary, and a segment starting mid-page.
	e := newELF()
	e.phdrs[2] = phdr{typ: elf.PT_LOAD, flags: elf.PF_R | elf.PF_X, off: 0x1234, vaddr: 0x401234, filesz: 0xdcc, memsz: 0x1dcc, align: 0x1000}
	e.phdrs[3] = phdr{typ: elf.PT_LOAD, flags: elf.PF_R | elf.PF_W, off: 0, vaddr: 0x405010, filesz: 0, memsz: 0x10, align: 0x10}
	b = e.build()
	if img, err = Parse(bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if plan, err = Plan(img, 0); err != nil {
		t.Fatal(err)
	}
	want = []Mapping{
		{Start: 0x400000, End: 0x401000, Prot: ProtRead, File: true, Offset: 0},
		{Start: 0x401000, End: 0x402000, Prot: ProtRead | ProtExec, File: true, Offset: 0x1000},
		{Start: 0x402000, End: 0x403000, Prot: ProtRead | ProtExec},
		{Start: 0x405000, End: 0x406000, Prot: ProtRead | ProtWrite},
	}
	if !reflect.DeepEqual(plan.Mappings, want) {
		t.Errorf("mappings\n got %v\nwant %v", plan.Mappings, want)
	}
	if plan.End != 0x405020 || plan.Brk != 0x406000 {
		t.Errorf("end %#x brk %#x", plan.End, plan.Brk)
	}
}

func TestPlanRejects(t *testing.T) {
	b := newELF().build()
	exe, _ := Parse(bytes.NewReader(b), int64(len(b)))
	e := newELF()
	e.typ = elf.ET_DYN
	b = e.build()
	dyn, _ := Parse(bytes.NewReader(b), int64(len(b)))
	for _, c := range []struct {
		img  *Image
		bias uint64
		want string
	}{
		{exe, 0x1000, "ET_EXEC"},
		{dyn, 0x1001, "not page-aligned"},
		{dyn, UserTop - 0x5000, "beyond the user address space"},
		{dyn, 1<<64 - 0x1000, "beyond the user address space"},
		{&Image{Type: elf.ET_DYN}, 0, "no PT_LOAD"},
		{&Image{Type: elf.ET_DYN, MaxVaddr: 0x2000, Segments: []Segment{{Vaddr: 0x1000, Memsz: 0x10, Filesz: 0x20}}}, 0, "segment 0 is inconsistent"},
		{&Image{Type: elf.ET_DYN, MaxVaddr: 0x2000, Segments: []Segment{{Vaddr: 0x1000, Memsz: 0x10, Filesz: 1, Offset: 1}}}, 0, "segment 0 is inconsistent"},
	} {
		_, err := Plan(c.img, c.bias)
		if err == nil || !errors.Is(err, ErrNoExec) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Plan(bias %#x) = %v, want %q", c.bias, err, c.want)
		}
	}
	if p, err := Plan(dyn, 0x7f0000000000); err != nil || p.Entry != 0x7f0000401000 || p.Brk != 0x7f0000406000 {
		t.Errorf("dyn at 0x7f0000000000: %v %+v", err, p)
	}
}

// TestPlanRealBinaries checks a plan's invariants on real executables:
// page-aligned, ascending mappings that cover each segment, file offsets
// that match the segment's, and a zeroing start exactly where the file
// bytes of a segment with a bss end inside a page.
func TestPlanRealBinaries(t *testing.T) {
	for _, rb := range realBinaries {
		t.Run(rb.name, func(t *testing.T) {
			img, _ := parseFile(t, rb.path(t))
			bias := uint64(0)
			if img.Type == elf.ET_DYN {
				bias = 0x555555554000
			}
			plan, err := Plan(img, bias)
			if err != nil {
				t.Fatal(err)
			}
			var prevEnd uint64
			for _, m := range plan.Mappings {
				if m.Start%PageSize != 0 || m.End%PageSize != 0 || m.End <= m.Start || m.Offset%PageSize != 0 {
					t.Errorf("mapping %v is not page-aligned", m)
				}
				if m.Start < prevEnd {
					t.Errorf("mapping %v starts below the previous end %#x", m, prevEnd)
				}
				prevEnd = m.End
			}
			for i, s := range img.Segments {
				lo, hi := s.Vaddr+bias, s.Vaddr+bias+s.Memsz
				for a := lo &^ (PageSize - 1); a < hi; a += PageSize {
					var in *Mapping
					for j := range plan.Mappings {
						if m := &plan.Mappings[j]; a >= m.Start && a < m.End {
							in = m
						}
					}
					if in == nil {
						t.Fatalf("segment %d page %#x is not mapped", i, a)
					}
					if in.Prot != s.Prot {
						t.Errorf("segment %d page %#x prot %v, want %v", i, a, in.Prot, s.Prot)
					}
					fileEnd := s.Vaddr + bias + s.Filesz
					if a < fileEnd {
						if !in.File || in.Offset+(a-in.Start) != s.Offset-(lo-a) {
							t.Errorf("segment %d page %#x: %v does not map file offset %#x", i, a, in, s.Offset-(lo-a))
						}
						if a+PageSize > fileEnd && s.Memsz > s.Filesz && fileEnd%PageSize != 0 && in.ZeroStart != fileEnd {
							t.Errorf("segment %d: %v should zero from %#x", i, in, fileEnd)
						}
					} else if in.File {
						t.Errorf("segment %d bss page %#x is file-backed", i, a)
					}
				}
			}
		})
	}
}
