package shim

import (
	"fmt"

	cg2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"

	"moat.dev/moat/sentry/control"
)

// metrics turns the sentry's figures for a container (or, for the pod's
// sandbox container, the whole pod) into the cgroup v2 metrics
// containerd's CRI reads (what `crictl stats` and `crictl statsp` show):
// cumulative CPU time of the kernel's tasks, ended ones included; the
// guest memory their address spaces map (the pod's: all the guest memory
// in use); the memory limit of the pod's sandbox.
func metrics(st control.StatsReply) *cg2.Metrics {
	return &cg2.Metrics{
		Pids: &cg2.PidsStat{Current: st.Pids},
		CPU: &cg2.CPUStat{
			UsageUsec:  st.CPUNanos / 1000,
			UserUsec:   st.UserNanos / 1000,
			SystemUsec: st.SystemNanos / 1000,
		},
		Memory: &cg2.MemoryStat{
			Usage:      st.MemoryBytes,
			UsageLimit: st.SandboxMemoryLimit,
			Anon:       st.MemoryBytes,
			MaxUsage:   st.SandboxMemoryPeak,
		},
		MemoryEvents: &cg2.MemoryEvents{OomKill: st.OOMKills},
	}
}

func metricsAny(st control.StatsReply) (*anypb.Any, error) {
	a, err := typeurl.MarshalAny(metrics(st))
	if err != nil {
		return nil, fmt.Errorf("marshal metrics: %w", err)
	}
	return typeurl.MarshalProto(a), nil
}
