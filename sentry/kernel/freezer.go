package kernel

// The freezer stops the processes of a container, or of the whole
// sandbox, the way a cgroup freezer does: every task stops at its next
// return towards user mode (after a syscall, a fault, or a kick out of
// user code) and stays there without a CPU until it is thawed. A task
// blocked in a syscall stays blocked; if the call ends meanwhile the task
// stops before it returns to user code. Signals sent to a frozen process
// queue, timers keep counting and their signals are delivered once the
// process is thawed. SIGKILL still ends a frozen process.

// freezer is the kernel's freeze state.
//
// Guarded by Kernel.mu.
type freezer struct {
	// all freezes every process of the sandbox (the pod is paused).
	all bool
	// containers are the containers frozen by name.
	containers map[string]bool
	// thawed is closed and replaced whenever a freeze is lifted, so the
	// tasks waiting at the freeze point look again.
	thawed chan struct{}
}

// frozenLocked reports whether g must not run user code.
// Preconditions: k.mu is held.
func (k *Kernel) frozenLocked(g *ThreadGroup) bool {
	return k.fz.all || (len(k.fz.containers) > 0 && k.fz.containers[g.Container])
}

// inScope reports whether g belongs to container, or to the sandbox when
// container is "".
func inScope(g *ThreadGroup, container string) bool {
	return container == "" || g.Container == container
}

// Freeze stops the processes of container, or of the whole sandbox when
// container is "": running tasks are kicked out of user mode and every
// task of the scope stops at its next return to user mode. New processes
// of the scope (a clone, an exec from outside) start frozen.
func (k *Kernel) Freeze(container string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if container == "" {
		k.fz.all = true
	} else {
		if k.fz.containers == nil {
			k.fz.containers = map[string]bool{}
		}
		k.fz.containers[container] = true
	}
	for _, t := range k.tasks {
		if inScope(t.tg, container) && t.running != nil {
			t.running.Kick()
		}
	}
}

// Thaw lifts the freeze of container, or the sandbox-wide one when
// container is "". A container frozen by name stays frozen when the
// sandbox-wide freeze is lifted, and the other way round.
func (k *Kernel) Thaw(container string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if container == "" {
		k.fz.all = false
	} else {
		delete(k.fz.containers, container)
	}
	close(k.fz.thawed)
	k.fz.thawed = make(chan struct{})
}

// FreezeState reports whether container (the sandbox when "") is frozen,
// by its own freeze or the sandbox's, and whether every one of its tasks
// has stopped: waits at the freeze point, or is blocked off any CPU.
// frozen without settled is cgroup's "freezing" (runc's "pausing").
func (k *Kernel) FreezeState(container string) (frozen, settled bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if container == "" {
		frozen = k.fz.all
	} else {
		frozen = k.fz.all || k.fz.containers[container]
	}
	if !frozen {
		return false, false
	}
	for _, t := range k.tasks {
		if !inScope(t.tg, container) || t.exiting {
			continue
		}
		if !t.parked.Load() {
			return true, false
		}
	}
	return true, true
}
