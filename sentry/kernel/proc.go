package kernel

import (
	"context"
	"encoding/binary"
	"time"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/loader"
	"moat.dev/moat/sentry/mm"
	"moat.dev/moat/sentry/vfs"
)

// This file holds the read-only views of tasks and processes that /proc
// shows. Everything here may run on any goroutine: it reads under the
// kernel's lock, or takes references that keep what it reads alive.

type taskKey struct{}

// contextWithTask returns a context that carries t, so filesystems know
// who is calling (/proc/self).
func contextWithTask(ctx context.Context, t *Task) context.Context {
	return context.WithValue(ctx, taskKey{}, t)
}

// TaskFromContext returns the task a VFS call runs for, or nil when the
// sentry itself calls (setting up mounts, the shim).
func TaskFromContext(ctx context.Context) *Task {
	if ctx == nil {
		return nil
	}
	t, _ := ctx.Value(taskKey{}).(*Task)
	return t
}

// FilePath returns the path of f as t sees it, from t's root: what
// /proc/[pid]/exe, maps and fd show.
// Preconditions: called on t's goroutine, or t is alive (see ProcFS).
func (t *Task) FilePath(f *vfs.File) string {
	root := t.fs.Root()
	defer root.DecRef(t.ctx)
	vd := f.VirtualDentry()
	defer vd.DecRef(t.ctx)
	p, _ := t.k.VFS.PathOf(root, vd)
	return p
}

// Alive reports whether t has not yet exited.
func (t *Task) Alive() bool {
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	return t.k.tasks[t.tid] == t
}

// ProcMM returns t's address space with a user reference (the caller
// drops it with DecUsers), or nil once t has exited.
func (t *Task) ProcMM() *mm.MM {
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	if t.k.tasks[t.tid] != t || t.mm == nil || !t.mm.TryIncUsers() {
		return nil
	}
	return t.mm
}

// ProcFS returns t's root and working directory with references, or ok
// false once t has exited.
func (t *Task) ProcFS() (root, cwd vfs.VirtualDentry, ok bool) {
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	if t.k.tasks[t.tid] != t {
		return vfs.VirtualDentry{}, vfs.VirtualDentry{}, false
	}
	return t.fs.Root(), t.fs.Cwd(), true
}

// ProcCreds returns a copy of t's credentials.
func (t *Task) ProcCreds() Creds {
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	c := *t.creds
	c.Groups = append([]uint32(nil), c.Groups...)
	return c
}

// TaskInfo is a snapshot of a thread for /proc/[pid]/task/[tid].
type TaskInfo struct {
	TID int32
	// NSTIDs are the TIDs from the viewing namespace down to t's own.
	NSTIDs []int32
	Name   string
	// State is 'R' while the thread runs user code, 'T' while its
	// process is stopped, else 'S'.
	State      byte
	SigMask    abi.SignalSet
	SigPending abi.SignalSet
	CPUTime    time.Duration
	Creds      Creds
}

// Info returns a snapshot of t, its TID in the root PID namespace.
func (t *Task) Info() TaskInfo { return t.InfoIn(nil) }

// InfoIn returns a snapshot of t with its TID as ns (nil: the root one)
// numbers it.
func (t *Task) InfoIn(ns *PIDNamespace) TaskInfo {
	if ns == nil {
		ns = t.k.rootNS
	}
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	i := t.infoLocked()
	i.TID = ns.idLocked(t.tid)
	i.NSTIDs = t.k.nsIDsLocked(ns, t.tid)
	return i
}

func (t *Task) infoLocked() TaskInfo {
	i := TaskInfo{TID: t.tid, Name: t.name, State: 'S', SigMask: t.sigMask,
		SigPending: t.pending.set, CPUTime: time.Duration(t.cpuTime.Load()), Creds: *t.creds}
	if t.running != nil {
		i.State = 'R'
	}
	if t.tg.stopped {
		i.State = 'T'
	}
	return i
}

// ProcessInfo is a snapshot of a process for /proc/[pid].
type ProcessInfo struct {
	PID, PPID, PGID, SID int32
	// NSPIDs, NSPGIDs and NSSIDs are the IDs from the viewing namespace
	// down to the process's own (the NS* lines of status).
	NSPIDs, NSPGIDs, NSSIDs []int32
	// Name is the main thread's comm.
	Name string
	// State is 'Z' for a zombie, 'T' while stopped by job control, else
	// the main thread's.
	State byte
	// Threads counts the live threads.
	Threads int
	Zombie  bool
	Start   time.Time
	// CPUTime sums the live threads' time; ChildCPU is that of reaped
	// children.
	CPUTime, ChildCPU time.Duration
	// SharedPending are the signals pending for the whole process;
	// Ignored and Caught those with SIG_IGN or a handler.
	SharedPending, Ignored, Caught abi.SignalSet
	ExitSignal                     abi.Signal
	// Creds are the main thread's (another thread's once it is gone;
	// zero for a zombie).
	Creds       Creds
	OOMScoreAdj int32
	// Leader is the main thread, nil for a zombie.
	Leader *Task
}

// Info returns a snapshot of g, its IDs in the root PID namespace.
func (g *ThreadGroup) Info() ProcessInfo { return g.InfoIn(nil) }

// InfoIn returns a snapshot of g with its IDs as namespace ns (nil: the
// root one) numbers them; an ID ns does not see is 0.
func (g *ThreadGroup) InfoIn(ns *PIDNamespace) ProcessInfo {
	k := g.k
	if ns == nil {
		ns = k.rootNS
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	i := ProcessInfo{PID: ns.idLocked(g.pid), PGID: ns.idLocked(g.pgid), SID: ns.idLocked(g.sid), Zombie: g.exited,
		Threads: len(g.tasks), Start: g.start, ChildCPU: g.childCPU,
		SharedPending: g.pending.set, ExitSignal: g.exitSignal, OOMScoreAdj: g.oomScoreAdj,
		Leader: g.leader, Name: g.zombieName, State: 'Z'}
	if g.parent != nil {
		i.PPID = ns.idLocked(g.parent.pid)
	}
	i.NSPIDs = k.nsIDsLocked(ns, g.pid)
	i.NSPGIDs = k.nsIDsLocked(ns, g.pgid)
	i.NSSIDs = k.nsIDsLocked(ns, g.sid)
	for t := range g.tasks {
		i.CPUTime += time.Duration(t.cpuTime.Load())
	}
	credsFrom := g.leader
	if l := g.leader; l != nil {
		i.Name = l.name
		i.State = 'S'
	}
	for t := range g.tasks {
		if credsFrom == nil {
			credsFrom = t
		}
		if t.running != nil {
			i.State = 'R'
		}
	}
	if credsFrom != nil {
		i.Creds = *credsFrom.creds
	}
	if g.stopped {
		i.State = 'T'
	}
	if g.exited {
		i.State = 'Z'
	}
	i.Creds.Groups = append([]uint32(nil), i.Creds.Groups...)
	for s := abi.Signal(1); s <= abi.SIGRTMAX; s++ {
		switch h := g.handlers.actions[s].Handler; h {
		case abi.SIG_DFL:
		case abi.SIG_IGN:
			i.Ignored |= abi.SignalSetOf(s)
		default:
			i.Caught |= abi.SignalSetOf(s)
		}
	}
	return i
}

// TaskByTID returns g's live thread tid, or nil.
func (g *ThreadGroup) TaskByTID(tid int32) *Task {
	g.k.mu.Lock()
	defer g.k.mu.Unlock()
	t := g.k.tasks[tid]
	if t == nil || t.tg != g {
		return nil
	}
	return t
}

// OOMScoreAdj returns the process's oom_score_adj.
func (g *ThreadGroup) OOMScoreAdj() int32 {
	g.k.mu.Lock()
	defer g.k.mu.Unlock()
	return g.oomScoreAdj
}

// SetOOMScoreAdj sets it; the caller has checked the range and privilege.
func (g *ThreadGroup) SetOOMScoreAdj(v int32) {
	g.k.mu.Lock()
	g.oomScoreAdj = v
	g.k.mu.Unlock()
}

// Kernel returns the process's kernel.
func (g *ThreadGroup) Kernel() *Kernel { return g.k }

// Stats are kernel-wide counts for /proc/loadavg and /proc/stat.
type Stats struct {
	// Threads counts live threads; Running those in user code now.
	Threads, Running int
	// Processes counts processes, zombies included.
	Processes int
	// LastPID is the most recently allocated ID.
	LastPID int32
	// CPUTime sums the live threads' time.
	CPUTime time.Duration
}

// Stats returns the kernel-wide counts.
func (k *Kernel) Stats() Stats {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := Stats{Threads: len(k.tasks), Processes: len(k.groups), LastPID: k.rootNS.next - 1}
	for _, t := range k.tasks {
		if t.running != nil {
			s.Running++
		}
		s.CPUTime += time.Duration(t.cpuTime.Load())
	}
	return s
}

// encodeAuxv lays out an auxiliary vector as /proc/[pid]/auxv shows it:
// (key, value) pairs of 64-bit words, ending with AT_NULL.
func encodeAuxv(auxv []loader.AuxEntry) []byte {
	b := make([]byte, 0, (len(auxv)+1)*16)
	for _, e := range auxv {
		b = binary.LittleEndian.AppendUint64(b, e.Key)
		b = binary.LittleEndian.AppendUint64(b, e.Val)
	}
	return append(b, make([]byte, 16)...)
}

// Stat lets /proc/[pid]/maps show the device and inode of a mapped file.
func (a *fileAdapter) Stat(ctx context.Context) (vfs.Stat, error) { return a.f.Stat(ctx) }

// The kernel release and version uname(2) and /proc report.
const (
	OSRelease = "6.8.0"
	OSVersion = "#1 SMP moat"
)
