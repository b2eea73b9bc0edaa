package kvm

import (
	"testing"
)

// TestUserFaults runs ring-3 code that does what no application may, and
// checks each becomes a clean Exit with the right vector, error code and
// RIP, never a failure of the vCPU or the host.
func TestUserFaults(t *testing.T) {
	vm := newTestVM(t, 1)
	kernelAddr := code(t, []byte{0x48, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff}, "mov rax, 0xffffff8000000000")
	nonCanonical := code(t, []byte{0x48, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80}, "mov rax, 0x8000000000000000")
	unmapped := code(t, []byte{0x48, 0xb8, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00}, "mov rax, 0x10000000")
	loadRAX := code(t, []byte{0x48, 0x8b, 0x00}, "mov rax, qword ptr [rax]")
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	// vmxOrPVM accepts the vectors hardware and PVM give for the same
	// instruction (PVM turns software INT n from ring 3 into #UD).
	type want struct {
		vectors []uint8
		code    int64 // -1: any
		ripOff  int   // expected RIP offset from code start; -1: any
		pf      *Exit
	}
	cases := []struct {
		name string
		prog []byte
		want want
	}{
		{"ud2", code(t, []byte{0x0f, 0x0b}, "ud2"), want{[]uint8{VectorUD}, 0, 0, nil}},
		{"int3", code(t, []byte{0xcc}, "int3"), want{[]uint8{VectorBP}, 0, 1, nil}},
		{"divide by zero", code(t, []byte{0x31, 0xc9}, "xor ecx, ecx", []byte{0xf7, 0xf1}, "div ecx"), want{[]uint8{VectorDE}, 0, 2, nil}},
		{"hlt", code(t, []byte{0xf4}, "hlt"), want{[]uint8{VectorGP}, 0, 0, nil}},
		{"cli", code(t, []byte{0xfa}, "cli"), want{[]uint8{VectorGP}, 0, 0, nil}},
		{"wrmsr", code(t, []byte{0x0f, 0x30}, "wrmsr"), want{[]uint8{VectorGP}, 0, 0, nil}},
		{"rdmsr", code(t, []byte{0x0f, 0x32}, "rdmsr"), want{[]uint8{VectorGP}, 0, 0, nil}},
		{"mov cr3", code(t, []byte{0x0f, 0x22, 0xd8}, "mov cr3, rax"), want{[]uint8{VectorGP}, 0, 0, nil}},
		{"lgdt", code(t, []byte{0x0f, 0x01, 0x10}, "lgdt ptr [rax]"), want{[]uint8{VectorGP}, 0, 0, nil}},
		{"in", code(t, []byte{0xe4, 0x80}, "in al, 0x80"), want{[]uint8{VectorGP}, 0, -1, nil}},
		{"out to a denied port", code(t, []byte{0xe6, 0x80}, "out 0x80, al"), want{[]uint8{VectorGP}, 0, -1, nil}},
		{"out to the syscall port", code(t, []byte{0xe6, 0x10}, "out 0x10, al"), want{[]uint8{VectorGP}, 0, -1, nil}},
		{"int 0x80", code(t, []byte{0xcd, 0x80}, "int 0x80"), want{[]uint8{VectorGP, VectorUD}, -1, 0, nil}},
		{"sysenter", code(t, []byte{0x0f, 0x34}, "sysenter"), want{[]uint8{VectorGP, VectorUD}, 0, 0, nil}},
		{"far jump to compatibility mode", code(t,
			[]byte{0xc7, 0x04, 0x24, 0x00, 0x00, 0x40, 0x00}, "mov dword ptr [rsp], 0x400000",
			[]byte{0x66, 0xc7, 0x44, 0x24, 0x04, 0x23, 0x00}, "mov word ptr [rsp+0x4], 0x23",
			[]byte{0xff, 0x2c, 0x24}, "jmp far ptr [rsp]"), want{[]uint8{VectorGP, VectorNP, VectorUD}, -1, 14, nil}},
		{"non-canonical load", cat(nonCanonical, loadRAX), want{[]uint8{VectorGP}, 0, 10, nil}},
		{"read of the kernel half", cat(code(t, []byte{0x48, 0xb8, 0x00, 0x20, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff}, "mov rax, 0xffffff8000002000"), loadRAX), want{nil, -1, 10, &Exit{Kind: ExitPageFault, Addr: kernelBase + kidtGPA, Present: true}}},
		{"write to the syscall page", cat(kernelAddr, code(t, []byte{0x48, 0x89, 0x00}, "mov qword ptr [rax], rax")), want{nil, -1, 10, &Exit{Kind: ExitPageFault, Addr: kernelBase, Present: true, Write: true}}},
		{"jump into unmapped memory", cat(unmapped, code(t, []byte{0xff, 0xe0}, "jmp rax")), want{nil, -1, 0x10000000 - codeVA, &Exit{Kind: ExitPageFault, Addr: 0x10000000, Exec: true}}},
		{"jump to the ring-0 code page", cat(code(t, []byte{0x48, 0xb8, 0x00, 0x10, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff}, "mov rax, 0xffffff8000001000"), code(t, []byte{0xff, 0xe0}, "jmp rax")), want{nil, -1, -1, &Exit{Kind: ExitPageFault, Addr: kernelBase + kcodeGPA, Present: true, Exec: true}}},
		{"blown stack", code(t, []byte{0x48, 0xc7, 0xc4, 0x00, 0x00, 0x01, 0x00}, "mov rsp, 0x10000", []byte{0x50}, "push rax"), want{nil, -1, 7, &Exit{Kind: ExitPageFault, Addr: 0xfff8, Write: true}}},
		{"non-canonical stack", cat(nonCanonical, code(t, []byte{0x48, 0x89, 0xc4}, "mov rsp, rax", []byte{0x50}, "push rax")), want{[]uint8{VectorSS, VectorGP}, -1, 13, nil}},
		{"alignment check", code(t,
			[]byte{0x9c}, "pushfq",
			[]byte{0x48, 0x81, 0x0c, 0x24, 0x00, 0x00, 0x04, 0x00}, "or qword ptr [rsp], 0x40000",
			[]byte{0x9d}, "popfq",
			[]byte{0x48, 0x8b, 0x44, 0x24, 0x01}, "mov rax, qword ptr [rsp+0x1]"), want{[]uint8{VectorAC}, 0, 10, nil}},
		{"single step", code(t,
			[]byte{0x9c}, "pushfq",
			[]byte{0x48, 0x81, 0x0c, 0x24, 0x00, 0x01, 0x00, 0x00}, "or qword ptr [rsp], 0x100",
			[]byte{0x9d}, "popfq",
			[]byte{0x90}, "nop"), want{[]uint8{VectorDB}, 0, -1, nil}},
		{"SIMD exception", code(t,
			// MXCSR with divide-by-zero unmasked, then 1.0/0.0.
			[]byte{0xc7, 0x04, 0x24, 0x80, 0x1d, 0x00, 0x00}, "mov dword ptr [rsp], 0x1d80",
			[]byte{0x0f, 0xae, 0x14, 0x24}, "ldmxcsr dword ptr [rsp]",
			[]byte{0xb8, 0x00, 0x00, 0x80, 0x3f}, "mov eax, 0x3f800000",
			[]byte{0x66, 0x0f, 0x6e, 0xc0}, "movd xmm0, eax",
			[]byte{0x0f, 0x57, 0xc9}, "xorps xmm1, xmm1",
			[]byte{0xf3, 0x0f, 0x5e, 0xc1}, "divss xmm0, xmm1"), want{[]uint8{VectorXM}, 0, 23, nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGuest(t, vm)
			g.mapPage(codeVA, PermRead|PermExec, tc.prog)
			g.mapPage(stackVA-pageSize, PermRead|PermWrite, nil)
			c := vm.Acquire()
			defer vm.Release(c)
			regs := &Registers{RIP: codeVA, RSP: stackVA - 64, RFLAGS: 0x202}
			e, err := c.Switch(g.as, regs, vm.NewFPState())
			if err != nil {
				t.Fatalf("Switch: %v", err)
			}
			w := tc.want
			if w.pf != nil {
				if e.Kind != ExitPageFault || e.Addr != w.pf.Addr || e.Write != w.pf.Write || e.Exec != w.pf.Exec || e.Present != w.pf.Present {
					t.Fatalf("got %v at rip %#x, want %v", e, regs.RIP, *w.pf)
				}
			} else {
				ok := false
				for _, v := range w.vectors {
					ok = ok || (e.Kind == ExitException && e.Vector == v)
				}
				if !ok {
					t.Fatalf("got %v at rip %#x, want exception %v", e, regs.RIP, w.vectors)
				}
				if w.code >= 0 && e.ErrorCode != uint64(w.code) {
					t.Fatalf("error code %#x, want %#x", e.ErrorCode, w.code)
				}
			}
			if w.ripOff >= 0 && regs.RIP != codeVA+uint64(w.ripOff) {
				t.Fatalf("rip %#x, want %#x", regs.RIP, codeVA+uint64(w.ripOff))
			}
			// The vCPU must still work: run a syscall afterwards.
			g2 := newGuest(t, vm)
			g2.mapPage(codeVA, PermRead|PermExec, code(t, []byte{0x0f, 0x05}, "syscall"))
			r2 := &Registers{RIP: codeVA, RSP: stackVA, RFLAGS: 0x202}
			if e, err := c.Switch(g2.as, r2, vm.NewFPState()); err != nil || e.Kind != ExitSyscall {
				t.Fatalf("vCPU after %s: %v %v", tc.name, e, err)
			}
		})
	}
}
