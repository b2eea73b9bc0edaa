package kvm

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// benchGuest sets up a user-mode "syscall; jmp" loop on one vCPU.
func benchGuest(b *testing.B) (*VM, *guest, *VCPU, *Registers, *FPState) {
	vm := newTestVM(b, 1)
	g := newGuest(b, vm)
	g.mapPage(codeVA, PermRead|PermExec, code(b, []byte{0x0f, 0x05}, "syscall", []byte{0xeb, 0xfc}, "jmp .-0x4"))
	c := vm.Acquire()
	b.Cleanup(func() { vm.Release(c) })
	regs := &Registers{RIP: codeVA, RSP: stackVA, RFLAGS: 0x202}
	fp := vm.NewFPState()
	if e := run(b, c, g, regs, fp); e.Kind != ExitSyscall {
		b.Fatalf("warm-up: %v", e)
	}
	return vm, g, c, regs, fp
}

// BenchmarkSwitchSyscall is the round trip of Switch for a syscall exit:
// what the sentry pays per guest syscall before handling it.
func BenchmarkSwitchSyscall(b *testing.B) {
	_, g, c, regs, fp := benchGuest(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Switch(g.as, regs, fp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareExit is the same loop driven by KVM_RUN alone, with only
// the return address fixed up between exits: the floor Switch stands on.
func BenchmarkBareExit(b *testing.B) {
	vm, _, c, _, _ := benchGuest(b)
	r := &c.sr.Regs
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if c.sr.Sregs.CS.Selector&3 == 3 {
			r.RIP, r.RFLAGS = r.RCX, r.R11
		} else {
			top := stackTop(c.ID)
			f := vm.mem[top-iretFrameSize : top]
			binary.LittleEndian.PutUint64(f[0:], r.RCX)
			binary.LittleEndian.PutUint64(f[8:], selUserCS)
			binary.LittleEndian.PutUint64(f[16:], r.R11)
			binary.LittleEndian.PutUint64(f[24:], r.RSP)
			binary.LittleEndian.PutUint64(f[32:], selUserDS)
			r.RIP, r.RSP, r.RFLAGS = kva(kcodeGPA+stubIret), kva(top)-iretFrameSize, rflagsReserved
		}
		*u64At(c.run, runDirtyRegs) = syncRegs
		*u64At(c.run, runValidRegs) = syncRegs | syncSregs
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(c.fd), ioctlRun, 0); e == unix.EINTR {
			drainSignal(vm.kickSig)
			i--
		} else if e != 0 {
			b.Fatal(e)
		}
	}
}

// BenchmarkInvalidate is the cost of making a changed mapping visible
// (re-registering the page-table memslot with every vCPU held back).
func BenchmarkInvalidate(b *testing.B) {
	vm, _, _, _, _ := benchGuest(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := vm.invalidate(); err != nil {
			b.Fatal(err)
		}
	}
}
