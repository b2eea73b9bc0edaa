package kernel

import "time"

// CPUUsage is CPU time as a cgroup's cpu.stat splits it: User is the
// time tasks ran their own code on a vCPU, System the time the sentry
// spent serving their syscalls and faults (time blocked in a syscall is
// not counted).
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
			u = u.add(CPUUsage{User: t.CPUTime(), System: t.SysTime()})
		}
	}
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
	k.mu.Unlock()
	k.Thaw(container)
}
