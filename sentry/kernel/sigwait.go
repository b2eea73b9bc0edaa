package kernel

import "moat.dev/moat/sentry/abi"

// SetWaitMask installs mask as the blocked set for the length of a wait
// (ppoll, pselect6, epoll_pwait) and saves the old one. The caller ends
// the wait with EndWaitMask.
func (t *Task) SetWaitMask(mask abi.SignalSet) {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	old := t.sigMask
	t.savedMask = &old
	t.sigMask = mask &^ abi.UnblockableSignals
	if t.deliverableLocked() != 0 {
		t.raiseInterrupt()
	}
}

// EndWaitMask ends a wait begun with SetWaitMask. When the call fails
// with EINTR the saved mask stays until the signal is delivered, so the
// handler runs under the wait's mask and sigreturn restores the old one;
// otherwise the old mask comes back now, as on Linux.
func (t *Task) EndWaitMask(interrupted bool) {
	if interrupted {
		return
	}
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if t.savedMask != nil {
		t.sigMask = *t.savedMask
		t.savedMask = nil
	}
}
