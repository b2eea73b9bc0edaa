package shim

import (
	"math"

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

// followResize keeps the sandbox's pod limits in step with an in-place
// resize of one container (old → new; others are the pod's other
// containers). The kubelet sizes a pod's sandbox (the
// io.kubernetes.cri.sandbox-* annotations) as the sum of its containers'
// limits and, on a resize, updates only the containers: a pod limit that
// was that sum becomes the new sum, so the vCPUs follow. A pod limit set
// apart from the containers' (pod-level resources) is left alone.
func followResize(sb *cri.Info, others []limits, old, new limits) {
	if sb == nil {
		return
	}
	sum := func(c limits, get func(limits) float64) (float64, bool) {
		s := get(c)
		if s <= 0 {
			return 0, false
		}
		for _, o := range others {
			v := get(o)
			if v <= 0 {
				return 0, false
			}
			s += v
		}
		return s, true
	}
	cpu := func(l limits) float64 { return l.cpu }
	mem := func(l limits) float64 { return float64(l.memory) }
	same := func(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }
	if pod := sb.PodCPULimit(); pod > 0 {
		if was, ok := sum(old, cpu); ok && same(was, pod) {
			if now, ok := sum(new, cpu); ok {
				sb.CPUQuota = int64(math.Round(now * float64(sb.CPUPeriod)))
			}
		}
	}
	if pod := sb.MemoryLimit; pod > 0 {
		if was, ok := sum(old, mem); ok && same(was, float64(pod)) {
			if now, ok := sum(new, mem); ok {
				sb.MemoryLimit = int64(now)
			}
		}
	}
}
