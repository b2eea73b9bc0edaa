// Package loader turns an executable file into what the sentry must map and
// push to start a process: it parses and validates ELF executables, reads
// "#!" interpreter lines, plans the page mappings of the loadable segments,
// and builds the initial stack image exactly as Linux lays it out on x86-64.
//
// It maps nothing itself: callers apply a Plan to an address space and copy
// the stack image into it. Everything read from the file is untrusted; every
// rejection wraps ErrNoExec, which the caller turns into ENOEXEC.
package loader

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrNoExec is wrapped by every error that means "this is not an executable
// moat can run" (execve's ENOEXEC).
var ErrNoExec = errors.New("exec format error")

// formatError is a rejection: its message says what was wrong and it
// unwraps to ErrNoExec.
type formatError struct{ msg string }

func (e *formatError) Error() string { return e.msg }
func (e *formatError) Unwrap() error { return ErrNoExec }

func noExec(format string, args ...any) error {
	return &formatError{msg: fmt.Sprintf(format, args...)}
}

// Limits of the x86-64 user address space and of ELF files the loader accepts.
const (
	// UserTop is the end of the user half of a 4-level page table, less the
	// guard page Linux keeps below it (TASK_SIZE_MAX).
	UserTop = 0x7ffffffff000
	// PageSize is the x86-64 page size.
	PageSize = 4096
	// MaxPhnum bounds the program header count as Linux does: the table
	// must fit in 64 KiB.
	MaxPhnum = 65536 / phdrSize
	// PathMax bounds the PT_INTERP path, its NUL included.
	PathMax = 4096

	ehdrSize = 64
	phdrSize = 56
)

// Prot is a segment's access: the union of ProtRead, ProtWrite, ProtExec
// (the same bits as mmap's PROT_*).
type Prot uint8

const (
	ProtRead  Prot = 1
	ProtWrite Prot = 2
	ProtExec  Prot = 4
)

func (p Prot) String() string {
	b := []byte("---")
	if p&ProtRead != 0 {
		b[0] = 'r'
	}
	if p&ProtWrite != 0 {
		b[1] = 'w'
	}
	if p&ProtExec != 0 {
		b[2] = 'x'
	}
	return string(b)
}

// Segment is one PT_LOAD program header.
type Segment struct {
	Vaddr  uint64 // where the segment starts (before the load bias of ET_DYN)
	Memsz  uint64 // bytes in memory
	Filesz uint64 // bytes from the file; the rest, up to Memsz, is zero
	Offset uint64 // file offset of the first byte
	Align  uint64 // p_align
	Prot   Prot
}

// End returns the address just past the segment in memory.
func (s Segment) End() uint64 { return s.Vaddr + s.Memsz }

// Image is a parsed, validated ELF executable.
type Image struct {
	Type  elf.Type // elf.ET_EXEC (loaded where it says) or elf.ET_DYN (position-independent)
	Entry uint64   // e_entry, before the load bias

	// PhdrVaddr is the address of the program headers in memory (for
	// AT_PHDR, before the load bias): PT_PHDR's p_vaddr, or else computed
	// from the PT_LOAD segment whose file range holds e_phoff. It is 0 when
	// no segment maps them.
	PhdrVaddr uint64
	Phoff     uint64 // e_phoff
	Phent     uint16 // e_phentsize (AT_PHENT)
	Phnum     uint16 // e_phnum (AT_PHNUM)

	Segments []Segment // PT_LOAD segments, ascending and non-overlapping

	// Interp is the PT_INTERP path (the dynamic linker), "" for a static
	// executable.
	Interp string

	// StackExec is true when PT_GNU_STACK asks for an executable stack. On
	// x86-64 an executable without PT_GNU_STACK gets a non-executable stack.
	StackExec bool

	// MinVaddr and MaxVaddr bound the loadable segments: the lowest p_vaddr
	// rounded down to a page, and the highest p_vaddr+p_memsz (where the
	// program break starts, once rounded up to a page).
	MinVaddr uint64
	MaxVaddr uint64

	// Align is the largest power-of-two p_align of the PT_LOAD segments,
	// at least PageSize: the alignment a load bias of ET_DYN should have.
	Align uint64
}

// Span returns the bytes of address space the segments take, from the page
// of the first to the page end of the last.
func (img *Image) Span() uint64 { return pageUp(img.MaxVaddr) - img.MinVaddr }

// BrkStart returns where the program break starts for load bias bias.
func (img *Image) BrkStart(bias uint64) uint64 { return pageUp(img.MaxVaddr + bias) }

func pageDown(v uint64) uint64 { return v &^ (PageSize - 1) }
func pageUp(v uint64) uint64   { return (v + PageSize - 1) &^ (PageSize - 1) }

// machineNames names the architectures an executable is most likely built for.
var machineNames = map[elf.Machine]string{
	elf.EM_386:       "i386",
	elf.EM_ARM:       "arm",
	elf.EM_AARCH64:   "aarch64",
	elf.EM_RISCV:     "riscv",
	elf.EM_PPC:       "ppc",
	elf.EM_PPC64:     "ppc64",
	elf.EM_S390:      "s390",
	elf.EM_MIPS:      "mips",
	elf.EM_SPARCV9:   "sparc64",
	elf.EM_LOONGARCH: "loongarch",
	elf.EM_IA_64:     "ia64",
}

func machineName(m elf.Machine) string {
	if n, ok := machineNames[m]; ok {
		return n
	}
	s := m.String()
	if n, ok := strings.CutPrefix(s, "EM_"); ok && !strings.Contains(n, "+") {
		return strings.ToLower(n)
	}
	return "unknown"
}

// Parse reads and validates the ELF executable r of size bytes. Only 64-bit
// little-endian x86-64 executables (ET_EXEC or ET_DYN) are accepted. Every
// rejection wraps ErrNoExec and says what was wrong; an error reading r is
// returned wrapped as it is.
func Parse(r io.ReaderAt, size int64) (*Image, error) {
	if size < ehdrSize {
		return nil, noExec("elf: file is %d bytes, shorter than an ELF header", size)
	}
	var eh [ehdrSize]byte
	if err := readFull(r, eh[:], 0); err != nil {
		return nil, fmt.Errorf("elf: read header: %w", err)
	}
	if string(eh[:4]) != elf.ELFMAG {
		return nil, noExec("elf: bad magic %q", eh[:4])
	}
	if c := elf.Class(eh[elf.EI_CLASS]); c != elf.ELFCLASS64 {
		if c == elf.ELFCLASS32 {
			m := elf.Machine(binary.LittleEndian.Uint16(eh[18:]))
			if elf.Data(eh[elf.EI_DATA]) == elf.ELFDATA2MSB {
				m = elf.Machine(binary.BigEndian.Uint16(eh[18:]))
			}
			return nil, noExec("elf: 32-bit executable for %s (%d), want x86-64", machineName(m), uint16(m))
		}
		return nil, noExec("elf: bad class %d", c)
	}
	if d := elf.Data(eh[elf.EI_DATA]); d != elf.ELFDATA2LSB {
		if d == elf.ELFDATA2MSB {
			m := elf.Machine(binary.BigEndian.Uint16(eh[18:]))
			return nil, noExec("elf: big-endian executable for %s (%d), want x86-64", machineName(m), uint16(m))
		}
		return nil, noExec("elf: bad data encoding %d", d)
	}
	if v := elf.Version(eh[elf.EI_VERSION]); v != elf.EV_CURRENT {
		return nil, noExec("elf: bad ident version %d", v)
	}
	le := binary.LittleEndian
	typ := elf.Type(le.Uint16(eh[16:]))
	machine := elf.Machine(le.Uint16(eh[18:]))
	version := le.Uint32(eh[20:])
	entry := le.Uint64(eh[24:])
	phoff := le.Uint64(eh[32:])
	phentsize := le.Uint16(eh[54:])
	phnum := le.Uint16(eh[56:])

	if machine != elf.EM_X86_64 {
		return nil, noExec("elf: machine is %s (%d), want x86-64", machineName(machine), uint16(machine))
	}
	switch typ {
	case elf.ET_EXEC, elf.ET_DYN:
	case elf.ET_REL:
		return nil, noExec("elf: type is ET_REL (an object file), want ET_EXEC or ET_DYN")
	case elf.ET_CORE:
		return nil, noExec("elf: type is ET_CORE (a core dump), want ET_EXEC or ET_DYN")
	default:
		return nil, noExec("elf: type is %d, want ET_EXEC or ET_DYN", uint16(typ))
	}
	if version != uint32(elf.EV_CURRENT) {
		return nil, noExec("elf: bad version %d", version)
	}
	if phentsize != phdrSize {
		return nil, noExec("elf: program header size is %d, want %d", phentsize, phdrSize)
	}
	if phnum == 0 {
		return nil, noExec("elf: no program headers")
	}
	if phnum > MaxPhnum {
		return nil, noExec("elf: %d program headers, more than %d", phnum, MaxPhnum)
	}
	tableSize := uint64(phnum) * phdrSize
	if phoff > uint64(size) || tableSize > uint64(size)-phoff {
		return nil, noExec("elf: program headers [%#x, +%#x) lie beyond the %d-byte file", phoff, tableSize, size)
	}
	if entry >= UserTop {
		return nil, noExec("elf: entry point %#x is beyond the user address space", entry)
	}
	table := make([]byte, tableSize)
	if err := readFull(r, table, int64(phoff)); err != nil {
		return nil, fmt.Errorf("elf: read program headers: %w", err)
	}

	img := &Image{
		Type:  typ,
		Entry: entry,
		Phoff: phoff,
		Phent: phentsize,
		Phnum: phnum,
		Align: PageSize,
	}
	var (
		havePhdr   bool
		haveInterp bool
		interpOff  uint64
		interpSize uint64
	)
	for i := 0; i < int(phnum); i++ {
		ph := table[i*phdrSize : (i+1)*phdrSize]
		ptype := elf.ProgType(le.Uint32(ph[0:]))
		flags := elf.ProgFlag(le.Uint32(ph[4:]))
		off := le.Uint64(ph[8:])
		vaddr := le.Uint64(ph[16:])
		filesz := le.Uint64(ph[32:])
		memsz := le.Uint64(ph[40:])
		align := le.Uint64(ph[48:])

		switch ptype {
		case elf.PT_LOAD:
			n := len(img.Segments)
			seg, err := checkLoad(n, off, vaddr, filesz, memsz, align, uint64(size))
			if err != nil {
				return nil, err
			}
			if flags&elf.PF_R != 0 {
				seg.Prot |= ProtRead
			}
			if flags&elf.PF_W != 0 {
				seg.Prot |= ProtWrite
			}
			if flags&elf.PF_X != 0 {
				seg.Prot |= ProtExec
			}
			if n > 0 {
				prev := img.Segments[n-1]
				if vaddr < prev.Vaddr {
					return nil, noExec("elf: segment %d vaddr %#x is below segment %d's %#x (not ascending)", n, vaddr, n-1, prev.Vaddr)
				}
				if vaddr < prev.End() {
					return nil, noExec("elf: segment %d [%#x, %#x) overlaps segment %d [%#x, %#x)", n, vaddr, seg.End(), n-1, prev.Vaddr, prev.End())
				}
			}
			if align > img.Align && align&(align-1) == 0 {
				img.Align = align
			}
			img.Segments = append(img.Segments, seg)
		case elf.PT_INTERP:
			// Linux uses the first PT_INTERP and ignores any other.
			if haveInterp {
				continue
			}
			haveInterp = true
			if filesz < 2 || filesz > PathMax {
				return nil, noExec("elf: interpreter path is %d bytes, want 2..%d", filesz, PathMax)
			}
			if off > uint64(size) || filesz > uint64(size)-off {
				return nil, noExec("elf: interpreter path [%#x, +%#x) lies beyond the %d-byte file", off, filesz, size)
			}
			interpOff, interpSize = off, filesz
		case elf.PT_PHDR:
			if !havePhdr {
				havePhdr = true
				img.PhdrVaddr = vaddr
			}
		case elf.PT_GNU_STACK:
			img.StackExec = flags&elf.PF_X != 0
		}
	}
	if len(img.Segments) == 0 {
		return nil, noExec("elf: no PT_LOAD segment")
	}
	img.MinVaddr = pageDown(img.Segments[0].Vaddr)
	img.MaxVaddr = img.Segments[len(img.Segments)-1].End()

	if !havePhdr {
		// As Linux does: the segment whose file bytes hold the table maps it.
		for _, s := range img.Segments {
			if s.Offset <= phoff && phoff < s.Offset+s.Filesz {
				img.PhdrVaddr = s.Vaddr + (phoff - s.Offset)
				break
			}
		}
	} else if img.PhdrVaddr >= UserTop || tableSize > UserTop-img.PhdrVaddr {
		return nil, noExec("elf: PT_PHDR at %#x is beyond the user address space", img.PhdrVaddr)
	}

	if haveInterp {
		buf := make([]byte, interpSize)
		if err := readFull(r, buf, int64(interpOff)); err != nil {
			return nil, fmt.Errorf("elf: read interpreter path: %w", err)
		}
		if buf[len(buf)-1] != 0 {
			return nil, noExec("elf: interpreter path is not NUL-terminated")
		}
		p := buf[:len(buf)-1]
		for _, c := range p {
			if c == 0 {
				return nil, noExec("elf: interpreter path %q has a NUL inside", p)
			}
		}
		img.Interp = string(p)
	}
	return img, nil
}

// checkLoad validates PT_LOAD segment n.
func checkLoad(n int, off, vaddr, filesz, memsz, align, size uint64) (Segment, error) {
	s := Segment{Vaddr: vaddr, Memsz: memsz, Filesz: filesz, Offset: off, Align: align}
	if filesz > memsz {
		return s, noExec("elf: segment %d filesz %#x is larger than memsz %#x", n, filesz, memsz)
	}
	if off+filesz < off {
		return s, noExec("elf: segment %d offset+filesz overflows", n)
	}
	if off+filesz > size {
		return s, noExec("elf: segment %d file range [%#x, %#x) lies beyond the %d-byte file", n, off, off+filesz, size)
	}
	if vaddr+memsz < vaddr {
		return s, noExec("elf: segment %d vaddr+memsz overflows", n)
	}
	if vaddr+memsz > UserTop || pageUp(vaddr+memsz) > UserTop {
		return s, noExec("elf: segment %d [%#x, %#x) reaches beyond the user address space (%#x)", n, vaddr, vaddr+memsz, uint64(UserTop))
	}
	// A segment with no file bytes maps no file page, so its offset does
	// not matter (Linux maps it anonymous).
	if filesz == 0 {
		return s, nil
	}
	if vaddr%PageSize != off%PageSize {
		return s, noExec("elf: segment %d vaddr %#x and offset %#x differ modulo the page size", n, vaddr, off)
	}
	if align > 1 && align&(align-1) == 0 && vaddr%align != off%align {
		return s, noExec("elf: segment %d vaddr %#x and offset %#x differ modulo its alignment %#x", n, vaddr, off, align)
	}
	return s, nil
}

// readFull reads len(b) bytes at off; a short read is an error.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

const etDyn = elf.ET_DYN
