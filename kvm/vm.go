package kvm

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Guest-physical layout. Everything stays below 64 GiB: nested PVM hosts
// fault on guest-physical addresses at or above 2^36.
const (
	slotKernel = 0
	slotPT     = 1
	firstRAM   = 2

	ptGPA = 16 << 20 // page tables of all address spaces
	// DefaultPageTableMemory is the size of the page-table memslot.
	DefaultPageTableMemory = 256 << 20
	ramGPA                 = 1 << 30
	maxGPA                 = 63 << 30
)

// Config configures a VM.
type Config struct {
	// Device is the KVM device path ("" for $MOAT_KVM_DEVICE or /dev/kvm).
	Device string
	// VCPUs is how many vCPUs may run guest code at once (at least 1).
	VCPUs int
	// PageTableMemory bounds the memory of all page tables.
	PageTableMemory uint64
}

// VM is one KVM virtual machine: its memory, its vCPUs and the address
// spaces that run on them. Guest-physical memory is one memfd that the
// host maps too, so copying to and from the guest is a memory copy.
type VM struct {
	dev   *Device
	fd    int
	memfd int
	// mem maps guest-physical [0, maxGPA) in the host.
	mem []byte

	runSize   int
	xsaveSize int
	xsave2    bool
	syncRegs  bool
	cpuid     *kvmCPUID2
	xcr0      uint64
	cr4       uint64
	kickSig   unix.Signal
	// bootCR3 maps only the kernel; vCPUs start on it.
	bootCR3 uint64

	pt ptAllocator

	mu sync.Mutex
	// regions are the RAM regions, by slot.
	regions map[uint32]*Region
	nextGPA uint64
	// holes are guest-physical ranges of removed regions, reused first.
	holes    []Region
	freeSlot []uint32
	nextSlot uint32
	ptSize   uint64
	closed   bool

	// runMu is held for reading by every vCPU inside KVM_RUN and for
	// writing while the page-table memslot is re-registered.
	runMu        sync.RWMutex
	flushPending atomic.Bool
	flushes      atomic.Uint64

	pool vcpuPool
}

// Region is guest RAM added to a VM: one memslot.
type Region struct {
	GPA  uint64
	Size uint64
	slot uint32
}

// NewVM creates a VM with its kernel memory, page-table memory and
// cfg.VCPUs vCPUs.
func NewVM(cfg Config) (*VM, error) {
	dev, err := OpenDevice(cfg.Device)
	if err != nil {
		return nil, err
	}
	vm, err := newVM(dev, cfg)
	if err != nil {
		dev.Close()
		return nil, err
	}
	return vm, nil
}

func newVM(dev *Device, cfg Config) (*VM, error) {
	if cfg.VCPUs < 1 {
		cfg.VCPUs = 1
	}
	if cfg.PageTableMemory == 0 {
		cfg.PageTableMemory = DefaultPageTableMemory
	}
	cfg.PageTableMemory = (cfg.PageTableMemory + pageSize - 1) &^ (pageSize - 1)
	if ptGPA+cfg.PageTableMemory > ramGPA {
		return nil, fmt.Errorf("kvm: page-table memory %d bytes is more than %d", cfg.PageTableMemory, ramGPA-ptGPA)
	}
	fd, err := ioctlInt(dev.fd, ioctlCreateVM, 0)
	if err != nil {
		return nil, fmt.Errorf("kvm: KVM_CREATE_VM on %s: %w", dev.Path, err)
	}
	vm := &VM{
		dev:      dev,
		fd:       fd,
		memfd:    -1,
		regions:  map[uint32]*Region{},
		nextGPA:  ramGPA,
		nextSlot: firstRAM,
		ptSize:   cfg.PageTableMemory,
		kickSig:  unix.SIGCHLD,
	}
	vm.pool.init(vm)
	if err := vm.init(cfg); err != nil {
		vm.Close()
		return nil, err
	}
	return vm, nil
}

func (vm *VM) init(cfg Config) error {
	d := vm.dev
	if d.Has(capSetTSSAddr) {
		// Intel hosts without unrestricted guest need a TSS area; put
		// it far above anything moat maps.
		if _, err := ioctlInt(vm.fd, ioctlSetTSSAddr, 0xfffbd000); err != nil {
			return fmt.Errorf("kvm: KVM_SET_TSS_ADDR: %w", err)
		}
	}
	n, err := ioctlInt(d.fd, ioctlGetVCPUMmapSize, 0)
	if err != nil || n < runSyncRegs+0x200 {
		return fmt.Errorf("kvm: KVM_GET_VCPU_MMAP_SIZE = %d: %v", n, err)
	}
	vm.runSize = n
	vm.syncRegs = d.extension(capSyncRegs)&(syncRegs|syncSregs) == syncRegs|syncSregs
	vm.xsaveSize = 4096
	if v := d.extension(capXSave2); v > 4096 {
		vm.xsaveSize = v
		vm.xsave2 = true
	}
	if err := vm.setupCPUID(); err != nil {
		return err
	}

	memfd, err := unix.MemfdCreate("moat-guest", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("kvm: memfd_create for guest memory: %w", err)
	}
	vm.memfd = memfd
	if err := unix.Ftruncate(memfd, maxGPA); err != nil {
		return fmt.Errorf("kvm: size guest memory memfd to %d bytes: %w", int64(maxGPA), err)
	}
	mem, err := unix.Mmap(memfd, 0, maxGPA, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_NORESERVE)
	if err != nil {
		return fmt.Errorf("kvm: map %d bytes of guest memory: %w", int64(maxGPA), err)
	}
	vm.mem = mem

	// Kernel slot: stubs, IDT, kernel page tables, per-vCPU areas.
	buildSyscallPage(vm.mem[ksysGPA : ksysGPA+pageSize])
	buildCode(vm.mem[kcodeGPA : kcodeGPA+pageSize])
	buildIDT(vm.mem[kidtGPA : kidtGPA+pageSize])
	buildKernelPageTables(vm.mem)
	if err := vm.setSlot(slotKernel, 0, kernelSlotSize); err != nil {
		return err
	}
	vm.pt.init(ptGPA, ptGPA+vm.ptSize)
	if err := vm.setSlot(slotPT, ptGPA, vm.ptSize); err != nil {
		return err
	}
	boot, err := vm.pt.alloc(vm)
	if err != nil {
		return err
	}
	vm.putPTE(boot+511*8, kpdptGPA|pteP|pteW|pteU|pteA)
	vm.bootCR3 = boot
	return vm.pool.setLimit(cfg.VCPUs)
}

// setSlot registers guest-physical [gpa, gpa+size) as memslot slot (size 0
// deletes it).
func (vm *VM) setSlot(slot uint32, gpa, size uint64) error {
	r := kvmUserspaceMemoryRegion{Slot: slot, GuestPhysAddr: gpa, MemorySize: size}
	if size != 0 {
		r.UserspaceAddr = vm.hostAddr(gpa)
	}
	if err := ioctlPtr(vm.fd, ioctlSetUserMemoryRegion, ptrOf(&r)); err != nil {
		return fmt.Errorf("kvm: set memslot %d to [%#x, %#x): %w", slot, gpa, gpa+size, err)
	}
	return nil
}

// AddRegion adds size bytes (rounded up to 2 MiB) of RAM to the guest as a
// new memslot and returns it.
func (vm *VM) AddRegion(size uint64) (*Region, error) {
	size = (size + (2<<20 - 1)) &^ (2<<20 - 1)
	vm.mu.Lock()
	defer vm.mu.Unlock()
	gpa, hole := vm.nextGPA, -1
	for i, h := range vm.holes {
		if h.Size >= size {
			gpa, hole = h.GPA, i
			break
		}
	}
	if size == 0 || (hole < 0 && (gpa+size > maxGPA || gpa+size < gpa)) {
		return nil, fmt.Errorf("kvm: add %d bytes of guest memory: guest-physical space exhausted at %#x", size, vm.nextGPA)
	}
	var slot uint32
	if n := len(vm.freeSlot); n > 0 {
		slot = vm.freeSlot[n-1]
		vm.freeSlot = vm.freeSlot[:n-1]
	} else {
		slot = vm.nextSlot
		vm.nextSlot++
	}
	r := &Region{GPA: gpa, Size: size, slot: slot}
	if err := vm.setSlot(slot, r.GPA, size); err != nil {
		vm.freeSlot = append(vm.freeSlot, slot)
		return nil, err
	}
	if hole >= 0 {
		h := &vm.holes[hole]
		h.GPA += size
		h.Size -= size
		if h.Size == 0 {
			vm.holes = append(vm.holes[:hole], vm.holes[hole+1:]...)
		}
	} else {
		vm.nextGPA += size
	}
	vm.regions[slot] = r
	return r, nil
}

// RemoveRegion removes r from the guest and gives its memory back to the
// host. No address space may still map it.
func (vm *VM) RemoveRegion(r *Region) error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.regions[r.slot] != r {
		return fmt.Errorf("kvm: remove region [%#x, %#x): not a region of this VM", r.GPA, r.GPA+r.Size)
	}
	vm.runMu.Lock()
	err := vm.setSlot(r.slot, r.GPA, 0)
	vm.runMu.Unlock()
	if err != nil {
		return err
	}
	delete(vm.regions, r.slot)
	vm.freeSlot = append(vm.freeSlot, r.slot)
	vm.discard(r.GPA, r.Size)
	vm.holes = append(vm.holes, Region{GPA: r.GPA, Size: r.Size})
	return nil
}

// checkRAM reports an error unless [pa, pa+n) lies in one RAM region.
func (vm *VM) checkRAM(pa, n uint64) error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	for _, r := range vm.regions {
		if pa >= r.GPA && pa+n <= r.GPA+r.Size && pa+n > pa {
			return nil
		}
	}
	return fmt.Errorf("kvm: guest-physical range %#x+%#x is not guest RAM", pa, n)
}

// Memory returns the host view of guest-physical [pa, pa+n), which must lie
// in one RAM region.
func (vm *VM) Memory(pa, n uint64) ([]byte, error) {
	if err := vm.checkRAM(pa, n); err != nil {
		return nil, err
	}
	return vm.mem[pa : pa+n : pa+n], nil
}

// Discard gives the host memory behind guest-physical [pa, pa+n) back to
// the host; the pages read as zero afterwards.
func (vm *VM) Discard(pa, n uint64) error {
	if err := vm.checkRAM(pa, n); err != nil {
		return err
	}
	vm.discard(pa, n)
	return nil
}

func (vm *VM) discard(pa, n uint64) {
	// Punching a hole frees the memfd pages; zeroing is the fallback.
	if err := unix.Fallocate(vm.memfd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, int64(pa), int64(n)); err != nil {
		clear(vm.mem[pa : pa+n])
	}
}

// invalidate makes changes to present page-table entries visible to every
// vCPU. KVM on hosts with shadow paging (nested PVM) does not see host
// writes to page tables it already shadows, and guest TLB flushes do not
// make it look again; re-registering the page-table memslot drops every
// shadow page (and on EPT/NPT hosts flushes the guest TLB), so it is the
// one mechanism that is correct on both. It needs every vCPU out of guest
// mode: they are kicked and held back while the slot is re-registered.
func (vm *VM) invalidate() error {
	vm.flushPending.Store(true)
	// Every vCPU must leave guest mode. A kick's signal can be lost to
	// one that is taken for an earlier kick (one signal number, which
	// does not queue), so kick again until the lock is ours.
	for wait := 20 * time.Microsecond; !vm.runMu.TryLock(); wait = min(2*wait, time.Millisecond) {
		vm.pool.kickAll()
		time.Sleep(wait)
	}
	defer vm.runMu.Unlock()
	defer vm.flushPending.Store(false)
	vm.flushes.Add(1)
	if err := vm.setSlot(slotPT, ptGPA, 0); err != nil {
		return err
	}
	return vm.setSlot(slotPT, ptGPA, vm.ptSize)
}

// Flushes returns how many times the page-table memslot was re-registered.
func (vm *VM) Flushes() uint64 { return vm.flushes.Load() }

// Exits returns how many guest exits the VM's vCPUs have taken.
func (vm *VM) Exits() uint64 {
	vm.pool.mu.Lock()
	defer vm.pool.mu.Unlock()
	var n uint64
	for _, c := range vm.pool.all {
		n += c.Exits()
	}
	return n
}

// Close releases the VM, its vCPUs and its memory.
func (vm *VM) Close() error {
	vm.mu.Lock()
	if vm.closed {
		vm.mu.Unlock()
		return nil
	}
	vm.closed = true
	vm.mu.Unlock()
	vm.pool.mu.Lock()
	vcpus := vm.pool.all
	vm.pool.all, vm.pool.idle = nil, nil
	clear(vm.pool.last)
	vm.pool.mu.Unlock()
	for _, c := range vcpus {
		c.close()
	}
	// With its vCPUs and its descriptor closed KVM destroys the VM, so
	// unmapping guest memory afterwards no longer makes KVM zap its
	// memslots page by page through the MMU notifier.
	unix.Close(vm.fd)
	if vm.mem != nil {
		unix.Munmap(vm.mem)
		vm.mem = nil
	}
	if vm.memfd >= 0 {
		unix.Close(vm.memfd)
	}
	vm.dev.Close()
	runtime.KeepAlive(vm)
	return nil
}

// ptAllocator hands out page-table pages from the page-table memslot.
type ptAllocator struct {
	mu   sync.Mutex
	next uint64
	end  uint64
	free []uint64
	// pending pages were freed after a vCPU may have shadowed them; they
	// become free at the next invalidate.
	pending []uint64
}

func (p *ptAllocator) init(start, end uint64) { p.next, p.end = start, end }

func (p *ptAllocator) alloc(vm *VM) (uint64, error) {
	p.mu.Lock()
	var pa uint64
	switch {
	case len(p.free) > 0:
		pa = p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
	case p.next < p.end:
		pa = p.next
		p.next += pageSize
	case len(p.pending) > 0:
		pending := p.pending
		p.pending = nil
		p.mu.Unlock()
		if err := vm.invalidate(); err != nil {
			return 0, err
		}
		p.mu.Lock()
		p.free = append(p.free, pending...)
		pa = p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
	default:
		p.mu.Unlock()
		return 0, fmt.Errorf("kvm: page-table memory exhausted (%d bytes): %w", p.end-ptGPA, unix.ENOMEM)
	}
	p.mu.Unlock()
	clear(vm.mem[pa : pa+pageSize])
	return pa, nil
}

func (p *ptAllocator) release(pages []uint64, ran bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ran {
		p.pending = append(p.pending, pages...)
	} else {
		p.free = append(p.free, pages...)
	}
}

func (vm *VM) hostAddr(gpa uint64) uint64 { return hostAddrOf(vm.mem, gpa) }

// pid is this process's pid, for tgkill.
var pid = os.Getpid()
