package syscalls

import (
	"errors"
	"math/bits"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// poll, ppoll, select and pselect6.
func init() {
	register(abi.SYS_POLL, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		timeout := time.Duration(-1)
		if ms := int32(a.Args[2]); ms >= 0 {
			timeout = time.Duration(ms) * time.Millisecond
		}
		n, _, err := doPoll(t, a.Args[0], a.Args[1], timeout)
		return n, err
	})
	register(abi.SYS_PPOLL, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		timeout, err := copyInTimeout(t, a.Args[2])
		if err != nil {
			return 0, err
		}
		mask, err := copyInSigmask(t, a.Args[3], a.Args[4])
		if err != nil {
			return 0, err
		}
		if mask != nil {
			t.SetWaitMask(*mask)
		}
		n, left, err := doPoll(t, a.Args[0], a.Args[1], timeout)
		if mask != nil {
			t.EndWaitMask(err == kernel.ErrRestartNoHand)
		}
		if a.Args[2] != 0 {
			copyOutTimespec(t, a.Args[2], durationTimespec(left))
		}
		return n, err
	})
	register(abi.SYS_SELECT, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		timeout := time.Duration(-1)
		if a.Args[4] != 0 {
			var b [16]byte
			if _, err := t.CopyIn(a.Args[4], b[:]); err != nil {
				return 0, unix.EFAULT
			}
			tv := abi.Timeval{Sec: int64(le.Uint64(b[0:])), Usec: int64(le.Uint64(b[8:]))}
			// Linux carries microseconds beyond a second over.
			if tv.Sec < 0 || tv.Usec < 0 {
				return 0, unix.EINVAL
			}
			timeout = capTimeout(time.Duration(min(tv.Sec+tv.Usec/1e6, 1<<33))*time.Second + time.Duration(tv.Usec%1e6)*time.Microsecond)
		}
		n, left, err := doSelect(t, a.Args[0], a.Args[1], a.Args[2], a.Args[3], timeout)
		if a.Args[4] != 0 && err != unix.EINVAL && err != unix.EBADF && err != unix.EFAULT {
			// Linux reports the time left; a read-only timeval is
			// not an error.
			var b [16]byte
			le.PutUint64(b[0:], uint64(left/time.Second))
			le.PutUint64(b[8:], uint64(left%time.Second/time.Microsecond))
			t.CopyOut(a.Args[4], b[:])
		}
		return n, err
	})
	register(abi.SYS_PSELECT6, func(t *kernel.Task, a *kernel.SyscallArgs) (uint64, error) {
		timeout, err := copyInTimeout(t, a.Args[4])
		if err != nil {
			return 0, err
		}
		var mask *abi.SignalSet
		if a.Args[5] != 0 {
			var b [16]byte
			if _, err := t.CopyIn(a.Args[5], b[:]); err != nil {
				return 0, unix.EFAULT
			}
			if mask, err = copyInSigmask(t, le.Uint64(b[0:]), le.Uint64(b[8:])); err != nil {
				return 0, err
			}
		}
		if mask != nil {
			t.SetWaitMask(*mask)
		}
		n, left, err := doSelect(t, a.Args[0], a.Args[1], a.Args[2], a.Args[3], timeout)
		if mask != nil {
			t.EndWaitMask(err == kernel.ErrRestartNoHand)
		}
		if a.Args[4] != 0 && err != unix.EINVAL && err != unix.EBADF && err != unix.EFAULT {
			copyOutTimespec(t, a.Args[4], durationTimespec(left))
		}
		return n, err
	})
}

// capTimeout bounds a timeout so that a deadline never overflows.
func capTimeout(d time.Duration) time.Duration {
	return min(d, 100*365*24*time.Hour)
}

func durationTimespec(d time.Duration) abi.Timespec {
	d = max(d, 0)
	return abi.Timespec{Sec: int64(d / time.Second), Nsec: int64(d % time.Second)}
}

// copyInTimeout reads an optional timespec timeout: negative means none.
func copyInTimeout(t *kernel.Task, addr uint64) (time.Duration, error) {
	if addr == 0 {
		return -1, nil
	}
	b := make([]byte, abi.TimespecSize)
	if _, err := t.CopyIn(addr, b); err != nil {
		return 0, unix.EFAULT
	}
	var ts abi.Timespec
	ts.Unmarshal(b)
	if !ts.Valid() {
		return 0, unix.EINVAL
	}
	return capTimeout(time.Duration(min(ts.Sec, 1<<33))*time.Second + time.Duration(ts.Nsec)), nil
}

// copyInSigmask reads the optional signal mask of ppoll, pselect6 and
// epoll_pwait.
func copyInSigmask(t *kernel.Task, addr, size uint64) (*abi.SignalSet, error) {
	if addr == 0 {
		return nil, nil
	}
	if size != abi.SignalSetSize {
		return nil, unix.EINVAL
	}
	v, err := copyInU64(t, addr)
	if err != nil {
		return nil, err
	}
	s := abi.SignalSet(v)
	return &s, nil
}

// pollItem is one file a poll waits on.
type pollItem struct {
	f       *vfs.File // nil: not a file (poll's negative fd, or POLLNVAL)
	mask    waiter.EventMask
	revents waiter.EventMask
	nval    bool
}

// waitFiles waits until one of items is ready, the timeout passes
// (negative: never; zero: just look) or a signal comes. It fills in
// revents and returns how many items have some, with the time left. A
// signal gives kernel.ErrRestartNoHand.
func waitFiles(t *kernel.Task, items []pollItem, timeout time.Duration) (int, time.Duration, error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	left := func() time.Duration {
		if timeout <= 0 {
			return 0
		}
		return max(time.Until(deadline), 0)
	}
	check := func() int {
		n := 0
		for i := range items {
			it := &items[i]
			if it.f != nil {
				it.revents = it.f.Readiness(it.mask) & it.mask
			}
			if it.revents != 0 || it.nval {
				n++
			}
		}
		return n
	}
	if n := check(); n > 0 || timeout == 0 {
		return n, left(), nil
	}
	ch := make(chan struct{}, 1)
	wake := func(waiter.EventMask) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	var regs []struct {
		f *vfs.File
		e *waiter.Entry
	}
	defer func() {
		for _, r := range regs {
			r.f.EventUnregister(r.e)
		}
	}()
	for i := range items {
		if f := items[i].f; f != nil {
			e := waiter.NewFunctionEntry(items[i].mask|waiter.EventErr|waiter.EventHUp, wake)
			if f.EventRegister(e) == nil {
				regs = append(regs, struct {
					f *vfs.File
					e *waiter.Entry
				}{f, e})
			}
		}
	}
	for {
		if n := check(); n > 0 {
			return n, left(), nil
		}
		err := t.Block(ch, deadline)
		switch {
		case err == unix.ETIMEDOUT:
			return 0, 0, nil
		case errors.Is(err, kernel.ErrInterrupted):
			return 0, left(), kernel.ErrRestartNoHand
		case err != nil:
			return 0, left(), err
		}
	}
}

// doPoll runs poll on the nfds pollfds at addr.
func doPoll(t *kernel.Task, addr, nfds uint64, timeout time.Duration) (uint64, time.Duration, error) {
	if nfds > fdLimit(t) || nfds > 1<<20 {
		return 0, 0, unix.EINVAL
	}
	b := make([]byte, nfds*abi.PollFDSize)
	if _, err := t.CopyIn(addr, b); err != nil {
		return 0, 0, unix.EFAULT
	}
	pfds := make([]abi.PollFD, nfds)
	items := make([]pollItem, nfds)
	for i := range pfds {
		pfds[i].Unmarshal(b[i*abi.PollFDSize:])
		if pfds[i].FD < 0 {
			continue
		}
		f := t.FDs().Get(pfds[i].FD)
		if f == nil {
			items[i].nval = true
			items[i].revents = abi.POLLNVAL
			continue
		}
		defer f.DecRef(t.Ctx())
		items[i].f = f
		items[i].mask = waiter.EventMask(uint16(pfds[i].Events)) | waiter.EventErr | waiter.EventHUp
	}
	n, left, err := waitFiles(t, items, timeout)
	if err != nil {
		return 0, left, err
	}
	for i := range pfds {
		pfds[i].Revents = int16(items[i].revents)
		pfds[i].Marshal(b[i*abi.PollFDSize:])
	}
	if _, err := t.CopyOut(addr, b); err != nil {
		return 0, left, unix.EFAULT
	}
	return uint64(n), left, nil
}

// The poll events that make a descriptor ready in each set of select.
const (
	selectIn  = waiter.EventIn | waiter.EventRdNorm | abi.POLLRDBAND | waiter.EventHUp | waiter.EventErr
	selectOut = waiter.EventOut | waiter.EventWrNorm | abi.POLLWRBAND | waiter.EventErr
	selectEx  = waiter.EventPri
)

// doSelect runs select on the fd_sets at the three addresses.
func doSelect(t *kernel.Task, nfdsArg, rAddr, wAddr, eAddr uint64, timeout time.Duration) (uint64, time.Duration, error) {
	nfds := int64(int32(nfdsArg))
	if nfds < 0 {
		return 0, 0, unix.EINVAL
	}
	nfds = min(nfds, int64(min(fdLimit(t), 1<<20)))
	words := (nfds + 63) / 64
	addrs := [3]uint64{rAddr, wAddr, eAddr}
	var sets [3][]uint64
	for i, addr := range addrs {
		if addr == 0 {
			continue
		}
		b := make([]byte, words*8)
		if _, err := t.CopyIn(addr, b); err != nil {
			return 0, 0, unix.EFAULT
		}
		sets[i] = make([]uint64, words)
		for w := range sets[i] {
			sets[i][w] = le.Uint64(b[w*8:])
		}
	}
	masks := [3]waiter.EventMask{selectIn, selectOut, selectEx}
	var items []pollItem
	var fds []int32
	for fd := int64(0); fd < nfds; fd++ {
		w, bit := fd/64, uint64(1)<<(fd%64)
		var mask waiter.EventMask
		for i := range sets {
			if sets[i] != nil && sets[i][w]&bit != 0 {
				mask |= masks[i]
			}
		}
		if mask == 0 {
			continue
		}
		f := t.FDs().Get(int32(fd))
		if f == nil {
			return 0, 0, unix.EBADF
		}
		defer f.DecRef(t.Ctx())
		items = append(items, pollItem{f: f, mask: mask})
		fds = append(fds, int32(fd))
	}
	_, left, err := waitFiles(t, items, timeout)
	if err != nil {
		return 0, left, err
	}
	var out [3][]uint64
	for i := range sets {
		if sets[i] != nil {
			out[i] = make([]uint64, words)
		}
	}
	count := 0
	for j, it := range items {
		fd := int64(fds[j])
		w, bit := fd/64, uint64(1)<<(fd%64)
		for i := range sets {
			if sets[i] != nil && sets[i][w]&bit != 0 && it.revents&masks[i] != 0 {
				out[i][w] |= bit
			}
		}
	}
	for i, addr := range addrs {
		if out[i] == nil {
			continue
		}
		b := make([]byte, words*8)
		for w, v := range out[i] {
			le.PutUint64(b[w*8:], v)
			count += bits.OnesCount64(v)
		}
		if _, err := t.CopyOut(addr, b); err != nil {
			return 0, left, unix.EFAULT
		}
	}
	return uint64(count), left, nil
}
