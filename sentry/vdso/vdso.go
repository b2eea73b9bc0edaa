// Package vdso holds the vDSO moat maps into every process and the layout
// of the parameter page its clock functions read. vdso.c is the source;
// gen.sh builds vdso.so with gcc (go generate), and the sentry embeds it.
package vdso

import (
	_ "embed"
)

//go:generate ./gen.sh

// Image is the vDSO, an ELF shared object that fits in Pages pages.
//
//go:embed vdso.so
var Image []byte

// PageSize is the guest page size.
const PageSize = 4096

// Pages is how many pages the image takes.
var Pages = (len(Image) + PageSize - 1) / PageSize

// Params are the values of the parameter page (struct params in vdso.c):
// ns = base_ns + ((tsc - TSCBase) * Mult) >> Shift.
type Params struct {
	TSCBase    uint64
	MonoBaseNS int64
	RealBaseNS int64
	Mult       uint64
	Shift      uint32
}

// Offsets in the parameter page.
const (
	offSeq      = 0
	offReady    = 4
	offTSCBase  = 8
	offMonoBase = 16
	offRealBase = 24
	offMult     = 32
	offShift    = 40
)
