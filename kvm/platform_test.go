package kvm

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPageFaultsAndDemandPaging: read, write and exec faults report the
// address and access; mapping the page (a pure addition) and resuming
// retries the access successfully without any flush.
func TestPageFaultsAndDemandPaging(t *testing.T) {
	vm := newTestVM(t, 1)
	g := newGuest(t, vm)
	prog := code(t,
		[]byte{0x48, 0x8b, 0x07}, "mov rax, qword ptr [rdi]", // read fault
		[]byte{0x48, 0x89, 0x06}, "mov qword ptr [rsi], rax", // write fault (read-only page)
		[]byte{0xff, 0xd2}, "call rdx", // exec fault (no-exec page)
		[]byte{0x0f, 0x05}, "syscall",
	)
	g.mapPage(codeVA, PermRead|PermExec, prog)
	g.mapPage(stackVA-pageSize, PermRead|PermWrite, nil)
	c := vm.Acquire()
	defer vm.Release(c)
	fp := vm.NewFPState()
	readVA, writeVA, execVA := uint64(0x10000000), uint64(0x20000000), uint64(0x30000000)
	regs := &Registers{RIP: codeVA, RSP: stackVA, RFLAGS: 0x202, RDI: readVA + 8, RSI: writeVA + 16, RDX: execVA}
	flushes := vm.Flushes()

	e := run(t, c, g, regs, fp)
	if e.Kind != ExitPageFault || e.Addr != readVA+8 || e.Write || e.Exec || e.Present || regs.RIP != codeVA {
		t.Fatalf("read: %v rip %#x", e, regs.RIP)
	}
	var tag [8]byte
	binary.LittleEndian.PutUint64(tag[:], 0x1122334455667788)
	_, rb := g.mapPage(readVA, PermRead, nil)
	copy(rb[8:], tag[:])

	_, wb := g.mapPage(writeVA, PermRead, nil)
	e = run(t, c, g, regs, fp)
	if e.Kind != ExitPageFault || e.Addr != writeVA+16 || !e.Write || !e.Present || regs.RIP != codeVA+3 {
		t.Fatalf("write: %v rip %#x", e, regs.RIP)
	}
	if regs.RAX != 0x1122334455667788 {
		t.Fatalf("rax after demand-paged read = %#x", regs.RAX)
	}
	if err := g.as.Protect(writeVA, pageSize, PermRead|PermWrite); err != nil {
		t.Fatal(err)
	}
	g.mapPage(execVA, PermRead, code(t, []byte{0xc3}, "ret"))
	e = run(t, c, g, regs, fp)
	if e.Kind != ExitPageFault || e.Addr != execVA || !e.Exec || !e.Present {
		t.Fatalf("exec: %v rip %#x", e, regs.RIP)
	}
	if got := binary.LittleEndian.Uint64(wb[16:]); got != 0x1122334455667788 {
		t.Fatalf("write after protect landed %#x", got)
	}
	if err := g.as.Protect(execVA, pageSize, PermRead|PermExec); err != nil {
		t.Fatal(err)
	}
	e = run(t, c, g, regs, fp)
	if e.Kind != ExitSyscall {
		t.Fatalf("after exec fault: %v rip %#x", e, regs.RIP)
	}
	t.Logf("page-table flushes: %d", vm.Flushes()-flushes)
}

// TestTLS: the FS base the host sets is what %fs: addresses in user mode,
// and a WRFSBASE in user mode is reported back.
func TestTLS(t *testing.T) {
	vm := newTestVM(t, 1)
	g := newGuest(t, vm)
	prog := code(t,
		[]byte{0x64, 0x48, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x00, 0x00}, "mov rax, qword ptr fs:[0x8]",
		[]byte{0x0f, 0x05}, "syscall",
		[]byte{0x48, 0x89, 0xdf}, "mov rdi, rbx",
		[]byte{0xf3, 0x48, 0x0f, 0xae, 0xd7}, "wrfsbase rdi",
		[]byte{0x64, 0x48, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x00, 0x00}, "mov rax, qword ptr fs:[0x8]",
		[]byte{0x0f, 0x05}, "syscall",
	)
	g.mapPage(codeVA, PermRead|PermExec, prog)
	_, d := g.mapPage(dataVA, PermRead|PermWrite, nil)
	binary.LittleEndian.PutUint64(d[0x108:], 0xaaaa)
	binary.LittleEndian.PutUint64(d[0x208:], 0xbbbb)
	c := vm.Acquire()
	defer vm.Release(c)
	regs := &Registers{RIP: codeVA, RSP: stackVA, RFLAGS: 0x202, FSBase: dataVA + 0x100, RBX: dataVA + 0x200}
	fp := vm.NewFPState()
	if e := run(t, c, g, regs, fp); e.Kind != ExitSyscall || regs.RAX != 0xaaaa {
		t.Fatalf("fs:[8] = %#x (%v), want 0xaaaa", regs.RAX, e)
	}
	e := run(t, c, g, regs, fp)
	if e.Kind == ExitException && e.Vector == VectorUD {
		t.Logf("WRFSBASE is not enabled on this host (no FSGSBASE)")
		return
	}
	if e.Kind != ExitSyscall || regs.RAX != 0xbbbb || regs.FSBase != dataVA+0x200 {
		t.Fatalf("after wrfsbase: %v rax=%#x fsbase=%#x", e, regs.RAX, regs.FSBase)
	}
}

// TestFPStatePerTask: two tasks alternate on one vCPU; each keeps its own
// AVX registers, and the saved state shows them.
func TestFPStatePerTask(t *testing.T) {
	vm := newTestVM(t, 1)
	g := newGuest(t, vm)
	// ymm0 <- [rdi]; syscall; [rsi] <- ymm0; syscall
	prog := code(t,
		[]byte{0xc5, 0xfe, 0x6f, 0x07}, "vmovdqu ymm0, ymmword ptr [rdi]",
		[]byte{0x0f, 0x05}, "syscall",
		[]byte{0xc5, 0xfe, 0x7f, 0x06}, "vmovdqu ymmword ptr [rsi], ymm0",
		[]byte{0x0f, 0x05}, "syscall",
	)
	g.mapPage(codeVA, PermRead|PermExec, prog)
	_, d := g.mapPage(dataVA, PermRead|PermWrite, nil)
	pa, pb := bytes.Repeat([]byte{0xa5}, 32), bytes.Repeat([]byte{0x5a}, 32)
	copy(d[0:], pa)
	copy(d[64:], pb)
	c := vm.Acquire()
	defer vm.Release(c)
	ra := &Registers{RIP: codeVA, RSP: stackVA, RFLAGS: 0x202, RDI: dataVA, RSI: dataVA + 0x200}
	rb := &Registers{RIP: codeVA, RSP: stackVA, RFLAGS: 0x202, RDI: dataVA + 64, RSI: dataVA + 0x400}
	fa, fb := vm.NewFPState(), vm.NewFPState()
	for _, step := range []struct {
		r  *Registers
		fp *FPState
	}{{ra, fa}, {rb, fb}, {ra, fa}, {rb, fb}} {
		if e := run(t, c, g, step.r, step.fp); e.Kind != ExitSyscall {
			t.Fatalf("exit %v at %#x", e, step.r.RIP)
		}
	}
	if !bytes.Equal(d[0x200:0x220], pa) || !bytes.Equal(d[0x400:0x420], pb) {
		t.Fatalf("ymm0 leaked between tasks: a=% x b=% x", d[0x200:0x220], d[0x400:0x420])
	}
	// The saved image holds xmm0 at 160 and the upper ymm half at 576.
	ba, err := fa.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ba[160:176], pa[:16]) || !bytes.Equal(ba[576:592], pa[16:]) {
		t.Fatalf("saved state of task a: xmm0=% x ymmh0=% x", ba[160:176], ba[576:592])
	}
	// A change the sentry makes to the saved state reaches the task.
	fork, err := fa.Fork()
	if err != nil {
		t.Fatal(err)
	}
	fb2, _ := fork.Bytes()
	copy(fb2[160:176], bytes.Repeat([]byte{0x77}, 16))
	fork.MarkDirty()
	rf := &Registers{RIP: codeVA + 6, RSP: stackVA, RFLAGS: 0x202, RSI: dataVA + 0x600}
	if e := run(t, c, g, rf, fork); e.Kind != ExitSyscall {
		t.Fatalf("forked task: %v", e)
	}
	if !bytes.Equal(d[0x600:0x610], bytes.Repeat([]byte{0x77}, 16)) || !bytes.Equal(d[0x610:0x620], pa[16:]) {
		t.Fatalf("forked task's ymm0 = % x", d[0x600:0x620])
	}
}

// TestConcurrentVCPUs: two vCPUs run syscall loops at once, each on its
// own thread, with the same address space.
func TestConcurrentVCPUs(t *testing.T) {
	vm := newTestVM(t, 2)
	g := newGuest(t, vm)
	g.mapPage(codeVA, PermRead|PermExec, code(t,
		[]byte{0x48, 0xff, 0xc7}, "inc rdi",
		[]byte{0x0f, 0x05}, "syscall",
		[]byte{0xeb, 0xf9}, "jmp .-0x7",
	))
	const n = 300
	var wg sync.WaitGroup
	var running, maxRunning atomic.Int32
	errs := make(chan error, 2)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := vm.Acquire()
			defer vm.Release(c)
			fp := vm.NewFPState()
			regs := &Registers{RIP: codeVA, RSP: stackVA, RFLAGS: 0x202, RDI: uint64(w) << 32}
			for i := 1; i <= n; i++ {
				cur := running.Add(1)
				for m := maxRunning.Load(); cur > m && !maxRunning.CompareAndSwap(m, cur); m = maxRunning.Load() {
				}
				e, err := c.Switch(g.as, regs, fp)
				running.Add(-1)
				if err != nil || e.Kind != ExitSyscall || regs.RDI != uint64(w)<<32+uint64(i) {
					errs <- fmtErr("vcpu %d iteration %d: %v %v rdi=%#x", c.ID, i, e, err, regs.RDI)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if maxRunning.Load() != 2 {
		t.Fatalf("at most %d vCPUs ran at once, want 2", maxRunning.Load())
	}
}

// TestKick: an endless loop in user mode is interrupted by Kick from
// another goroutine, with its state intact, again and again.
func TestKick(t *testing.T) {
	vm := newTestVM(t, 1)
	g := newGuest(t, vm)
	g.mapPage(codeVA, PermRead|PermExec, code(t,
		[]byte{0x48, 0xff, 0xc0}, "inc rax",
		[]byte{0xeb, 0xfb}, "jmp .-0x5",
	))
	c := vm.Acquire()
	defer vm.Release(c)
	fp := vm.NewFPState()
	regs := &Registers{RIP: codeVA, RSP: stackVA, RFLAGS: 0x202}
	var last uint64
	for i := 0; i < 20; i++ {
		timer := time.AfterFunc(5*time.Millisecond, c.Kick)
		e := run(t, c, g, regs, fp)
		timer.Stop()
		if e.Kind != ExitInterrupted {
			t.Fatalf("kick %d: %v", i, e)
		}
		if regs.RIP != codeVA && regs.RIP != codeVA+3 {
			t.Fatalf("kick %d: rip %#x outside the loop", i, regs.RIP)
		}
		if regs.RAX < last {
			t.Fatalf("kick %d: rax went back from %d to %d", i, last, regs.RAX)
		}
		last = regs.RAX
	}
	if last == 0 {
		t.Fatal("the loop never ran")
	}
	// A kick that arrives before Switch is not lost.
	c.Kick()
	if e := run(t, c, g, regs, fp); e.Kind != ExitInterrupted {
		t.Fatalf("early kick: %v", e)
	}
}

// TestInvalidationOnEveryVCPU: two vCPUs read a page in a loop; the page
// is remapped to another page, then protected, then unmapped while both
// run; after each call returns, neither vCPU sees the old mapping.
func TestInvalidationOnEveryVCPU(t *testing.T) {
	vm := newTestVM(t, 2)
	g := newGuest(t, vm)
	g.mapPage(codeVA, PermRead|PermExec, code(t,
		[]byte{0x48, 0x8b, 0x07}, "mov rax, qword ptr [rdi]",
		[]byte{0x48, 0x89, 0x3e}, "mov qword ptr [rsi], rdi",
		[]byte{0x0f, 0x05}, "syscall",
		[]byte{0xeb, 0xf6}, "jmp .-0xa",
	))
	pa1, p1 := g.page()
	pa2, p2 := g.page()
	binary.LittleEndian.PutUint64(p1, 1)
	binary.LittleEndian.PutUint64(p2, 2)
	if err := g.as.Map(dataVA, pa1, pageSize, PermRead|PermWrite); err != nil {
		t.Fatal(err)
	}
	// gen is the mapping generation: 1 (page 1), 2 (page 2), 3 (page 2
	// read-only), 4 (unmapped). Each vCPU checks that an exit that began
	// after generation g was published reflects g.
	// started is set before a change is made, gen after it returned.
	var gen, started atomic.Int32
	gen.Store(1)
	started.Store(1)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 2)
	seen := [2]atomic.Int32{}
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := vm.Acquire()
			defer vm.Release(c)
			fp := vm.NewFPState()
			regs := &Registers{RIP: codeVA, RSP: stackVA, RFLAGS: 0x202, RDI: dataVA, RSI: dataVA + 8 + uint64(w)*8}
			for {
				select {
				case <-stop:
					return
				default:
				}
				before := gen.Load()
				e, err := c.Switch(g.as, regs, fp)
				if err != nil {
					errs <- err
					return
				}
				switch {
				case e.Kind == ExitInterrupted:
					continue
				case e.Kind == ExitSyscall:
					if before >= 4 {
						errs <- fmtErr("vcpu %d: read the page after unmap", w)
						return
					}
					if before >= 2 && regs.RAX != 2 {
						errs <- fmtErr("vcpu %d: read %d after remap (generation %d)", w, regs.RAX, before)
						return
					}
					if before >= 3 {
						errs <- fmtErr("vcpu %d: wrote the page after it was made read-only", w)
						return
					}
					seen[w].Store(before)
				case e.Kind == ExitPageFault && started.Load() >= 3:
					// Protect or Unmap took effect during this run.
					seen[w].Store(before)
					// Park at the fault until the test ends or
					// the page comes back.
					time.Sleep(time.Millisecond)
				default:
					errs <- fmtErr("vcpu %d: unexpected %v at %#x in generation %d", w, e, regs.RIP, before)
					return
				}
			}
		}(w)
	}
	waitSeen := func(g int32) {
		deadline := time.Now().Add(10 * time.Second)
		for seen[0].Load() < g || seen[1].Load() < g {
			if time.Now().After(deadline) {
				t.Fatalf("vCPUs did not reach generation %d: %d %d", g, seen[0].Load(), seen[1].Load())
			}
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitSeen(1)
	started.Store(2)
	if err := g.as.Map(dataVA, pa2, pageSize, PermRead|PermWrite); err != nil {
		t.Fatal(err)
	}
	gen.Store(2)
	waitSeen(2)
	started.Store(3)
	if err := g.as.Protect(dataVA, pageSize, PermRead); err != nil {
		t.Fatal(err)
	}
	gen.Store(3)
	waitSeen(3)
	started.Store(4)
	if err := g.as.Unmap(dataVA, pageSize); err != nil {
		t.Fatal(err)
	}
	gen.Store(4)
	waitSeen(4)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestKickDuringSyscalls: kicks and page-table flushes landing while a
// vCPU is between SYSCALL and the stub's exit (on PVM the entry runs at
// CPL 3) never expose the stub as user state: every exit is a syscall or
// an interruption with RIP in user code, and the loop keeps counting.
func TestKickDuringSyscalls(t *testing.T) {
	vm := newTestVM(t, 1)
	g := newGuest(t, vm)
	g.mapPage(codeVA, PermRead|PermExec, code(t,
		[]byte{0x48, 0xff, 0xc7}, "inc rdi",
		[]byte{0x0f, 0x05}, "syscall",
		[]byte{0xeb, 0xf9}, "jmp .-0x7",
	))
	pa, _ := g.page()
	stop := make(chan struct{})
	c := vm.Acquire()
	defer vm.Release(c)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				c.Kick()
			} else {
				// Change a present mapping: a flush kicks every vCPU.
				g.as.Map(dataVA, pa, pageSize, PermRead|Perm(i%4&2))
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	defer close(stop)
	regs := &Registers{RIP: codeVA, RSP: stackVA, RFLAGS: 0x202}
	fp := vm.NewFPState()
	var last uint64
	for i := 0; i < 3000; i++ {
		e := run(t, c, g, regs, fp)
		if e.Kind != ExitSyscall && e.Kind != ExitInterrupted {
			t.Fatalf("exit %d: %v at rip %#x", i, e, regs.RIP)
		}
		if regs.RIP < codeVA || regs.RIP >= codeVA+pageSize {
			t.Fatalf("exit %d (%v): rip %#x is not user code", i, e, regs.RIP)
		}
		if regs.RDI < last {
			t.Fatalf("counter went back from %d to %d", last, regs.RDI)
		}
		last = regs.RDI
	}
}
