package kernel

import (
	"encoding/binary"
	"fmt"
	"moat.dev/moat/sentry/mm"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
)

// sigQueue holds pending signals: one instance of each standard signal,
// every instance of a real-time one.
type sigQueue struct {
	set   abi.SignalSet
	infos []abi.SignalInfo
}

func (q *sigQueue) add(info *abi.SignalInfo) {
	sig := info.Signo()
	if !sig.IsRealtime() && q.set.Has(sig) {
		return
	}
	q.set |= abi.SignalSetOf(sig)
	q.infos = append(q.infos, *info)
}

// take removes and returns the first pending instance of sig.
func (q *sigQueue) take(sig abi.Signal) (abi.SignalInfo, bool) {
	for i := range q.infos {
		if q.infos[i].Signo() == sig {
			info := q.infos[i]
			q.infos = append(q.infos[:i], q.infos[i+1:]...)
			still := false
			for j := range q.infos {
				if q.infos[j].Signo() == sig {
					still = true
					break
				}
			}
			if !still {
				q.set &^= abi.SignalSetOf(sig)
			}
			return info, true
		}
	}
	return abi.SignalInfo{}, false
}

func (q *sigQueue) discard(sig abi.Signal) {
	for {
		if _, ok := q.take(sig); !ok {
			return
		}
	}
}

// SignalHandlers are a process's signal actions (shared with CLONE_SIGHAND).
type SignalHandlers struct {
	actions [abi.SIGRTMAX + 1]abi.Sigaction
}

func (h *SignalHandlers) copy() *SignalHandlers {
	n := *h
	return &n
}

// lowest returns the lowest signal in set (synchronous faults first).
func lowest(set abi.SignalSet) abi.Signal {
	for _, s := range []abi.Signal{abi.SIGKILL, abi.SIGSEGV, abi.SIGBUS, abi.SIGILL, abi.SIGFPE, abi.SIGTRAP} {
		if set.Has(s) {
			return s
		}
	}
	for s := abi.Signal(1); s <= abi.SIGRTMAX; s++ {
		if set.Has(s) {
			return s
		}
	}
	return 0
}

// deliverableLocked returns the signals t could take now.
// Preconditions: k.mu is held.
func (t *Task) deliverableLocked() abi.SignalSet {
	return (t.pending.set | t.tg.pending.set) &^ (t.sigMask &^ abi.UnblockableSignals)
}

// SignalInfoKill builds the siginfo of kill(2) from sender.
func SignalInfoKill(sig abi.Signal, code int32, pid int32, uid uint32) *abi.SignalInfo {
	var info abi.SignalInfo
	info.SetSigno(sig)
	info.SetCode(code)
	info.SetPID(pid)
	info.SetUID(uid)
	return &info
}

// SendSignal queues info for the process g (any thread may take it).
func (k *Kernel) SendSignal(g *ThreadGroup, info *abi.SignalInfo) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sendGroupLocked(g, info, false)
}

// SendSignalFromHost queues a signal sent from outside the sandbox (moat
// run forwarding SIGTERM, the shim's kill). For the init of a PID
// namespace, as for a container's init on Linux, a signal whose action
// is the default is ignored unless it is SIGKILL or SIGSTOP.
func (k *Kernel) SendSignalFromHost(g *ThreadGroup, sig abi.Signal) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sendGroupLocked(g, SignalInfoKill(sig, abi.SI_USER, 0, 0), true)
}

// isNSInit reports whether g is the init of its PID namespace, which
// signals with the default action do not reach unless they come from
// outside the namespace and are SIGKILL or SIGSTOP.
// Preconditions: k.mu is held.
func (g *ThreadGroup) isNSInit() bool { return g.ns.init == g }

// ignoredLocked reports whether sending sig to g does nothing; fromHost
// says the sender is outside g's PID namespace (the host, or a process
// of a namespace above).
func (k *Kernel) ignoredLocked(g *ThreadGroup, sig abi.Signal, fromHost bool) bool {
	if sig == abi.SIGKILL || sig == abi.SIGSTOP {
		return g.isNSInit() && !fromHost
	}
	// A signal a thread blocks (or waits for in sigtimedwait) stays
	// pending whatever its action: it may be taken without a handler.
	for t := range g.tasks {
		if t.sigMask.Has(sig) || t.sigWaiting.Has(sig) {
			return false
		}
	}
	act := g.handlers.actions[sig]
	if act.Handler == abi.SIG_IGN {
		return true
	}
	if act.Handler == abi.SIG_DFL {
		if abi.DefaultAction(sig) == abi.ActionIgnore {
			return true
		}
		if g.isNSInit() {
			return true
		}
	}
	return false
}

// sendGroupLocked queues a process-directed signal and wakes a thread that
// can take it.
func (k *Kernel) sendGroupLocked(g *ThreadGroup, info *abi.SignalInfo, fromHost bool) {
	sig := info.Signo()
	if g.exiting || !sig.Valid() {
		return
	}
	if sig == abi.SIGCONT {
		for _, s := range []abi.Signal{abi.SIGSTOP, abi.SIGTSTP, abi.SIGTTIN, abi.SIGTTOU} {
			g.pending.discard(s)
			for t := range g.tasks {
				t.pending.discard(s)
			}
		}
		k.groupContinueLocked(g)
	}
	if isStop(sig) {
		g.pending.discard(abi.SIGCONT)
	}
	if k.ignoredLocked(g, sig, fromHost) {
		return
	}
	if sig == abi.SIGKILL {
		k.killGroupLocked(g, abi.SIGKILL)
		return
	}
	g.pending.add(info)
	for t := range g.tasks {
		if !t.sigMask.Has(sig) {
			t.wakeLocked()
			return
		}
	}
}

// sendTaskLocked queues a thread-directed signal.
func (k *Kernel) sendTaskLocked(t *Task, info *abi.SignalInfo) {
	sig := info.Signo()
	if t.exiting || !sig.Valid() {
		return
	}
	if k.ignoredLocked(t.tg, sig, false) && !(t.tg.isNSInit() && sig == abi.SIGKILL) {
		return
	}
	if sig == abi.SIGKILL {
		k.killGroupLocked(t.tg, abi.SIGKILL)
		return
	}
	t.pending.add(info)
	if !t.sigMask.Has(sig) {
		t.wakeLocked()
	}
}

// SendTaskSignal queues info for thread t.
func (k *Kernel) SendTaskSignal(t *Task, info *abi.SignalInfo) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sendTaskLocked(t, info)
}

// forceSignal delivers a synchronous fault signal: it cannot be blocked or
// ignored (a blocked or ignored fault kills, as on Linux).
func (t *Task) forceSignal(sig abi.Signal, code int32, addr uint64) {
	var info abi.SignalInfo
	info.SetSigno(sig)
	info.SetCode(code)
	info.SetAddr(addr)
	t.forceSignalInfo(&info)
}

// forceSignalInfo is forceSignal with the whole siginfo given.
func (t *Task) forceSignalInfo(info *abi.SignalInfo) {
	sig := info.Signo()
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	act := &t.tg.handlers.actions[sig]
	if t.sigMask.Has(sig) || act.Handler == abi.SIG_IGN {
		act.Handler = abi.SIG_DFL
		t.sigMask &^= abi.SignalSetOf(sig)
	}
	t.pending.add(info)
	t.wakeLocked()
}

// handlePending runs at every return to user mode: it ends the task if it
// is exiting, restarts an interrupted syscall, and delivers a signal. It
// returns true when the task must exit.
func (t *Task) handlePending() bool {
	k := t.k
	k.mu.Lock()
	if t.exiting {
		k.mu.Unlock()
		return true
	}
	for {
		// A stopped process's tasks wait here, without a CPU, until
		// SIGCONT or SIGKILL; a frozen one's until it is thawed or
		// killed (signals stay queued meanwhile).
		for (t.tg.stopped || k.frozenLocked(t.tg)) && !t.exiting {
			ch := t.tg.contCh
			if k.frozenLocked(t.tg) {
				ch = k.fz.thawed
			}
			k.mu.Unlock()
			t.releaseCPU()
			t.parked.Store(true)
			select {
			case <-ch:
			case <-t.interrupt:
			}
			t.parked.Store(false)
			k.mu.Lock()
		}
		if t.exiting {
			k.mu.Unlock()
			return true
		}
		set := t.deliverableLocked()
		if set == 0 {
			break
		}
		sig := lowest(set)
		info, ok := t.pending.take(sig)
		if !ok {
			info, _ = t.tg.pending.take(sig)
		}
		act := t.tg.handlers.actions[sig]
		switch {
		case act.Handler == abi.SIG_IGN:
			continue
		case act.Handler == abi.SIG_DFL:
			switch abi.DefaultAction(sig) {
			case abi.ActionIgnore, abi.ActionCont:
				continue
			case abi.ActionStop:
				if !t.tg.isNSInit() || sig == abi.SIGSTOP {
					k.groupStopLocked(t.tg, sig)
				}
				continue
			}
			if t.tg.isNSInit() && sig != abi.SIGKILL && !isFault(sig) && !isSeccompTrap(&info) {
				continue
			}
			k.killGroupLocked(t.tg, sig)
			t.tg.termSignal = sig
			t.tg.coreDump = abi.DefaultAction(sig) == abi.ActionCore
			if t.tg.coreDump {
				k.Log.Warn("process killed", "pid", t.tg.pid, "comm", t.name, "signal", sig.Name(),
					"code", info.Code(), "addr", fmt.Sprintf("%#x", info.Addr()), "rip", fmt.Sprintf("%#x", t.regs.RIP))
			}
			k.mu.Unlock()
			return true
		}
		// A handler: restart the interrupted call or fail it.
		t.applyRestartLocked(act.Flags&abi.SA_RESTART != 0)
		err := t.setupFrameLocked(sig, &info, &act)
		if err != nil && mm.IsOOM(err) {
			// The frame needs a page past the memory limit: an OOM
			// kill, as a cgroup's, not a bad stack.
			t.oomKillLocked(t.name)
			k.mu.Unlock()
			return true
		}
		if err != nil {
			// The frame cannot be written: the process dies of
			// SIGSEGV, as on Linux.
			k.Log.Info("cannot deliver signal: no room for the frame", "pid", t.tg.pid, "signal", sig.Name(), "err", err)
			k.killGroupLocked(t.tg, abi.SIGSEGV)
			t.tg.termSignal = abi.SIGSEGV
			k.mu.Unlock()
			return true
		}
		k.mu.Unlock()
		return false
	}
	// No handler ran: restartable calls start again.
	if t.restart != nil {
		t.applyRestartLocked(true)
	}
	if t.savedMask != nil {
		t.sigMask = *t.savedMask
		t.savedMask = nil
	}
	k.mu.Unlock()
	return false
}

func isStop(sig abi.Signal) bool {
	switch sig {
	case abi.SIGSTOP, abi.SIGTSTP, abi.SIGTTIN, abi.SIGTTOU:
		return true
	}
	return false
}

// isSeccompTrap reports whether info is the SIGSYS of a seccomp filter's
// TRAP: forced, it kills even the init when no handler takes it.
func isSeccompTrap(info *abi.SignalInfo) bool {
	return info.Signo() == abi.SIGSYS && info.Code() == abi.SI_SYS_SECCOMP
}

func isFault(sig abi.Signal) bool {
	switch sig {
	case abi.SIGSEGV, abi.SIGBUS, abi.SIGILL, abi.SIGFPE, abi.SIGTRAP:
		return true
	}
	return false
}

// applyRestartLocked restarts the syscall that returned a restart error
// (back up over SYSCALL, restore RAX), or makes it fail with EINTR.
func (t *Task) applyRestartLocked(handlerRestarts bool) {
	r := t.restart
	t.restart = nil
	if r == nil {
		return
	}
	restart := r == ErrRestartNoIntr || (r == ErrRestartSys && handlerRestarts)
	if !handlerRestarts && r == ErrRestartNoHand {
		restart = false
	}
	if restart {
		t.regs.RAX = t.regs.OrigRAX
		t.regs.RIP -= 2
	} else {
		t.regs.RAX = negErrno(unix.EINTR)
	}
}

// setupFrameLocked pushes a signal frame and points the task at the handler.
// Preconditions: k.mu is held.
func (t *Task) setupFrameLocked(sig abi.Signal, info *abi.SignalInfo, act *abi.Sigaction) error {
	r := &t.regs
	sp := r.RSP
	onAlt := t.altStack.Flags&abi.SS_DISABLE == 0 && t.altStack.Size > 0 && t.altStack.Contains(sp)
	if act.Flags&abi.SA_ONSTACK != 0 && t.altStack.Flags&abi.SS_DISABLE == 0 && t.altStack.Size > 0 && !onAlt {
		sp = t.altStack.Sp + t.altStack.Size
	} else {
		sp -= abi.RedZoneSize
	}
	fpb, err := t.fp.Bytes()
	if err != nil {
		return err
	}
	xsize := uint64(len(fpb))
	sp -= xsize + abi.FP_XSTATE_MAGIC2_SIZE
	sp &^= 63
	fpAddr := sp
	sp -= abi.RtSigframeSize
	sp = (sp &^ 15) - 8
	frame := sp

	fpimg := make([]byte, xsize+abi.FP_XSTATE_MAGIC2_SIZE)
	copy(fpimg, fpb)
	le := binary.LittleEndian
	le.PutUint32(fpimg[464:], abi.FP_XSTATE_MAGIC1)
	le.PutUint32(fpimg[468:], uint32(xsize+abi.FP_XSTATE_MAGIC2_SIZE))
	le.PutUint64(fpimg[472:], le.Uint64(fpb[512:])|0x3) // xfeatures
	le.PutUint32(fpimg[480:], uint32(xsize))
	le.PutUint32(fpimg[xsize:], abi.FP_XSTATE_MAGIC2)

	var f abi.RtSigframe
	f.Pretcode = act.Restorer
	f.UContext.Flags = abi.UC_FP_XSTATE | abi.UC_SIGCONTEXT_SS | abi.UC_STRICT_RESTORE_SS
	f.UContext.Stack = t.altStack
	if onAlt {
		f.UContext.Stack.Flags |= abi.SS_ONSTACK
	}
	mc := &f.UContext.MContext
	mc.R8, mc.R9, mc.R10, mc.R11 = r.R8, r.R9, r.R10, r.R11
	mc.R12, mc.R13, mc.R14, mc.R15 = r.R12, r.R13, r.R14, r.R15
	mc.Rdi, mc.Rsi, mc.Rbp, mc.Rbx = r.RDI, r.RSI, r.RBP, r.RBX
	mc.Rdx, mc.Rax, mc.Rcx, mc.Rsp = r.RDX, r.RAX, r.RCX, r.RSP
	mc.Rip, mc.Eflags = r.RIP, r.RFLAGS
	mc.Cs, mc.Ss = 0x33, 0x2b
	mc.Oldmask = uint64(t.sigMask)
	if isFault(sig) {
		mc.Cr2 = info.Addr()
	}
	mc.FPState = fpAddr
	f.UContext.Sigmask = t.sigMask
	if t.savedMask != nil {
		f.UContext.Sigmask = *t.savedMask
		mc.Oldmask = uint64(*t.savedMask)
		t.savedMask = nil
	}
	f.Info = *info
	buf := make([]byte, abi.RtSigframeSize)
	f.Marshal(buf)
	// Copying to user memory may fault pages in; drop k.mu meanwhile is
	// not needed: the mm has its own lock and never takes k.mu.
	if _, err := t.mm.CopyOut(t.ctx, fpAddr, fpimg); err != nil {
		return err
	}
	if _, err := t.mm.CopyOut(t.ctx, frame, buf); err != nil {
		return err
	}
	r.RSP = frame
	r.RIP = act.Handler
	r.RDI = uint64(sig)
	r.RSI = frame + abi.RtSigframeInfoOffset
	r.RDX = frame + abi.RtSigframeUContextOffset
	r.RAX = 0
	r.RFLAGS &^= 1<<8 | 1<<10 // TF, DF
	if act.Flags&abi.SA_NODEFER == 0 {
		t.sigMask |= abi.SignalSetOf(sig)
	}
	t.sigMask |= act.Mask &^ abi.UnblockableSignals
	if act.Flags&abi.SA_RESETHAND != 0 {
		t.tg.handlers.actions[sig] = abi.Sigaction{}
	}
	if act.Flags&abi.SA_ONSTACK != 0 && uint32(t.altStack.Flags)&abi.SS_AUTODISARM != 0 {
		t.altStack = abi.SignalStack{Flags: abi.SS_DISABLE}
	}
	return nil
}

// SigReturn restores the state saved by a signal frame (rt_sigreturn).
func (t *Task) SigReturn() error {
	frame := t.regs.RSP - 8
	buf := make([]byte, abi.RtSigframeSize)
	if _, err := t.mm.CopyIn(t.ctx, frame, buf); err != nil {
		return err
	}
	var f abi.RtSigframe
	f.Unmarshal(buf)
	mc := &f.UContext.MContext
	r := &t.regs
	r.R8, r.R9, r.R10, r.R11 = mc.R8, mc.R9, mc.R10, mc.R11
	r.R12, r.R13, r.R14, r.R15 = mc.R12, mc.R13, mc.R14, mc.R15
	r.RDI, r.RSI, r.RBP, r.RBX = mc.Rdi, mc.Rsi, mc.Rbp, mc.Rbx
	r.RDX, r.RAX, r.RCX, r.RSP = mc.Rdx, mc.Rax, mc.Rcx, mc.Rsp
	r.RIP = mc.Rip
	const userFlags = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x10000 | 0x40000 | 0x200000
	r.RFLAGS = r.RFLAGS&^userFlags | mc.Eflags&userFlags
	if mc.FPState != 0 {
		fpb, err := t.fp.Bytes()
		if err != nil {
			return err
		}
		img := make([]byte, len(fpb))
		if _, err := t.mm.CopyIn(t.ctx, mc.FPState, img); err != nil {
			return err
		}
		// Take the legacy area and the xsave header and components;
		// keep MXCSR's reserved bits clear, as Linux does.
		mxcsr := binary.LittleEndian.Uint32(img[24:])
		binary.LittleEndian.PutUint32(img[24:], mxcsr&0xffff)
		// The software-reserved bytes are not state.
		clear(img[464:512])
		// Keep only features the vCPU has enabled.
		bv := binary.LittleEndian.Uint64(img[512:])
		binary.LittleEndian.PutUint64(img[512:], bv&binary.LittleEndian.Uint64(fpb[512:])|bv&0x7)
		clear(img[520:576]) // XCOMP_BV and reserved must be zero
		copy(fpb, img)
		t.fp.MarkDirty()
	}
	t.k.mu.Lock()
	t.sigMask = f.UContext.Sigmask &^ abi.UnblockableSignals
	t.k.mu.Unlock()
	return nil
}

// SigAction reads and optionally sets the action of sig.
func (t *Task) SigAction(sig abi.Signal, act *abi.Sigaction) (abi.Sigaction, error) {
	if !sig.Valid() {
		return abi.Sigaction{}, unix.EINVAL
	}
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	old := t.tg.handlers.actions[sig]
	if act != nil {
		if sig == abi.SIGKILL || sig == abi.SIGSTOP {
			return old, unix.EINVAL
		}
		n := *act
		n.Mask &^= abi.UnblockableSignals
		t.tg.handlers.actions[sig] = n
		// Setting SIG_IGN (or SIG_DFL of an ignored signal) discards
		// what is pending.
		if n.Handler == abi.SIG_IGN || n.Handler == abi.SIG_DFL && abi.DefaultAction(sig) == abi.ActionIgnore {
			t.tg.pending.discard(sig)
			for o := range t.tg.tasks {
				o.pending.discard(sig)
			}
		}
	}
	return old, nil
}

// SigProcMask changes the blocked set (how: SIG_BLOCK, SIG_UNBLOCK,
// SIG_SETMASK) and returns the old one.
func (t *Task) SigProcMask(how int, set *abi.SignalSet) (abi.SignalSet, error) {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	old := t.sigMask
	if set == nil {
		return old, nil
	}
	s := *set &^ abi.UnblockableSignals
	switch how {
	case abi.SIG_BLOCK:
		t.sigMask |= s
	case abi.SIG_UNBLOCK:
		t.sigMask &^= s
	case abi.SIG_SETMASK:
		t.sigMask = s
	default:
		return old, unix.EINVAL
	}
	if t.deliverableLocked() != 0 {
		t.raiseInterrupt()
	}
	return old, nil
}

// SigAltStack reads and optionally sets the alternate signal stack.
func (t *Task) SigAltStack(ns *abi.SignalStack) (abi.SignalStack, error) {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	old := t.altStack
	if old.Flags&abi.SS_DISABLE == 0 && old.Size > 0 && old.Contains(t.regs.RSP) {
		old.Flags |= abi.SS_ONSTACK
	}
	if old.Size == 0 {
		old.Flags = abi.SS_DISABLE
	}
	if ns == nil {
		return old, nil
	}
	if old.Flags&abi.SS_ONSTACK != 0 {
		return old, unix.EPERM
	}
	flags := uint32(ns.Flags) &^ abi.SS_AUTODISARM
	switch {
	case flags == abi.SS_DISABLE:
		t.altStack = abi.SignalStack{Flags: abi.SS_DISABLE}
	case flags == 0 || flags == abi.SS_ONSTACK:
		if ns.Size < abi.MINSIGSTKSZ {
			return old, unix.ENOMEM
		}
		t.altStack = *ns
		t.altStack.Flags &^= abi.SS_ONSTACK
	default:
		return old, unix.EINVAL
	}
	return old, nil
}

// SigPending returns the pending signals of the thread and process.
func (t *Task) SigPending() abi.SignalSet {
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	return (t.pending.set | t.tg.pending.set) & t.sigMask
}

// SigSuspend replaces the mask until a signal is delivered, then waits.
func (t *Task) SigSuspend(mask abi.SignalSet) {
	k := t.k
	k.mu.Lock()
	old := t.sigMask
	t.savedMask = &old
	t.sigMask = mask &^ abi.UnblockableSignals
	// A signal that arrived while blocked and that the new mask lets
	// through ends the wait at once (the pattern of a shell's wait:
	// block SIGCHLD, check its jobs, sigsuspend with SIGCHLD unblocked).
	if t.deliverableLocked() != 0 {
		t.raiseInterrupt()
	}
	k.mu.Unlock()
	t.Block(nil, time.Time{})
}

// SigTimedWait waits for a signal in set and takes it without running a
// handler.
func (t *Task) SigTimedWait(set abi.SignalSet, deadline time.Time) (abi.SignalInfo, error) {
	k := t.k
	set &^= abi.UnblockableSignals
	for {
		k.mu.Lock()
		if p := (t.pending.set | t.tg.pending.set) & set; p != 0 {
			sig := lowest(p)
			info, ok := t.pending.take(sig)
			if !ok {
				info, _ = t.tg.pending.take(sig)
			}
			k.mu.Unlock()
			return info, nil
		}
		// Let signals in set wake us while we wait; they count as
		// blocked meanwhile (Linux's real_blocked), so that one sent to
		// a namespace's init is not dropped.
		old := t.sigMask
		t.sigMask &^= set
		t.sigWaiting = set
		k.mu.Unlock()
		err := t.Block(nil, deadline)
		k.mu.Lock()
		t.sigMask = old
		t.sigWaiting = 0
		k.mu.Unlock()
		if err == unix.ETIMEDOUT {
			return abi.SignalInfo{}, unix.EAGAIN
		}
		if err == ErrInterrupted {
			k.mu.Lock()
			got := (t.pending.set | t.tg.pending.set) & set
			k.mu.Unlock()
			if got == 0 {
				return abi.SignalInfo{}, ErrRestartNoHand
			}
			t.clearInterrupt()
		}
	}
}

// QueueSignal sends info to process tgid, or to its thread tid if tid > 0.
func (t *Task) QueueSignal(tgid, tid int32, info *abi.SignalInfo) error {
	k := t.k
	if !info.Signo().Valid() {
		return unix.EINVAL
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	ns := t.tg.ns
	if tid > 0 {
		target := k.tasks[ns.rootIDLocked(tid)]
		if target == nil || target.tg.pid != ns.rootIDLocked(tgid) {
			return unix.ESRCH
		}
		info.SetPID(target.tg.ns.idLocked(t.tg.pid))
		k.sendTaskLocked(target, info)
		return nil
	}
	g := k.groups[ns.rootIDLocked(tgid)]
	if g == nil {
		return unix.ESRCH
	}
	info.SetPID(g.ns.idLocked(t.tg.pid))
	k.sendGroupLocked(g, info, false)
	return nil
}
