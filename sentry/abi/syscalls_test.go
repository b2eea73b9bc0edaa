package abi

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSyscallTableMatchesHeaders checks every system call the installed
// kernel headers know against the table, both ways: each __NR_ macro of
// asm/unistd_64.h has the same number and name here, and each name here
// that the headers know has the headers' number.
func TestSyscallTableMatchesHeaders(t *testing.T) {
	m := macros(t, "asm/unistd_64.h")
	known := 0
	for name, val := range m {
		sc, ok := strings.CutPrefix(name, "__NR_")
		if !ok {
			continue
		}
		nr, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			t.Errorf("%s = %q: not a number", name, val)
			continue
		}
		known++
		if got := SyscallName(nr); got != sc {
			t.Errorf("SyscallName(%d) = %q, headers say %q", nr, got, sc)
		}
		if got, ok := SyscallNumber(sc); !ok || got != nr {
			t.Errorf("SyscallNumber(%q) = %d, %v; headers say %d", sc, got, ok, nr)
		}
	}
	if known < 350 {
		t.Fatalf("asm/unistd_64.h defines only %d system calls; wrong header?", known)
	}
	t.Logf("%d system calls checked against asm/unistd_64.h; the table has %d numbers", known, MaxSyscall)
}

func TestSyscallTable(t *testing.T) {
	for _, c := range []struct {
		nr   uint64
		name string
	}{
		{0, "read"}, {1, "write"}, {9, "mmap"}, {15, "rt_sigreturn"}, {56, "clone"},
		{59, "execve"}, {60, "exit"}, {158, "arch_prctl"}, {202, "futex"},
		{231, "exit_group"}, {257, "openat"}, {262, "newfstatat"}, {334, "rseq"},
		{424, "pidfd_send_signal"}, {435, "clone3"}, {436, "close_range"},
		{437, "openat2"}, {439, "faccessat2"}, {441, "epoll_pwait2"},
		{452, "fchmodat2"}, {462, "mseal"},
	} {
		if got := SyscallName(c.nr); got != c.name {
			t.Errorf("SyscallName(%d) = %q, want %q", c.nr, got, c.name)
		}
	}
	// x86-64 has no system calls between uprobe (336) and pidfd_send_signal (424).
	for nr := uint64(337); nr < 424; nr++ {
		if n := SyscallName(nr); n != "" {
			t.Errorf("SyscallName(%d) = %q, want none", nr, n)
		}
	}
	for _, nr := range []uint64{uint64(MaxSyscall), 512, 1 << 40, ^uint64(0)} {
		if n := SyscallName(nr); n != "" {
			t.Errorf("SyscallName(%d) = %q, want none", nr, n)
		}
	}
	if _, ok := SyscallNumber(""); ok {
		t.Error(`SyscallNumber("") found a system call`)
	}
	if _, ok := SyscallNumber("no_such_call"); ok {
		t.Error(`SyscallNumber("no_such_call") found a system call`)
	}
	if SYS_CLONE3 != 435 || SYS_CLOSE_RANGE != 436 || SYS_OPENAT2 != 437 ||
		SYS_FACCESSAT2 != 439 || SYS_EPOLL_PWAIT2 != 441 {
		t.Error("a recent system call has the wrong number")
	}
}

// TestErrnosMatchHeaders checks that every error number the kernel headers
// define has a constant here with the same value and a name.
func TestErrnosMatchHeaders(t *testing.T) {
	m := macros(t, "linux/errno.h")
	n := 0
	for name, val := range m {
		if !strings.HasPrefix(name, "E") {
			continue
		}
		v, err := strconv.Atoi(val)
		if err != nil {
			// An alias such as EWOULDBLOCK EAGAIN.
			v2, ok := m[val]
			if !ok {
				continue
			}
			if v, err = strconv.Atoi(v2); err != nil {
				continue
			}
		}
		n++
		e := Errno(v)
		got := e.Name()
		if got != name && !(name == "EWOULDBLOCK" && got == "EAGAIN") && !(name == "EDEADLOCK" && got == "EDEADLK") {
			t.Errorf("Errno(%d).Name() = %q, headers say %s", v, got, name)
		}
	}
	if n < 130 {
		t.Fatalf("linux/errno.h defines only %d errors", n)
	}
}

func TestErrno(t *testing.T) {
	if ENOENT.Error() != "ENOENT" || ENOENT.Name() != "ENOENT" {
		t.Errorf("ENOENT.Error() = %q", ENOENT.Error())
	}
	if ENOENT.Description() != "no such file or directory" {
		t.Errorf("ENOENT.Description() = %q", ENOENT.Description())
	}
	if Errno(4000).Name() != "errno 4000" {
		t.Errorf("Errno(4000).Name() = %q", Errno(4000).Name())
	}
	if ERESTARTSYS.Name() != "ERESTARTSYS" || ERESTART_RESTARTBLOCK.Name() != "ERESTART_RESTARTBLOCK" {
		t.Error("restart errnos have no names")
	}
	if ENOTSUP != EOPNOTSUPP || EWOULDBLOCK != EAGAIN || EDEADLOCK != EDEADLK {
		t.Error("aliases differ")
	}
	wrapped := fmt.Errorf("open /x: %w", ENOENT)
	if !errors.Is(wrapped, ENOENT) || errors.Is(wrapped, EACCES) {
		t.Error("errors.Is on a wrapped Errno")
	}
	if wrapped.Error() != "open /x: ENOENT" {
		t.Errorf("wrapped = %q", wrapped)
	}
	if !errors.Is(wrapped, syscall.ENOENT) || errors.Is(wrapped, syscall.EPERM) {
		t.Error("errors.Is(wrapped abi.ENOENT, syscall.ENOENT)")
	}
	if e, ok := AsErrno(fmt.Errorf("stat: %w", syscall.ENOENT)); !ok || e != ENOENT {
		t.Errorf("AsErrno(host ENOENT) = %v, %v", e, ok)
	}
	if e, ok := AsErrno(fmt.Errorf("x: %w", EXDEV)); !ok || e != EXDEV {
		t.Errorf("AsErrno(EXDEV) = %v, %v", e, ok)
	}
	if _, ok := AsErrno(errors.New("plain")); ok {
		t.Error("AsErrno found an errno in a plain error")
	}
	if !ENOENT.Is(unix.ENOENT) || ENOENT.Is(unix.EPERM) || ENOENT.Is(errors.New("x")) {
		t.Error("Errno.Is")
	}
	r := EINTR.Return()
	if int64(r) != -4 {
		t.Errorf("EINTR.Return() = %#x", r)
	}
	if e, ok := ErrnoFromReturn(r); !ok || e != EINTR {
		t.Errorf("ErrnoFromReturn(%#x) = %v, %v", r, e, ok)
	}
	minus4096 := int64(-MaxErrno - 1)
	for _, v := range []uint64{0, 1, 1 << 47, uint64(minus4096)} {
		if e, ok := ErrnoFromReturn(v); ok {
			t.Errorf("ErrnoFromReturn(%#x) = %v, want no error", v, e)
		}
	}
	minus4095 := int64(-MaxErrno)
	if e, ok := ErrnoFromReturn(uint64(minus4095)); !ok || e != MaxErrno {
		t.Errorf("ErrnoFromReturn(-MaxErrno) = %v, %v", e, ok)
	}
}

func TestSignals(t *testing.T) {
	m := macros(t, "asm/signal.h")
	n := 0
	for name, val := range m {
		if !strings.HasPrefix(name, "SIG") || strings.HasPrefix(name, "SIG_") || name == "SIGRTMIN" || name == "SIGSTKSZ" {
			continue
		}
		v, err := strconv.Atoi(val)
		if err != nil {
			continue
		}
		n++
		s := Signal(v)
		switch name {
		case "SIGIOT", "SIGPOLL", "SIGUNUSED":
			continue
		}
		if s.Name() != name {
			t.Errorf("Signal(%d).Name() = %q, headers say %s", v, s.Name(), name)
		}
	}
	if n < 31 {
		t.Fatalf("asm/signal.h defines only %d signals", n)
	}
	if SIGRTMIN.Name() != "SIGRTMIN" || Signal(35).Name() != "SIGRTMIN+3" || SIGRTMAX.Name() != "SIGRTMAX" || Signal(0).Name() != "signal 0" || Signal(65).Name() != "signal 65" {
		t.Error("signal names")
	}
	if Signal(0).Valid() || !SIGRTMAX.Valid() || Signal(65).Valid() || !Signal(40).IsRealtime() || SIGSYS.IsRealtime() {
		t.Error("Valid/IsRealtime")
	}
	want := map[Signal]SignalAction{
		SIGHUP: ActionTerm, SIGINT: ActionTerm, SIGQUIT: ActionCore, SIGILL: ActionCore,
		SIGTRAP: ActionCore, SIGABRT: ActionCore, SIGBUS: ActionCore, SIGFPE: ActionCore,
		SIGKILL: ActionTerm, SIGUSR1: ActionTerm, SIGSEGV: ActionCore, SIGUSR2: ActionTerm,
		SIGPIPE: ActionTerm, SIGALRM: ActionTerm, SIGTERM: ActionTerm, SIGSTKFLT: ActionTerm,
		SIGCHLD: ActionIgnore, SIGCONT: ActionCont, SIGSTOP: ActionStop, SIGTSTP: ActionStop,
		SIGTTIN: ActionStop, SIGTTOU: ActionStop, SIGURG: ActionIgnore, SIGXCPU: ActionCore,
		SIGXFSZ: ActionCore, SIGVTALRM: ActionTerm, SIGPROF: ActionTerm, SIGWINCH: ActionIgnore,
		SIGIO: ActionTerm, SIGPWR: ActionTerm, SIGSYS: ActionCore, SIGRTMIN: ActionTerm, SIGRTMAX: ActionTerm,
	}
	for s, a := range want {
		if got := DefaultAction(s); got != a {
			t.Errorf("DefaultAction(%v) = %v, want %v", s, got, a)
		}
	}
	set := SignalSetOf(SIGINT, SIGRTMAX, Signal(0), Signal(99))
	if set != 1<<1|1<<63 || !set.Has(SIGINT) || set.Has(SIGHUP) || set.Has(Signal(0)) || !set.Has(SIGRTMAX) {
		t.Errorf("SignalSetOf = %#x", uint64(set))
	}
	if UnblockableSignals != 1<<8|1<<18 {
		t.Errorf("UnblockableSignals = %#x", uint64(UnblockableSignals))
	}
	for a, s := range map[SignalAction]string{ActionTerm: "term", ActionCore: "core", ActionIgnore: "ignore", ActionStop: "stop", ActionCont: "cont", 9: "action 9"} {
		if a.String() != s {
			t.Errorf("%d.String() = %q", int(a), a.String())
		}
	}
}

func TestCapabilityNames(t *testing.T) {
	m := macros(t, "linux/capability.h")
	for c := 0; c <= CAP_LAST_CAP; c++ {
		name := CapabilityName(c)
		if m[name] != strconv.Itoa(c) {
			t.Errorf("CapabilityName(%d) = %q, headers define it as %q", c, name, m[name])
		}
	}
	if CapabilityName(-1) != "" || CapabilityName(CAP_LAST_CAP+1) != "" {
		t.Error("CapabilityName out of range")
	}
	if m["CAP_LAST_CAP"] != "CAP_CHECKPOINT_RESTORE" {
		t.Logf("headers' CAP_LAST_CAP is %s", m["CAP_LAST_CAP"])
	}
}

func TestWaitStatus(t *testing.T) {
	// The same encodings glibc's macros decode.
	if s := unix.WaitStatus(WaitStatusExited(3)); !s.Exited() || s.ExitStatus() != 3 {
		t.Errorf("exited: %#x", uint32(s))
	}
	if s := unix.WaitStatus(WaitStatusSignaled(SIGKILL, false)); !s.Signaled() || s.Signal() != unix.SIGKILL || s.CoreDump() {
		t.Errorf("signaled: %#x", uint32(s))
	}
	if s := unix.WaitStatus(WaitStatusSignaled(SIGSEGV, true)); !s.Signaled() || s.Signal() != unix.SIGSEGV || !s.CoreDump() {
		t.Errorf("core: %#x", uint32(s))
	}
	if s := unix.WaitStatus(WaitStatusStopped(SIGTSTP)); !s.Stopped() || s.StopSignal() != unix.SIGTSTP {
		t.Errorf("stopped: %#x", uint32(s))
	}
	if s := unix.WaitStatus(WaitStatusContinued); !s.Continued() {
		t.Errorf("continued: %#x", uint32(s))
	}
}

func TestIOC(t *testing.T) {
	// TIOCGPTN is _IOR('T', 0x30, unsigned int).
	if got := IOC(IOC_READ, 'T', 0x30, 4); got != TIOCGPTN {
		t.Errorf("IOC = %#x, want %#x", got, TIOCGPTN)
	}
	if IOCSize(TIOCSPTLCK) != 4 || IOCDir(TIOCSPTLCK) != IOC_WRITE || IOCDir(TCGETS) != IOC_NONE {
		t.Error("IOCSize/IOCDir")
	}
	if DirentType(S_IFDIR|0o755) != DT_DIR || DirentType(S_IFLNK) != DT_LNK || DirentType(S_IFREG) != DT_REG {
		t.Error("DirentType")
	}
}
