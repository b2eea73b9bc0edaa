package shim

import (
	"testing"

	"moat.dev/moat/cri"
)

// An in-place resize of a container moves a pod limit that was the sum of
// the containers' limits (what the kubelet puts in the sandbox
// annotations), and so the vCPUs; a pod-level limit set apart stays.
func TestFollowResize(t *testing.T) {
	const mi = 1 << 20
	for _, tc := range []struct {
		name            string
		quota, mem      int64 // the sandbox's
		others          []limits
		old, new        limits
		wantQuota       int64
		wantMem         int64
		wantVCPUsAfter  int
		wantVCPUsBefore int
	}{
		{
			name: "one container 500m to 2", quota: 50000, mem: 64 * mi,
			old: limits{cpu: 0.5, memory: 64 * mi}, new: limits{cpu: 2, memory: 64 * mi},
			wantQuota: 200000, wantMem: 64 * mi, wantVCPUsBefore: 1, wantVCPUsAfter: 2,
		},
		{
			name: "two containers, one resized 1 to 3", quota: 150000, mem: 96 * mi,
			others: []limits{{cpu: 0.5, memory: 32 * mi}},
			old:    limits{cpu: 1, memory: 64 * mi}, new: limits{cpu: 3, memory: 128 * mi},
			wantQuota: 350000, wantMem: 160 * mi, wantVCPUsBefore: 2, wantVCPUsAfter: 4,
		},
		{
			name: "pod-level limit apart from the containers'", quota: 400000, mem: 256 * mi,
			old: limits{cpu: 1, memory: 64 * mi}, new: limits{cpu: 2, memory: 128 * mi},
			wantQuota: 400000, wantMem: 256 * mi, wantVCPUsBefore: 4, wantVCPUsAfter: 4,
		},
		{
			name: "a container without limits", quota: 100000,
			others: []limits{{}},
			old:    limits{cpu: 1}, new: limits{cpu: 2},
			wantQuota: 100000, wantVCPUsBefore: 1, wantVCPUsAfter: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb := &cri.Info{CPUQuota: tc.quota, CPUPeriod: 100000, MemoryLimit: tc.mem}
			before, _ := podResources(sb, append([]limits{tc.old}, tc.others...), 2, 8)
			followResize(sb, tc.others, tc.old, tc.new)
			if sb.CPUQuota != tc.wantQuota || sb.MemoryLimit != tc.wantMem {
				t.Errorf("after resize: quota %d memory %d, want %d and %d", sb.CPUQuota, sb.MemoryLimit, tc.wantQuota, tc.wantMem)
			}
			after, _ := podResources(sb, append([]limits{tc.new}, tc.others...), 2, 8)
			if before != tc.wantVCPUsBefore || after != tc.wantVCPUsAfter {
				t.Errorf("vCPUs %d → %d, want %d → %d", before, after, tc.wantVCPUsBefore, tc.wantVCPUsAfter)
			}
		})
	}
	followResize(nil, nil, limits{cpu: 1}, limits{cpu: 2}) // no sandbox info: nothing to do
}
