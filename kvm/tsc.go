package kvm

import (
	"fmt"
)

// HostTSC reads the host's time-stamp counter.
func HostTSC() uint64

const msrIA32TSC = 0x10

// TSC returns the guest TSC frequency in kHz and the offset of the guest
// TSC from the host's (guest = host + offset): zero on PVM, where the
// guest reads the host TSC, and the per-VM offset KVM applies on VMX/SVM.
// The sentry's vDSO computes time from the guest TSC with these.
func (vm *VM) TSC() (khz uint64, offset int64, err error) {
	vm.pool.mu.Lock()
	c := vm.pool.all[0]
	vm.pool.mu.Unlock()
	k, err := ioctlInt(c.fd, ioctlGetTSCKHz, 0)
	if err != nil || k <= 0 {
		return 0, 0, fmt.Errorf("kvm: KVM_GET_TSC_KHZ: %v", err)
	}
	// Read the guest TSC between two host reads; keep the tightest of a
	// few tries.
	best := ^uint64(0)
	for i := 0; i < 5; i++ {
		msrs := kvmMSRs{NMSRs: 1}
		msrs.Entries[0].Index = msrIA32TSC
		before := HostTSC()
		n, err := ioctlInt(c.fd, ioctlGetMSRs, uintptr(ptrOf(&msrs)))
		after := HostTSC()
		if err != nil || n != 1 {
			return 0, 0, fmt.Errorf("kvm: KVM_GET_MSRS(IA32_TSC): %v", err)
		}
		if after-before < best {
			best = after - before
			offset = int64(msrs.Entries[0].Data - (before + (after-before)/2))
		}
	}
	// An offset within the measurement window is no offset.
	if offset < int64(best) && offset > -int64(best) {
		offset = 0
	}
	return uint64(k), offset, nil
}
