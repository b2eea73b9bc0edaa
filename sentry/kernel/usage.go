package kernel

import "time"

// CPUUsage is CPU time as a cgroup's cpu.stat splits it: User is the
// CPU time of the vCPU threads while they ran the tasks' code, System
// the CPU time the sentry spent for them while they held a vCPU outside
// user mode (serving syscalls and faults, delivering signals). Both are
// host thread CPU time, so a loaded host does not inflate them.
type CPUUsage struct {
	User, System time.Duration
}

// Total is User + System (cpu.stat's usage_usec, cpuacct.usage).
func (u CPUUsage) Total() time.Duration { return u.User + u.System }

func (u CPUUsage) add(v CPUUsage) CPUUsage {
	return CPUUsage{User: u.User + v.User, System: u.System + v.System}
}

// CPUUsage returns the cumulative CPU usage of container's processes
// (the whole sandbox's when container is ""): the live tasks' and that
// of every task that has ended, as a cgroup counts it. It never goes
// backwards while the container lives.
func (k *Kernel) CPUUsage(container string) CPUUsage {
	k.mu.Lock()
	defer k.mu.Unlock()
	u := k.exitedCPUAll
	if container != "" {
		u = k.exitedCPU[container]
	}
	for _, t := range k.tasks {
		if inScope(t.tg, container) {
			u = u.add(CPUUsage{User: t.HostUserTime(), System: t.SysTime()})
		}
	}
	// A running task's time is read from its thread while it runs and
	// added up when it traps; the two readings may differ by a little.
	seen := k.cpuSeen[container]
	u.User, u.System = max(u.User, seen.User), max(u.System, seen.System)
	k.cpuSeen[container] = u
	return u
}

// ForgetContainer drops what the kernel keeps of a container that is
// gone: its freeze and its ended tasks' CPU time (the sandbox's total
// keeps it).
func (k *Kernel) ForgetContainer(container string) {
	if container == "" {
		return
	}
	k.mu.Lock()
	delete(k.exitedCPU, container)
	delete(k.cpuSeen, container)
	k.mu.Unlock()
	k.Thaw(container)
}
