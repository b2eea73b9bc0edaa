package kvm

import "encoding/binary"

// The guest's ring-0 side: a few hand-encoded integer instructions that
// leave the guest with OUT as soon as a syscall or an exception arrives.
// Ring-0 code is emulated instruction by instruction on nested PVM hosts
// (no SSE there), so it stays this small; everything else is Go in the host.
//
// Guest-physical layout of the kernel memslot; the same memory is mapped
// at kernelBase in the upper half of every address space:
//
//	0x0000  syscall page: the LSTAR entry. It is the one kernel page user
//	        mode may execute (read-only): on PVM the CPU stays at CPL 3
//	        after SYSCALL, so the entry must be reachable from there. It
//	        holds nothing but "out; ud2", which grants nothing a SYSCALL
//	        instruction does not.
//	0x1000  ring-0 code page: exception entry stubs and the iretq
//	        trampoline, supervisor-only
//	0x2000  IDT (256 gates)
//	0x3000  PDPT, 0x4000 PD, 0x5000.. PT pages of the kernel mapping
//	0x10000 per-vCPU areas, vcpuAreaSize each:
//	        +0x0000 GDT (0x000) and TSS (0x800)
//	        +0x1000 ring-0 stack (two pages; RSP0 = +0x3000)
//	        +0x3000 IST1 stack for #DF, NMI and #MC (top = +0x4000)

const (
	kernelBase = 0xffffff8000000000 // PML4 slot 511

	ksysGPA      = 0x0000
	kcodeGPA     = 0x1000
	kidtGPA      = 0x2000
	kpdptGPA     = 0x3000
	kpdGPA       = 0x4000
	kptGPA       = 0x5000
	kvcpuGPA     = 0x10000
	vcpuAreaSize = 0x4000

	kernelSlotSize = 4 << 20
	kptPages       = kernelSlotSize / (512 * pageSize)
	// maxVCPUs is how many per-vCPU areas fit in the kernel slot.
	maxVCPUs = (kernelSlotSize - kvcpuGPA) / vcpuAreaSize

	// Offsets of the stubs: stubSyscall in the syscall page, the others
	// in the ring-0 code page.
	stubSyscall    = 0x000 // LSTAR: out %al,$portSyscall; ud2
	stubIret       = 0x010 // iretq
	stubException  = 0x020 // out %al,$portException; ud2
	stubVectors    = 0x100 // 32 entry stubs, 16 bytes each
	stubVectorSize = 16

	portSyscall   = 0x10
	portException = 0x11

	// Selectors (as on Linux x86-64).
	selKernelCS = 0x10
	selKernelDS = 0x18
	selUser32CS = 0x23 // deliberately not present: no compatibility mode
	selUserDS   = 0x2b
	selUserCS   = 0x33
	selTSS      = 0x40
	gdtLimit    = 0x4f

	tssOffset = 0x800
	// The TSS ends with a 4-byte I/O permission bitmap for ports 0-31
	// (the CPU reads two bytes around a port's bit); ports above are past
	// the limit and so denied.
	ioMapBase = 0x68
	tssLimit  = ioMapBase + 4 - 1

	// The frame the CPU pushes on an exception from ring 3, plus the
	// vector and error code the stub pushes: vector, error, RIP, CS,
	// RFLAGS, RSP, SS.
	exceptionFrameSize = 7 * 8
	// The frame the iretq trampoline pops: RIP, CS, RFLAGS, RSP, SS.
	iretFrameSize = 5 * 8
)

// kva returns the kernel virtual address of kernel-slot gpa.
func kva(gpa uint64) uint64 { return kernelBase + gpa }

// vcpuArea returns the guest-physical start of vCPU id's area.
func vcpuArea(id int) uint64 { return kvcpuGPA + uint64(id)*vcpuAreaSize }

// stackTop is the RSP0 of vCPU id (guest-physical).
func stackTop(id int) uint64 { return vcpuArea(id) + 0x3000 }

// hasErrorCode reports whether the CPU pushes an error code for vector v.
func hasErrorCode(v int) bool {
	switch v {
	case 8, 10, 11, 12, 13, 14, 17, 21, 29, 30:
		return true
	}
	return false
}

// buildSyscallPage writes the LSTAR entry into the syscall page.
func buildSyscallPage(page []byte) {
	for i := range page {
		page[i] = 0xcc
	}
	copy(page[stubSyscall:], []byte{0xe6, portSyscall, 0x0f, 0x0b})
}

// buildCode writes the ring-0 stubs into the code page.
func buildCode(code []byte) {
	for i := range code {
		code[i] = 0xcc
	}
	put := func(off int, b ...byte) { copy(code[off:], b) }
	put(stubIret, 0x48, 0xcf)
	put(stubException, 0xe6, portException, 0x0f, 0x0b)
	for v := 0; v < 32; v++ {
		off := stubVectors + v*stubVectorSize
		p := off
		if !hasErrorCode(v) {
			code[p], code[p+1] = 0x6a, 0x00 // push $0
			p += 2
		}
		code[p], code[p+1] = 0x6a, byte(v) // push $v
		p += 2
		code[p] = 0xe9 // jmp rel32 stubException
		rel := int32(stubException - (p + 5))
		binary.LittleEndian.PutUint32(code[p+1:], uint32(rel))
	}
}

// buildIDT writes 256 gates; the first 32 point at the vector stubs, the
// rest are not present (a software interrupt to them faults).
func buildIDT(idt []byte) {
	for i := range idt {
		idt[i] = 0
	}
	for v := 0; v < 32; v++ {
		addr := kva(kcodeGPA + stubVectors + uint64(v*stubVectorSize))
		e := idt[v*16 : v*16+16]
		binary.LittleEndian.PutUint16(e[0:], uint16(addr))
		binary.LittleEndian.PutUint16(e[2:], selKernelCS)
		ist := byte(0)
		if v == VectorDF || v == VectorNMI || v == VectorMC {
			ist = 1
		}
		e[4] = ist
		attr := byte(0x8e) // present, DPL 0, 64-bit interrupt gate
		if v == VectorBP || v == VectorOF {
			attr = 0xee // DPL 3: int3 from user mode is #BP, as on Linux
		}
		e[5] = attr
		binary.LittleEndian.PutUint16(e[6:], uint16(addr>>16))
		binary.LittleEndian.PutUint32(e[8:], uint32(addr>>32))
	}
}

// buildGDT writes vCPU id's GDT and TSS into its area page.
func buildGDT(page []byte, id int) {
	for i := range page {
		page[i] = 0
	}
	le := binary.LittleEndian
	le.PutUint64(page[selKernelCS:], 0x00af9b000000ffff)  // 64-bit code, DPL 0
	le.PutUint64(page[selKernelDS:], 0x00cf93000000ffff)  // data, DPL 0
	le.PutUint64(page[selUserDS&^3:], 0x00cff3000000ffff) // data, DPL 3
	le.PutUint64(page[selUserCS&^3:], 0x00affb000000ffff) // 64-bit code, DPL 3
	// 64-bit available TSS descriptor (16 bytes).
	base := kva(vcpuArea(id) + tssOffset)
	d := page[selTSS:]
	le.PutUint16(d[0:], tssLimit)
	le.PutUint16(d[2:], uint16(base))
	d[4] = byte(base >> 16)
	d[5] = 0x89 // present, DPL 0, type 9
	d[6] = 0
	d[7] = byte(base >> 24)
	le.PutUint32(d[8:], uint32(base>>32))
	// TSS: RSP0, IST1 and the I/O map base.
	tss := page[tssOffset:]
	le.PutUint64(tss[4:], kva(stackTop(id)))
	le.PutUint64(tss[0x24:], kva(vcpuArea(id)+vcpuAreaSize))
	le.PutUint16(tss[0x66:], ioMapBase)
	// Only port portSyscall is open to CPL 3: on PVM the SYSCALL entry
	// runs at CPL 3 and leaves with OUT to it. A user OUT to that port
	// from anywhere else is caught by the RIP check in VCPU.decodeExit.
	bm := tss[ioMapBase : ioMapBase+4]
	for i := range bm {
		bm[i] = 0xff
	}
	bm[portSyscall/8] &^= 1 << (portSyscall % 8)
}

// buildKernelPageTables maps the kernel slot at kernelBase with 4 KiB
// pages: the syscall page user-executable and read-only, the ring-0 code
// page supervisor-only, executable and read-only, the rest supervisor-only,
// writable and not executable.
func buildKernelPageTables(mem []byte) {
	le := binary.LittleEndian
	pdpt := mem[kpdptGPA : kpdptGPA+pageSize]
	pd := mem[kpdGPA : kpdGPA+pageSize]
	clear(pdpt)
	clear(pd)
	le.PutUint64(pdpt[0:], kpdGPA|pteP|pteW|pteU|pteA)
	for i := 0; i < kptPages; i++ {
		ptGPA := uint64(kptGPA + i*pageSize)
		le.PutUint64(pd[i*8:], ptGPA|pteP|pteW|pteU|pteA)
		pt := mem[ptGPA : ptGPA+pageSize]
		for j := 0; j < 512; j++ {
			gpa := uint64(i*512+j) * pageSize
			e := gpa | pteP | pteA
			switch gpa {
			case ksysGPA:
				e |= pteU
			case kcodeGPA:
			default:
				e |= pteW | pteD | pteNX
			}
			le.PutUint64(pt[j*8:], e)
		}
	}
}
