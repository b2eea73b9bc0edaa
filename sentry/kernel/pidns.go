package kernel

import (
	"golang.org/x/sys/unix"
)

// maxPID bounds process and thread IDs (Linux's pid_max limit).
const maxPID = 4194304

// PIDNamespace is a PID namespace: a numbering of processes and threads.
// Namespaces nest: a task belongs to the namespace it was made in and to
// every ancestor of it, with one ID in each. The kernel's root namespace
// is the sandbox's (the pod's): it sees every task, and its IDs are the
// ones the sentry uses internally (Task.TID, ThreadGroup.PID). A task
// sees, signals and waits for only the tasks of its namespace and of the
// namespaces below it, numbered as its own namespace numbers them.
//
// Like Linux, the first process of a namespace is its init (PID 1
// there): it adopts the namespace's orphans, signals without a handler
// do not reach it from inside, and when it exits every other process of
// the namespace (and below) is killed and no new one may enter.
type PIDNamespace struct {
	k      *Kernel
	parent *PIDNamespace
	level  int

	// Guarded by k.mu.
	next int32
	// local maps a root-namespace ID to the ID here; root the reverse.
	local map[int32]int32
	root  map[int32]int32
	// init is the namespace's first process, nil until it starts.
	init *ThreadGroup
	// dead says init has exited: the namespace takes no new tasks.
	dead bool
}

func newPIDNamespace(k *Kernel, parent *PIDNamespace) *PIDNamespace {
	ns := &PIDNamespace{k: k, parent: parent, next: 1, local: map[int32]int32{}, root: map[int32]int32{}}
	if parent != nil {
		ns.level = parent.level + 1
	}
	return ns
}

// RootPIDNamespace returns the sandbox's namespace, which sees every task.
func (k *Kernel) RootPIDNamespace() *PIDNamespace { return k.rootNS }

// NewPIDNamespace returns a new namespace below parent (the root one when
// nil). It holds no task until a process is created in it; its first
// process becomes its init.
func (k *Kernel) NewPIDNamespace(parent *PIDNamespace) (*PIDNamespace, error) {
	if parent == nil {
		parent = k.rootNS
	}
	if parent.k != k {
		return nil, unix.EINVAL
	}
	if parent.level >= 32 {
		// Linux's MAX_PID_NS_LEVEL.
		return nil, unix.ENOSPC
	}
	return newPIDNamespace(k, parent), nil
}

// Parent returns the namespace above ns (nil for the root).
func (ns *PIDNamespace) Parent() *PIDNamespace { return ns.parent }

// Init returns the namespace's init process (nil before it starts).
func (ns *PIDNamespace) Init() *ThreadGroup {
	ns.k.mu.Lock()
	defer ns.k.mu.Unlock()
	return ns.init
}

// contains reports whether o is ns or a namespace below it.
func (ns *PIDNamespace) contains(o *PIDNamespace) bool {
	for ; o != nil; o = o.parent {
		if o == ns {
			return true
		}
	}
	return false
}

// idLocked returns the ID here of the task or process whose root ID is
// id, 0 when ns does not see it.
// Preconditions: k.mu is held.
func (ns *PIDNamespace) idLocked(id int32) int32 {
	if id == 0 {
		return 0
	}
	return ns.local[id]
}

// rootIDLocked returns the root ID of the task or process numbered id
// here, 0 when there is none.
// Preconditions: k.mu is held.
func (ns *PIDNamespace) rootIDLocked(id int32) int32 {
	if id <= 0 {
		return 0
	}
	return ns.root[id]
}

// IDOf returns the ID in ns of the task or process whose root ID is id,
// 0 when ns does not see it.
func (ns *PIDNamespace) IDOf(id int32) int32 {
	ns.k.mu.Lock()
	defer ns.k.mu.Unlock()
	return ns.idLocked(id)
}

// IDOfTask returns t's thread ID in ns, 0 when ns does not see t.
func (ns *PIDNamespace) IDOfTask(t *Task) int32 {
	ns.k.mu.Lock()
	defer ns.k.mu.Unlock()
	return ns.idLocked(t.tid)
}

// IDOfThreadGroup returns g's process ID in ns, 0 when ns does not see g.
func (ns *PIDNamespace) IDOfThreadGroup(g *ThreadGroup) int32 {
	ns.k.mu.Lock()
	defer ns.k.mu.Unlock()
	return ns.idLocked(g.pid)
}

// TaskWithID returns the live task numbered tid in ns.
func (ns *PIDNamespace) TaskWithID(tid int32) *Task {
	ns.k.mu.Lock()
	defer ns.k.mu.Unlock()
	return ns.k.tasks[ns.rootIDLocked(tid)]
}

// ThreadGroupWithID returns the process numbered pid in ns (zombies
// included).
func (ns *PIDNamespace) ThreadGroupWithID(pid int32) *ThreadGroup {
	ns.k.mu.Lock()
	defer ns.k.mu.Unlock()
	return ns.k.groups[ns.rootIDLocked(pid)]
}

// ThreadGroups returns the processes ns sees.
func (ns *PIDNamespace) ThreadGroups() []*ThreadGroup {
	ns.k.mu.Lock()
	defer ns.k.mu.Unlock()
	out := make([]*ThreadGroup, 0, len(ns.k.groups))
	for _, g := range ns.k.groups {
		if ns.contains(g.ns) {
			out = append(out, g)
		}
	}
	return out
}

// allocLocked returns a free ID of ns.
// Preconditions: k.mu is held.
func (ns *PIDNamespace) allocLocked() (int32, bool) {
	for range maxPID {
		id := ns.next
		ns.next++
		if ns.next <= 0 || ns.next > maxPID {
			// As Linux, numbers wrap past the low ones daemons take.
			ns.next = 2
		}
		if _, used := ns.root[id]; !used {
			return id, true
		}
	}
	return 0, false
}

// allocIDLocked numbers a new task of ns in ns and every namespace above
// it and returns its root ID. It fails with EAGAIN when a namespace is
// full, ENOMEM once the namespace's init has exited (as Linux).
// Preconditions: k.mu is held.
func (k *Kernel) allocIDLocked(ns *PIDNamespace) (int32, error) {
	for n := ns; n != nil; n = n.parent {
		if n.dead {
			return 0, unix.ENOMEM
		}
	}
	var ids []int32
	var nss []*PIDNamespace
	for n := ns; n != nil; n = n.parent {
		id, ok := n.allocLocked()
		if !ok {
			return 0, unix.EAGAIN
		}
		ids = append(ids, id)
		nss = append(nss, n)
	}
	rootID := ids[len(ids)-1]
	for i, n := range nss {
		n.local[rootID] = ids[i]
		n.root[ids[i]] = rootID
	}
	k.idNS[rootID] = ns
	return rootID, nil
}

// releaseIDLocked frees root ID id in every namespace once nothing uses
// it: no task, no process, and no process group or session named by it.
// Preconditions: k.mu is held.
func (k *Kernel) releaseIDLocked(id int32) {
	ns := k.idNS[id]
	if ns == nil {
		return
	}
	if _, used := k.tasks[id]; used {
		return
	}
	if _, used := k.groups[id]; used {
		return
	}
	for _, g := range k.groups {
		if g.pgid == id || g.sid == id {
			return
		}
	}
	delete(k.idNS, id)
	for n := ns; n != nil; n = n.parent {
		if l, ok := n.local[id]; ok {
			delete(n.root, l)
			delete(n.local, id)
		}
	}
}

// nsIDsLocked lists the IDs of root ID id from ns down to the deepest
// namespace that numbers it (the NSpid line of /proc/[pid]/status).
// Preconditions: k.mu is held.
func (k *Kernel) nsIDsLocked(ns *PIDNamespace, id int32) []int32 {
	deep := k.idNS[id]
	if deep == nil || !ns.contains(deep) {
		return nil
	}
	var chain []*PIDNamespace
	for n := deep; n != nil; n = n.parent {
		chain = append(chain, n)
		if n == ns {
			break
		}
	}
	out := make([]int32, 0, len(chain))
	for i := len(chain) - 1; i >= 0; i-- {
		out = append(out, chain[i].local[id])
	}
	return out
}

// PIDNamespace returns the namespace t belongs to.
func (t *Task) PIDNamespace() *PIDNamespace { return t.tg.ns }

// PIDNamespace returns the namespace g belongs to.
func (g *ThreadGroup) PIDNamespace() *PIDNamespace { return g.ns }

// LocalTID is t's thread ID as t itself sees it (gettid).
func (t *Task) LocalTID() int32 { return t.tg.ns.IDOfTask(t) }

// LocalPID is the ID of t's process as t sees it (getpid).
func (t *Task) LocalPID() int32 { return t.tg.ns.IDOfThreadGroup(t.tg) }

// LocalPPID is the ID of the parent of t's process in t's namespace
// (getppid): 0 when the parent is outside it, as for a namespace's init.
func (t *Task) LocalPPID() int32 {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	p := t.tg.parent
	if p == nil {
		return 0
	}
	return t.tg.ns.idLocked(p.pid)
}

// LocalPGID and LocalSID are the process group and session of pid (0:
// the caller's own process) as the caller sees them.
func (t *Task) LocalPGID(pid int32) (int32, error) {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	g, err := t.groupLocked(pid)
	if err != nil {
		return 0, err
	}
	return t.tg.ns.idLocked(g.pgid), nil
}

// LocalSID returns the session of pid (0: the caller) as the caller sees it.
func (t *Task) LocalSID(pid int32) (int32, error) {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	g, err := t.groupLocked(pid)
	if err != nil {
		return 0, err
	}
	return t.tg.ns.idLocked(g.sid), nil
}

// RootPGID translates process group pgid, as t's namespace numbers it,
// to its root ID, the one a terminal keeps as its foreground group
// (TIOCSPGRP). Like Linux, the group must exist (ESRCH) and be of t's
// session (EPERM).
func (t *Task) RootPGID(pgid int32) (int32, error) {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if pgid <= 0 {
		return 0, unix.EINVAL
	}
	root := t.tg.ns.rootIDLocked(pgid)
	if root == 0 {
		return 0, unix.ESRCH
	}
	found := false
	for _, g := range k.groups {
		if g.pgid != root {
			continue
		}
		if g.sid != t.tg.sid {
			return 0, unix.EPERM
		}
		found = true
	}
	if !found {
		return 0, unix.ESRCH
	}
	return root, nil
}

// groupLocked returns the process numbered pid in t's namespace, or t's
// own for 0.
// Preconditions: k.mu is held.
func (t *Task) groupLocked(pid int32) (*ThreadGroup, error) {
	if pid == 0 {
		return t.tg, nil
	}
	if pid < 0 {
		return nil, unix.EINVAL
	}
	g := t.k.groups[t.tg.ns.rootIDLocked(pid)]
	if g == nil {
		return nil, unix.ESRCH
	}
	return g, nil
}

// ThreadGroupByLocalID returns the process numbered pid in t's namespace
// (0: t's own), ESRCH when there is none.
func (t *Task) ThreadGroupByLocalID(pid int32) (*ThreadGroup, error) {
	k := t.k
	k.mu.Lock()
	defer k.mu.Unlock()
	return t.groupLocked(pid)
}

// UnsharePIDNamespace is unshare(CLONE_NEWPID): the caller stays where it
// is, and the children it makes from now on go into a new namespace below
// its own, the first of them as its init. It needs CAP_SYS_ADMIN; a second
// call before that namespace is its own is EINVAL, as on Linux.
func (t *Task) UnsharePIDNamespace() error {
	if !t.HasCapability(capSysAdmin) {
		return unix.EPERM
	}
	if t.childNS != nil {
		return unix.EINVAL
	}
	ns, err := t.k.NewPIDNamespace(t.tg.ns)
	if err != nil {
		return err
	}
	t.childNS = ns
	return nil
}
