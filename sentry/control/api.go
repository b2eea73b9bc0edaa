// Package control is the sentry's control API: how the process that runs
// one pod's sandbox is driven from outside (by the shim). It knows nothing
// of containerd: it speaks of containers, processes, signals, statistics
// and resources.
//
// Transport: the sentry inherits two connected unix sockets. The first
// (a stream) carries net/rpc calls with a JSON codec to the service named
// ServiceName. The second (a seqpacket socket) carries file descriptors:
// each message holds an 8-byte token and, as SCM_RIGHTS, the descriptors
// (a process's stdin, stdout and stderr). A call that needs descriptors
// names the token of the message that brought them.
package control

import (
	"time"

	"moat.dev/moat/sentry/seccomp"
)

// ServiceName is the net/rpc service of the sentry.
const ServiceName = "Sentry"

// Config is how a sentry starts: the sandbox's size and logging.
type Config struct {
	// CPUs is the number of vCPUs (at least 1).
	CPUs int
	// Memory bounds the sandbox's RAM in bytes (0: no limit).
	Memory uint64
	// Hostname is the pod's UTS hostname.
	Hostname string
	// LogLevel is "debug", "info", "warn" or "error".
	LogLevel string
	// Strace logs every system call of the sandbox.
	Strace bool
	// Pod names the pod (for logs and the process list): its sandbox id
	// and bundle directory.
	Pod    string
	Bundle string
	// Confine shuts the sentry in (an empty root in its own mount
	// namespace) once its sandbox is up; Launch starts it in a new mount
	// namespace for that.
	Confine bool
	// NetNS is the path of the pod's network namespace (made by CNI):
	// Launch starts the sentry in it; empty: the shim's.
	NetNS string
	// NewNetNS gives the sentry a network namespace of its own with only
	// a loopback interface (an OCI network namespace without a path, as
	// `ctr run` makes by default); NetNS must be empty. Without either
	// the sentry shares the shim's (host networking).
	NewNetNS bool `json:",omitempty"`
	// Sysctls are the sandbox's own sysctls (SysctlSandbox ones) from
	// the pod's spec.
	Sysctls map[string]string `json:",omitempty"`
}

// Mount is one OCI mount of a container.
type Mount struct {
	Destination string
	Type        string
	// Source is the host path, for logs; the sentry never opens it.
	Source  string
	Options []string
	// FromFD says the source directory is the next descriptor of the
	// AddContainer message (a bind-mounted directory: a volume).
	FromFD bool
	// Data is the content of a bind-mounted file (/etc/hosts, ...).
	Data []byte
}

// AddContainerArgs attach a container's filesystem. The directories come
// as descriptors (O_PATH) in the message FDToken names: the root first,
// then one per mount with FromFD, in order.
type AddContainerArgs struct {
	ID       string
	FDToken  uint64
	ReadOnly bool
	Mounts   []Mount
	// RootFS is the host path of the root, for logs.
	RootFS string
	// PIDNamespace is PIDNamespaceContainer (its own, the default when
	// empty), PIDNamespacePod (the pod's, shared with its init) or
	// PIDNamespaceSandbox (the sandbox's, which sees every process of
	// the sandbox: what a sandbox gives for the host's).
	PIDNamespace string
	// MaskedPaths and ReadonlyPaths are the OCI spec's.
	MaskedPaths, ReadonlyPaths []string
	// Sysctls are sandbox sysctls (SysctlSandbox ones) of the
	// container's spec; they apply to the whole sandbox, as the
	// containers of a pod share their IPC and UTS namespaces.
	Sysctls map[string]string `json:",omitempty"`
}

// The PID namespaces a container may run in.
const (
	PIDNamespaceContainer = "container"
	PIDNamespacePod       = "pod"
	PIDNamespaceSandbox   = "sandbox"
)

// Empty is the argument or reply of calls that carry nothing.
type Empty struct{}

// StartArgs start a process: a container's first process (ExecID ""),
// an exec into a running container, or the pod's init (PodInit).
type StartArgs struct {
	ID     string
	ExecID string
	// PodInit starts the pod's own init as pid 1 for the pod's sandbox
	// container; Argv and the credentials are then ignored.
	PodInit bool

	Argv []string
	Env  []string
	Cwd  string

	UID, GID uint32
	Groups   []uint32
	// Caps is the effective capability set. With CapSets, Permitted,
	// Inheritable, Bounding and Ambient are the other four sets of the
	// OCI process; without, permitted and bounding equal Caps.
	Caps                                      uint64
	CapSets                                   bool
	Permitted, Inheritable, Bounding, Ambient uint64
	NoNewPrivs                                bool
	Umask                                     uint32
	// Seccomp is the container's seccomp profile (OCI linux.seccomp),
	// enforced by the sentry on the process and all it starts; nil:
	// none.
	Seccomp *seccomp.Profile `json:",omitempty"`

	// StdioToken names the descriptor message with the process's stdio;
	// Stdin/Stdout/Stderr say which of the three it holds, in that order.
	// A zero token means no stdio.
	StdioToken            uint64
	Stdin, Stdout, Stderr bool
}

// StartReply is the process started.
type StartReply struct {
	// Pid is the process's pid inside the sandbox.
	Pid int32
}

// ProcessArgs name a process: a container's first process (ExecID "")
// or one of its execs.
type ProcessArgs struct {
	ID     string
	ExecID string
}

// WaitReply is how a process ended.
type WaitReply struct {
	// ExitStatus is the exit code, or 128+signal for death by a signal
	// (what a shell and runc report).
	ExitStatus int
	// OOM says the kernel killed it (or a process of its container) for
	// running out of the sandbox's memory.
	OOM      bool
	ExitedAt time.Time
}

// SignalArgs send a signal to a process, or with All to every process of
// the container.
type SignalArgs struct {
	ID     string
	ExecID string
	Signal int
	All    bool
}

// ContainerArgs name a container; with Pod, Stats, Pause, Resume and
// FreezeState are about the whole sandbox instead (ID names its sandbox
// container).
type ContainerArgs struct {
	ID  string
	Pod bool
}

// PidsReply lists the pids (inside the sandbox) of a container's processes.
type PidsReply struct {
	Pids []int32
}

// StatsReply are a container's resource figures (the sandbox's with
// ContainerArgs.Pod).
type StatsReply struct {
	// CPUNanos is the cumulative CPU time of the container's processes,
	// those that have ended included (a cgroup's cpu.stat usage_usec),
	// as host thread CPU time: UserNanos running their code on a vCPU,
	// SystemNanos the sentry serving their syscalls and faults.
	CPUNanos    uint64
	UserNanos   uint64
	SystemNanos uint64
	// MemoryBytes is the guest memory mapped by the container's
	// processes, each frame counted once (for the pod: the sandbox's
	// whole guest memory in use, tmpfs and page cache included);
	// SandboxMemoryBytes, -Peak and -Limit are the sandbox's.
	MemoryBytes        uint64
	SandboxMemoryBytes uint64
	SandboxMemoryPeak  uint64
	SandboxMemoryLimit uint64
	Pids               uint64
	OOMKills           uint64 // of the container's processes
}

// UpdateArgs change the sandbox's resources. Zero leaves a value alone.
type UpdateArgs struct {
	CPUs int
	// Memory is the new limit in bytes; NoMemoryLimit lifts it.
	Memory        uint64
	NoMemoryLimit bool
}

// UpdateReply reports the sandbox's resources after an update.
type UpdateReply struct {
	CPUs   int
	Memory uint64
}

// FreezeReply is the freeze state of a container or of the sandbox.
type FreezeReply struct {
	// Frozen: its processes are to stay stopped until Resume.
	Frozen bool
	// Settled: every one of its tasks has stopped (a frozen container
	// not yet settled is "pausing").
	Settled bool
}
