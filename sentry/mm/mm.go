package mm

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/platform"
)

// Layout of a new address space (as Linux places things without ASLR).
const (
	// StackTop is the top of the initial stack.
	StackTop = 0x7ffffffde000 + 0x21000 - pageSize // 0x7fffffffe000
	// DefaultStackSize is the reservation for the main thread's stack.
	DefaultStackSize = 8 << 20
	// mmapTop is where top-down mmap allocation starts, below the stack
	// reservation and a guard gap.
	mmapTop = 0x7ffff7fff000
	// mmapBottom is the lowest address mmap hands out without a hint.
	mmapBottom = 0x10000
	// faultAround is how many pages a fault maps at once: every fault is
	// a guest exit, so neighbours of the same mapping come along.
	faultAround = 16
)

// File is what a file-backed mapping reads from (and, when shared and
// writable, writes back to).
type File interface {
	Pread(ctx context.Context, p []byte, off int64) (int, error)
	Pwrite(ctx context.Context, p []byte, off int64) (int, error)
	Size(ctx context.Context) (int64, error)
	Name() string
	IncRef()
	DecRef(ctx context.Context)
}

// Prot is a mapping's protection (PROT_READ|PROT_WRITE|PROT_EXEC bits).
type Prot = platform.Perm

// shared is the page set of a MAP_SHARED mapping, shared by every process
// that maps it (across fork); frames are keyed by page offset.
type shared struct {
	mu     sync.Mutex
	refs   int
	frames map[uint64]uint64
}

// VMA is one mapping.
type VMA struct {
	Start, End uint64
	Prot       Prot
	Shared     bool
	GrowsDown  bool
	File       File
	Off        uint64 // file offset of Start
	Name       string // [heap], [stack], [vdso] …
	shm        *shared
	// Locked and the like are not modelled.
}

func (v *VMA) contains(a uint64) bool { return a >= v.Start && a < v.End }

type page struct {
	gpa uint64
	// cow: the frame may be shared with another address space; a write
	// must copy it first.
	cow bool
}

// MM is one address space: what the processes sharing it (threads, vfork
// children) see.
type MM struct {
	frames *Frames
	as     platform.AddressSpace

	mu    sync.Mutex
	vmas  []*VMA // sorted, non-overlapping
	pages map[uint64]*page
	// brk
	brkStart, brk uint64
	// Process metadata the kernel shows in /proc.
	ArgStart, ArgEnd, EnvStart, EnvEnd uint64
	Auxv                               []byte
	Exe                                string
	users                              int
}

// New returns an empty address space.
func New(m platform.Machine, frames *Frames) (*MM, error) {
	as, err := m.NewAddressSpace()
	if err != nil {
		return nil, fmt.Errorf("new address space: %w", err)
	}
	return &MM{frames: frames, as: as, pages: map[uint64]*page{}, users: 1}, nil
}

// AddressSpace returns the platform address space to run in.
func (m *MM) AddressSpace() platform.AddressSpace { return m.as }

// IncUsers and DecUsers count the tasks using m; the last DecUsers
// releases everything.
func (m *MM) IncUsers() {
	m.mu.Lock()
	m.users++
	m.mu.Unlock()
}

// DecUsers drops a user; the last one frees all memory.
func (m *MM) DecUsers(ctx context.Context) {
	m.mu.Lock()
	m.users--
	last := m.users == 0
	m.mu.Unlock()
	if last {
		m.release(ctx)
	}
}

func (m *MM) release(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.as.Begin()
	for _, v := range m.vmas {
		m.unmapPagesLocked(ctx, v, v.Start, v.End)
		m.dropVMA(ctx, v)
	}
	m.vmas = nil
	m.as.Commit()
	m.as.Release()
}

func (m *MM) dropVMA(ctx context.Context, v *VMA) {
	if v.File != nil {
		v.File.DecRef(ctx)
	}
	if v.shm != nil {
		v.shm.mu.Lock()
		v.shm.refs--
		if v.shm.refs == 0 {
			for _, gpa := range v.shm.frames {
				m.frames.DecRef(gpa)
			}
			v.shm.frames = nil
		}
		v.shm.mu.Unlock()
	}
}

// MapOpts describes an mmap.
type MapOpts struct {
	Addr, Length uint64
	Prot         Prot
	Shared       bool
	Fixed        bool // MAP_FIXED: replace what is there
	NoReplace    bool // MAP_FIXED_NOREPLACE
	GrowsDown    bool
	Populate     bool
	File         File // nil: anonymous
	Off          uint64
	Name         string
}

func pageUp(a uint64) (uint64, bool) {
	r := (a + pageSize - 1) &^ (pageSize - 1)
	return r, r >= a
}

// Map creates a mapping and returns its address.
func (m *MM) Map(ctx context.Context, o MapOpts) (uint64, error) {
	length, ok := pageUp(o.Length)
	if o.Length == 0 || !ok || length > platform.UserTop {
		return 0, unix.EINVAL
	}
	if o.Off%pageSize != 0 || o.Off+length < o.Off {
		return 0, unix.EINVAL
	}
	// As under a cgroup memory limit on Linux, a mapping larger than the
	// limit is allowed; the process that touches more than the limit is
	// OOM-killed (and MAP_POPULATE beyond it gives ENOMEM).
	m.mu.Lock()
	defer m.mu.Unlock()
	var addr uint64
	switch {
	case o.Fixed || o.NoReplace:
		if o.Addr%pageSize != 0 || o.Addr+length > platform.UserTop || o.Addr+length < o.Addr || o.Addr < mmapBottom {
			return 0, unix.EINVAL
		}
		addr = o.Addr
		if o.NoReplace && m.overlapsLocked(addr, addr+length) {
			return 0, unix.EEXIST
		}
	default:
		hint := o.Addr &^ (pageSize - 1)
		if hint >= mmapBottom && hint+length <= platform.UserTop && hint+length > hint && !m.overlapsLocked(hint, hint+length) {
			addr = hint
		} else {
			var err error
			if addr, err = m.findGapLocked(length); err != nil {
				return 0, err
			}
		}
	}
	v := &VMA{Start: addr, End: addr + length, Prot: o.Prot, Shared: o.Shared, GrowsDown: o.GrowsDown, File: o.File, Off: o.Off, Name: o.Name}
	if o.Shared {
		v.shm = &shared{refs: 1, frames: map[uint64]uint64{}}
	}
	if o.File != nil {
		o.File.IncRef()
	}
	m.as.Begin()
	m.unmapLocked(ctx, addr, addr+length)
	m.insertLocked(v)
	err := m.as.Commit()
	if err == nil && o.Populate {
		err = m.populateLocked(ctx, v, v.Start, v.End)
	}
	if err != nil {
		m.as.Begin()
		m.unmapLocked(ctx, addr, addr+length)
		m.as.Commit()
		return 0, err
	}
	return addr, nil
}

func (m *MM) overlapsLocked(start, end uint64) bool {
	for _, v := range m.vmas {
		if v.Start < end && start < v.End {
			return true
		}
	}
	return false
}

// findGapLocked finds the highest free range of length below mmapTop.
func (m *MM) findGapLocked(length uint64) (uint64, error) {
	top := uint64(mmapTop)
	for i := len(m.vmas) - 1; i >= -1; i-- {
		var lo uint64 = mmapBottom
		if i >= 0 {
			lo = m.vmas[i].End
		}
		if lo >= top {
			if i >= 0 && m.vmas[i].Start < top {
				top = m.vmas[i].Start
			}
			continue
		}
		if top-lo >= length {
			return top - length, nil
		}
		if i >= 0 && m.vmas[i].Start < top {
			top = m.vmas[i].Start
		}
	}
	return 0, unix.ENOMEM
}

func (m *MM) insertLocked(v *VMA) {
	i := sort.Search(len(m.vmas), func(i int) bool { return m.vmas[i].Start >= v.Start })
	m.vmas = append(m.vmas, nil)
	copy(m.vmas[i+1:], m.vmas[i:])
	m.vmas[i] = v
}

// Unmap removes the mappings in [addr, addr+length).
func (m *MM) Unmap(ctx context.Context, addr, length uint64) error {
	length, ok := pageUp(length)
	if addr%pageSize != 0 || length == 0 || !ok || addr+length < addr || addr+length > platform.UserTop {
		return unix.EINVAL
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.as.Begin()
	m.unmapLocked(ctx, addr, addr+length)
	return m.as.Commit()
}

// unmapLocked removes [start, end), splitting VMAs at the edges.
// Preconditions: m.mu is held; inside an address-space batch.
func (m *MM) unmapLocked(ctx context.Context, start, end uint64) {
	m.splitLocked(start)
	m.splitLocked(end)
	kept := m.vmas[:0]
	var gone []*VMA
	for _, v := range m.vmas {
		if v.Start >= start && v.End <= end {
			gone = append(gone, v)
			continue
		}
		kept = append(kept, v)
	}
	m.vmas = kept
	for _, v := range gone {
		m.unmapPagesLocked(ctx, v, v.Start, v.End)
		m.dropVMA(ctx, v)
	}
}

// splitLocked splits the VMA containing a (if any) at a.
func (m *MM) splitLocked(a uint64) {
	for i, v := range m.vmas {
		if v.Start < a && a < v.End {
			n := *v
			n.Start = a
			if n.File != nil {
				n.Off = v.Off + (a - v.Start)
				n.File.IncRef()
			}
			if n.shm != nil {
				n.shm.mu.Lock()
				n.shm.refs++
				n.shm.mu.Unlock()
				n.Off = v.Off + (a - v.Start)
			}
			v.End = a
			m.vmas = append(m.vmas, nil)
			copy(m.vmas[i+2:], m.vmas[i+1:])
			m.vmas[i+1] = &n
			return
		}
	}
}

// unmapPagesLocked drops the pages of v in [start, end) and their PTEs.
func (m *MM) unmapPagesLocked(ctx context.Context, v *VMA, start, end uint64) {
	any := false
	for a := start; a < end; a += pageSize {
		p, ok := m.pages[a]
		if !ok {
			continue
		}
		any = true
		if v.Shared && v.File != nil && v.Prot&platform.PermWrite != 0 {
			// Write a shared file mapping back before letting go.
			v.File.Pwrite(ctx, m.frames.Bytes(p.gpa), int64(v.Off+(a-v.Start)))
		}
		m.frames.DecRef(p.gpa)
		delete(m.pages, a)
	}
	if any {
		m.as.Unmap(start, end-start)
	}
}

// Protect changes the protection of [addr, addr+length).
func (m *MM) Protect(ctx context.Context, addr, length uint64, prot Prot) error {
	length, ok := pageUp(length)
	if addr%pageSize != 0 || !ok || addr+length < addr || addr+length > platform.UserTop {
		return unix.EINVAL
	}
	if length == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Every page of the range must be mapped.
	for a := addr; a < addr+length; {
		v := m.findLocked(a)
		if v == nil {
			return unix.ENOMEM
		}
		a = v.End
	}
	m.splitLocked(addr)
	m.splitLocked(addr + length)
	m.as.Begin()
	for _, v := range m.vmas {
		if v.Start >= addr && v.End <= addr+length {
			v.Prot = prot
			for a := v.Start; a < v.End; a += pageSize {
				if p, ok := m.pages[a]; ok {
					m.as.Map(a, p.gpa, pageSize, m.ptePerm(v, p))
				}
			}
		}
	}
	return m.as.Commit()
}

// ptePerm is what the page table allows for page p of v: copy-on-write
// pages stay read-only until written.
func (m *MM) ptePerm(v *VMA, p *page) Prot {
	perm := v.Prot
	if p.cow {
		perm &^= platform.PermWrite
	}
	if perm&(platform.PermWrite|platform.PermExec) != 0 {
		perm |= platform.PermRead
	}
	return perm
}

func (m *MM) findLocked(a uint64) *VMA {
	i := sort.Search(len(m.vmas), func(i int) bool { return m.vmas[i].End > a })
	if i < len(m.vmas) && m.vmas[i].contains(a) {
		return m.vmas[i]
	}
	return nil
}

// FaultError says why a fault cannot be resolved.
type FaultError struct {
	Addr uint64
	// Code is SEGV_MAPERR (1) or SEGV_ACCERR (2) for SIGSEGV; Bus is set
	// for SIGBUS (a file mapping past the end of its file).
	Code int32
	Bus  bool
	// OOM: the memory limit was reached.
	OOM bool
}

func (e *FaultError) Error() string {
	switch {
	case e.OOM:
		return fmt.Sprintf("out of memory at %#x", e.Addr)
	case e.Bus:
		return fmt.Sprintf("bus error at %#x", e.Addr)
	case e.Code == 1:
		return fmt.Sprintf("no mapping at %#x", e.Addr)
	}
	return fmt.Sprintf("access denied at %#x", e.Addr)
}

// HandleFault resolves a user fault at addr, or returns a *FaultError.
func (m *MM) HandleFault(ctx context.Context, addr uint64, write, exec bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.faultLocked(ctx, addr&^(pageSize-1), write, exec, true)
	return err
}

// faultLocked makes page a present (and private-writable if write),
// returning its page.
func (m *MM) faultLocked(ctx context.Context, a uint64, write, exec, around bool) (*page, error) {
	v := m.findLocked(a)
	if v == nil {
		v = m.growStackLocked(a)
		if v == nil {
			return nil, &FaultError{Addr: a, Code: 1}
		}
	}
	if (write && v.Prot&platform.PermWrite == 0) || (exec && v.Prot&platform.PermExec == 0) || v.Prot == 0 {
		return nil, &FaultError{Addr: a, Code: 2}
	}
	if p, ok := m.pages[a]; ok {
		if write && p.cow {
			if err := m.breakCOWLocked(v, a, p); err != nil {
				return nil, err
			}
			if err := m.as.Map(a, p.gpa, pageSize, m.ptePerm(v, p)); err != nil {
				return nil, err
			}
		} else if err := m.as.Map(a, p.gpa, pageSize, m.ptePerm(v, p)); err != nil {
			// The PTE already says so; re-mapping is harmless.
			return nil, err
		}
		return p, nil
	}
	start, end := a, a+pageSize
	if around {
		start = max(v.Start, a-faultAround/2*pageSize)
		if a < faultAround/2*pageSize {
			start = v.Start
		}
		end = min(v.End, a+faultAround/2*pageSize)
	}
	var self *page
	for b := start; b < end; b += pageSize {
		if _, ok := m.pages[b]; ok {
			continue
		}
		p, err := m.populatePageLocked(ctx, v, b)
		if err != nil {
			if b == a {
				return nil, err
			}
			continue
		}
		if b == a {
			self = p
		}
	}
	if self == nil {
		return nil, &FaultError{Addr: a, Code: 1}
	}
	return self, nil
}

// populatePageLocked gives page a of v a frame and maps it.
func (m *MM) populatePageLocked(ctx context.Context, v *VMA, a uint64) (*page, error) {
	off := v.Off + (a - v.Start)
	var gpa uint64
	if v.shm != nil {
		v.shm.mu.Lock()
		g, ok := v.shm.frames[off]
		if !ok {
			var err error
			if g, err = m.newFrameLocked(ctx, v, a, off); err != nil {
				v.shm.mu.Unlock()
				return nil, err
			}
			v.shm.frames[off] = g
		}
		m.frames.IncRef(g)
		v.shm.mu.Unlock()
		gpa = g
	} else {
		var err error
		if gpa, err = m.newFrameLocked(ctx, v, a, off); err != nil {
			return nil, err
		}
	}
	p := &page{gpa: gpa}
	m.pages[a] = p
	if err := m.as.Map(a, gpa, pageSize, m.ptePerm(v, p)); err != nil {
		return nil, err
	}
	return p, nil
}

// newFrameLocked allocates a frame with the content page a of v starts
// with: zeros, or the file's bytes.
func (m *MM) newFrameLocked(ctx context.Context, v *VMA, a, off uint64) (uint64, error) {
	gpa, err := m.frames.Alloc()
	if err != nil {
		if errors.Is(err, ErrNoMemory) {
			return 0, &FaultError{Addr: a, OOM: true}
		}
		return 0, err
	}
	if v.File != nil {
		size, err := v.File.Size(ctx)
		if err == nil && int64(off) >= size {
			m.frames.DecRef(gpa)
			return 0, &FaultError{Addr: a, Bus: true}
		}
		if _, err := v.File.Pread(ctx, m.frames.Bytes(gpa), int64(off)); err != nil && err.Error() != "EOF" {
			// Short reads leave zeros, as past EOF within the page.
			_ = err
		}
	}
	return gpa, nil
}

// breakCOWLocked gives page a its own copy of its frame.
func (m *MM) breakCOWLocked(v *VMA, a uint64, p *page) error {
	if m.frames.Refs(p.gpa) == 1 {
		p.cow = false
		return nil
	}
	gpa, err := m.frames.Alloc()
	if err != nil {
		if errors.Is(err, ErrNoMemory) {
			return &FaultError{Addr: a, OOM: true}
		}
		return err
	}
	copy(m.frames.Bytes(gpa), m.frames.Bytes(p.gpa))
	m.frames.DecRef(p.gpa)
	p.gpa = gpa
	p.cow = false
	return nil
}

// growStackLocked extends a MAP_GROWSDOWN mapping down to a, if a is just
// below one (within its guard gap).
func (m *MM) growStackLocked(a uint64) *VMA {
	for _, v := range m.vmas {
		if v.GrowsDown && a < v.Start && v.Start-a <= 256*pageSize {
			if m.overlapsLocked(a, v.Start) {
				return nil
			}
			v.Start = a
			return v
		}
	}
	return nil
}

// populateLocked faults in every page of [start, end) of v.
func (m *MM) populateLocked(ctx context.Context, v *VMA, start, end uint64) error {
	for a := start; a < end; a += pageSize {
		if _, ok := m.pages[a]; ok {
			continue
		}
		if _, err := m.populatePageLocked(ctx, v, a); err != nil {
			var fe *FaultError
			if errors.As(err, &fe) && fe.OOM {
				return unix.ENOMEM
			}
			if errors.As(err, &fe) && fe.Bus {
				return nil
			}
			return err
		}
	}
	return nil
}

// MapFrames maps the given frames at a free address (or at addr with
// fixed) as a private mapping named name, taking a reference on each:
// the vDSO and its parameter page.
func (m *MM) MapFrames(ctx context.Context, addr uint64, fixed bool, frames []uint64, prot Prot, name string) (uint64, error) {
	length := uint64(len(frames)) * pageSize
	a, err := m.Map(ctx, MapOpts{Addr: addr, Length: length, Fixed: fixed, Prot: prot, Name: name})
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.findLocked(a)
	for i, gpa := range frames {
		va := a + uint64(i)*pageSize
		m.frames.IncRef(gpa)
		// cow: a write after mprotect copies the page rather than
		// changing what every process shares.
		p := &page{gpa: gpa, cow: true}
		m.pages[va] = p
		if err := m.as.Map(va, gpa, pageSize, m.ptePerm(v, p)); err != nil {
			return 0, err
		}
	}
	return a, nil
}
