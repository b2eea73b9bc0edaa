// Package platform is the one small interface through which the sentry
// runs user code: machines with guest memory, address spaces and CPUs.
// The KVM platform (moat.dev/moat/kvm) implements it; nothing else in the
// sentry imports kvm.
package platform

import (
	"moat.dev/moat/kvm"
)

// Registers, Exit, Perm and their constants are the KVM platform's: the
// x86-64 user register file and the reasons user code stops.
type (
	Registers = kvm.Registers
	Exit      = kvm.Exit
	ExitKind  = kvm.ExitKind
	Perm      = kvm.Perm
)

const (
	ExitSyscall     = kvm.ExitSyscall
	ExitPageFault   = kvm.ExitPageFault
	ExitException   = kvm.ExitException
	ExitInterrupted = kvm.ExitInterrupted

	PermRead  = kvm.PermRead
	PermWrite = kvm.PermWrite
	PermExec  = kvm.PermExec

	// UserTop is the first address above user space.
	UserTop  = kvm.UserTop
	PageSize = 4096
)

// Machine is one sandbox's guest: memory, CPUs and address spaces.
type Machine interface {
	// NewAddressSpace returns an empty user address space.
	NewAddressSpace() (AddressSpace, error)
	// AddMemory adds guest RAM and returns its guest-physical address and
	// the host's view of it.
	AddMemory(size uint64) (gpa uint64, host []byte, err error)
	// Discard returns guest RAM pages to the host; they read as zero.
	Discard(gpa, n uint64) error
	// NewFPState returns a task's initial FP state.
	NewFPState() FPState
	// Acquire binds a CPU to the calling goroutine's thread, waiting while
	// all are in use; Release gives it back.
	Acquire() CPU
	Release(CPU)
	// SetCPUs changes how many CPUs run user code at once; CPUs returns it.
	SetCPUs(n int) error
	CPUs() int
	// TSC returns the guest TSC frequency in kHz and its offset from the
	// host TSC (guest = host + offset).
	TSC() (khz uint64, offset int64, err error)
	Close() error
}

// HostTSC reads the host's time-stamp counter.
func HostTSC() uint64 { return kvm.HostTSC() }

// AddressSpace is a set of user mappings to guest-physical memory.
type AddressSpace interface {
	Map(va, pa, n uint64, perm Perm) error
	Unmap(va, n uint64) error
	Protect(va, n uint64, perm Perm) error
	// Begin and Commit bracket a batch of changes that become visible to
	// every CPU together, at Commit.
	Begin()
	Commit() error
	Release()
}

// CPU runs user code.
type CPU interface {
	// Switch runs regs in as until a syscall, fault, exception or kick.
	Switch(as AddressSpace, regs *Registers, fp FPState) (Exit, error)
	// Kick makes the current or next Switch return ExitInterrupted; any
	// goroutine may call it.
	Kick()
}

// FPState is a task's x87/SSE/AVX state in XSAVE format.
type FPState interface {
	Bytes() ([]byte, error)
	MarkDirty()
	Fork() (FPState, error)
}

// KVM is the Machine of the KVM platform.
type KVM struct{ vm *kvm.VM }

// NewKVM creates a KVM machine with cpus CPUs on device ("" for the default).
func NewKVM(device string, cpus int) (*KVM, error) {
	vm, err := kvm.NewVM(kvm.Config{Device: device, VCPUs: cpus})
	if err != nil {
		return nil, err
	}
	return &KVM{vm: vm}, nil
}

func (m *KVM) NewAddressSpace() (AddressSpace, error) {
	as, err := m.vm.NewAddressSpace()
	if err != nil {
		return nil, err
	}
	return as, nil
}

func (m *KVM) AddMemory(size uint64) (uint64, []byte, error) {
	r, err := m.vm.AddRegion(size)
	if err != nil {
		return 0, nil, err
	}
	b, err := m.vm.Memory(r.GPA, r.Size)
	if err != nil {
		return 0, nil, err
	}
	return r.GPA, b, nil
}

func (m *KVM) Discard(gpa, n uint64) error { return m.vm.Discard(gpa, n) }
func (m *KVM) NewFPState() FPState         { return kvmFP{m.vm.NewFPState()} }
func (m *KVM) Acquire() CPU                { return kvmCPU{m.vm.Acquire()} }
func (m *KVM) Release(c CPU)               { m.vm.Release(c.(kvmCPU).c) }
func (m *KVM) SetCPUs(n int) error         { return m.vm.SetVCPUs(n) }
func (m *KVM) CPUs() int                   { return m.vm.VCPUs() }
func (m *KVM) Close() error                { return m.vm.Close() }
func (m *KVM) TSC() (uint64, int64, error) { return m.vm.TSC() }

// Exits and Flushes count the machine's guest exits and page-table
// invalidations so far: what a workload's time goes to on a host where
// both are dear (benchmarks and stats read them).
func (m *KVM) Exits() uint64   { return m.vm.Exits() }
func (m *KVM) Flushes() uint64 { return m.vm.Flushes() }

type kvmCPU struct{ c *kvm.VCPU }

func (c kvmCPU) Switch(as AddressSpace, regs *Registers, fp FPState) (Exit, error) {
	return c.c.Switch(as.(*kvm.AddressSpace), regs, fp.(kvmFP).fp)
}
func (c kvmCPU) Kick() { c.c.Kick() }

type kvmFP struct{ fp *kvm.FPState }

func (f kvmFP) Bytes() ([]byte, error) { return f.fp.Bytes() }
func (f kvmFP) MarkDirty()             { f.fp.MarkDirty() }
func (f kvmFP) Fork() (FPState, error) {
	n, err := f.fp.Fork()
	if err != nil {
		return nil, err
	}
	return kvmFP{n}, nil
}
