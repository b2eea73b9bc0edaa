package kvm

import "fmt"

// XSAVE feature bits moat enables in XCR0: x87, SSE, AVX and AVX-512
// (opmask, ZMM_Hi256, Hi16_ZMM). MPX, PKRU and AMX stay off: they need
// kernel support moat does not give.
const xcr0Allowed = 0x1 | 0x2 | 0x4 | 0x20 | 0x40 | 0x80

// setupCPUID reads KVM_GET_SUPPORTED_CPUID, hides what user code must not
// use and derives XCR0 and CR4 from the result.
func (vm *VM) setupCPUID() error {
	c := &kvmCPUID2{Nent: maxCPUIDEntries}
	if err := ioctlPtr(vm.dev.fd, ioctlGetSupportedCPUID, ptrOf(c)); err != nil {
		return fmt.Errorf("kvm: KVM_GET_SUPPORTED_CPUID: %w", err)
	}
	var fsgsbase, umip, smep bool
	var xcr0 uint64 = 0x3
	for i := 0; i < int(c.Nent); i++ {
		e := &c.Entries[i]
		switch {
		case e.Function == 1:
			e.ECX &^= 1<<3 | 1<<5 | 1<<6 // MONITOR, VMX, SMX
		case e.Function == 7 && e.Index == 0:
			e.EBX &^= 1<<2 | 1<<4 | 1<<11 | 1<<14 | 1<<25 // SGX, HLE, RTM, MPX, PT
			e.ECX &^= 1<<3 | 1<<4 | 1<<5 | 1<<30          // PKU, OSPKE, WAITPKG, SGX_LC
			e.EDX &^= 1<<22 | 1<<24 | 1<<25               // AMX
			fsgsbase = e.EBX&1 != 0
			smep = e.EBX&(1<<7) != 0
			umip = e.ECX&(1<<2) != 0
		case e.Function == 0xd && e.Index == 0:
			supported := uint64(e.EAX) | uint64(e.EDX)<<32
			xcr0 = supported & xcr0Allowed
			e.EAX = uint32(xcr0)
			e.EDX = uint32(xcr0 >> 32)
		}
	}
	if xcr0&0x3 != 0x3 {
		return fmt.Errorf("kvm: KVM does not support SSE state in XSAVE (xcr0 mask %#x)", xcr0)
	}
	vm.cpuid = c
	vm.xcr0 = xcr0
	vm.cr4 = cr4PAE | cr4OSFXSR | cr4OSXMMEXCPT | cr4OSXSAVE
	if fsgsbase {
		vm.cr4 |= cr4FSGSBASE
	}
	if umip {
		vm.cr4 |= cr4UMIP
	}
	// SMEP stays off: on hardware VMX the SYSCALL entry runs in ring 0
	// from the user-executable syscall page (see ring0_amd64.go).
	_ = smep
	return nil
}
