// Package lock implements the advisory locks of one file: POSIX record
// locks and open-file-description (OFD) record locks (fcntl F_SETLK,
// F_GETLK, F_OFD_SETLK, F_OFD_GETLK) and whole-file flock(2) locks.
//
// Nothing here blocks. A request that conflicts returns unix.EAGAIN; a
// caller that wants to wait (F_SETLKW, flock without LOCK_NB) registers on
// Queue, which is notified whenever a lock is released, and retries.
package lock

import (
	"math"
	"sort"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/waiter"
)

// Type is the kind of a lock.
type Type int

// Lock types.
const (
	Unlock Type = iota
	Read        // shared
	Write       // exclusive
)

// EOF is the End of a range that extends to the end of the file and
// beyond ("length 0" in fcntl).
const EOF = math.MaxUint64

// Owner identifies who holds a record lock: the syscall layer passes its
// process (thread group) for POSIX locks and the open file for OFD locks.
// It must be comparable.
type Owner any

// Range is the byte range [Start, End).
type Range struct {
	Start, End uint64
}

// Overlaps says whether two ranges share a byte.
func (r Range) Overlaps(o Range) bool { return r.Start < o.End && o.Start < r.End }

// Record is one held record lock.
type Record struct {
	Range
	Type  Type
	Owner Owner
	// PID is what F_GETLK reports for the lock: the owner's process id
	// for POSIX locks, -1 for OFD locks.
	PID int32
}

// Locks holds every advisory lock on one file.
type Locks struct {
	// Queue is notified (waiter.EventIn|waiter.EventOut) whenever a
	// lock is released or downgraded, so waiters retry.
	Queue waiter.Queue

	mu sync.Mutex
	// records is sorted by Start; the records of one owner never overlap.
	records []Record
	// flocks maps an open file to the flock type it holds.
	flocks map[Owner]Type
}

func conflicts(a, b Type) bool { return a == Write || b == Write }

// TestRecord returns a lock that would stop owner from taking a lock of
// type t on r, as F_GETLK does; ok is false when there is none.
func (l *Locks) TestRecord(owner Owner, t Type, r Range) (Record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, rec := range l.records {
		if rec.Owner != owner && rec.Overlaps(r) && conflicts(rec.Type, t) {
			return rec, true
		}
	}
	return Record{}, false
}

// SetRecord takes (t is Read or Write) or releases (t is Unlock) owner's
// lock on r. A conflicting lock held by another owner gives unix.EAGAIN.
// An owner's new lock replaces its own locks on the range, splitting and
// merging them as POSIX requires.
func (l *Locks) SetRecord(owner Owner, pid int32, t Type, r Range) error {
	if r.Start >= r.End {
		return unix.EINVAL
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if t != Unlock {
		for _, rec := range l.records {
			if rec.Owner != owner && rec.Overlaps(r) && conflicts(rec.Type, t) {
				return unix.EAGAIN
			}
		}
	}
	released := false
	out := make([]Record, 0, len(l.records)+2)
	for _, rec := range l.records {
		if rec.Owner != owner || !rec.Overlaps(r) {
			out = append(out, rec)
			continue
		}
		if rec.Type == Write && t != Write || t == Unlock {
			released = true
		}
		if rec.Start < r.Start {
			left := rec
			left.End = r.Start
			out = append(out, left)
		}
		if rec.End > r.End {
			right := rec
			right.Start = r.End
			out = append(out, right)
		}
	}
	if t != Unlock {
		out = append(out, Record{Range: r, Type: t, Owner: owner, PID: pid})
	}
	l.records = mergeRecords(out)
	if released {
		l.notify()
	}
	return nil
}

// mergeRecords sorts records and joins touching records of one owner and
// type.
func mergeRecords(rs []Record) []Record {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Start < rs[j].Start })
	out := rs[:0]
	for _, r := range rs {
		merged := false
		for i := len(out) - 1; i >= 0; i-- {
			o := &out[i]
			if o.Owner == r.Owner && o.Type == r.Type && o.End >= r.Start && o.Start <= r.End {
				if r.End > o.End {
					o.End = r.End
				}
				merged = true
				break
			}
		}
		if !merged {
			out = append(out, r)
		}
	}
	return out
}

// ReleaseOwner drops every record lock owner holds: POSIX locks when the
// process closes any descriptor of the file, OFD locks when the open file
// is released.
func (l *Locks) ReleaseOwner(owner Owner) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.records[:0]
	released := false
	for _, rec := range l.records {
		if rec.Owner == owner {
			released = true
			continue
		}
		out = append(out, rec)
	}
	clear(l.records[len(out):])
	l.records = out
	if l.flocks != nil {
		if _, ok := l.flocks[owner]; ok {
			delete(l.flocks, owner)
			released = true
		}
	}
	if released {
		l.notify()
	}
}

// Flock takes (Read for LOCK_SH, Write for LOCK_EX) or releases (Unlock)
// owner's flock lock. A conflict gives unix.EWOULDBLOCK. As in Linux, a
// conversion is not atomic: the old lock is released first.
func (l *Locks) Flock(owner Owner, t Type) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.flocks == nil {
		l.flocks = make(map[Owner]Type)
	}
	old, held := l.flocks[owner]
	if t == Unlock {
		if held {
			delete(l.flocks, owner)
			l.notify()
		}
		return nil
	}
	if held && old == t {
		return nil
	}
	if held {
		delete(l.flocks, owner)
		l.notify()
	}
	for o, ot := range l.flocks {
		if o != owner && conflicts(ot, t) {
			return unix.EWOULDBLOCK
		}
	}
	l.flocks[owner] = t
	return nil
}

// Empty says whether no lock is held.
func (l *Locks) Empty() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.records) == 0 && len(l.flocks) == 0
}

// Records returns a copy of the held record locks, sorted by start.
func (l *Locks) Records() []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Record(nil), l.records...)
}

// Preconditions: l.mu is held.
func (l *Locks) notify() {
	l.Queue.Notify(waiter.EventIn | waiter.EventOut)
}
