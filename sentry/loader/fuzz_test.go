package loader

import (
	"bytes"
	"debug/elf"
	"errors"
	"math/rand"
	"os"
	"strings"
	"testing"
)

// seedELFs returns the synthetic executables of the fuzz corpus.
func seedELFs() [][]byte {
	dyn := newELF()
	dyn.typ = elf.ET_DYN
	for i := range dyn.phdrs {
		dyn.phdrs[i].vaddr -= 0x400000
	}
	dyn.entry -= 0x400000
	stack := newELF()
	stack.phdrs = append(stack.phdrs, phdr{typ: elf.PT_GNU_STACK, flags: elf.PF_R | elf.PF_W | elf.PF_X})
	return [][]byte{
		newELF().build(),
		newELF().withInterp("/lib64/ld-linux-x86-64.so.2").build(),
		dyn.withInterp("/lib/ld-musl-x86_64.so.1").build(),
		stack.build(),
	}
}

// FuzzParse feeds arbitrary files to Parse and Plan: they must never panic,
// must reject with ErrNoExec, and what they accept must hold every
// invariant the loader promises. The seed corpus holds synthetic files and
// real executables (static, static-PIE, PIE, /bin/true, the dynamic linker
// and this Go test binary); `go test` runs the seeds, `go test -fuzz
// FuzzParse` explores from them.
func FuzzParse(f *testing.F) {
	for _, b := range seedELFs() {
		f.Add(b)
	}
	for _, rb := range realBinaries {
		path := rb.path(f)
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		// The headers alone, which Parse must reject cleanly.
		f.Add(b[:min(len(b), 4096)])
	}
	f.Add([]byte("#!/bin/sh\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParse(t, b)
	})
}

// checkParse parses b and checks the result's invariants.
func checkParse(t *testing.T, b []byte) {
	img, err := Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		if !errors.Is(err, ErrNoExec) {
			t.Fatalf("error %v does not wrap ErrNoExec", err)
		}
		if !strings.HasPrefix(err.Error(), "elf: ") {
			t.Fatalf("error %q does not say it is about ELF", err)
		}
		return
	}
	if img.Type != elf.ET_EXEC && img.Type != elf.ET_DYN {
		t.Fatalf("type %v", img.Type)
	}
	if len(img.Segments) == 0 || img.Phnum == 0 || img.Phent != 56 || img.Entry >= UserTop {
		t.Fatalf("image %+v", img)
	}
	if img.Align < PageSize || img.Align&(img.Align-1) != 0 {
		t.Fatalf("align %#x", img.Align)
	}
	if len(img.Interp) >= PathMax || strings.IndexByte(img.Interp, 0) >= 0 {
		t.Fatalf("interp %q", img.Interp)
	}
	for i, s := range img.Segments {
		if s.Filesz > s.Memsz || s.End() < s.Vaddr || s.End() > UserTop || s.Offset+s.Filesz < s.Offset || s.Offset+s.Filesz > uint64(len(b)) {
			t.Fatalf("segment %d %+v", i, s)
		}
		if i > 0 && s.Vaddr < img.Segments[i-1].End() {
			t.Fatalf("segment %d overlaps", i)
		}
	}
	if img.MaxVaddr > UserTop || img.MinVaddr > img.Segments[0].Vaddr {
		t.Fatalf("bounds [%#x, %#x)", img.MinVaddr, img.MaxVaddr)
	}
	biases := []uint64{0}
	if img.Type == elf.ET_DYN {
		biases = append(biases, 0x555555554000, UserTop-pageUp(img.MaxVaddr), 0x7ffff0000000)
	}
	for _, bias := range biases {
		plan, err := Plan(img, bias)
		if err != nil {
			if !errors.Is(err, ErrNoExec) {
				t.Fatalf("Plan: %v", err)
			}
			continue
		}
		for _, m := range plan.Mappings {
			if m.Start%PageSize != 0 || m.End%PageSize != 0 || m.Start >= m.End || m.End > UserTop {
				t.Fatalf("bias %#x: mapping %v", bias, m)
			}
			if m.File && (m.Offset%PageSize != 0 || m.ZeroStart != 0 && (m.ZeroStart <= m.Start || m.ZeroStart >= m.End)) {
				t.Fatalf("bias %#x: mapping %v", bias, m)
			}
		}
		if plan.Brk > UserTop || plan.Brk < plan.End {
			t.Fatalf("bias %#x: brk %#x end %#x", bias, plan.Brk, plan.End)
		}
	}
}

// TestParseMutations runs Parse over many random mutations of valid
// executables' headers, a deterministic complement to the fuzz target that
// runs in every `go test`.
func TestParseMutations(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	bases := seedELFs()
	static, _ := os.ReadFile(realBinaries[0].path(t))
	bases = append(bases, static)
	accepted := 0
	for _, base := range bases {
		orig := bytes.Clone(base)
		region := 64 + 56*int(le.Uint16(orig[56:]))
		for n := 0; n < 5000; n++ {
			b := base
			for k := 1 + r.Intn(4); k > 0; k-- {
				i := r.Intn(region)
				switch r.Intn(3) {
				case 0:
					b[i] ^= 1 << r.Intn(8)
				case 1:
					b[i] = byte(r.Intn(256))
				case 2:
					// An interesting 8-byte value in an aligned field.
					i &^= 7
					if i+8 <= len(b) {
						vals := []uint64{0, 1, 1 << 63, 1<<64 - 1, UserTop, UserTop - 0x1000, 0x1000, uint64(len(b)), 1<<64 - 0x1000}
						le.PutUint64(b[i:], vals[r.Intn(len(vals))])
					}
				}
			}
			if r.Intn(10) == 0 {
				b = b[:r.Intn(len(b)+1)]
			}
			if _, err := Parse(bytes.NewReader(b), int64(len(b))); err == nil {
				accepted++
			}
			checkParse(t, b)
			copy(base, orig)
		}
	}
	t.Logf("%d of %d mutated files accepted", accepted, 5000*len(bases))
}

// FuzzParseInterpreterLine checks ParseInterpreterLine never panics and
// that what it returns is well formed.
func FuzzParseInterpreterLine(f *testing.F) {
	for _, s := range []string{"#!/bin/sh\n", "#! /usr/bin/env python3 -u\n", "#!" + strings.Repeat(" ", 300), "#!/x\x00y", "\x7fELF"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		interp, arg, ok, err := ParseInterpreterLine(b)
		if !ok {
			if err != nil || interp != "" || arg != "" || bytes.HasPrefix(b, []byte("#!")) {
				t.Fatalf("not ok: %q %q %v", interp, arg, err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrNoExec) || interp != "" || arg != "" {
				t.Fatalf("err %v with %q %q", err, interp, arg)
			}
			return
		}
		// An argument may end in spaces when a NUL follows them: the kernel
		// trims the line's end, then reads up to the NUL.
		if interp == "" || strings.ContainsAny(interp, " \t\x00\n") || strings.ContainsAny(arg, "\x00\n") ||
			strings.TrimLeft(arg, " \t") != arg || len(interp)+len(arg) > BinprmBufSize {
			t.Fatalf("bad result %q %q", interp, arg)
		}
	})
}
