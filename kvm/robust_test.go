package kvm

import (
	"math/rand"
	"testing"
	"time"
)

// TestRandomCode runs random bytes in user mode, with random registers, a
// writable stack and data page: whatever they do must end in clean exits,
// never a vCPU failure, a host crash or a hang (a kick ends loops).
func TestRandomCode(t *testing.T) {
	vm := newTestVM(t, 1)
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	programs := 300
	if testing.Short() {
		programs = 50
	}
	kinds := map[string]int{}
	c := vm.Acquire()
	defer vm.Release(c)
	for p := 0; p < programs; p++ {
		g := newGuest(t, vm)
		prog := make([]byte, pageSize)
		rng.Read(prog)
		g.mapPage(codeVA, PermRead|PermWrite|PermExec, prog)
		g.mapPage(stackVA-pageSize, PermRead|PermWrite, nil)
		g.mapPage(dataVA, PermRead|PermWrite, nil)
		regs := &Registers{
			RIP: codeVA + uint64(rng.Intn(pageSize-16)), RSP: stackVA - 512, RFLAGS: rng.Uint64(),
			RAX: dataVA, RBX: rng.Uint64(), RCX: dataVA + 64, RDX: rng.Uint64(), RSI: dataVA + 128, RDI: dataVA,
			R8: rng.Uint64(), R9: rng.Uint64(), R10: rng.Uint64(), R11: rng.Uint64(), R12: rng.Uint64(),
			R13: rng.Uint64(), R14: rng.Uint64(), R15: rng.Uint64(), RBP: stackVA - 256,
		}
		fp := vm.NewFPState()
		for step := 0; step < 8; step++ {
			timer := time.AfterFunc(20*time.Millisecond, c.Kick)
			e, err := c.Switch(g.as, regs, fp)
			timer.Stop()
			if err != nil {
				t.Fatalf("program %d (seed %d) step %d: vCPU failure: %v\nregs %+v", p, seed, step, err, regs)
			}
			kinds[e.String()[:min(len(e.String()), 12)]]++
			if e.Kind == ExitPageFault || e.Kind == ExitException {
				// Like a signal handler: resume somewhere else.
				regs.RIP = codeVA + uint64(rng.Intn(pageSize-16))
				regs.RSP = stackVA - 512
			}
		}
		g.as.Release()
	}
	c.kicked.Store(false)
	t.Logf("exits: %v", kinds)
}
