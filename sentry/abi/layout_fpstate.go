package abi

// The FP state a signal frame carries on x86-64 (arch/x86/include/uapi/asm/sigcontext.h).
//
// It is the CPU's fxsave area (512 bytes, struct _fpstate_64) followed, when
// uc_flags has UC_FP_XSTATE, by the xsave header (64 bytes, struct _header)
// and the extended state components, then FP_XSTATE_MAGIC2 in the 4 bytes
// after them. Bytes 464..511 of the fxsave area, which the CPU leaves to
// software, hold struct _fpx_sw_bytes: FP_XSTATE_MAGIC1, the size of the
// whole thing with the trailing magic (extended_size), the features saved
// and the xsave size.
const (
	FXSaveSize        = 512
	XSaveHeaderOffset = 512
	XSaveHeaderSize   = 64
	// FPStateHeaderSize is the fxsave area plus the xsave header.
	FPStateHeaderSize = FXSaveSize + XSaveHeaderSize

	// SwReservedOffset is where struct _fpx_sw_bytes starts in the fxsave area.
	SwReservedOffset = 464

	FP_XSTATE_MAGIC1      = 0x46505853 // "SXPF"
	FP_XSTATE_MAGIC2      = 0x46505845 // "EXPF"
	FP_XSTATE_MAGIC2_SIZE = 4

	// FPStateAlign is the alignment the kernel gives the FP state on the
	// signal stack (xsave needs 64).
	FPStateAlign = 64

	// MXCSRDefault is the MXCSR of a new process: all exceptions masked.
	MXCSRDefault = 0x1f80
	// FCWDefault is the x87 control word of a new process.
	FCWDefault = 0x37f
)

// XSave feature bits (XCR0 and the xsave header's xfeatures).
const (
	XFEATURE_MASK_FP        = 1 << 0
	XFEATURE_MASK_SSE       = 1 << 1
	XFEATURE_MASK_YMM       = 1 << 2
	XFEATURE_MASK_FPSSE     = XFEATURE_MASK_FP | XFEATURE_MASK_SSE
	XFEATURE_MASK_OPMASK    = 1 << 5
	XFEATURE_MASK_ZMM_Hi256 = 1 << 6
	XFEATURE_MASK_Hi16_ZMM  = 1 << 7
	XFEATURE_MASK_PKRU      = 1 << 9
)

// FPSwBytes is struct _fpx_sw_bytes, the software-reserved tail of the
// fxsave area in a signal frame.
type FPSwBytes struct {
	Magic1       uint32 // 464: FP_XSTATE_MAGIC1 when an xsave area follows
	ExtendedSize uint32 // 468: bytes from the fxsave area to past MAGIC2
	XFeatures    uint64 // 472: the features saved
	XStateSize   uint32 // 480: the xsave area's size, without MAGIC2
}

// FPState is the fixed part of the signal frame's FP state: struct
// _fpstate_64 and, after it, the xsave header. The xmm and x87 registers are
// kept as raw bytes.
type FPState struct {
	Cwd       uint16    // 0: x87 control word
	Swd       uint16    // 2: x87 status word
	Twd       uint16    // 4: x87 tag word (abridged)
	Fop       uint16    // 6: last x87 opcode
	Rip       uint64    // 8
	Rdp       uint64    // 16
	Mxcsr     uint32    // 24
	MxcsrMask uint32    // 28
	St        [128]byte // 32: st0..st7, 16 bytes each
	Xmm       [256]byte // 160: xmm0..xmm15
	Sw        FPSwBytes // 464
	XFeatures uint64    // 512: the xsave header's xstate_bv
	XCompBV   uint64    // 520: the xsave header's xcomp_bv
}

// Marshal writes f into b[:FPStateHeaderSize]: the fxsave area and the
// xsave header. Reserved bytes are zeroed.
func (f *FPState) Marshal(b []byte) {
	b = b[:FPStateHeaderSize]
	clear(b)
	le.PutUint16(b[0:], f.Cwd)
	le.PutUint16(b[2:], f.Swd)
	le.PutUint16(b[4:], f.Twd)
	le.PutUint16(b[6:], f.Fop)
	le.PutUint64(b[8:], f.Rip)
	le.PutUint64(b[16:], f.Rdp)
	le.PutUint32(b[24:], f.Mxcsr)
	le.PutUint32(b[28:], f.MxcsrMask)
	copy(b[32:], f.St[:])
	copy(b[160:], f.Xmm[:])
	le.PutUint32(b[464:], f.Sw.Magic1)
	le.PutUint32(b[468:], f.Sw.ExtendedSize)
	le.PutUint64(b[472:], f.Sw.XFeatures)
	le.PutUint32(b[480:], f.Sw.XStateSize)
	le.PutUint64(b[512:], f.XFeatures)
	le.PutUint64(b[520:], f.XCompBV)
}

// Unmarshal reads f from b[:FPStateHeaderSize].
func (f *FPState) Unmarshal(b []byte) {
	b = b[:FPStateHeaderSize]
	f.Cwd = le.Uint16(b[0:])
	f.Swd = le.Uint16(b[2:])
	f.Twd = le.Uint16(b[4:])
	f.Fop = le.Uint16(b[6:])
	f.Rip = le.Uint64(b[8:])
	f.Rdp = le.Uint64(b[16:])
	f.Mxcsr = le.Uint32(b[24:])
	f.MxcsrMask = le.Uint32(b[28:])
	copy(f.St[:], b[32:])
	copy(f.Xmm[:], b[160:])
	f.Sw.Magic1 = le.Uint32(b[464:])
	f.Sw.ExtendedSize = le.Uint32(b[468:])
	f.Sw.XFeatures = le.Uint64(b[472:])
	f.Sw.XStateSize = le.Uint32(b[480:])
	f.XFeatures = le.Uint64(b[512:])
	f.XCompBV = le.Uint64(b[520:])
}
