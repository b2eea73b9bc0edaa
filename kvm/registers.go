package kvm

import (
	"fmt"
	"sync"
)

// Registers is the user-mode register file of one task, in the order of
// Linux's struct user_regs_struct so that the sentry can copy it into
// signal frames and ptrace answers without reshuffling.
type Registers struct {
	R15, R14, R13, R12, RBP, RBX, R11, R10 uint64
	R9, R8, RAX, RCX, RDX, RSI, RDI        uint64
	OrigRAX                                uint64
	RIP, CS, RFLAGS, RSP, SS               uint64
	FSBase, GSBase                         uint64
}

// User-mode segment selectors, as on Linux x86-64.
const (
	UserCS = 0x33
	UserDS = 0x2b
)

// UserTop is the first address above the user half of an address space
// (47-bit user space, less the guard page Linux keeps below 2^47).
const UserTop = 0x7ffffffff000

// CanonicalUser reports whether addr is in the user half.
func CanonicalUser(addr uint64) bool { return addr < 1<<47 }

// FPState is the x87/SSE/AVX state of one task in XSAVE format. The live
// copy may sit in a vCPU: a vCPU loads a task's state when it switches to
// that task and writes it back only when another task needs the vCPU or
// the sentry asks for it (VCPU.SyncFP), so a task that keeps its vCPU pays
// nothing per exit.
type FPState struct {
	mu   sync.Mutex
	data []byte
	// live is the vCPU whose guest FPU holds this state, or nil when data
	// is current.
	live *VCPU
	// dirty means data was changed by the sentry and must be loaded.
	dirty bool
}

// NewFPState returns the initial FP state (as after FNINIT with MXCSR at
// its reset value) sized for this VM's XSAVE area.
func (vm *VM) NewFPState() *FPState {
	fp := &FPState{data: make([]byte, vm.xsaveSize), dirty: true}
	initFPState(fp.data)
	return fp
}

// Fork returns a copy of fp for a new task.
func (fp *FPState) Fork() (*FPState, error) {
	b, err := fp.Bytes()
	if err != nil {
		return nil, err
	}
	n := &FPState{data: make([]byte, len(b)), dirty: true}
	copy(n.data, b)
	return n, nil
}

// Bytes returns the current XSAVE image (at least 512 bytes of legacy
// FXSAVE area, then the XSAVE header and extended state), writing back a
// live copy first. The slice is the state itself: a caller that changes it
// must call MarkDirty.
func (fp *FPState) Bytes() ([]byte, error) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.live != nil {
		if err := fp.live.saveFPLocked(fp); err != nil {
			return nil, err
		}
	}
	return fp.data, nil
}

// MarkDirty says the sentry changed the state returned by Bytes; the next
// Switch loads it.
func (fp *FPState) MarkDirty() {
	fp.mu.Lock()
	fp.dirty = true
	fp.mu.Unlock()
}

// initFPState writes the reset x87/SSE state into an XSAVE area.
func initFPState(b []byte) {
	for i := range b {
		b[i] = 0
	}
	// FCW = 0x37f (all exceptions masked, 64-bit precision).
	b[0], b[1] = 0x7f, 0x03
	// MXCSR = 0x1f80 at offset 24.
	b[24], b[25] = 0x80, 0x1f
	// XSTATE_BV = x87|SSE so the values above are used.
	if len(b) >= 520 {
		b[512] = 0x3
	}
}

// ExitKind says why Switch returned.
type ExitKind int

const (
	// ExitSyscall: the task executed SYSCALL. RIP is past the instruction;
	// RCX and R11 hold the return RIP and RFLAGS as the CPU left them.
	ExitSyscall ExitKind = iota + 1
	// ExitPageFault: a #PF in user mode; see Exit.Addr and the access bits.
	ExitPageFault
	// ExitException: another exception in user mode (Exit.Vector).
	ExitException
	// ExitInterrupted: the vCPU was kicked or a host signal interrupted it.
	ExitInterrupted
)

func (k ExitKind) String() string {
	switch k {
	case ExitSyscall:
		return "syscall"
	case ExitPageFault:
		return "page fault"
	case ExitException:
		return "exception"
	case ExitInterrupted:
		return "interrupted"
	}
	return fmt.Sprintf("exit(%d)", int(k))
}

// Exception vectors.
const (
	VectorDE  = 0 // divide error
	VectorDB  = 1 // debug
	VectorNMI = 2
	VectorBP  = 3  // breakpoint (int3)
	VectorOF  = 4  // overflow
	VectorBR  = 5  // bound range
	VectorUD  = 6  // invalid opcode
	VectorNM  = 7  // device not available
	VectorDF  = 8  // double fault
	VectorTS  = 10 // invalid TSS
	VectorNP  = 11 // segment not present
	VectorSS  = 12 // stack-segment fault
	VectorGP  = 13 // general protection
	VectorPF  = 14 // page fault
	VectorMF  = 16 // x87 floating point
	VectorAC  = 17 // alignment check
	VectorMC  = 18 // machine check
	VectorXM  = 19 // SIMD floating point
	VectorVE  = 20
	VectorCP  = 21 // control protection
)

// Exit describes one return from Switch.
type Exit struct {
	Kind ExitKind
	// Vector and ErrorCode of an exception or page fault.
	Vector    uint8
	ErrorCode uint64
	// Addr is the faulting address of a page fault (CR2).
	Addr uint64
	// Access of a page fault.
	Write, Exec, Present bool
}

func (e Exit) String() string {
	switch e.Kind {
	case ExitPageFault:
		acc := "read"
		if e.Write {
			acc = "write"
		} else if e.Exec {
			acc = "exec"
		}
		return fmt.Sprintf("page fault: %s at %#x (present=%v)", acc, e.Addr, e.Present)
	case ExitException:
		return fmt.Sprintf("exception %d error code %#x", e.Vector, e.ErrorCode)
	}
	return e.Kind.String()
}
