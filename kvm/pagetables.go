package kvm

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
)

const (
	pageSize  = 4096
	pageShift = 12

	pteP  = 1 << 0
	pteW  = 1 << 1
	pteU  = 1 << 2
	pteA  = 1 << 5
	pteD  = 1 << 6
	ptePS = 1 << 7
	pteG  = 1 << 8
	pteNX = 1 << 63

	pteAddrMask = 0x000ffffffffff000
)

// Perm is the access a user mapping allows.
type Perm uint8

const (
	PermRead Perm = 1 << iota
	PermWrite
	PermExec
)

func (p Perm) String() string {
	b := []byte("---")
	if p&PermRead != 0 {
		b[0] = 'r'
	}
	if p&PermWrite != 0 {
		b[1] = 'w'
	}
	if p&PermExec != 0 {
		b[2] = 'x'
	}
	return string(b)
}

// leaf returns the page-table entry for a user page at gpa with perm.
// Accessed and dirty are preset so the guest never writes them back.
func (p Perm) leaf(gpa uint64) uint64 {
	e := gpa | pteP | pteU | pteA
	if p&PermWrite != 0 {
		e |= pteW | pteD
	}
	if p&PermExec == 0 {
		e |= pteNX
	}
	return e
}

func permOf(e uint64) Perm {
	if e&pteP == 0 {
		return 0
	}
	p := PermRead
	if e&pteW != 0 {
		p |= PermWrite
	}
	if e&pteNX == 0 {
		p |= PermExec
	}
	return p
}

// AddressSpace is one set of 4-level page tables: user mappings in the
// lower half, the kernel stub mapping shared in slot 511 of every PML4.
// The tables live in the VM's page-table memslot and are written by the
// host; see VM.invalidate for how changes to present entries reach vCPUs.
type AddressSpace struct {
	vm *VM
	// ran is set once a vCPU has loaded this space; only then can a vCPU
	// hold a stale translation of it.
	ran atomic.Bool

	mu sync.Mutex
	// pml4 is the guest-physical address of the top-level table.
	pml4 uint64
	// tables lists every page-table page this space owns (PML4 first).
	tables   []uint64
	released bool
	// stale is set when a present entry changed and vCPUs must not use
	// their cached translations any more.
	stale bool
	// batch defers the flush of stale entries to Commit.
	batch bool
}

// Begin starts a batch: changes to present mappings made until Commit are
// made visible to the vCPUs together, by one flush in Commit. Until then
// a vCPU may still use the old mappings.
func (as *AddressSpace) Begin() {
	as.mu.Lock()
	as.batch = true
	as.mu.Unlock()
}

// Commit ends a batch and makes its changes visible to every vCPU.
func (as *AddressSpace) Commit() error {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.batch = false
	return as.flushLocked()
}

// NewAddressSpace returns an address space with no user mappings.
func (vm *VM) NewAddressSpace() (*AddressSpace, error) {
	pml4, err := vm.pt.alloc(vm)
	if err != nil {
		return nil, err
	}
	as := &AddressSpace{vm: vm, pml4: pml4, tables: []uint64{pml4}}
	vm.putPTE(pml4+511*8, kpdptGPA|pteP|pteW|pteU|pteA)
	return as, nil
}

// CR3 is the value a vCPU loads to run this space.
func (as *AddressSpace) CR3() uint64 { return as.pml4 }

func checkRange(va, n uint64) error {
	if va%pageSize != 0 || n%pageSize != 0 {
		return fmt.Errorf("kvm: range %#x+%#x is not page aligned", va, n)
	}
	if n == 0 || va+n < va || va+n > UserTop {
		return fmt.Errorf("kvm: range %#x+%#x is outside user space", va, n)
	}
	return nil
}

// walk returns the guest-physical address of the leaf entry for va,
// creating intermediate tables when create is set. ok is false when a
// level is missing and create is not set.
// Preconditions: as.mu is held.
func (as *AddressSpace) walk(va uint64, create bool) (uint64, bool, error) {
	table := as.pml4
	for level := 3; level > 0; level-- {
		idx := (va >> (pageShift + 9*uint(level))) & 511
		slot := table + idx*8
		e := as.vm.getPTE(slot)
		if e&pteP == 0 {
			if !create {
				return 0, false, nil
			}
			next, err := as.vm.pt.alloc(as.vm)
			if err != nil {
				return 0, false, err
			}
			as.tables = append(as.tables, next)
			e = next | pteP | pteW | pteU | pteA
			as.vm.putPTE(slot, e)
		}
		table = e & pteAddrMask
	}
	return table + ((va>>pageShift)&511)*8, true, nil
}

// Map maps n bytes at user address va to guest-physical pa with perm.
// Both must be page aligned and pa must lie in a RAM region of this VM.
// Replacing a present mapping with a different one takes effect on every
// vCPU before Map returns.
func (as *AddressSpace) Map(va, pa, n uint64, perm Perm) error {
	if err := checkRange(va, n); err != nil {
		return err
	}
	if perm == 0 {
		return as.Unmap(va, n)
	}
	if err := as.vm.checkRAM(pa, n); err != nil {
		return err
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.released {
		return fmt.Errorf("kvm: map %#x in a released address space", va)
	}
	for off := uint64(0); off < n; off += pageSize {
		slot, _, err := as.walk(va+off, true)
		if err != nil {
			return fmt.Errorf("kvm: map %#x: %w", va+off, err)
		}
		old := as.vm.getPTE(slot)
		e := perm.leaf(pa + off)
		if old == e {
			continue
		}
		if old&pteP != 0 {
			as.stale = true
		}
		as.vm.putPTE(slot, e)
	}
	return as.flushLocked()
}

// Unmap removes the mappings in [va, va+n). No vCPU can reach the old
// pages once it returns.
func (as *AddressSpace) Unmap(va, n uint64) error {
	if err := checkRange(va, n); err != nil {
		return err
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	as.forEachPresent(va, n, func(slot, e uint64) {
		as.vm.putPTE(slot, 0)
		as.stale = true
	})
	return as.flushLocked()
}

// Protect changes the permission of the present mappings in [va, va+n);
// pages not mapped stay unmapped. Perm 0 unmaps.
func (as *AddressSpace) Protect(va, n uint64, perm Perm) error {
	if err := checkRange(va, n); err != nil {
		return err
	}
	if perm == 0 {
		return as.Unmap(va, n)
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	as.forEachPresent(va, n, func(slot, e uint64) {
		ne := perm.leaf(e & pteAddrMask)
		if ne != e {
			as.vm.putPTE(slot, ne)
			as.stale = true
		}
	})
	return as.flushLocked()
}

// Lookup returns the guest-physical address and permission va maps to.
func (as *AddressSpace) Lookup(va uint64) (pa uint64, perm Perm, ok bool) {
	if va >= UserTop {
		return 0, 0, false
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	slot, found, _ := as.walk(va&^(pageSize-1), false)
	if !found {
		return 0, 0, false
	}
	e := as.vm.getPTE(slot)
	if e&pteP == 0 {
		return 0, 0, false
	}
	return e&pteAddrMask | va&(pageSize-1), permOf(e), true
}

// forEachPresent calls fn for every present leaf in [va, va+n), skipping
// missing tables a whole table at a time.
// Preconditions: as.mu is held.
func (as *AddressSpace) forEachPresent(va, n uint64, fn func(slot, e uint64)) {
	end := va + n
	for a := va; a < end; {
		slot, found, _ := as.walk(a, false)
		if !found {
			// Skip to the next 2 MiB boundary; walk again from there.
			next := (a | (1<<21 - 1)) + 1
			a = next
			continue
		}
		for ; a < end; a += pageSize {
			e := as.vm.getPTE(slot)
			if e&pteP != 0 {
				fn(slot, e)
			}
			slot += 8
			if (a+pageSize)&(1<<21-1) == 0 {
				a += pageSize
				break
			}
		}
	}
}

// flushLocked makes a change to present entries visible to every vCPU.
// Preconditions: as.mu is held.
func (as *AddressSpace) flushLocked() error {
	if !as.stale || as.batch {
		return nil
	}
	as.stale = false
	if !as.ran.Load() {
		return nil
	}
	return as.vm.invalidate()
}

// Release frees the page tables. The space must not be running on any
// vCPU.
func (as *AddressSpace) Release() {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.released {
		return
	}
	as.released = true
	as.vm.pt.release(as.tables, as.ran.Load())
	as.tables = nil
}

func (vm *VM) getPTE(gpa uint64) uint64 {
	return binary.LittleEndian.Uint64(vm.mem[gpa:])
}

func (vm *VM) putPTE(gpa, e uint64) {
	binary.LittleEndian.PutUint64(vm.mem[gpa:], e)
}
