package shim

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"moat.dev/moat/cri"
)

// limits are one container's CPU and memory limits from its OCI spec.
type limits struct {
	cpu    float64 // CPUs; 0: none
	cpuset string
	memory int64 // bytes; <= 0: none
}

func limitsOf(r *specs.LinuxResources) limits {
	var l limits
	if r == nil {
		return l
	}
	if c := r.CPU; c != nil {
		if c.Quota != nil && c.Period != nil {
			l.cpu = cri.CPULimit(*c.Quota, int64(*c.Period))
		}
		l.cpuset = c.Cpus
	}
	if m := r.Memory; m != nil && m.Limit != nil {
		l.memory = *m.Limit
	}
	return l
}

// podResources is the rule that sizes a pod's sentry: the pod's CPU limit
// from the sandbox's annotations, else the sum of its containers' limits
// when every container has one; with no limit the CPUs of the cpuset (the
// host's when none is given), capped by maxVCPUs (cri.VCPUs). Memory: the
// sandbox's annotation, else the sum of the containers' limits when every
// container has one, else 0 (no limit).
func podResources(sandbox *cri.Info, containers []limits, hostCPUs, maxVCPUs int) (vcpus int, memory uint64) {
	var cpuLimit float64
	var mem int64
	cpuset := ""
	if sandbox != nil {
		cpuLimit = sandbox.PodCPULimit()
		mem = sandbox.MemoryLimit
		cpuset = sandbox.CPUSet
	}
	if cpuLimit <= 0 && len(containers) > 0 {
		sum, all := 0.0, true
		for _, c := range containers {
			if c.cpu <= 0 {
				all = false
				break
			}
			sum += c.cpu
		}
		if all {
			cpuLimit = sum
		}
	}
	if mem <= 0 && len(containers) > 0 {
		var sum int64
		all := true
		for _, c := range containers {
			if c.memory <= 0 {
				all = false
				break
			}
			sum += c.memory
		}
		if all {
			mem = sum
		}
	}
	for _, c := range containers {
		if cpuset == "" {
			cpuset = c.cpuset
		}
	}
	n := hostCPUs
	if cpuset != "" {
		if k, err := cri.CPUSetCount(cpuset); err == nil && k > 0 {
			n = k
		}
	}
	vcpus = cri.VCPUs(cpuLimit, n, maxVCPUs)
	if mem > 0 {
		memory = uint64(mem)
	}
	return vcpus, memory
}
