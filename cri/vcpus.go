package cri

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// CPULimit turns a CFS quota and period (µs) into a CPU count: 150000/100000
// is 1.5. A quota or period <= 0 means no limit and gives 0.
func CPULimit(quota, period int64) float64 {
	if quota <= 0 || period <= 0 {
		return 0
	}
	return float64(quota) / float64(period)
}

// VCPUs is the number of vCPUs a pod's sandbox gets:
//   - a CPU limit (in CPUs, > 0) gives ceil(limit): 0.5 → 1, 1.5 → 2, 4 → 4;
//   - no limit (limit <= 0) gives the CPUs in the pod's cpuset, capped by
//     max when max > 0;
//   - never fewer than 1.
//
// The cap applies to the no-limit case only: a pod that asks for more
// CPUs gets them, and CFS quota keeps it to its share.
func VCPUs(limit float64, cpusetCount, max int) int {
	n := 0
	if limit > 0 {
		// A hair below the integer keeps 3.0000000001 (float noise from a
		// quota/period division) at 3.
		n = int(math.Ceil(limit - 1e-9))
	} else {
		n = cpusetCount
		if max > 0 && n > max {
			n = max
		}
	}
	if n < 1 {
		n = 1
	}
	return n
}

// CPUSetCount counts the CPUs in a Linux cpuset list such as "0-3,6,8-9"
// (the format of linux.resources.cpu.cpus and /sys/.../cpuset.cpus).
// An empty list counts 0.
func CPUSetCount(list string) (int, error) {
	list = strings.TrimSpace(list)
	if list == "" {
		return 0, nil
	}
	seen := map[int]bool{}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return 0, fmt.Errorf("cpuset %q: bad CPU %q", list, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("cpuset %q: bad range %q", list, part)
			}
		}
		if b-a > 1<<16 {
			return 0, fmt.Errorf("cpuset %q: range %q too large", list, part)
		}
		for c := a; c <= b; c++ {
			seen[c] = true
		}
	}
	return len(seen), nil
}
