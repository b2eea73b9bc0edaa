package abi

// SigactionSize is the size of the kernel's struct sigaction on x86-64, as
// rt_sigaction(2) reads and writes it. It differs from the C library's
// struct sigaction, whose mask is 128 bytes and comes second.
const SigactionSize = 32

// Sigaction is the kernel's struct sigaction.
type Sigaction struct {
	Handler  uint64    // 0: SIG_DFL, SIG_IGN or the handler's address
	Flags    uint64    // 8: SA_*
	Restorer uint64    // 16: with SA_RESTORER, where the handler returns to
	Mask     SignalSet // 24: blocked while the handler runs
}

// Marshal writes a into b[:SigactionSize].
func (a *Sigaction) Marshal(b []byte) {
	b = b[:SigactionSize]
	le.PutUint64(b[0:], a.Handler)
	le.PutUint64(b[8:], a.Flags)
	le.PutUint64(b[16:], a.Restorer)
	le.PutUint64(b[24:], uint64(a.Mask))
}

// Unmarshal reads a from b[:SigactionSize].
func (a *Sigaction) Unmarshal(b []byte) {
	b = b[:SigactionSize]
	a.Handler = le.Uint64(b[0:])
	a.Flags = le.Uint64(b[8:])
	a.Restorer = le.Uint64(b[16:])
	a.Mask = SignalSet(le.Uint64(b[24:]))
}

// SignalStackSize is the size of stack_t on x86-64.
const SignalStackSize = 24

// SignalStack is stack_t (sigaltstack(2), ucontext's uc_stack).
type SignalStack struct {
	Sp    uint64 // 0: lowest address
	Flags int32  // 8: SS_*; 4 bytes of padding follow
	Size  uint64 // 16
}

// Contains reports whether sp lies in the stack.
func (s *SignalStack) Contains(sp uint64) bool {
	return sp > s.Sp && sp-s.Sp <= s.Size
}

// Marshal writes s into b[:SignalStackSize].
func (s *SignalStack) Marshal(b []byte) {
	b = b[:SignalStackSize]
	le.PutUint64(b[0:], s.Sp)
	le.PutUint32(b[8:], uint32(s.Flags))
	le.PutUint32(b[12:], 0)
	le.PutUint64(b[16:], s.Size)
}

// Unmarshal reads s from b[:SignalStackSize].
func (s *SignalStack) Unmarshal(b []byte) {
	b = b[:SignalStackSize]
	s.Sp = le.Uint64(b[0:])
	s.Flags = int32(le.Uint32(b[8:]))
	s.Size = le.Uint64(b[16:])
}

// SignalInfoSize is the size of siginfo_t.
const SignalInfoSize = 128

// Offsets in siginfo_t. si_signo, si_errno and si_code come first; the
// union of per-signal fields starts at 16 on 64-bit systems.
const (
	siginfoSigno  = 0
	siginfoErrno  = 4
	siginfoCode   = 8
	siginfoFields = 16

	// kill(2), tkill(2), SI_QUEUE, SIGCHLD: sender's pid and uid.
	siginfoPID = 16
	siginfoUID = 20
	// POSIX timers: timer id, overrun, value.
	siginfoTimerID = 16
	siginfoOverrun = 20
	siginfoValue   = 24 // union sigval of timers and rt signals
	// SIGCHLD: status, user and system time.
	siginfoStatus = 24
	siginfoUtime  = 32
	siginfoStime  = 40
	// SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP: faulting address.
	siginfoAddr    = 16
	siginfoAddrLSB = 24
	siginfoPkey    = 32
	// SIGPOLL: band and fd.
	siginfoBand = 16
	siginfoFD   = 24
	// SIGSYS: caller's address, system call number, audit architecture.
	siginfoCallAddr = 16
	siginfoSyscall  = 24
	siginfoArch     = 28
)

// AUDIT_ARCH_X86_64 is the si_arch of SIGSYS and seccomp_data.arch on x86-64.
const AUDIT_ARCH_X86_64 = 0xc000003e

// SignalInfo is siginfo_t as raw bytes, with accessors for the variants of
// its union. Which accessors make sense depends on the signal and si_code:
// kill (PID, UID), timer (TimerID, Overrun, Value), SIGCHLD (PID, UID,
// Status, Utime, Stime), fault (Addr, AddrLSB, Pkey), SIGPOLL (Band, FD),
// SIGSYS (CallAddr, Syscall, Arch).
type SignalInfo [SignalInfoSize]byte

func (s *SignalInfo) u32(off int) uint32      { return le.Uint32(s[off:]) }
func (s *SignalInfo) u64(off int) uint64      { return le.Uint64(s[off:]) }
func (s *SignalInfo) put32(off int, v uint32) { le.PutUint32(s[off:], v) }
func (s *SignalInfo) put64(off int, v uint64) { le.PutUint64(s[off:], v) }

// Marshal writes s into b[:SignalInfoSize].
func (s *SignalInfo) Marshal(b []byte) { copy(b[:SignalInfoSize], s[:]) }

// Unmarshal reads s from b[:SignalInfoSize].
func (s *SignalInfo) Unmarshal(b []byte) { copy(s[:], b[:SignalInfoSize]) }

// Signo returns si_signo.
func (s *SignalInfo) Signo() Signal { return Signal(s.u32(siginfoSigno)) }

// SetSigno sets si_signo.
func (s *SignalInfo) SetSigno(v Signal) { s.put32(siginfoSigno, uint32(v)) }

// Errno returns si_errno.
func (s *SignalInfo) Errno() int32 { return int32(s.u32(siginfoErrno)) }

// SetErrno sets si_errno.
func (s *SignalInfo) SetErrno(v int32) { s.put32(siginfoErrno, uint32(v)) }

// Code returns si_code.
func (s *SignalInfo) Code() int32 { return int32(s.u32(siginfoCode)) }

// SetCode sets si_code.
func (s *SignalInfo) SetCode(v int32) { s.put32(siginfoCode, uint32(v)) }

// PID returns si_pid.
func (s *SignalInfo) PID() int32 { return int32(s.u32(siginfoPID)) }

// SetPID sets si_pid.
func (s *SignalInfo) SetPID(v int32) { s.put32(siginfoPID, uint32(v)) }

// UID returns si_uid.
func (s *SignalInfo) UID() uint32 { return s.u32(siginfoUID) }

// SetUID sets si_uid.
func (s *SignalInfo) SetUID(v uint32) { s.put32(siginfoUID, v) }

// TimerID returns si_timerid (the kernel's si_tid).
func (s *SignalInfo) TimerID() int32 { return int32(s.u32(siginfoTimerID)) }

// SetTimerID sets si_timerid.
func (s *SignalInfo) SetTimerID(v int32) { s.put32(siginfoTimerID, uint32(v)) }

// Overrun returns si_overrun.
func (s *SignalInfo) Overrun() int32 { return int32(s.u32(siginfoOverrun)) }

// SetOverrun sets si_overrun.
func (s *SignalInfo) SetOverrun(v int32) { s.put32(siginfoOverrun, uint32(v)) }

// Value returns si_value (union sigval) of timer and queued signals.
func (s *SignalInfo) Value() uint64 { return s.u64(siginfoValue) }

// SetValue sets si_value.
func (s *SignalInfo) SetValue(v uint64) { s.put64(siginfoValue, v) }

// Status returns si_status of SIGCHLD: the exit code or the signal.
func (s *SignalInfo) Status() int32 { return int32(s.u32(siginfoStatus)) }

// SetStatus sets si_status.
func (s *SignalInfo) SetStatus(v int32) { s.put32(siginfoStatus, uint32(v)) }

// Utime returns si_utime of SIGCHLD, in clock ticks.
func (s *SignalInfo) Utime() int64 { return int64(s.u64(siginfoUtime)) }

// SetUtime sets si_utime.
func (s *SignalInfo) SetUtime(v int64) { s.put64(siginfoUtime, uint64(v)) }

// Stime returns si_stime of SIGCHLD, in clock ticks.
func (s *SignalInfo) Stime() int64 { return int64(s.u64(siginfoStime)) }

// SetStime sets si_stime.
func (s *SignalInfo) SetStime(v int64) { s.put64(siginfoStime, uint64(v)) }

// Addr returns si_addr of a fault.
func (s *SignalInfo) Addr() uint64 { return s.u64(siginfoAddr) }

// SetAddr sets si_addr.
func (s *SignalInfo) SetAddr(v uint64) { s.put64(siginfoAddr, v) }

// AddrLSB returns si_addr_lsb of a BUS_MCEERR_* fault.
func (s *SignalInfo) AddrLSB() int16 { return int16(le.Uint16(s[siginfoAddrLSB:])) }

// SetAddrLSB sets si_addr_lsb.
func (s *SignalInfo) SetAddrLSB(v int16) { le.PutUint16(s[siginfoAddrLSB:], uint16(v)) }

// Pkey returns si_pkey of a SEGV_PKUERR fault.
func (s *SignalInfo) Pkey() uint32 { return s.u32(siginfoPkey) }

// SetPkey sets si_pkey.
func (s *SignalInfo) SetPkey(v uint32) { s.put32(siginfoPkey, v) }

// Band returns si_band of SIGPOLL.
func (s *SignalInfo) Band() int64 { return int64(s.u64(siginfoBand)) }

// SetBand sets si_band.
func (s *SignalInfo) SetBand(v int64) { s.put64(siginfoBand, uint64(v)) }

// FD returns si_fd of SIGPOLL.
func (s *SignalInfo) FD() int32 { return int32(s.u32(siginfoFD)) }

// SetFD sets si_fd.
func (s *SignalInfo) SetFD(v int32) { s.put32(siginfoFD, uint32(v)) }

// CallAddr returns si_call_addr of SIGSYS: the address after the system call
// instruction.
func (s *SignalInfo) CallAddr() uint64 { return s.u64(siginfoCallAddr) }

// SetCallAddr sets si_call_addr.
func (s *SignalInfo) SetCallAddr(v uint64) { s.put64(siginfoCallAddr, v) }

// Syscall returns si_syscall of SIGSYS.
func (s *SignalInfo) Syscall() int32 { return int32(s.u32(siginfoSyscall)) }

// SetSyscall sets si_syscall.
func (s *SignalInfo) SetSyscall(v int32) { s.put32(siginfoSyscall, uint32(v)) }

// Arch returns si_arch of SIGSYS.
func (s *SignalInfo) Arch() uint32 { return s.u32(siginfoArch) }

// SetArch sets si_arch.
func (s *SignalInfo) SetArch(v uint32) { s.put32(siginfoArch, v) }

// SigContextSize is the size of struct sigcontext on x86-64.
const SigContextSize = 256

// SigContext is struct sigcontext of x86-64
// (arch/x86/include/uapi/asm/sigcontext.h): the general registers as a
// signal handler sees them in uc_mcontext, and where rt_sigreturn(2)
// restores them from.
type SigContext struct {
	R8, R9, R10, R11, R12, R13, R14, R15 uint64 // 0..56
	Rdi                                  uint64 // 64
	Rsi                                  uint64 // 72
	Rbp                                  uint64 // 80
	Rbx                                  uint64 // 88
	Rdx                                  uint64 // 96
	Rax                                  uint64 // 104
	Rcx                                  uint64 // 112
	Rsp                                  uint64 // 120
	Rip                                  uint64 // 128
	Eflags                               uint64 // 136
	Cs                                   uint16 // 144
	Gs                                   uint16 // 146
	Fs                                   uint16 // 148
	Ss                                   uint16 // 150
	Err                                  uint64 // 152
	Trapno                               uint64 // 160
	Oldmask                              uint64 // 168
	Cr2                                  uint64 // 176
	FPState                              uint64 // 184: address of the FPState, 0 if none; 64 reserved bytes follow
}

// Offsets of SigContext fields a signal handler or debugger reads.
const (
	SigContextRipOffset     = 128
	SigContextRspOffset     = 120
	SigContextFPStateOffset = 184
)

func (c *SigContext) words() []*uint64 {
	return []*uint64{&c.R8, &c.R9, &c.R10, &c.R11, &c.R12, &c.R13, &c.R14, &c.R15,
		&c.Rdi, &c.Rsi, &c.Rbp, &c.Rbx, &c.Rdx, &c.Rax, &c.Rcx, &c.Rsp, &c.Rip, &c.Eflags}
}

// Marshal writes c into b[:SigContextSize].
func (c *SigContext) Marshal(b []byte) {
	b = b[:SigContextSize]
	clear(b)
	for i, p := range c.words() {
		le.PutUint64(b[8*i:], *p)
	}
	le.PutUint16(b[144:], c.Cs)
	le.PutUint16(b[146:], c.Gs)
	le.PutUint16(b[148:], c.Fs)
	le.PutUint16(b[150:], c.Ss)
	le.PutUint64(b[152:], c.Err)
	le.PutUint64(b[160:], c.Trapno)
	le.PutUint64(b[168:], c.Oldmask)
	le.PutUint64(b[176:], c.Cr2)
	le.PutUint64(b[184:], c.FPState)
}

// Unmarshal reads c from b[:SigContextSize].
func (c *SigContext) Unmarshal(b []byte) {
	b = b[:SigContextSize]
	for i, p := range c.words() {
		*p = le.Uint64(b[8*i:])
	}
	c.Cs = le.Uint16(b[144:])
	c.Gs = le.Uint16(b[146:])
	c.Fs = le.Uint16(b[148:])
	c.Ss = le.Uint16(b[150:])
	c.Err = le.Uint64(b[152:])
	c.Trapno = le.Uint64(b[160:])
	c.Oldmask = le.Uint64(b[168:])
	c.Cr2 = le.Uint64(b[176:])
	c.FPState = le.Uint64(b[184:])
}

// uc_flags bits of x86-64 (arch/x86/include/uapi/asm/ucontext.h).
const (
	UC_FP_XSTATE         = 0x1 // the FPState has an xsave area
	UC_SIGCONTEXT_SS     = 0x2 // SigContext.Ss is valid
	UC_STRICT_RESTORE_SS = 0x4 // rt_sigreturn restores Ss as saved
)

// UContextSize is the size of the kernel's struct ucontext on x86-64.
const UContextSize = 304

// Offsets in struct ucontext.
const (
	UContextFlagsOffset    = 0
	UContextLinkOffset     = 8
	UContextStackOffset    = 16
	UContextMContextOffset = 40
	UContextSigmaskOffset  = 296
)

// UContext is the kernel's struct ucontext of x86-64, the second argument of
// an SA_SIGINFO handler. It is shorter than the C library's ucontext_t,
// which appends its own copy of the FP state.
type UContext struct {
	Flags    uint64      // 0: UC_*
	Link     uint64      // 8
	Stack    SignalStack // 16: the alternate signal stack at delivery
	MContext SigContext  // 40
	Sigmask  SignalSet   // 296: the mask to restore on return
}

// Marshal writes u into b[:UContextSize].
func (u *UContext) Marshal(b []byte) {
	b = b[:UContextSize]
	le.PutUint64(b[UContextFlagsOffset:], u.Flags)
	le.PutUint64(b[UContextLinkOffset:], u.Link)
	u.Stack.Marshal(b[UContextStackOffset:])
	u.MContext.Marshal(b[UContextMContextOffset:])
	le.PutUint64(b[UContextSigmaskOffset:], uint64(u.Sigmask))
}

// Unmarshal reads u from b[:UContextSize].
func (u *UContext) Unmarshal(b []byte) {
	b = b[:UContextSize]
	u.Flags = le.Uint64(b[UContextFlagsOffset:])
	u.Link = le.Uint64(b[UContextLinkOffset:])
	u.Stack.Unmarshal(b[UContextStackOffset:])
	u.MContext.Unmarshal(b[UContextMContextOffset:])
	u.Sigmask = SignalSet(le.Uint64(b[UContextSigmaskOffset:]))
}

// The frame the kernel pushes to run a signal handler on x86-64
// (struct rt_sigframe of arch/x86/include/asm/sigframe.h):
//
//	sp+0    pretcode  the restorer's address, where the handler returns
//	sp+8    uc        struct ucontext (UContextSize bytes)
//	sp+312  info      siginfo_t (SignalInfoSize bytes)
//	sp+440  end of the frame
//
// The handler starts with rsp = sp (so its return address is pretcode and
// rsp+8 is 16-byte aligned, as after a call), rdi = signal, rsi = &info,
// rdx = &uc. The FP state goes below the red zone of the interrupted code,
// 64-byte aligned, before the frame, which sits below it; uc_mcontext's
// fpstate points at it.
const (
	RtSigframePretcodeOffset = 0
	RtSigframeUContextOffset = 8
	RtSigframeInfoOffset     = RtSigframeUContextOffset + UContextSize
	RtSigframeSize           = RtSigframeInfoOffset + SignalInfoSize
)

// RedZoneSize is the area below rsp that x86-64 code may use without moving
// rsp; signal delivery skips it.
const RedZoneSize = 128

// RtSigframe is struct rt_sigframe.
type RtSigframe struct {
	Pretcode uint64
	UContext UContext
	Info     SignalInfo
}

// Marshal writes f into b[:RtSigframeSize].
func (f *RtSigframe) Marshal(b []byte) {
	b = b[:RtSigframeSize]
	le.PutUint64(b[RtSigframePretcodeOffset:], f.Pretcode)
	f.UContext.Marshal(b[RtSigframeUContextOffset:])
	f.Info.Marshal(b[RtSigframeInfoOffset:])
}

// Unmarshal reads f from b[:RtSigframeSize].
func (f *RtSigframe) Unmarshal(b []byte) {
	b = b[:RtSigframeSize]
	f.Pretcode = le.Uint64(b[RtSigframePretcodeOffset:])
	f.UContext.Unmarshal(b[RtSigframeUContextOffset:])
	f.Info.Unmarshal(b[RtSigframeInfoOffset:])
}

// SigeventSize is the size of struct sigevent.
const SigeventSize = 64

// Sigevent is struct sigevent (timer_create(2), mq_notify(3)).
type Sigevent struct {
	Value    uint64 // 0: union sigval
	Signo    int32  // 8
	Notify   int32  // 12: SIGEV_*
	ThreadID int32  // 16: sigev_notify_thread_id, with SIGEV_THREAD_ID; padding to 64 follows
}

// Marshal writes e into b[:SigeventSize].
func (e *Sigevent) Marshal(b []byte) {
	b = b[:SigeventSize]
	clear(b)
	le.PutUint64(b[0:], e.Value)
	le.PutUint32(b[8:], uint32(e.Signo))
	le.PutUint32(b[12:], uint32(e.Notify))
	le.PutUint32(b[16:], uint32(e.ThreadID))
}

// Unmarshal reads e from b[:SigeventSize].
func (e *Sigevent) Unmarshal(b []byte) {
	b = b[:SigeventSize]
	e.Value = le.Uint64(b[0:])
	e.Signo = int32(le.Uint32(b[8:]))
	e.Notify = int32(le.Uint32(b[12:]))
	e.ThreadID = int32(le.Uint32(b[16:]))
}
