package loader

import (
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"strings"
	"testing"

	"moat.dev/moat/sentry/abi"
)

func TestParseSynthetic(t *testing.T) {
	// Callers pass Prot straight to mmap-like interfaces.
	if ProtRead != abi.PROT_READ || ProtWrite != abi.PROT_WRITE || ProtExec != abi.PROT_EXEC {
		t.Fatal("Prot bits differ from PROT_*")
	}
	b := newELF().build()
	img, err := Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if img.Type != elf.ET_EXEC || img.Entry != 0x401000 || img.PhdrVaddr != 0x400040 || len(img.Segments) != 3 ||
		img.MinVaddr != 0x400000 || img.MaxVaddr != 0x406000 || img.Interp != "" || img.StackExec || img.Align != 0x1000 {
		t.Errorf("got %+v", img)
	}
	if img.Segments[1].Prot != ProtRead|ProtExec || img.Segments[2].Prot != ProtRead|ProtWrite || img.Segments[2].Prot.String() != "rw-" {
		t.Errorf("prots %v %v", img.Segments[1].Prot, img.Segments[2].Prot)
	}
	if img.BrkStart(0) != 0x406000 || img.Span() != 0x6000 {
		t.Errorf("brk %#x span %#x", img.BrkStart(0), img.Span())
	}

	b = newELF().withInterp("/lib64/ld-linux-x86-64.so.2").build()
	img, err = Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil || img.Interp != "/lib64/ld-linux-x86-64.so.2" {
		t.Fatalf("interp: %v %+v", err, img)
	}

	// Without PT_PHDR the address comes from the segment holding e_phoff.
	e := newELF()
	e.phdrs[0].typ = elf.PT_NOTE
	b = e.build()
	if img, err = Parse(bytes.NewReader(b), int64(len(b))); err != nil || img.PhdrVaddr != 0x400040 {
		t.Fatalf("computed phdr: %v %+v", err, img)
	}
	// No segment maps the headers: 0.
	e.phdrs[1].off, e.phdrs[1].vaddr, e.phdrs[1].filesz = 0x3000, 0x3ff000, 0
	e.phdrs[1].vaddr = 0x3ff000
	b = e.build()
	if img, err = Parse(bytes.NewReader(b), int64(len(b))); err != nil || img.PhdrVaddr != 0 {
		t.Fatalf("unmapped phdr: %v %+v", err, img)
	}

	// PT_GNU_STACK with PF_X asks for an executable stack.
	e = newELF()
	e.phdrs = append(e.phdrs, phdr{typ: elf.PT_GNU_STACK, flags: elf.PF_R | elf.PF_W | elf.PF_X})
	e.phdrs[0].filesz, e.phdrs[0].memsz = 5*56, 5*56
	b = e.build()
	if img, err = Parse(bytes.NewReader(b), int64(len(b))); err != nil || !img.StackExec {
		t.Fatalf("exec stack: %v %+v", err, img)
	}

	// ET_DYN at address 0 with a 2 MiB alignment.
	e = newELF()
	e.typ = elf.ET_DYN
	e.entry = 0x1000
	for i := range e.phdrs {
		e.phdrs[i].vaddr -= 0x400000
		if e.phdrs[i].typ == elf.PT_LOAD {
			e.phdrs[i].align = 0x200000
		}
	}
	e.phdrs[3].vaddr = 0x203000 // congruent to offset 0x2000 modulo... not 2 MiB
	b = e.build()
	if _, err = Parse(bytes.NewReader(b), int64(len(b))); err == nil || !strings.Contains(err.Error(), "modulo its alignment") {
		t.Fatalf("dyn misaligned: %v", err)
	}
	e.phdrs[3].vaddr = 0x202000
	b = e.build()
	if img, err = Parse(bytes.NewReader(b), int64(len(b))); err != nil || img.Align != 0x200000 || img.Type != elf.ET_DYN {
		t.Fatalf("dyn: %v %+v", err, img)
	}
}

// TestParseRejects checks that each malformed file is rejected with an
// error that wraps ErrNoExec and says what was wrong.
func TestParseRejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(e *elfBuilder)
		raw    func(b []byte) []byte
		want   string
	}{
		{"short", nil, func(b []byte) []byte { return b[:63] }, "shorter than an ELF header"},
		{"magic", nil, func(b []byte) []byte { b[1] = 'X'; return b }, "bad magic"},
		{"class", func(e *elfBuilder) { e.class = 7 }, nil, "bad class 7"},
		{"big-endian", func(e *elfBuilder) { e.data = byte(elf.ELFDATA2MSB) }, nil, "big-endian executable"},
		{"data", func(e *elfBuilder) { e.data = 9 }, nil, "bad data encoding 9"},
		{"ident version", func(e *elfBuilder) { e.identVersion = 2 }, nil, "bad ident version"},
		{"version", func(e *elfBuilder) { e.version = 2 }, nil, "bad version 2"},
		{"machine", func(e *elfBuilder) { e.machine = elf.EM_AARCH64 }, nil, "machine is aarch64 (183), want x86-64"},
		{"rel", func(e *elfBuilder) { e.typ = elf.ET_REL }, nil, "ET_REL"},
		{"core", func(e *elfBuilder) { e.typ = elf.ET_CORE }, nil, "ET_CORE"},
		{"type", func(e *elfBuilder) { e.typ = 0x1234 }, nil, "type is 4660"},
		{"phentsize", func(e *elfBuilder) { e.phentsize = 32 }, nil, "program header size is 32"},
		{"phnum 0", func(e *elfBuilder) { e.phnum = 0 }, nil, "no program headers"},
		{"phnum huge", func(e *elfBuilder) { e.phnum = 1171 }, nil, "1171 program headers, more than 1170"},
		{"phoff beyond", func(e *elfBuilder) { e.phoff = 0x2ff0 }, func(b []byte) []byte { return b[:0x3000] }, "program headers [0x2ff0, +0xe0) lie beyond"},
		{"phoff overflow", func(e *elfBuilder) { e.phoff = 1<<64 - 8 }, nil, "lie beyond"},
		{"entry", func(e *elfBuilder) { e.entry = 1 << 47 }, nil, "entry point 0x800000000000 is beyond"},
		{"no load", func(e *elfBuilder) {
			for i := range e.phdrs {
				e.phdrs[i].typ = elf.PT_NOTE
			}
		}, nil, "no PT_LOAD segment"},
		{"filesz>memsz", func(e *elfBuilder) { e.phdrs[3].filesz = 0x3001 }, nil, "segment 2 filesz 0x3001 is larger than memsz 0x3000"},
		{"offset+filesz overflow", func(e *elfBuilder) { e.phdrs[3].off = 1<<64 - 0x400 }, nil, "segment 2 offset+filesz overflows"},
		{"offset+filesz beyond", func(e *elfBuilder) { e.phdrs[3].filesz = 0x1001 }, nil, "segment 2 file range [0x2000, 0x3001) lies beyond the 12288-byte file"},
		{"vaddr+memsz overflow", func(e *elfBuilder) {
			e.phdrs[3].vaddr = 1<<64 - 0x1000
			e.phdrs[3].off = 0x2000
		}, nil, "segment 2 vaddr+memsz overflows"},
		{"above user top", func(e *elfBuilder) { e.phdrs[3].vaddr = 0x7fffffffe000 }, nil, "segment 2 [0x7fffffffe000, 0x800000001000) reaches beyond the user address space"},
		{"at user top", func(e *elfBuilder) { e.phdrs[3].vaddr = 0x7ffffffff000 - 0x2000; e.phdrs[3].memsz = 0x2001 }, nil, "reaches beyond the user address space"},
		{"page congruence", func(e *elfBuilder) { e.phdrs[3].vaddr = 0x403100 }, nil, "segment 2 vaddr 0x403100 and offset 0x2000 differ modulo the page size"},
		{"align congruence", func(e *elfBuilder) { e.phdrs[3].align = 0x10000 }, nil, "segment 2 vaddr 0x403000 and offset 0x2000 differ modulo its alignment 0x10000"},
		{"descending", func(e *elfBuilder) { e.phdrs[3].vaddr = 0x3f0000 }, nil, "segment 2 vaddr 0x3f0000 is below segment 1's 0x401000 (not ascending)"},
		{"overlap", func(e *elfBuilder) { e.phdrs[2].memsz = 0x2001 }, nil, "segment 2 [0x403000, 0x406000) overlaps segment 1 [0x401000, 0x403001)"},
		{"interp short", func(e *elfBuilder) { e.withInterp(""); e.phdrs[1].filesz = 1 }, nil, "interpreter path is 1 bytes, want 2..4096"},
		{"interp long", func(e *elfBuilder) { e.withInterp("/x"); e.phdrs[1].filesz = 4097 }, nil, "interpreter path is 4097 bytes"},
		{"interp beyond", func(e *elfBuilder) { e.withInterp("/x"); e.phdrs[1].off = 0x2fff }, nil, "interpreter path [0x2fff, +0x3) lies beyond"},
		{"interp offset overflow", func(e *elfBuilder) { e.withInterp("/x"); e.phdrs[1].off = 1<<64 - 1 }, nil, "lies beyond"},
		{"interp no NUL", func(e *elfBuilder) { e.withInterp("/lib/ld.so"); e.phdrs[1].filesz-- }, nil, "interpreter path is not NUL-terminated"},
		{"interp inner NUL", func(e *elfBuilder) { e.withInterp("/lib\x00/ld.so") }, nil, "has a NUL inside"},
		{"phdr beyond", func(e *elfBuilder) { e.phdrs[0].vaddr = 0x7ffffffff000 - 8 }, nil, "PT_PHDR at 0x7fffffffeff8 is beyond"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newELF()
			if c.mutate != nil {
				c.mutate(e)
			}
			b := e.build()
			if c.raw != nil {
				b = c.raw(b)
			}
			img, err := Parse(bytes.NewReader(b), int64(len(b)))
			if err == nil {
				t.Fatalf("accepted: %+v", img)
			}
			if !errors.Is(err, ErrNoExec) {
				t.Errorf("%v does not wrap ErrNoExec", err)
			}
			if !strings.HasPrefix(err.Error(), "elf: ") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to say %q", err, c.want)
			}
		})
	}
}

// failingReader fails every read past a point, like a file on a broken disk.
type failingReader struct {
	b   []byte
	max int64
}

var errDisk = errors.New("disk on fire")

func (r failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > r.max {
		return 0, errDisk
	}
	return copy(p, r.b[off:]), nil
}

func TestParseReadErrors(t *testing.T) {
	b := newELF().withInterp("/lib/ld.so").build()
	for _, max := range []int64{10, 100, 0x2901} {
		_, err := Parse(failingReader{b, max}, int64(len(b)))
		if !errors.Is(err, errDisk) || errors.Is(err, ErrNoExec) {
			t.Errorf("max %d: %v, want the read error and not ErrNoExec", max, err)
		}
	}
	// A file shorter than its stated size reads short.
	_, err := Parse(bytes.NewReader(b[:100]), int64(len(b)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short file: %v", err)
	}
}
