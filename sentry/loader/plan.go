package loader

import "fmt"

// Mapping is one mapping the kernel must make to load a segment. Mappings
// are page-aligned and are applied in order: where two segments share a
// page, the later mapping replaces the earlier one's page, as Linux's
// MAP_FIXED mappings do.
type Mapping struct {
	Start, End uint64 // page-aligned [Start, End)
	Prot       Prot
	// File is true for a private mapping of the file from Offset (page
	// aligned); false for anonymous zero-filled memory.
	File   bool
	Offset uint64
	// ZeroStart, when not 0, is where the segment's file bytes end inside
	// the last page of a file mapping whose segment has a bss: the bytes
	// [ZeroStart, End) must be zeroed after the mapping is made (they hold
	// whatever follows in the file).
	ZeroStart uint64
}

func (m Mapping) String() string {
	s := fmt.Sprintf("[%#x, %#x) %v", m.Start, m.End, m.Prot)
	if m.File {
		s += fmt.Sprintf(" file@%#x", m.Offset)
		if m.ZeroStart != 0 {
			s += fmt.Sprintf(" zero from %#x", m.ZeroStart)
		}
	} else {
		s += " anon"
	}
	return s
}

// LoadPlan is what loading an Image at a load bias takes.
type LoadPlan struct {
	Mappings []Mapping
	Entry    uint64 // e_entry + bias
	Phdr     uint64 // PhdrVaddr + bias, 0 if the headers are not mapped
	Start    uint64 // first page of the first segment
	End      uint64 // end of the last segment, not rounded
	Brk      uint64 // where the program break starts: End rounded up to a page
}

// Plan returns the mappings that load img at load bias bias. An ET_EXEC
// image must have bias 0; an ET_DYN image takes any page-aligned bias that
// keeps it inside the user address space. Errors wrap ErrNoExec.
func Plan(img *Image, bias uint64) (*LoadPlan, error) {
	if bias%PageSize != 0 {
		return nil, noExec("elf: load bias %#x is not page-aligned", bias)
	}
	if img.Type != etDyn && bias != 0 {
		return nil, noExec("elf: load bias %#x for an ET_EXEC image, which loads where it says", bias)
	}
	if len(img.Segments) == 0 {
		return nil, noExec("elf: no PT_LOAD segment")
	}
	if img.MaxVaddr > UserTop || bias > UserTop-img.MaxVaddr || pageUp(img.MaxVaddr+bias) > UserTop {
		return nil, noExec("elf: segments end at %#x, beyond the user address space, with load bias %#x", img.MaxVaddr, bias)
	}
	plan := &LoadPlan{
		Entry: img.Entry + bias,
		Start: img.MinVaddr + bias,
		End:   img.MaxVaddr + bias,
		Brk:   pageUp(img.MaxVaddr + bias),
	}
	if img.PhdrVaddr != 0 {
		plan.Phdr = img.PhdrVaddr + bias
	}
	for i, s := range img.Segments {
		if s.Memsz == 0 {
			continue
		}
		if s.Filesz > s.Memsz || s.Vaddr+s.Memsz < s.Vaddr || s.Vaddr+s.Memsz > img.MaxVaddr ||
			s.Offset+s.Filesz < s.Offset || s.Filesz > 0 && s.Vaddr%PageSize != s.Offset%PageSize {
			return nil, noExec("elf: segment %d is inconsistent", i)
		}
		start := s.Vaddr + bias
		page := pageDown(start)
		fileEnd := start + s.Filesz
		memEnd := start + s.Memsz
		anonStart := page
		if s.Filesz > 0 {
			m := Mapping{
				Start:  page,
				End:    pageUp(fileEnd),
				Prot:   s.Prot,
				File:   true,
				Offset: s.Offset - (start - page),
			}
			if s.Memsz > s.Filesz && fileEnd%PageSize != 0 {
				m.ZeroStart = fileEnd
			}
			plan.Mappings = append(plan.Mappings, m)
			anonStart = m.End
		}
		if end := pageUp(memEnd); end > anonStart {
			plan.Mappings = append(plan.Mappings, Mapping{Start: anonStart, End: end, Prot: s.Prot})
		}
	}
	return plan, nil
}
