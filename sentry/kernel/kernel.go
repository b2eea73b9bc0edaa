// Package kernel is the sentry's process model: tasks (threads), thread
// groups (processes), process groups and sessions in a PID namespace, the
// run loop that takes a CPU to run user code and serves its syscalls and
// faults, signals, exit and wait, clone and execve, and file descriptors.
package kernel

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/mm"
	"moat.dev/moat/sentry/platform"
	"moat.dev/moat/sentry/vfs"
)

// SyscallFunc implements one system call. It returns the value for RAX or
// an error: an abi.Errno, a unix.Errno, or one of the restart errors.
type SyscallFunc func(t *Task, args *SyscallArgs) (uint64, error)

// SyscallArgs are a system call's number and arguments.
type SyscallArgs struct {
	Nr   uint64
	Args [6]uint64
}

// Config configures a Kernel.
type Config struct {
	Machine  platform.Machine
	VFS      *vfs.VirtualFilesystem
	Hostname string
	// MemoryLimit bounds the sandbox's RAM (0: none).
	MemoryLimit uint64
	// Syscalls maps numbers to implementations.
	Syscalls []SyscallFunc
	// Log receives the kernel's own messages (unimplemented syscalls,
	// fatal signals).
	Log *slog.Logger
	// MaxTasks bounds the threads of the sandbox (0: DefaultMaxTasks).
	MaxTasks int
	// Strace, if set, receives one line per syscall, formatted by
	// StraceFormat when set.
	Strace       io.Writer
	StraceFormat func(t *Task, a *SyscallArgs, rv uint64, err error) string
}

// Kernel is one sandbox's application kernel.
type Kernel struct {
	M        platform.Machine
	VFS      *vfs.VirtualFilesystem
	Frames   *mm.Frames
	Log      *slog.Logger
	Strace   io.Writer
	straceFn func(t *Task, a *SyscallArgs, rv uint64, err error) string
	syscalls []SyscallFunc
	boot     time.Time
	sched    *scheduler
	clock    *Clock

	// mu guards the task tree, process and signal state.
	mu       sync.Mutex
	hostname string
	// domainname is the UTS domain name ("" shows as "(none)").
	domainname string
	maxTasks   int
	// rootNS is the sandbox's PID namespace; idNS maps each root ID in
	// use to the deepest namespace that numbers it.
	rootNS *PIDNamespace
	idNS   map[int32]*PIDNamespace
	tasks  map[int32]*Task // by TID
	groups map[int32]*ThreadGroup
	init   *ThreadGroup
	unimpl sync.Map // syscall number → struct{} once logged
	// seccompLogs bounds the logging of seccomp actions.
	seccompLogs logLimiter
	oomKills    atomic.Uint64
	// oomByContainer counts OOM kills per container name.
	oomByContainer map[string]uint64
	liveTasks      sync.WaitGroup
	// initExit is closed when the init process has exited and been reaped.
	initExit   chan struct{}
	initStatus WaitStatus
	// fz is the freeze state of the containers (freezer.go).
	fz freezer
	// exitedCPU is the CPU time of the tasks that have ended, by
	// container: with the live tasks' it makes a container's
	// cumulative usage (a cgroup's cpu.stat).
	exitedCPU map[string]CPUUsage
	// exitedCPUAll is the same for the whole sandbox: it keeps the time
	// of containers that are gone.
	exitedCPUAll CPUUsage
	// cpuSeen is the last usage reported per container ("": sandbox),
	// which later reports never go below.
	cpuSeen map[string]CPUUsage
}

// New returns a kernel with no processes.
func New(cfg Config) *Kernel {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "moat"
	}
	k := &Kernel{
		M:              cfg.Machine,
		VFS:            cfg.VFS,
		Frames:         mm.NewFrames(cfg.Machine, cfg.MemoryLimit),
		Log:            cfg.Log,
		Strace:         cfg.Strace,
		straceFn:       cfg.StraceFormat,
		syscalls:       cfg.Syscalls,
		boot:           time.Now(),
		hostname:       cfg.Hostname,
		maxTasks:       cfg.MaxTasks,
		idNS:           map[int32]*PIDNamespace{},
		tasks:          map[int32]*Task{},
		groups:         map[int32]*ThreadGroup{},
		oomByContainer: map[string]uint64{},
		initExit:       make(chan struct{}),
		fz:             freezer{thawed: make(chan struct{})},
		exitedCPU:      map[string]CPUUsage{},
		cpuSeen:        map[string]CPUUsage{},
	}
	k.rootNS = newPIDNamespace(k, nil)
	if k.maxTasks <= 0 {
		k.maxTasks = DefaultMaxTasks
	}
	k.sched = newScheduler(cfg.Machine.CPUs())
	k.initClock()
	go k.preempter()
	return k
}

// Hostname returns the UTS hostname.
func (k *Kernel) Hostname() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.hostname
}

// SetHostname sets it.
func (k *Kernel) SetHostname(h string) {
	k.mu.Lock()
	k.hostname = h
	k.mu.Unlock()
}

// Domainname returns the UTS domain name, "(none)" when unset.
func (k *Kernel) Domainname() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.domainname == "" {
		return "(none)"
	}
	return k.domainname
}

// SetDomainname sets it.
func (k *Kernel) SetDomainname(d string) {
	k.mu.Lock()
	k.domainname = d
	k.mu.Unlock()
}

// BootTime is when the kernel started.
func (k *Kernel) BootTime() time.Time { return k.boot }

// SetCPUs changes how many tasks run user code at once.
func (k *Kernel) SetCPUs(n int) error {
	if err := k.M.SetCPUs(n); err != nil {
		return err
	}
	k.sched.setSlots(n)
	return nil
}

// CPUs returns the number of CPUs of the sandbox.
func (k *Kernel) CPUs() int { return k.sched.slotCount() }

// TaskByID returns the live task with TID tid (in the root namespace).
func (k *Kernel) TaskByID(tid int32) *Task {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.tasks[tid]
}

// ThreadGroups returns every process of the sandbox.
func (k *Kernel) ThreadGroups() []*ThreadGroup {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]*ThreadGroup, 0, len(k.groups))
	for _, g := range k.groups {
		out = append(out, g)
	}
	return out
}

// ThreadGroupByID returns the process with PID pid (in the root
// namespace).
func (k *Kernel) ThreadGroupByID(pid int32) *ThreadGroup {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.groups[pid]
}

// logUnimplemented logs an unknown syscall once per number.
func (k *Kernel) logUnimplemented(t *Task, nr uint64) {
	if _, loaded := k.unimpl.LoadOrStore(nr, struct{}{}); loaded {
		return
	}
	name := abi.SyscallName(nr)
	if name == "" {
		name = fmt.Sprintf("syscall %d", nr)
	}
	k.Log.Warn("unsupported syscall returns ENOSYS", "syscall", name, "nr", nr, "pid", t.tg.pid, "comm", t.Name())
}

// WaitInit waits for the init process to exit and returns its status.
func (k *Kernel) WaitInit(ctx context.Context) (WaitStatus, error) {
	select {
	case <-k.initExit:
		return k.initStatus, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Shutdown kills every process and waits for their tasks to end.
func (k *Kernel) Shutdown() {
	k.mu.Lock()
	for _, g := range k.groups {
		k.killGroupLocked(g, abi.SIGKILL)
	}
	k.mu.Unlock()
	k.liveTasks.Wait()
	k.clock.stopAndWait()
}

// OOMKills returns how many processes were killed for running out of
// memory.
func (k *Kernel) OOMKills() uint64 { return k.oomKills.Load() }

// ContainerOOMKills returns how many processes of container were killed
// for running out of memory.
func (k *Kernel) ContainerOOMKills(container string) uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.oomByContainer[container]
}

// DefaultMaxTasks is the thread limit of a sandbox without a pids limit.
const DefaultMaxTasks = 16384

// WaitStatus is a wait(2) status word.
type WaitStatus uint32

// Exited builds the status of a normal exit.
func Exited(code int) WaitStatus { return WaitStatus(code&0xff) << 8 }

// Signaled builds the status of death by signal.
func Signaled(sig abi.Signal, core bool) WaitStatus {
	s := WaitStatus(sig & 0x7f)
	if core {
		s |= 0x80
	}
	return s
}

// ExitCode is what a shell shows: the exit code, or 128+signal.
func (w WaitStatus) ExitCode() int {
	if w&0x7f == 0 {
		return int(w>>8) & 0xff
	}
	return 128 + int(w&0x7f)
}

// Signal returns the killing signal, or 0.
func (w WaitStatus) Signal() abi.Signal { return abi.Signal(w & 0x7f) }

// scheduler hands out the right to run user code: at most slots tasks at
// once, first come first served, so that a task that spins cannot starve
// one that waits.
type scheduler struct {
	mu      sync.Mutex
	slots   int
	running int
	queue   []chan struct{}
}

func newScheduler(n int) *scheduler { return &scheduler{slots: max(n, 1)} }

func (s *scheduler) setSlots(n int) {
	s.mu.Lock()
	s.slots = max(n, 1)
	s.wakeLocked()
	s.mu.Unlock()
}

func (s *scheduler) slotCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slots
}

func (s *scheduler) wakeLocked() {
	for s.running < s.slots && len(s.queue) > 0 {
		ch := s.queue[0]
		s.queue = s.queue[1:]
		s.running++
		close(ch)
	}
}

// acquire waits for a slot; it returns false if cancel closes first.
func (s *scheduler) acquire(cancel <-chan struct{}) bool {
	s.mu.Lock()
	if s.running < s.slots && len(s.queue) == 0 {
		s.running++
		s.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	s.queue = append(s.queue, ch)
	s.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-cancel:
		s.mu.Lock()
		for i, c := range s.queue {
			if c == ch {
				s.queue = append(s.queue[:i], s.queue[i+1:]...)
				s.mu.Unlock()
				return false
			}
		}
		s.mu.Unlock()
		// Granted meanwhile.
		s.release()
		return false
	}
}

func (s *scheduler) release() {
	s.mu.Lock()
	s.running--
	s.wakeLocked()
	s.mu.Unlock()
}

// contended reports whether tasks wait for a slot.
func (s *scheduler) contended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) > 0
}

// timeSlice is how long a task may run user code while others wait for a
// CPU.
const timeSlice = 10 * time.Millisecond

// preempter kicks tasks out of user mode when others wait for a CPU, so
// that a task that spins cannot starve the rest: a kicked task gives its
// CPU to the first waiter and queues again.
func (k *Kernel) preempter() {
	t := time.NewTicker(timeSlice)
	defer t.Stop()
	for {
		select {
		case <-k.clock.stop:
			return
		case <-t.C:
		}
		if !k.sched.contended() {
			continue
		}
		k.mu.Lock()
		for _, task := range k.tasks {
			if task.running != nil {
				task.running.Kick()
			}
		}
		k.mu.Unlock()
	}
}
