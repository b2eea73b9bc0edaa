package loader

import (
	"debug/elf"
	"encoding/binary"
)

var le = binary.LittleEndian

// phdr is a program header for elfBuilder.
type phdr struct {
	typ                                     elf.ProgType
	flags                                   elf.ProgFlag
	off, vaddr, paddr, filesz, memsz, align uint64
}

// elfBuilder makes small synthetic ELF files for the validation tests and
// the fuzz corpus.
type elfBuilder struct {
	class, data, identVersion byte
	typ                       elf.Type
	machine                   elf.Machine
	version                   uint32
	entry, phoff              uint64
	phentsize                 uint16
	phnum                     int // -1: len(phdrs)
	phdrs                     []phdr
	size                      int
	blobs                     map[int][]byte
}

// newELF returns a valid static ET_EXEC: headers, text and data with bss.
func newELF() *elfBuilder {
	return &elfBuilder{
		class: byte(elf.ELFCLASS64), data: byte(elf.ELFDATA2LSB), identVersion: 1,
		typ: elf.ET_EXEC, machine: elf.EM_X86_64, version: 1,
		entry: 0x401000, phoff: 64, phentsize: 56, phnum: -1,
		phdrs: []phdr{
			{typ: elf.PT_PHDR, flags: elf.PF_R, off: 64, vaddr: 0x400040, filesz: 4 * 56, memsz: 4 * 56, align: 8},
			{typ: elf.PT_LOAD, flags: elf.PF_R, off: 0, vaddr: 0x400000, filesz: 0x1000, memsz: 0x1000, align: 0x1000},
			{typ: elf.PT_LOAD, flags: elf.PF_R | elf.PF_X, off: 0x1000, vaddr: 0x401000, filesz: 0x1000, memsz: 0x1000, align: 0x1000},
			{typ: elf.PT_LOAD, flags: elf.PF_R | elf.PF_W, off: 0x2000, vaddr: 0x403000, filesz: 0x800, memsz: 0x3000, align: 0x1000},
		},
		size:  0x3000,
		blobs: map[int][]byte{},
	}
}

// withInterp adds a PT_INTERP holding path (NUL added) at file offset 0x2900.
func (b *elfBuilder) withInterp(path string) *elfBuilder {
	p := append([]byte(path), 0)
	b.blobs[0x2900] = p
	b.phdrs = append(b.phdrs[:1], append([]phdr{{typ: elf.PT_INTERP, flags: elf.PF_R, off: 0x2900, filesz: uint64(len(p)), memsz: uint64(len(p)), align: 1}}, b.phdrs[1:]...)...)
	return b
}

func (b *elfBuilder) build() []byte {
	n := len(b.phdrs)
	size := b.size
	if min := int(b.phoff) + 56*n; b.phoff < 1<<20 && size < min {
		size = min
	}
	if size < 64 {
		size = 64
	}
	out := make([]byte, size)
	copy(out, elf.ELFMAG)
	out[elf.EI_CLASS] = b.class
	out[elf.EI_DATA] = b.data
	out[elf.EI_VERSION] = b.identVersion
	le.PutUint16(out[16:], uint16(b.typ))
	le.PutUint16(out[18:], uint16(b.machine))
	le.PutUint32(out[20:], b.version)
	le.PutUint64(out[24:], b.entry)
	le.PutUint64(out[32:], b.phoff)
	le.PutUint16(out[52:], 64)
	le.PutUint16(out[54:], b.phentsize)
	phnum := b.phnum
	if phnum < 0 {
		phnum = n
	}
	le.PutUint16(out[56:], uint16(phnum))
	for i, p := range b.phdrs {
		o := int(b.phoff) + 56*i
		if b.phoff >= 1<<20 || o+56 > len(out) {
			break
		}
		h := out[o : o+56]
		le.PutUint32(h[0:], uint32(p.typ))
		le.PutUint32(h[4:], uint32(p.flags))
		le.PutUint64(h[8:], p.off)
		le.PutUint64(h[16:], p.vaddr)
		le.PutUint64(h[24:], p.paddr)
		le.PutUint64(h[32:], p.filesz)
		le.PutUint64(h[40:], p.memsz)
		le.PutUint64(h[48:], p.align)
	}
	for off, blob := range b.blobs {
		if off < len(out) {
			copy(out[off:], blob)
		}
	}
	return out
}
