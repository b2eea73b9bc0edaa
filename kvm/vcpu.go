package kvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// VCPU is one virtual CPU. A task takes one with VM.Acquire, runs user
// code on it with Switch, and gives it back with VM.Release; while it holds
// it, the vCPU is bound to the task's OS thread so that Kick can reach it.
type VCPU struct {
	vm  *VM
	ID  int
	fd  int
	run []byte
	sr  *kvmSyncRegs

	// tid is the OS thread the vCPU is bound to (0 when free).
	tid atomic.Int32
	// kicked asks the next or current Switch to return ExitInterrupted.
	kicked atomic.Bool
	// kickRetry is set while a goroutine re-sends the kick signal.
	kickRetry atomic.Bool

	// The rest is owned by the bound thread.

	// cpl3 says the vCPU stopped in user mode (PVM reports CPL 3 after
	// SYSCALL) and can be resumed by setting the registers alone; else it
	// is in the ring-0 stub and returns to user mode through iretq.
	cpl3 bool
	// sregsValid says sr.Sregs holds the vCPU's current special registers.
	sregsValid bool
	fpOwner    *FPState
	// broken is set after a failure that leaves the vCPU's state unknown
	// (a triple fault, an emulation error); the next Switch resets it.
	broken bool
	// pushRegs says the registers must be written with KVM_SET_REGS
	// (kernels without sync regs).
	pushRegs bool

	exits atomic.Uint64
}

// ErrVCPU wraps failures of a vCPU itself (not of the user code it ran).
var ErrVCPU = errors.New("vcpu failure")

func (vm *VM) newVCPU(id int) (*VCPU, error) {
	if id >= maxVCPUs {
		return nil, fmt.Errorf("kvm: vCPU %d: at most %d vCPUs per VM", id, maxVCPUs)
	}
	if max := vm.dev.MaxVCPUs(); id >= max {
		return nil, fmt.Errorf("kvm: vCPU %d: KVM allows %d vCPUs per VM", id, max)
	}
	fd, err := ioctlInt(vm.fd, ioctlCreateVCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("kvm: KVM_CREATE_VCPU %d: %w", id, err)
	}
	run, err := unix.Mmap(fd, 0, vm.runSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("kvm: map vCPU %d run area: %w", id, err)
	}
	c := &VCPU{vm: vm, ID: id, fd: fd, run: run, sr: syncRegsOf(run)}
	buildGDT(vm.mem[vcpuArea(id):vcpuArea(id)+pageSize], id)
	if err := c.setup(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *VCPU) close() {
	if c.run != nil {
		unix.Munmap(c.run)
		c.run = nil
	}
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

func (c *VCPU) setup() error {
	vm := c.vm
	if err := ioctlPtr(c.fd, ioctlSetCPUID2, ptrOf(vm.cpuid)); err != nil {
		return fmt.Errorf("kvm: vCPU %d: KVM_SET_CPUID2: %w", c.ID, err)
	}
	if err := c.resetSregs(); err != nil {
		return err
	}
	msrs := kvmMSRs{}
	for i, m := range []kvmMSREntry{
		{Index: msrSTAR, Data: uint64(selUser32CS)<<48 | uint64(selKernelCS)<<32},
		{Index: msrLSTAR, Data: kva(ksysGPA + stubSyscall)},
		{Index: msrCSTAR, Data: kva(ksysGPA + stubSyscall)},
		{Index: msrSFMASK, Data: rflagsTF | rflagsDF | rflagsIF | rflagsIOPL | rflagsAC | rflagsNT},
		{Index: msrSysenterCS, Data: 0},
		{Index: msrSysenterESP, Data: 0},
		{Index: msrSysenterEIP, Data: 0},
		{Index: msrKernelGSBase, Data: 0},
		{Index: msrPAT, Data: 0x0007040600070406},
	} {
		msrs.Entries[i] = m
		msrs.NMSRs++
	}
	n, err := ioctlInt(c.fd, ioctlSetMSRs, uintptr(ptrOf(&msrs)))
	if err != nil || n != int(msrs.NMSRs) {
		return fmt.Errorf("kvm: vCPU %d: KVM_SET_MSRS set %d of %d: %v", c.ID, n, msrs.NMSRs, err)
	}
	xcrs := kvmXCRs{NrXCRs: 1}
	xcrs.XCRs[0].XCR = 0
	xcrs.XCRs[0].Value = vm.xcr0
	if err := ioctlPtr(c.fd, ioctlSetXCRs, ptrOf(&xcrs)); err != nil {
		return fmt.Errorf("kvm: vCPU %d: KVM_SET_XCRS xcr0=%#x: %w", c.ID, vm.xcr0, err)
	}
	// Inside KVM_RUN only the kick signal is deliverable, so a kick sent
	// at any moment (even just before KVM_RUN) ends the run, and no other
	// host signal disturbs the guest.
	mask := kvmSignalMask{Len: 8, Sigset: ^(uint64(1) << (uint(vm.kickSig) - 1))}
	if err := ioctlPtr(c.fd, ioctlSetSignalMask, ptrOf(&mask)); err != nil {
		return fmt.Errorf("kvm: vCPU %d: KVM_SET_SIGNAL_MASK: %w", c.ID, err)
	}
	return nil
}

// resetSregs loads the ring-0 state: long mode, moat's GDT, IDT and TSS,
// and the stub stack.
func (c *VCPU) resetSregs() error {
	vm := c.vm
	code := kvmSegment{Limit: 0xffffffff, Selector: selKernelCS, Type: 11, Present: 1, S: 1, L: 1, G: 1}
	data := kvmSegment{Limit: 0xffffffff, Selector: selKernelDS, Type: 3, Present: 1, S: 1, DB: 1, G: 1}
	null := kvmSegment{Unusable: 1}
	var sr kvmSregs
	sr.CS = code
	sr.SS = data
	sr.DS, sr.ES, sr.FS, sr.GS = null, null, null, null
	sr.TR = kvmSegment{Base: kva(vcpuArea(c.ID) + tssOffset), Limit: tssLimit, Selector: selTSS, Type: 11, Present: 1}
	sr.LDT = kvmSegment{Type: 2, Unusable: 1}
	sr.GDT = kvmDTable{Base: kva(vcpuArea(c.ID)), Limit: gdtLimit}
	sr.IDT = kvmDTable{Base: kva(kidtGPA), Limit: 256*16 - 1}
	sr.CR0 = cr0PE | cr0MP | cr0ET | cr0NE | cr0WP | cr0AM | cr0PG
	sr.CR3 = vm.bootCR3
	sr.CR4 = vm.cr4
	sr.EFER = eferSCE | eferLME | eferLMA | eferNXE
	if err := ioctlPtr(c.fd, ioctlSetSregs, ptrOf(&sr)); err != nil {
		return fmt.Errorf("kvm: vCPU %d: KVM_SET_SREGS (cr0=%#x cr4=%#x efer=%#x): %w", c.ID, sr.CR0, sr.CR4, sr.EFER, err)
	}
	c.sr.Sregs = sr
	c.sregsValid = true
	c.cpl3 = false
	c.broken = false
	return nil
}

// Kick makes the vCPU's current or next Switch return ExitInterrupted
// promptly. It may be called from any goroutine.
func (c *VCPU) Kick() {
	c.kicked.Store(true)
	c.signal()
	// The signal is what ends KVM_RUN; should it be consumed on the
	// host side of the thread (the Go runtime can unblock signals on a
	// thread for its own reasons), the kick would wait for the guest's
	// next exit. Re-send it until the kick is taken, for a while.
	if c.kickRetry.CompareAndSwap(false, true) {
		go func() {
			defer c.kickRetry.Store(false)
			for i := 0; i < 2000 && c.kicked.Load(); i++ {
				time.Sleep(500 * time.Microsecond)
				if c.kicked.Load() {
					c.signal()
				}
			}
		}()
	}
}

// signal interrupts KVM_RUN on the bound thread, if any.
func (c *VCPU) signal() {
	if t := c.tid.Load(); t != 0 {
		unix.Tgkill(pid, int(t), c.vm.kickSig)
	}
}

// Exits returns how many guest exits this vCPU has taken.
func (c *VCPU) Exits() uint64 { return c.exits.Load() }

// Switch runs user code in address space as with the user registers regs
// and FP state fp until the code traps, then returns why with regs (and fp,
// lazily) updated in place. An error means the vCPU itself failed; the
// task that was running cannot continue, but the vCPU can be used again.
func (c *VCPU) Switch(as *AddressSpace, regs *Registers, fp *FPState) (Exit, error) {
	if c.tid.Load() == 0 {
		return Exit{}, fmt.Errorf("kvm: Switch on vCPU %d that is not acquired", c.ID)
	}
	if c.kicked.Swap(false) {
		return Exit{Kind: ExitInterrupted}, nil
	}
	if !CanonicalUser(regs.RIP) {
		// Returning there would fault in ring 0; fault in user mode as
		// Linux does.
		return Exit{Kind: ExitException, Vector: VectorGP}, nil
	}
	if !canonical(regs.FSBase) || !canonical(regs.GSBase) {
		return Exit{}, fmt.Errorf("kvm: non-canonical fs base %#x or gs base %#x", regs.FSBase, regs.GSBase)
	}
	if c.broken {
		if err := c.resetSregs(); err != nil {
			return Exit{}, err
		}
	}
	if err := c.loadFP(fp); err != nil {
		return Exit{}, err
	}
	if err := c.loadSregs(as, regs); err != nil {
		return Exit{}, err
	}
	c.loadRegs(regs)
	for {
		// A page-table flush is announced by flushPending and holds
		// runMu for writing once every vCPU has left guest mode; wait
		// for it without taking the lock (waiting with Lock would also
		// wait for every other vCPU to leave guest mode, long after the
		// flush: one that computes without trapping would hold this
		// one back for good).
		for c.vm.flushPending.Load() {
			runtime.Gosched()
		}
		c.vm.runMu.RLock()
		if c.vm.flushPending.Load() {
			c.vm.runMu.RUnlock()
			continue
		}
		if c.pushRegs {
			if err := ioctlPtr(c.fd, ioctlSetRegs, ptrOf(&c.sr.Regs)); err != nil {
				c.vm.runMu.RUnlock()
				return Exit{}, fmt.Errorf("kvm: vCPU %d: KVM_SET_REGS: %w", c.ID, err)
			}
			c.pushRegs = false
		}
		if c.vm.syncRegs {
			*u64At(c.run, runValidRegs) = syncRegs | syncSregs
		}
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(c.fd), ioctlRun, 0)
		c.vm.runMu.RUnlock()
		c.exits.Add(1)
		if !c.vm.syncRegs {
			if err := c.fetchState(); err != nil {
				return Exit{}, err
			}
		}
		c.sregsValid = true
		if errno == unix.EINTR || errno == unix.EAGAIN {
			drainSignal(c.vm.kickSig)
			if exit, done := c.interrupted(regs); done {
				return exit, nil
			}
			continue
		}
		if errno != 0 {
			c.broken = true
			return Exit{}, fmt.Errorf("kvm: vCPU %d: KVM_RUN: %w: %w", c.ID, errno, ErrVCPU)
		}
		return c.decodeExit(regs)
	}
}

// interrupted decides what an interrupted KVM_RUN means. In user mode or at
// the iretq trampoline the user state is complete and a kick is reported;
// inside a stub the vCPU runs on to the stub's exit (a few instructions),
// and the kick stays pending for the next Switch.
func (c *VCPU) interrupted(regs *Registers) (Exit, bool) {
	if !c.kicked.Load() {
		return Exit{}, false
	}
	r := &c.sr.Regs
	if c.sr.Sregs.CS.Selector&3 == 3 && r.RIP >= kernelBase {
		// On PVM the SYSCALL entry runs at CPL 3: stopped between
		// SYSCALL and the stub's OUT, the vCPU is in the kernel, not in
		// user code. Run on to the exit.
		return Exit{}, false
	}
	if c.sr.Sregs.CS.Selector&3 == 3 {
		c.storeGPRs(regs)
		regs.RIP, regs.RSP, regs.RFLAGS = r.RIP, r.RSP, r.RFLAGS
		c.cpl3 = true
	} else if r.RIP == kva(kcodeGPA+stubIret) && r.RSP == kva(stackTop(c.ID))-iretFrameSize {
		c.storeGPRs(regs)
		f := c.vm.mem[stackTop(c.ID)-iretFrameSize : stackTop(c.ID)]
		regs.RIP = binary.LittleEndian.Uint64(f[0:])
		regs.RFLAGS = binary.LittleEndian.Uint64(f[16:])
		regs.RSP = binary.LittleEndian.Uint64(f[24:])
		c.cpl3 = false
	} else {
		return Exit{}, false
	}
	c.kicked.Store(false)
	c.storeSegs(regs)
	return Exit{Kind: ExitInterrupted}, true
}

// decodeExit turns a KVM exit into an Exit, updating regs.
func (c *VCPU) decodeExit(regs *Registers) (Exit, error) {
	reason := binary.LittleEndian.Uint32(c.run[runExitReason:])
	r := &c.sr.Regs
	sr := &c.sr.Sregs
	if reason == exitIO {
		io := c.run[runExitData:]
		dirOut := io[0] == 1
		port := binary.LittleEndian.Uint16(io[2:])
		switch {
		case dirOut && port == portSyscall && atOut(r.RIP, ksysGPA+stubSyscall):
			c.storeGPRs(regs)
			regs.RIP, regs.RFLAGS, regs.RSP = r.RCX, r.R11, r.RSP
			c.storeSegs(regs)
			c.cpl3 = sr.CS.Selector&3 == 3
			return Exit{Kind: ExitSyscall}, nil
		case dirOut && port == portException && sr.CS.Selector&3 == 0 && atOut(r.RIP, kcodeGPA+stubException):
			return c.decodeException(regs)
		case sr.CS.Selector&3 == 3:
			// Port I/O from user mode (possible on PVM, whatever the
			// TSS says): a general-protection fault, as on hardware.
			c.storeGPRs(regs)
			regs.RIP, regs.RFLAGS, regs.RSP = r.RIP, r.RFLAGS, r.RSP
			c.storeSegs(regs)
			c.cpl3 = true
			return Exit{Kind: ExitException, Vector: VectorGP}, nil
		}
	}
	c.broken = true
	name := exitNames[reason]
	if name == "" {
		name = fmt.Sprint(reason)
	}
	detail := ""
	switch reason {
	case exitInternalError:
		detail = fmt.Sprintf(" suberror %d", binary.LittleEndian.Uint32(c.run[runExitData:]))
	case exitFailEntry:
		detail = fmt.Sprintf(" reason %#x", binary.LittleEndian.Uint64(c.run[runExitData:]))
	case exitIO:
		detail = fmt.Sprintf(" port %#x", binary.LittleEndian.Uint16(c.run[runExitData+2:]))
	case exitMMIO:
		detail = fmt.Sprintf(" address %#x", binary.LittleEndian.Uint64(c.run[runExitData:]))
	}
	return Exit{}, fmt.Errorf("kvm: vCPU %d: unexpected exit %s%s at rip %#x cs %#x: %w", c.ID, name, detail, r.RIP, sr.CS.Selector, ErrVCPU)
}

// decodeException reads the frame the CPU and the stub pushed.
func (c *VCPU) decodeException(regs *Registers) (Exit, error) {
	r := &c.sr.Regs
	top := stackTop(c.ID)
	if r.RSP != kva(top)-exceptionFrameSize {
		c.broken = true
		return Exit{}, fmt.Errorf("kvm: vCPU %d: exception frame at %#x, want %#x (fault in ring 0?): %w", c.ID, r.RSP, kva(top)-exceptionFrameSize, ErrVCPU)
	}
	f := c.vm.mem[top-exceptionFrameSize : top]
	le := binary.LittleEndian
	vector := le.Uint64(f[0:])
	code := le.Uint64(f[8:])
	cs := le.Uint64(f[24:])
	if cs&3 != 3 {
		c.broken = true
		return Exit{}, fmt.Errorf("kvm: vCPU %d: exception %d in ring 0 at %#x: %w", c.ID, vector, le.Uint64(f[16:]), ErrVCPU)
	}
	c.storeGPRs(regs)
	regs.RIP = le.Uint64(f[16:])
	regs.RFLAGS = le.Uint64(f[32:])
	regs.RSP = le.Uint64(f[40:])
	c.storeSegs(regs)
	c.cpl3 = false
	e := Exit{Kind: ExitException, Vector: uint8(vector), ErrorCode: code}
	if vector == VectorPF {
		e.Kind = ExitPageFault
		e.Addr = c.sr.Sregs.CR2
		e.Present = code&1 != 0
		e.Write = code&2 != 0
		e.Exec = code&16 != 0
	}
	return e, nil
}

// storeGPRs copies the general registers from the sync area into regs.
func (c *VCPU) storeGPRs(regs *Registers) {
	r := &c.sr.Regs
	regs.RAX, regs.RBX, regs.RCX, regs.RDX = r.RAX, r.RBX, r.RCX, r.RDX
	regs.RSI, regs.RDI, regs.RBP = r.RSI, r.RDI, r.RBP
	regs.R8, regs.R9, regs.R10, regs.R11 = r.R8, r.R9, r.R10, r.R11
	regs.R12, regs.R13, regs.R14, regs.R15 = r.R12, r.R13, r.R14, r.R15
}

// storeSegs records the FS and GS bases (user code may change them with
// WRFSBASE/WRGSBASE) and the user selectors.
func (c *VCPU) storeSegs(regs *Registers) {
	regs.FSBase = c.sr.Sregs.FS.Base
	regs.GSBase = c.sr.Sregs.GS.Base
	regs.CS, regs.SS = UserCS, UserDS
}

// loadRegs writes the user registers for the next KVM_RUN: directly when
// the vCPU is already in user mode, else through an iretq frame on the
// vCPU's ring-0 stack.
func (c *VCPU) loadRegs(regs *Registers) {
	r := &c.sr.Regs
	r.RAX, r.RBX, r.RCX, r.RDX = regs.RAX, regs.RBX, regs.RCX, regs.RDX
	r.RSI, r.RDI, r.RBP = regs.RSI, regs.RDI, regs.RBP
	r.R8, r.R9, r.R10, r.R11 = regs.R8, regs.R9, regs.R10, regs.R11
	r.R12, r.R13, r.R14, r.R15 = regs.R12, regs.R13, regs.R14, regs.R15
	flags := regs.RFLAGS&rflagsUser | rflagsIF | rflagsReserved
	if c.cpl3 {
		r.RIP, r.RSP, r.RFLAGS = regs.RIP, regs.RSP, flags
	} else {
		top := stackTop(c.ID)
		f := c.vm.mem[top-iretFrameSize : top]
		le := binary.LittleEndian
		le.PutUint64(f[0:], regs.RIP)
		le.PutUint64(f[8:], selUserCS)
		le.PutUint64(f[16:], flags)
		le.PutUint64(f[24:], regs.RSP)
		le.PutUint64(f[32:], selUserDS)
		r.RIP = kva(kcodeGPA + stubIret)
		r.RSP = kva(top) - iretFrameSize
		r.RFLAGS = rflagsReserved
	}
	if c.vm.syncRegs {
		*u64At(c.run, runDirtyRegs) |= syncRegs
	} else {
		c.pushRegs = true
	}
}

// loadSregs switches the address space and the FS/GS bases when they
// differ from what the vCPU has.
func (c *VCPU) loadSregs(as *AddressSpace, regs *Registers) error {
	sr := &c.sr.Sregs
	dirty := false
	// Every load counts, even when the vCPU's CR3 already holds this
	// table's address: a page-table page can be reused by a new address
	// space at the address an old one had.
	if !as.ran.Load() {
		as.ran.Store(true)
	}
	if sr.CR3 != as.pml4 {
		sr.CR3 = as.pml4
		dirty = true
	}
	if sr.FS.Base != regs.FSBase {
		sr.FS.Base = regs.FSBase
		dirty = true
	}
	if sr.GS.Base != regs.GSBase {
		sr.GS.Base = regs.GSBase
		dirty = true
	}
	if !dirty {
		return nil
	}
	if c.vm.syncRegs {
		*u64At(c.run, runDirtyRegs) |= syncSregs
		return nil
	}
	if err := ioctlPtr(c.fd, ioctlSetSregs, ptrOf(sr)); err != nil {
		return fmt.Errorf("kvm: vCPU %d: KVM_SET_SREGS: %w", c.ID, err)
	}
	return nil
}

// fetchState reads registers with ioctls on kernels without sync regs.
func (c *VCPU) fetchState() error {
	if err := ioctlPtr(c.fd, ioctlGetRegs, ptrOf(&c.sr.Regs)); err != nil {
		return fmt.Errorf("kvm: vCPU %d: KVM_GET_REGS: %w", c.ID, err)
	}
	if err := ioctlPtr(c.fd, ioctlGetSregs, ptrOf(&c.sr.Sregs)); err != nil {
		return fmt.Errorf("kvm: vCPU %d: KVM_GET_SREGS: %w", c.ID, err)
	}
	return nil
}

// loadFP makes fp the vCPU's FPU state, writing back the previous owner's.
func (c *VCPU) loadFP(fp *FPState) error {
	if old := c.fpOwner; old != nil && old != fp {
		old.mu.Lock()
		var err error
		if old.live == c {
			err = c.saveFPLocked(old)
		}
		old.mu.Unlock()
		c.fpOwner = nil
		if err != nil {
			return err
		}
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.live == c && !fp.dirty {
		c.fpOwner = fp
		return nil
	}
	if fp.live != nil && fp.live != c {
		if err := fp.live.saveFPLocked(fp); err != nil {
			return err
		}
	}
	if err := ioctlBuf(c.fd, ioctlSetXSave, fp.data); err != nil {
		return fmt.Errorf("kvm: vCPU %d: KVM_SET_XSAVE: %w", c.ID, err)
	}
	fp.dirty = false
	fp.live = c
	c.fpOwner = fp
	return nil
}

// saveFPLocked writes the vCPU's FPU state into fp.
// Preconditions: fp.mu is held and fp.live == c.
func (c *VCPU) saveFPLocked(fp *FPState) error {
	req := uintptr(ioctlGetXSave)
	if c.vm.xsave2 {
		req = ioctlGetXSave2
	}
	if err := ioctlBuf(c.fd, req, fp.data); err != nil {
		return fmt.Errorf("kvm: vCPU %d: KVM_GET_XSAVE: %w", c.ID, err)
	}
	fp.live = nil
	return nil
}

func canonical(a uint64) bool { return a < 1<<47 || a >= 0xffff800000000000 }

// vcpuPool hands vCPUs to tasks, at most limit at once.
type vcpuPool struct {
	vm    *VM
	mu    sync.Mutex
	cond  sync.Cond
	limit int
	all   []*VCPU
	idle  []*VCPU
	// last maps an OS thread to the vCPU it used last: KVM is cheapest
	// when a vCPU keeps its thread.
	last map[int32]*VCPU
}

func (p *vcpuPool) init(vm *VM) {
	p.vm = vm
	p.cond.L = &p.mu
	p.last = map[int32]*VCPU{}
}

func (p *vcpuPool) setLimit(n int) error {
	if n < 1 {
		n = 1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.all) < n {
		c, err := p.vm.newVCPU(len(p.all))
		if err != nil {
			return err
		}
		p.all = append(p.all, c)
		p.idle = append(p.idle, c)
	}
	p.limit = n
	p.cond.Broadcast()
	return nil
}

func (p *vcpuPool) kickAll() {
	p.mu.Lock()
	all := p.all
	p.mu.Unlock()
	for _, c := range all {
		c.signal()
	}
}

// SetVCPUs changes how many vCPUs may run guest code at once (at least 1).
// Lowering it takes effect as vCPUs are released.
func (vm *VM) SetVCPUs(n int) error { return vm.pool.setLimit(n) }

// VCPUs returns the current vCPU limit.
func (vm *VM) VCPUs() int {
	vm.pool.mu.Lock()
	defer vm.pool.mu.Unlock()
	return vm.pool.limit
}

// Acquire binds a vCPU to the calling goroutine's OS thread, waiting while
// all of them are in use. The caller must Release it.
func (vm *VM) Acquire() *VCPU {
	runtime.LockOSThread()
	tid := int32(unix.Gettid())
	p := &vm.pool
	p.mu.Lock()
	var c *VCPU
	for c == nil {
		pick := -1
		for i, v := range p.idle {
			if v.ID >= p.limit {
				continue
			}
			if pick < 0 || v == p.last[tid] {
				pick = i
			}
		}
		if pick >= 0 {
			c = p.idle[pick]
			p.idle = append(p.idle[:pick], p.idle[pick+1:]...)
			break
		}
		p.cond.Wait()
	}
	p.last[tid] = c
	p.mu.Unlock()
	// The kick signal stays blocked on this thread outside KVM_RUN and is
	// deliverable only inside it (KVM_SET_SIGNAL_MASK).
	var set unix.Sigset_t
	set.Val[0] = 1 << (uint(vm.kickSig) - 1)
	unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil)
	drainSignal(vm.kickSig)
	c.tid.Store(tid)
	return c
}

// Release gives the vCPU back and unbinds the calling thread.
func (vm *VM) Release(c *VCPU) {
	c.tid.Store(0)
	p := &vm.pool
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.cond.Signal()
	p.mu.Unlock()
	runtime.UnlockOSThread()
}

// atOut reports whether rip is the stub's OUT instruction at kernel-slot
// address gpa: VMX reports the exit with RIP at the instruction, PVM
// with RIP after it (OUT imm8 is two bytes).
func atOut(rip uint64, gpa uint64) bool {
	at := kva(gpa)
	return rip == at || rip == at+2
}
