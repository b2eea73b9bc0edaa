package kernel

import (
	"encoding/binary"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// futexKey names a futex word: private futexes by address space and
// address, shared ones by the physical frame when it can be found.
type futexKey struct {
	mm   any
	addr uint64
}

type futexWaiter struct {
	key    futexKey
	bitset uint32
	ch     chan struct{}
	woken  bool
}

// Futexes is the kernel's futex table.
type Futexes struct {
	mu      sync.Mutex
	waiters map[futexKey][]*futexWaiter
}

var futexesOnce sync.Map

// Futexes returns the kernel's futex table.
func (k *Kernel) Futexes() *Futexes {
	v, _ := futexesOnce.LoadOrStore(k, &Futexes{waiters: map[futexKey][]*futexWaiter{}})
	return v.(*Futexes)
}

func (t *Task) futexKey(addr uint64) futexKey {
	// Futexes are keyed by address space: threads (CLONE_VM) share
	// them. Shared futexes across processes in MAP_SHARED memory are
	// keyed the same way, which suffices within one address space.
	return futexKey{mm: t.mm, addr: addr}
}

func (t *Task) loadWord(addr uint64) (uint32, error) {
	var b [4]byte
	if addr%4 != 0 {
		return 0, unix.EINVAL
	}
	if _, err := t.CopyIn(addr, b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

// Wait is FUTEX_WAIT(_BITSET): sleep while *addr == val.
func (f *Futexes) Wait(t *Task, addr uint64, val uint32, bitset uint32, deadline time.Time) error {
	if bitset == 0 {
		return unix.EINVAL
	}
	w := &futexWaiter{key: t.futexKey(addr), bitset: bitset, ch: make(chan struct{})}
	f.mu.Lock()
	cur, err := t.loadWord(addr)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	if cur != val {
		f.mu.Unlock()
		return unix.EAGAIN
	}
	f.waiters[w.key] = append(f.waiters[w.key], w)
	f.mu.Unlock()
	err = t.Block(w.ch, deadline)
	f.mu.Lock()
	defer f.mu.Unlock()
	if w.woken {
		return nil
	}
	f.removeLocked(w)
	if err == ErrInterrupted {
		return ErrRestartSys
	}
	return err
}

func (f *Futexes) removeLocked(w *futexWaiter) {
	ws := f.waiters[w.key]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(f.waiters, w.key)
	} else {
		f.waiters[w.key] = ws
	}
}

// Wake is FUTEX_WAKE(_BITSET): wake up to n waiters; returns how many.
func (f *Futexes) Wake(t *Task, addr uint64, _ bool, n int, bitset uint32) int {
	if bitset == 0 {
		return 0
	}
	key := t.futexKey(addr)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wakeLocked(key, n, bitset)
}

func (f *Futexes) wakeLocked(key futexKey, n int, bitset uint32) int {
	woken := 0
	ws := f.waiters[key]
	kept := ws[:0]
	for _, w := range ws {
		if woken < n && w.bitset&bitset != 0 {
			w.woken = true
			close(w.ch)
			woken++
			continue
		}
		kept = append(kept, w)
	}
	if len(kept) == 0 {
		delete(f.waiters, key)
	} else {
		f.waiters[key] = kept
	}
	return woken
}

// Requeue is FUTEX_REQUEUE / FUTEX_CMP_REQUEUE.
func (f *Futexes) Requeue(t *Task, addr, addr2 uint64, nWake, nRequeue int, cmp bool, val uint32) (int, error) {
	key, key2 := t.futexKey(addr), t.futexKey(addr2)
	f.mu.Lock()
	defer f.mu.Unlock()
	if cmp {
		cur, err := t.loadWord(addr)
		if err != nil {
			return 0, err
		}
		if cur != val {
			return 0, unix.EAGAIN
		}
	}
	woken := f.wakeLocked(key, nWake, ^uint32(0))
	moved := 0
	ws := f.waiters[key]
	for len(ws) > 0 && moved < nRequeue {
		w := ws[0]
		ws = ws[1:]
		w.key = key2
		f.waiters[key2] = append(f.waiters[key2], w)
		moved++
	}
	if len(ws) == 0 {
		delete(f.waiters, key)
	} else {
		f.waiters[key] = ws
	}
	return woken + moved, nil
}

// WakeOp is FUTEX_WAKE_OP.
func (f *Futexes) WakeOp(t *Task, addr, addr2 uint64, n, n2 int, op uint32) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, err := t.loadWord(addr2)
	if err != nil {
		return 0, err
	}
	opType, cmpType := (op>>28)&7, (op>>24)&15
	oparg, cmparg := (op>>12)&0xfff, op&0xfff
	if op&(8<<28) != 0 {
		oparg = 1 << (oparg & 31)
	}
	var nv uint32
	switch opType {
	case 0:
		nv = oparg
	case 1:
		nv = old + oparg
	case 2:
		nv = old | oparg
	case 3:
		nv = old &^ oparg
	case 4:
		nv = old ^ oparg
	default:
		return 0, unix.ENOSYS
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], nv)
	if _, err := t.CopyOut(addr2, b[:]); err != nil {
		return 0, unix.EFAULT
	}
	woken := f.wakeLocked(t.futexKey(addr), n, ^uint32(0))
	var ok bool
	switch cmpType {
	case 0:
		ok = old == cmparg
	case 1:
		ok = old != cmparg
	case 2:
		ok = old < cmparg
	case 3:
		ok = old <= cmparg
	case 4:
		ok = old > cmparg
	case 5:
		ok = old >= cmparg
	default:
		return 0, unix.ENOSYS
	}
	if ok {
		woken += f.wakeLocked(t.futexKey(addr2), n2, ^uint32(0))
	}
	return woken, nil
}

// SetRobustList records the robust list head.
func (t *Task) SetRobustList(head uint64) { t.robustList = head }

// RobustList returns it.
func (t *Task) RobustList() uint64 { return t.robustList }

// SetClearChildTID records set_tid_address's pointer.
func (t *Task) SetClearChildTID(addr uint64) { t.clearChildTID = addr }

// releaseRobustList marks futexes held by an exiting thread as owner-dead
// and wakes a waiter of each (robust mutexes).
func (t *Task) releaseRobustList() {
	head := t.robustList
	if head == 0 || t.mm == nil {
		return
	}
	var b [24]byte
	if _, err := t.CopyIn(head, b[:]); err != nil {
		return
	}
	le := binary.LittleEndian
	next := le.Uint64(b[0:])
	offset := int64(le.Uint64(b[8:]))
	pending := le.Uint64(b[16:])
	const ownerDied = 0x40000000
	const waiters = 0x80000000
	release := func(entry uint64) {
		addr := uint64(int64(entry&^1) + offset)
		v, err := t.loadWord(addr)
		if err != nil || int32(v&0x3fffffff) != t.LocalTID() {
			return
		}
		var nb [4]byte
		le.PutUint32(nb[:], v&waiters|ownerDied)
		t.CopyOut(addr, nb[:])
		if v&waiters != 0 {
			t.k.Futexes().Wake(t, addr, false, 1, ^uint32(0))
		}
	}
	for i := 0; next != head && i < 2048; i++ {
		var e [8]byte
		if _, err := t.CopyIn(next&^1, e[:]); err != nil {
			break
		}
		release(next)
		next = le.Uint64(e[:])
	}
	if pending != 0 {
		release(pending)
	}
}
