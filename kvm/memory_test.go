package kvm

import (
	"encoding/binary"
	"testing"
)

// TestMemoryRegions: RAM is added and removed at run time; a mapping can
// only point at RAM (never at page tables or the kernel), and only in the
// user half.
func TestMemoryRegions(t *testing.T) {
	vm := newTestVM(t, 1)
	as, err := vm.NewAddressSpace()
	if err != nil {
		t.Fatal(err)
	}
	defer as.Release()
	r1, err := vm.AddRegion(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := vm.AddRegion(1) // rounds up to 2 MiB
	if err != nil {
		t.Fatal(err)
	}
	if r2.Size != 2<<20 || r2.GPA < r1.GPA+r1.Size {
		t.Fatalf("regions %+v %+v", r1, r2)
	}
	for _, bad := range []struct {
		va, pa, n uint64
	}{
		{0x400000, 0, pageSize},                    // kernel slot
		{0x400000, ptGPA, pageSize},                // page tables
		{0x400000, r1.GPA + r1.Size, pageSize},     // between regions? past r1 into r2 is a different region
		{0x400000, r2.GPA + r2.Size, pageSize},     // past the last region
		{UserTop, r1.GPA, pageSize},                // upper half
		{0xffffff8000000000, r1.GPA, pageSize},     // the kernel mapping
		{0x400001, r1.GPA, pageSize},               // unaligned
		{UserTop - pageSize, r1.GPA, 2 * pageSize}, // crosses the top
	} {
		if bad.pa == r1.GPA+r1.Size && bad.pa == r2.GPA {
			// A range that starts in r2 is valid; make it span both.
			bad.pa, bad.n = r1.GPA+r1.Size-pageSize, 2*pageSize
		}
		if err := as.Map(bad.va, bad.pa, bad.n, PermRead); err == nil {
			t.Errorf("Map(%#x, %#x, %#x) succeeded", bad.va, bad.pa, bad.n)
		}
	}
	// Run code from r2, remove r1 meanwhile, then remove r2 after
	// unmapping it; its memory is gone.
	g := &guest{t: t, vm: vm, as: as, region: r2, next: r2.GPA}
	g.mapPage(codeVA, PermRead|PermExec, code(t, []byte{0x48, 0x8b, 0x07}, "mov rax, qword ptr [rdi]", []byte{0x0f, 0x05}, "syscall"))
	_, d := g.mapPage(dataVA, PermRead, nil)
	binary.LittleEndian.PutUint64(d, 42)
	if err := vm.RemoveRegion(r1); err != nil {
		t.Fatal(err)
	}
	c := vm.Acquire()
	defer vm.Release(c)
	regs := &Registers{RIP: codeVA, RSP: stackVA, RFLAGS: 0x202, RDI: dataVA}
	if e := run(t, c, g, regs, vm.NewFPState()); e.Kind != ExitSyscall || regs.RAX != 42 {
		t.Fatalf("%v rax=%d", e, regs.RAX)
	}
	if err := as.Unmap(codeVA, pageSize); err != nil {
		t.Fatal(err)
	}
	if err := as.Unmap(dataVA, pageSize); err != nil {
		t.Fatal(err)
	}
	if err := vm.RemoveRegion(r2); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Memory(r2.GPA, pageSize); err == nil {
		t.Fatal("Memory of a removed region succeeded")
	}
	if err := vm.RemoveRegion(r2); err == nil {
		t.Fatal("removing a region twice succeeded")
	}
	// Slots are reused.
	r3, err := vm.AddRegion(2 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if r3.slot != r2.slot && r3.slot != r1.slot {
		t.Fatalf("slot %d not reused (free were %d, %d)", r3.slot, r1.slot, r2.slot)
	}
	if r3.GPA != r1.GPA {
		t.Fatalf("guest-physical range not reused: %#x, the first hole was %#x", r3.GPA, r1.GPA)
	}
}

// TestBatch: changes inside Begin/Commit cost one flush together.
func TestBatch(t *testing.T) {
	vm := newTestVM(t, 1)
	g := newGuest(t, vm)
	g.mapPage(codeVA, PermRead|PermExec, code(t, []byte{0x0f, 0x05}, "syscall"))
	var pas []uint64
	for i := uint64(0); i < 8; i++ {
		pa, _ := g.mapPage(dataVA+i*pageSize, PermRead|PermWrite, nil)
		pas = append(pas, pa)
	}
	c := vm.Acquire()
	defer vm.Release(c)
	regs := &Registers{RIP: codeVA, RSP: stackVA, RFLAGS: 0x202}
	run(t, c, g, regs, vm.NewFPState())
	before := vm.Flushes()
	g.as.Begin()
	for i := uint64(0); i < 8; i++ {
		if err := g.as.Protect(dataVA+i*pageSize, pageSize, PermRead); err != nil {
			t.Fatal(err)
		}
	}
	if vm.Flushes() != before {
		t.Fatal("flushed inside a batch")
	}
	if err := g.as.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := vm.Flushes() - before; got != 1 {
		t.Fatalf("%d flushes for a batch, want 1", got)
	}
	if _, perm, ok := g.as.Lookup(dataVA + 3*pageSize); !ok || perm != PermRead {
		t.Fatalf("after batch: %v %v", perm, ok)
	}
}

// TestTSC: the guest reads a TSC that the offset and frequency KVM reports
// turn into the host's time.
func TestTSC(t *testing.T) {
	vm := newTestVM(t, 1)
	khz, off, err := vm.TSC()
	if err != nil {
		t.Fatal(err)
	}
	if khz < 100_000 || khz > 10_000_000 {
		t.Fatalf("TSC frequency %d kHz", khz)
	}
	g := newGuest(t, vm)
	g.mapPage(codeVA, PermRead|PermExec, code(t, []byte{0x0f, 0x31}, "rdtsc", []byte{0x0f, 0x05}, "syscall"))
	c := vm.Acquire()
	defer vm.Release(c)
	regs := &Registers{RIP: codeVA, RSP: stackVA, RFLAGS: 0x202}
	before := HostTSC()
	run(t, c, g, regs, vm.NewFPState())
	after := HostTSC()
	guest := regs.RDX<<32 | regs.RAX&0xffffffff
	host := uint64(int64(guest) - off)
	if host < before || host > after {
		t.Fatalf("guest TSC %d (offset %d) is not within the host's [%d, %d]", guest, off, before, after)
	}
	t.Logf("TSC %d kHz, offset %d", khz, off)
}
