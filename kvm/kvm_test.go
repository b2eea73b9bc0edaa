package kvm

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// newTestVM returns a VM on the real KVM device. It skips only when
// /dev/kvm is absent and MOAT_REQUIRE_KVM is not set.
func newTestVM(t testing.TB, vcpus int) *VM {
	t.Helper()
	vm, err := NewVM(Config{VCPUs: vcpus})
	if err != nil {
		if errors.Is(err, ErrNoKVM) && os.Getenv("MOAT_REQUIRE_KVM") == "" {
			t.Skipf("no usable KVM (set MOAT_REQUIRE_KVM=1 to fail instead): %v", err)
		}
		t.Fatalf("NewVM: %v", err)
	}
	t.Cleanup(func() { vm.Close() })
	return vm
}

// guest is a test address space with a bump allocator of guest RAM.
type guest struct {
	t      testing.TB
	vm     *VM
	as     *AddressSpace
	region *Region
	next   uint64
}

func newGuest(t testing.TB, vm *VM) *guest {
	t.Helper()
	r, err := vm.AddRegion(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := vm.RemoveRegion(r); err != nil {
			t.Errorf("RemoveRegion: %v", err)
		}
	})
	as, err := vm.NewAddressSpace()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Release)
	return &guest{t: t, vm: vm, as: as, region: r, next: r.GPA}
}

// page allocates a zeroed guest page and returns its address and bytes.
func (g *guest) page() (uint64, []byte) {
	pa := g.next
	g.next += pageSize
	b, err := g.vm.Memory(pa, pageSize)
	if err != nil {
		g.t.Fatal(err)
	}
	clear(b)
	return pa, b
}

// mapPage maps a fresh page at va with perm, filled with data.
func (g *guest) mapPage(va uint64, perm Perm, data []byte) (uint64, []byte) {
	pa, b := g.page()
	copy(b, data)
	if err := g.as.Map(va, pa, pageSize, perm); err != nil {
		g.t.Fatalf("map %#x: %v", va, err)
	}
	return pa, b
}

// code assembles a program from instructions given as machine code with
// the expected Intel-syntax disassembly, checked with x86asm so that a
// typo in an encoding fails loudly.
func code(t testing.TB, insns ...any) []byte {
	t.Helper()
	var out []byte
	for i := 0; i < len(insns); i += 2 {
		b := insns[i].([]byte)
		want := insns[i+1].(string)
		inst, err := x86asm.Decode(b, 64)
		if err != nil {
			t.Fatalf("decode % x (%s): %v", b, want, err)
		}
		if inst.Len != len(b) {
			t.Fatalf("% x decodes as %d bytes, want %d (%s)", b, inst.Len, len(b), want)
		}
		got := strings.ToLower(x86asm.IntelSyntax(inst, 0, nil))
		if got != want {
			t.Fatalf("% x disassembles as %q, want %q", b, got, want)
		}
		out = append(out, b...)
	}
	return out
}

const (
	codeVA  = 0x400000
	dataVA  = 0x600000
	stackVA = 0x7fff0000
)

func run(t testing.TB, c *VCPU, g *guest, regs *Registers, fp *FPState) Exit {
	t.Helper()
	e, err := c.Switch(g.as, regs, fp)
	if err != nil {
		t.Fatalf("Switch: %v", err)
	}
	return e
}

func TestSyscallLoop(t *testing.T) {
	vm := newTestVM(t, 1)
	g := newGuest(t, vm)
	prog := code(t,
		[]byte{0xbf, 0x01, 0x00, 0x00, 0x00}, "mov edi, 0x1",
		// loop:
		[]byte{0xb8, 0x27, 0x00, 0x00, 0x00}, "mov eax, 0x27",
		[]byte{0x48, 0xc7, 0xc6, 0x64, 0x00, 0x00, 0x00}, "mov rsi, 0x64",
		[]byte{0x0f, 0x05}, "syscall",
		[]byte{0x48, 0x89, 0xc7}, "mov rdi, rax",
		[]byte{0xeb, 0xed}, "jmp .-0x13",
	)
	g.mapPage(codeVA, PermRead|PermExec, prog)
	c := vm.Acquire()
	defer vm.Release(c)
	fp := vm.NewFPState()
	regs := &Registers{RIP: codeVA, RSP: stackVA, RFLAGS: 0x202}
	want := uint64(1)
	for i := 0; i < 200; i++ {
		e := run(t, c, g, regs, fp)
		if e.Kind != ExitSyscall {
			t.Fatalf("iteration %d: exit %v at rip %#x, want syscall", i, e, regs.RIP)
		}
		if regs.RAX != 0x27 || regs.RDI != want || regs.RSI != 100 {
			t.Fatalf("iteration %d: rax=%#x rdi=%d rsi=%d, want 0x27 %d 100", i, regs.RAX, regs.RDI, regs.RSI, want)
		}
		if regs.RIP != codeVA+5+5+7+2 || regs.RCX != regs.RIP {
			t.Fatalf("iteration %d: rip=%#x rcx=%#x, want both %#x", i, regs.RIP, regs.RCX, codeVA+19)
		}
		if regs.RSP != stackVA {
			t.Fatalf("iteration %d: rsp=%#x, want %#x", i, regs.RSP, stackVA)
		}
		want = regs.RDI*3 + 1
		regs.RAX = want
	}
	if n := vm.Exits(); n < 200 || n != c.Exits() {
		t.Fatalf("the VM counts %d exits, its one vCPU %d; want both at least 200", n, c.Exits())
	}
}

// kvmDescriptors counts this process's descriptors of KVM VMs and vCPUs.
func kvmDescriptors(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if strings.HasPrefix(l, "anon_inode:kvm-") {
			n++
		}
	}
	return n
}

// TestCloseReleasesDescriptors: Close closes every vCPU and the VM, so a
// process that runs sandbox after sandbox (tests, a sentry hosting many)
// keeps no VM alive behind it.
func TestCloseReleasesDescriptors(t *testing.T) {
	before := kvmDescriptors(t)
	for i := 0; i < 3; i++ {
		vm, err := NewVM(Config{VCPUs: 2})
		if err != nil {
			if errors.Is(err, ErrNoKVM) && os.Getenv("MOAT_REQUIRE_KVM") == "" {
				t.Skipf("no usable KVM (set MOAT_REQUIRE_KVM=1 to fail instead): %v", err)
			}
			t.Fatalf("NewVM: %v", err)
		}
		a, b := vm.Acquire(), vm.Acquire()
		vm.Release(a)
		vm.Release(b)
		if n := kvmDescriptors(t); n < before+3 {
			t.Fatalf("a VM with 2 vCPUs holds %d KVM descriptors, want 3", n-before)
		}
		if err := vm.Close(); err != nil {
			t.Fatal(err)
		}
		if n := kvmDescriptors(t); n != before {
			t.Fatalf("after Close %d KVM descriptors remain open", n-before)
		}
	}
}
