package cri

import "testing"

func TestVCPUs(t *testing.T) {
	tests := []struct {
		name        string
		limit       float64
		cpuset, max int
		want        int
	}{
		{"half a CPU rounds up", 0.5, 8, 4, 1},
		{"one CPU", 1, 8, 4, 1},
		{"one and a half", 1.5, 8, 4, 2},
		{"exact integer", 4, 8, 4, 4},
		{"float noise above an integer", 3.0000000001, 8, 0, 3},
		{"limit above max is not capped", 6, 8, 4, 6},
		{"limit above cpuset is not capped", 3, 2, 0, 3},
		{"tiny limit still 1", 0.001, 8, 4, 1},
		{"no limit takes the cpuset", 0, 3, 0, 3},
		{"no limit capped by max", 0, 16, 4, 4},
		{"no limit under max", 0, 2, 4, 2},
		{"negative limit means none", -1, 6, 0, 6},
		{"no limit and empty cpuset", 0, 0, 4, 1},
		{"nothing at all", 0, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VCPUs(tt.limit, tt.cpuset, tt.max); got != tt.want {
				t.Errorf("VCPUs(%v, %d, %d) = %d, want %d", tt.limit, tt.cpuset, tt.max, got, tt.want)
			}
		})
	}
}

func TestCPULimit(t *testing.T) {
	tests := []struct {
		quota, period int64
		want          float64
	}{
		{150000, 100000, 1.5},
		{50000, 100000, 0.5},
		{400000, 100000, 4},
		{-1, 100000, 0},
		{0, 100000, 0},
		{100000, 0, 0},
	}
	for _, tt := range tests {
		if got := CPULimit(tt.quota, tt.period); got != tt.want {
			t.Errorf("CPULimit(%d, %d) = %v, want %v", tt.quota, tt.period, got, tt.want)
		}
	}
	// The two steps together: quota 150000/100000 is 2 vCPUs.
	if got := VCPUs(CPULimit(150000, 100000), 8, 4); got != 2 {
		t.Errorf("VCPUs for 1.5 CPUs = %d, want 2", got)
	}
}

func TestCPUSetCount(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"", 0, false},
		{"0", 1, false},
		{"0-3", 4, false},
		{"0-3,6,8-9", 7, false},
		{" 0-1 , 1-2 ", 3, false},
		{"3-1", 0, true},
		{"a", 0, true},
		{"-1", 0, true},
		{"0-", 0, true},
		{"0-99999999", 0, true},
	}
	for _, tt := range tests {
		got, err := CPUSetCount(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("CPUSetCount(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
