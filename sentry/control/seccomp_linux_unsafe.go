package control

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/seccomp"
)

// sentrySyscalls are the host system calls a confined sentry makes: the
// Go runtime's (threads, memory, signals, timers, the network poller;
// and a C library's thread start-up for cgo builds), KVM's (the signals
// that kick vCPUs; its ioctls are in sentryIoctls), the file system calls
// of hostfs on the descriptors it holds (its root is an empty tmpfs: a
// path reaches only through them), the sockets of hostinet and of the
// control connection. Found by reading the code and by running the
// sentry's tests and the e2e scenarios with MOAT_SENTRY_SECCOMP=log.
//
// Everything else kills the sentry (SECCOMP_RET_KILL_PROCESS): a call
// outside this list is a sentry that does what it never does, which is
// what the filter is for; the kernel logs the call (audit type 1326) and
// the shim reports the death by SIGSYS (see SeccompKilled).
var sentrySyscalls = []string{
	// Memory (mmap and mprotect never executable: below).
	"munmap", "madvise", "mremap", "brk", "mincore", "memfd_create",
	// Threads, scheduling, time.
	"clone", "clone3", "exit", "exit_group", "futex", "futex_waitv", "set_robust_list",
	"get_robust_list", "rseq", "set_tid_address", "gettid", "getpid", "getppid",
	"sched_yield", "sched_getaffinity", "sched_getparam", "sched_getscheduler", "getcpu",
	"nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time",
	"timer_create", "timer_settime", "timer_gettime", "timer_delete", "setitimer", "getitimer",
	"getrusage", "times", "sysinfo", "uname", "getrandom", "restart_syscall", "arch_prctl",
	"getrlimit", "prlimit64", "getuid", "geteuid", "getgid", "getegid", "getgroups",
	"getresuid", "getresgid", "capget",
	// Signals (tgkill and kill are limited to the sentry itself below).
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "rt_sigpending",
	"sigaltstack",
	// Descriptors and I/O.
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
	"pwritev2", "lseek", "close", "close_range", "dup", "dup2", "dup3", "fcntl", "flock",
	"pipe", "pipe2", "eventfd2", "poll", "ppoll", "select", "pselect6",
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
	"sendfile", "splice", "copy_file_range",
	// Files, through held descriptors.
	"open", "openat", "openat2", "creat", "stat", "lstat", "fstat", "newfstatat", "statx",
	"statfs", "fstatfs", "getdents64", "getdents", "readlink", "readlinkat", "access",
	"faccessat", "faccessat2", "mkdir", "mkdirat", "mknod", "mknodat", "rmdir", "unlink",
	"unlinkat", "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat",
	"chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
	"utime", "utimes", "utimensat", "futimesat", "truncate", "ftruncate", "fallocate",
	"fsync", "fdatasync", "sync_file_range", "fadvise64", "readahead", "getcwd", "fchdir",
	"fgetxattr", "flistxattr", "getxattr", "lgetxattr", "listxattr", "llistxattr",
	// Sockets (socket for the families of hostinet only: below).
	"bind", "listen", "accept", "accept4", "connect", "getsockname",
	"getpeername", "setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg",
	"sendmmsg", "recvmmsg", "shutdown",
}

// sentryIoctls are the ioctl requests the sentry makes besides KVM's
// (whose type byte is 0xAE): on a container's host terminal, the
// terminal attributes and window size (hostio); on host sockets, the
// queue sizes and the interface queries (hostinet). Not TIOCSTI, not
// TIOCSCTTY, nothing that sets an interface.
var sentryIoctls = []uint64{
	unix.TCGETS, unix.TCSETS, unix.TCSETSW, unix.TCSETSF, unix.TIOCGWINSZ, unix.TIOCSWINSZ,
	unix.TIOCINQ, unix.SIOCOUTQ, unix.SIOCATMARK, unix.SIOCGIFCONF,
	unix.SIOCGIFNAME, unix.SIOCGIFFLAGS, unix.SIOCGIFADDR, unix.SIOCGIFDSTADDR,
	unix.SIOCGIFBRDADDR, unix.SIOCGIFNETMASK, unix.SIOCGIFMETRIC, unix.SIOCGIFMTU,
	unix.SIOCGIFHWADDR, unix.SIOCGIFINDEX, unix.SIOCGIFTXQLEN,
}

// SeccompModeEnv, set to "log" in a sentry's environment, makes the
// filter log the calls outside the list (SECCOMP_RET_LOG, in the kernel
// log) instead of killing: how the list is found and checked.
const SeccompModeEnv = "MOAT_SENTRY_SECCOMP"

// seccompFilter builds the classic BPF program of the filter for the
// process pid.
func seccompFilter(pid int, logOnly bool) ([]unix.SockFilter, error) {
	p := &seccomp.Profile{DefaultAction: "SCMP_ACT_KILL_PROCESS"}
	if logOnly {
		p.DefaultAction = "SCMP_ACT_LOG"
	}
	p.Syscalls = []seccomp.Rule{
		{Names: sentrySyscalls, Action: "SCMP_ACT_ALLOW"},
		// vCPU kicks and the Go runtime's preemption signal the
		// sentry's own threads only; the runtime's death by a signal
		// raises it on the sentry itself.
		{Names: []string{"tgkill", "kill"}, Action: "SCMP_ACT_ALLOW", Args: []seccomp.Arg{{Index: 0, Value: uint64(pid), Op: "SCMP_CMP_EQ"}}},
		{Names: []string{"ioctl"}, Action: "SCMP_ACT_ALLOW", Args: []seccomp.Arg{{Index: 1, Value: 0xff00, ValueTwo: 0xae00, Op: "SCMP_CMP_MASKED_EQ"}}},
		// No executable memory: the sentry's code is mapped at exec;
		// guest code runs from guest memory, never host-executable.
		{Names: []string{"mmap", "mprotect"}, Action: "SCMP_ACT_ALLOW", Args: []seccomp.Arg{{Index: 2, Value: unix.PROT_EXEC, ValueTwo: 0, Op: "SCMP_CMP_MASKED_EQ"}}},
		// Host sockets are hostinet's: IPv4, IPv6 and route netlink.
		{Names: []string{"socket"}, Action: "SCMP_ACT_ALLOW", Args: []seccomp.Arg{{Index: 0, Value: unix.AF_INET, Op: "SCMP_CMP_EQ"}}},
		{Names: []string{"socket"}, Action: "SCMP_ACT_ALLOW", Args: []seccomp.Arg{{Index: 0, Value: unix.AF_INET6, Op: "SCMP_CMP_EQ"}}},
		{Names: []string{"socket"}, Action: "SCMP_ACT_ALLOW", Args: []seccomp.Arg{
			{Index: 0, Value: unix.AF_NETLINK, Op: "SCMP_CMP_EQ"}, {Index: 2, Value: unix.NETLINK_ROUTE, Op: "SCMP_CMP_EQ"}}},
	}
	for _, req := range sentryIoctls {
		p.Syscalls = append(p.Syscalls, seccomp.Rule{Names: []string{"ioctl"}, Action: "SCMP_ACT_ALLOW",
			Args: []seccomp.Arg{{Index: 1, Value: req, Op: "SCMP_CMP_EQ"}}})
	}
	c, err := seccomp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("the sentry's seccomp filter: %w", err)
	}
	if len(c.Ignored) > 0 {
		return nil, fmt.Errorf("the sentry's seccomp filter names unknown system calls %v", c.Ignored)
	}
	var out []unix.SockFilter
	for _, in := range c.Program.Instructions() {
		out = append(out, unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K})
	}
	return out, nil
}

// installSeccomp applies the filter to every thread of the sentry (TSYNC).
// The process must have no_new_privs or CAP_SYS_ADMIN.
func installSeccomp() error {
	f, err := seccompFilter(os.Getpid(), os.Getenv(SeccompModeEnv) == "log")
	if err != nil {
		return err
	}
	prog := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(f)
	if e != 0 {
		return fmt.Errorf("install the sentry's seccomp filter: %w", e)
	}
	return nil
}

// SeccompKilled reports whether a sentry's exit error is a death by
// SIGSYS: its seccomp filter killed it for a host system call outside
// its list.
func SeccompKilled(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGSYS
}
