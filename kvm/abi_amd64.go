package kvm

// The /dev/kvm ABI: ioctl numbers, capabilities, exit reasons and the
// structures the kernel exchanges with moat. Numbers and layouts follow
// <linux/kvm.h> and <asm/kvm.h> for x86-64; abi_test.go checks the layouts
// against the installed kernel headers.

const (
	ioctlGetAPIVersion       = 0xae00
	ioctlCreateVM            = 0xae01
	ioctlCheckExtension      = 0xae03
	ioctlGetVCPUMmapSize     = 0xae04
	ioctlGetSupportedCPUID   = 0xc008ae05
	ioctlCreateVCPU          = 0xae41
	ioctlSetUserMemoryRegion = 0x4020ae46
	ioctlSetTSSAddr          = 0xae47
	ioctlRun                 = 0xae80
	ioctlGetRegs             = 0x8090ae81
	ioctlSetRegs             = 0x4090ae82
	ioctlGetSregs            = 0x8138ae83
	ioctlSetSregs            = 0x4138ae84
	ioctlGetMSRs             = 0xc008ae88
	ioctlSetMSRs             = 0x4008ae89
	ioctlSetSignalMask       = 0x4004ae8b
	ioctlSetCPUID2           = 0x4008ae90
	ioctlGetXSave            = 0x9000aea4
	ioctlSetXSave            = 0x5000aea5
	ioctlGetXCRs             = 0x8188aea6
	ioctlSetXCRs             = 0x4188aea7
	ioctlGetTSCKHz           = 0xaea3
	ioctlGetXSave2           = 0x9000aecf
)

// KVM API version moat speaks (stable since Linux 2.6.22).
const apiVersion = 12

// Capabilities (KVM_CAP_*).
const (
	capUserMemory    = 3
	capSetTSSAddr    = 4
	capExtCPUID      = 7
	capNrVCPUs       = 9
	capNrMemslots    = 10
	capSyncMMU       = 16
	capXSave         = 55
	capXCRs          = 56
	capGetTSCKHz     = 61
	capMaxVCPUs      = 66
	capSyncRegs      = 74
	capMaxVCPUID     = 128
	capImmediateExit = 136
	capXSave2        = 208
)

// Exit reasons (KVM_EXIT_*).
const (
	exitUnknown       = 0
	exitException     = 1
	exitIO            = 2
	exitHypercall     = 3
	exitDebug         = 4
	exitHLT           = 5
	exitMMIO          = 6
	exitShutdown      = 8
	exitFailEntry     = 9
	exitIntr          = 10
	exitInternalError = 17
	exitSystemEvent   = 24
)

var exitNames = map[uint32]string{
	exitUnknown: "UNKNOWN", exitException: "EXCEPTION", exitIO: "IO", exitHypercall: "HYPERCALL",
	exitDebug: "DEBUG", exitHLT: "HLT", exitMMIO: "MMIO", exitShutdown: "SHUTDOWN",
	exitFailEntry: "FAIL_ENTRY", exitIntr: "INTR", exitInternalError: "INTERNAL_ERROR",
	exitSystemEvent: "SYSTEM_EVENT",
}

// Sync-register sets (KVM_SYNC_X86_*).
const (
	syncRegs   = 1 << 0
	syncSregs  = 1 << 1
	syncEvents = 1 << 2
)

// Offsets into struct kvm_run.
const (
	runImmediateExit = 1
	runExitReason    = 8
	runExitData      = 0x20 // the exit union
	runValidRegs     = 0x120
	runDirtyRegs     = 0x128
	runSyncRegs      = 0x130 // struct kvm_sync_regs
	runSyncSregs     = runSyncRegs + 0x90
)

// kvmRegs is struct kvm_regs.
type kvmRegs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// kvmSegment is struct kvm_segment.
type kvmSegment struct {
	Base     uint64
	Limit    uint32
	Selector uint16
	Type     uint8
	Present  uint8
	DPL      uint8
	DB       uint8
	S        uint8
	L        uint8
	G        uint8
	AVL      uint8
	Unusable uint8
	_        uint8
}

// kvmDTable is struct kvm_dtable.
type kvmDTable struct {
	Base  uint64
	Limit uint16
	_     [3]uint16
}

// kvmSregs is struct kvm_sregs.
type kvmSregs struct {
	CS, DS, ES, FS, GS, SS  kvmSegment
	TR, LDT                 kvmSegment
	GDT, IDT                kvmDTable
	CR0, CR2, CR3, CR4, CR8 uint64
	EFER                    uint64
	APICBase                uint64
	InterruptBitmap         [4]uint64
}

// kvmSyncRegs is the start of struct kvm_sync_regs (regs then sregs).
type kvmSyncRegs struct {
	Regs  kvmRegs
	Sregs kvmSregs
}

// kvmUserspaceMemoryRegion is struct kvm_userspace_memory_region.
type kvmUserspaceMemoryRegion struct {
	Slot          uint32
	Flags         uint32
	GuestPhysAddr uint64
	MemorySize    uint64
	UserspaceAddr uint64
}

// kvmCPUIDEntry2 is struct kvm_cpuid_entry2.
type kvmCPUIDEntry2 struct {
	Function uint32
	Index    uint32
	Flags    uint32
	EAX      uint32
	EBX      uint32
	ECX      uint32
	EDX      uint32
	_        [3]uint32
}

const maxCPUIDEntries = 256

// kvmCPUID2 is struct kvm_cpuid2 with room for maxCPUIDEntries entries.
type kvmCPUID2 struct {
	Nent    uint32
	_       uint32
	Entries [maxCPUIDEntries]kvmCPUIDEntry2
}

// kvmMSREntry is struct kvm_msr_entry.
type kvmMSREntry struct {
	Index uint32
	_     uint32
	Data  uint64
}

// kvmMSRs is struct kvm_msrs with a fixed array of entries.
type kvmMSRs struct {
	NMSRs   uint32
	_       uint32
	Entries [16]kvmMSREntry
}

// kvmXCRs is struct kvm_xcrs.
type kvmXCRs struct {
	NrXCRs uint32
	Flags  uint32
	XCRs   [16]struct {
		XCR      uint32
		Reserved uint32
		Value    uint64
	}
	_ [16]uint64
}

// kvmSignalMask is struct kvm_signal_mask with an 8-byte sigset.
type kvmSignalMask struct {
	Len    uint32
	Sigset uint64
}

// Model-specific registers moat programs.
const (
	msrEFER         = 0xc0000080
	msrSTAR         = 0xc0000081
	msrLSTAR        = 0xc0000082
	msrCSTAR        = 0xc0000083
	msrSFMASK       = 0xc0000084
	msrFSBase       = 0xc0000100
	msrGSBase       = 0xc0000101
	msrKernelGSBase = 0xc0000102
	msrSysenterCS   = 0x174
	msrSysenterESP  = 0x175
	msrSysenterEIP  = 0x176
	msrPAT          = 0x277
)

// Control-register and flag bits.
const (
	cr0PE = 1 << 0
	cr0MP = 1 << 1
	cr0ET = 1 << 4
	cr0NE = 1 << 5
	cr0WP = 1 << 16
	cr0AM = 1 << 18
	cr0PG = 1 << 31

	cr4PAE        = 1 << 5
	cr4OSFXSR     = 1 << 9
	cr4OSXMMEXCPT = 1 << 10
	cr4UMIP       = 1 << 11
	cr4FSGSBASE   = 1 << 16
	cr4OSXSAVE    = 1 << 18
	cr4SMEP       = 1 << 20

	eferSCE = 1 << 0
	eferLME = 1 << 8
	eferLMA = 1 << 10
	eferNXE = 1 << 11

	rflagsCF       = 1 << 0
	rflagsReserved = 1 << 1
	rflagsPF       = 1 << 2
	rflagsAF       = 1 << 4
	rflagsZF       = 1 << 6
	rflagsSF       = 1 << 7
	rflagsTF       = 1 << 8
	rflagsIF       = 1 << 9
	rflagsDF       = 1 << 10
	rflagsOF       = 1 << 11
	rflagsIOPL     = 3 << 12
	rflagsNT       = 1 << 14
	rflagsRF       = 1 << 16
	rflagsAC       = 1 << 18
	rflagsID       = 1 << 21

	// rflagsUser is what user code may change (as in Linux's FLAG_MASK).
	rflagsUser = rflagsCF | rflagsPF | rflagsAF | rflagsZF | rflagsSF | rflagsTF |
		rflagsDF | rflagsOF | rflagsRF | rflagsAC | rflagsID
)
