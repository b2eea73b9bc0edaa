package mm

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/platform"
)

// CopyIn copies len(dst) bytes from user address addr. It returns how many
// bytes were copied and EFAULT if the range is not readable user memory.
func (m *MM) CopyIn(ctx context.Context, addr uint64, dst []byte) (int, error) {
	return m.copy(ctx, addr, dst, false)
}

// CopyOut copies src to user address addr.
func (m *MM) CopyOut(ctx context.Context, addr uint64, src []byte) (int, error) {
	return m.copy(ctx, addr, src, true)
}

// ZeroOut writes n zero bytes at addr.
func (m *MM) ZeroOut(ctx context.Context, addr, n uint64) error {
	zero := make([]byte, min(n, 1<<16))
	for n > 0 {
		c := min(n, uint64(len(zero)))
		if _, err := m.CopyOut(ctx, addr, zero[:c]); err != nil {
			return err
		}
		addr += c
		n -= c
	}
	return nil
}

func (m *MM) copy(ctx context.Context, addr uint64, b []byte, write bool) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if addr >= platform.UserTop || uint64(len(b)) > platform.UserTop-addr {
		return 0, unix.EFAULT
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	done := 0
	for done < len(b) {
		a := addr + uint64(done)
		pa := a &^ (pageSize - 1)
		p, err := m.accessLocked(ctx, pa, write)
		if err != nil {
			if IsOOM(err) {
				return done, err
			}
			return done, unix.EFAULT
		}
		host := m.frames.Bytes(p.gpa)[a-pa:]
		var n int
		if write {
			n = copy(host, b[done:])
		} else {
			n = copy(b[done:], host)
		}
		done += n
	}
	return done, nil
}

// IsOOM says whether a copy to or from user memory failed because the
// memory limit was reached (a *FaultError with OOM set, which reads as
// EFAULT to the syscall layer): the kernel then OOM-kills the process
// that made the access, as Linux does when a fault inside a system call
// cannot be served.
func IsOOM(err error) bool {
	var fe *FaultError
	return errors.As(err, &fe) && fe.OOM
}

// accessLocked returns the page at pa for a sentry access, faulting it in
// with the VMA's permission checks.
func (m *MM) accessLocked(ctx context.Context, pa uint64, write bool) (*page, error) {
	if p, ok := m.pages[pa]; ok && (!write || !p.cow) {
		v := m.findLocked(pa)
		if v == nil || v.Prot&platform.PermRead == 0 && !write || write && v.Prot&platform.PermWrite == 0 {
			return nil, unix.EFAULT
		}
		return p, nil
	}
	p, err := m.faultLocked(ctx, pa, write, false, false)
	if err != nil {
		var fe *FaultError
		if errors.As(err, &fe) {
			if fe.OOM {
				// The caller's process is to be OOM-killed, as a
				// copy_to_user that faults past a cgroup's limit
				// does on Linux (see IsOOM).
				return nil, fe
			}
			return nil, unix.EFAULT
		}
		return nil, err
	}
	return p, nil
}

// CopyInString reads a NUL-terminated string of at most max bytes.
func (m *MM) CopyInString(ctx context.Context, addr uint64, max int) (string, error) {
	var out []byte
	buf := make([]byte, 256)
	for len(out) < max {
		// Read up to the end of the page so as not to fault needlessly.
		n := min(len(buf), int(pageSize-(addr%pageSize)), max-len(out))
		c, err := m.CopyIn(ctx, addr, buf[:n])
		if err != nil {
			return "", err
		}
		for i := 0; i < c; i++ {
			if buf[i] == 0 {
				return string(append(out, buf[:i]...)), nil
			}
		}
		out = append(out, buf[:c]...)
		addr += uint64(c)
	}
	return "", unix.ENAMETOOLONG
}

// Brk sets the program break (0 queries it) and returns the new break.
func (m *MM) Brk(ctx context.Context, addr uint64) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if addr < m.brkStart || addr >= platform.UserTop {
		return m.brk
	}
	oldEnd, _ := pageUp(m.brk)
	newEnd, _ := pageUp(addr)
	switch {
	case newEnd > oldEnd:
		if m.overlapsLocked(oldEnd, newEnd) {
			return m.brk
		}
		if v := m.findLocked(oldEnd - 1); v != nil && v.Name == "[heap]" && v.End == oldEnd {
			v.End = newEnd
		} else {
			m.insertLocked(&VMA{Start: oldEnd, End: newEnd, Prot: platform.PermRead | platform.PermWrite, Name: "[heap]"})
		}
	case newEnd < oldEnd:
		m.as.Begin()
		m.unmapLocked(ctx, newEnd, oldEnd)
		if err := m.as.Commit(); err != nil {
			return m.brk
		}
	}
	m.brk = addr
	return addr
}

// SetBrkStart sets where the heap starts (after the loaded image).
func (m *MM) SetBrkStart(a uint64) {
	m.mu.Lock()
	a, _ = pageUp(a)
	m.brkStart, m.brk = a, a
	m.mu.Unlock()
}

// Fork returns a copy-on-write copy of m for a new process.
func (m *MM) Fork(ctx context.Context, mach platform.Machine) (*MM, error) {
	n, err := New(mach, m.frames)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n.brkStart, n.brk = m.brkStart, m.brk
	n.ArgStart, n.ArgEnd, n.EnvStart, n.EnvEnd = m.ArgStart, m.ArgEnd, m.EnvStart, m.EnvEnd
	n.Auxv, n.Exe = m.Auxv, m.Exe
	m.as.Begin()
	defer m.as.Commit()
	for _, v := range m.vmas {
		c := *v
		if c.File != nil {
			c.File.IncRef()
		}
		if c.shm != nil {
			c.shm.mu.Lock()
			c.shm.refs++
			c.shm.mu.Unlock()
		}
		n.vmas = append(n.vmas, &c)
		for a := v.Start; a < v.End; a += pageSize {
			p, ok := m.pages[a]
			if !ok {
				continue
			}
			m.frames.IncRef(p.gpa)
			np := &page{gpa: p.gpa}
			if !v.Shared {
				np.cow = true
				if !p.cow {
					p.cow = true
					if v.Prot&platform.PermWrite != 0 {
						m.as.Map(a, p.gpa, pageSize, m.ptePerm(v, p))
					}
				}
			}
			n.pages[a] = np
			if err := n.as.Map(a, np.gpa, pageSize, n.ptePerm(&c, np)); err != nil {
				return nil, err
			}
		}
	}
	return n, nil
}

// VMAs returns a copy of the mappings, for /proc/[pid]/maps.
func (m *MM) VMAs() []VMA {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]VMA, len(m.vmas))
	for i, v := range m.vmas {
		out[i] = *v
	}
	return out
}

// Resident returns the bytes of memory mapped in m.
func (m *MM) Resident() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.pages)) * pageSize
}

// AddFrames adds the guest frames m maps to set, so that frames shared
// by several address spaces (after fork, shared mappings) are counted
// once.
func (m *MM) AddFrames(set map[uint64]struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.pages {
		set[p.gpa] = struct{}{}
	}
}

// Frames returns the allocator m draws from.
func (m *MM) Frames() *Frames { return m.frames }

// ZeroForce zeroes [addr, addr+n) whatever the mapping's protection (the
// loader clears the bss tail of a segment's last file page).
func (m *MM) ZeroForce(ctx context.Context, addr, n uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for n > 0 {
		pa := addr &^ (pageSize - 1)
		v := m.findLocked(pa)
		if v == nil {
			return unix.EFAULT
		}
		p, ok := m.pages[pa]
		if !ok || p.cow {
			prot := v.Prot
			v.Prot |= platform.PermRead | platform.PermWrite
			var err error
			p, err = m.faultLocked(ctx, pa, true, false, false)
			v.Prot = prot
			if err != nil {
				return err
			}
			if err := m.as.Map(pa, p.gpa, pageSize, m.ptePerm(v, p)); err != nil {
				return err
			}
		}
		off := addr - pa
		c := min(n, pageSize-off)
		clear(m.frames.Bytes(p.gpa)[off : off+c])
		addr += c
		n -= c
	}
	return nil
}

// Discard drops the pages of [addr, addr+length) (madvise DONTNEED): a
// private anonymous page reads as zero afterwards, a file page as the file.
func (m *MM) Discard(ctx context.Context, addr, length uint64) error {
	length, ok := pageUp(length)
	if !ok || addr+length < addr || addr+length > platform.UserTop {
		return unix.EINVAL
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.as.Begin()
	for a := addr; a < addr+length; {
		v := m.findLocked(a)
		if v == nil {
			a += pageSize
			continue
		}
		end := min(v.End, addr+length)
		if !v.Shared {
			m.unmapPagesLocked(ctx, v, a, end)
		}
		a = end
	}
	return m.as.Commit()
}

// Sync writes shared file mappings in [addr, addr+length) back (msync).
func (m *MM) Sync(ctx context.Context, addr, length uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.vmas {
		if v.End <= addr || v.Start >= addr+length || !v.Shared || v.File == nil {
			continue
		}
		for a := max(v.Start, addr); a < min(v.End, addr+length); a += pageSize {
			if p, ok := m.pages[a]; ok {
				v.File.Pwrite(ctx, m.frames.Bytes(p.gpa), int64(v.Off+(a-v.Start)))
			}
		}
	}
	return nil
}

// Mincore reports which pages of [addr, addr+length) are resident.
func (m *MM) Mincore(addr, length uint64) ([]byte, error) {
	if addr%pageSize != 0 {
		return nil, unix.EINVAL
	}
	length, ok := pageUp(length)
	if !ok || addr+length > platform.UserTop || length > 1<<36 {
		return nil, unix.ENOMEM
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]byte, length/pageSize)
	for i := range out {
		a := addr + uint64(i)*pageSize
		if m.findLocked(a) == nil {
			return nil, unix.ENOMEM
		}
		if _, ok := m.pages[a]; ok {
			out[i] = 1
		}
	}
	return out, nil
}

// Remap implements mremap: grow or shrink in place, or move when allowed.
func (m *MM) Remap(ctx context.Context, old, oldLen, newLen uint64, flags uint32, newAddr uint64) (uint64, error) {
	const mayMove, fixed, dontUnmap = 1, 2, 4
	if old%pageSize != 0 || flags&^(mayMove|fixed|dontUnmap) != 0 || (flags&fixed != 0 && flags&mayMove == 0) {
		return 0, unix.EINVAL
	}
	oldLen, ok1 := pageUp(oldLen)
	newLen, ok2 := pageUp(newLen)
	if !ok1 || !ok2 || newLen == 0 || old+oldLen < old || old+oldLen > platform.UserTop || newLen > platform.UserTop {
		return 0, unix.EINVAL
	}
	m.mu.Lock()
	v := m.findLocked(old)
	if v == nil || old+oldLen > v.End && oldLen != 0 {
		m.mu.Unlock()
		return 0, unix.EFAULT
	}
	if flags&fixed == 0 {
		if newLen <= oldLen {
			m.mu.Unlock()
			if newLen < oldLen {
				if err := m.Unmap(ctx, old+newLen, oldLen-newLen); err != nil {
					return 0, err
				}
			}
			return old, nil
		}
		// Grow in place if the VMA ends here and the space is free.
		if v.End == old+oldLen && !m.overlapsLocked(old+oldLen, old+newLen) && old+newLen <= platform.UserTop {
			v.End = old + newLen
			m.mu.Unlock()
			return old, nil
		}
		if flags&mayMove == 0 {
			m.mu.Unlock()
			return 0, unix.ENOMEM
		}
		var err error
		if newAddr, err = m.findGapLocked(newLen); err != nil {
			m.mu.Unlock()
			return 0, err
		}
	} else if newAddr%pageSize != 0 || newAddr+newLen > platform.UserTop || newAddr < old+oldLen && old < newAddr+newLen {
		m.mu.Unlock()
		return 0, unix.EINVAL
	}
	// Move: a new VMA at newAddr that takes the old pages.
	m.as.Begin()
	m.unmapLocked(ctx, newAddr, newAddr+newLen)
	nv := *v
	nv.Start, nv.End = newAddr, newAddr+newLen
	if v.File != nil || v.shm != nil {
		nv.Off = v.Off + (old - v.Start)
	}
	if nv.File != nil {
		nv.File.IncRef()
	}
	if nv.shm != nil {
		nv.shm.mu.Lock()
		nv.shm.refs++
		nv.shm.mu.Unlock()
	}
	m.insertLocked(&nv)
	for off := uint64(0); off < min(oldLen, newLen); off += pageSize {
		p, ok := m.pages[old+off]
		if !ok {
			continue
		}
		m.frames.IncRef(p.gpa)
		np := &page{gpa: p.gpa, cow: p.cow}
		m.pages[newAddr+off] = np
		m.as.Map(newAddr+off, np.gpa, pageSize, m.ptePerm(&nv, np))
	}
	if err := m.as.Commit(); err != nil {
		m.mu.Unlock()
		return 0, err
	}
	m.mu.Unlock()
	if flags&dontUnmap == 0 && oldLen > 0 {
		if err := m.Unmap(ctx, old, oldLen); err != nil {
			return 0, err
		}
	}
	return newAddr, nil
}
