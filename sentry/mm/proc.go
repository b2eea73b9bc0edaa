package mm

// TryIncUsers takes a user reference on m unless its last user has
// already gone (the memory is released then). /proc takes one while it
// reads another process's memory or mappings, so a concurrent exit
// cannot free them underneath.
func (m *MM) TryIncUsers() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.users <= 0 {
		return false
	}
	m.users++
	return true
}

// ResidentPages counts the pages m has mapped, split into those that are
// anonymous (no file behind them) and those backed by files, for
// /proc/[pid]/status and statm.
func (m *MM) ResidentPages() (anon, file uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for a := range m.pages {
		v := m.findLocked(a)
		switch {
		case v == nil:
		case v.File != nil:
			file++
		default:
			anon++
		}
	}
	return anon, file
}

// ResidentIn counts the pages mapped in [start, end), for
// /proc/[pid]/smaps.
func (m *MM) ResidentIn(start, end uint64) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n uint64
	if end <= start {
		return 0
	}
	if (end-start)/pageSize < uint64(len(m.pages)) {
		for a := start &^ (pageSize - 1); a < end; a += pageSize {
			if _, ok := m.pages[a]; ok {
				n++
			}
		}
		return n
	}
	for a := range m.pages {
		if a >= start && a < end {
			n++
		}
	}
	return n
}

// BrkRange returns where the heap starts and the current break.
func (m *MM) BrkRange() (start, brk uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.brkStart, m.brk
}

// PageSize is the size of the pages counted by ResidentPages.
const PageSize = pageSize
