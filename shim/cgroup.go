package shim

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// joinCgroup puts process pid (the pod's sentry) into the cgroup at path
// (the sandbox's linux.cgroupsPath, cgroupfs form), creating it, so that
// the pod's cgroup limits (CFS quota, memory) hold for the sentry's
// threads. It returns the function that removes the cgroup once the
// process is gone.
func joinCgroup(path string, pid int) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	if strings.Contains(path, ":") || !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return nil, fmt.Errorf("cgroup path %q: only absolute cgroupfs paths are supported", path)
	}
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.NewManager("/sys/fs/cgroup", path, &cgroup2.Resources{})
		if err != nil {
			return nil, fmt.Errorf("create cgroup %s: %w", path, err)
		}
		if err := m.AddProc(uint64(pid)); err != nil {
			m.Delete()
			return nil, fmt.Errorf("move sentry %d into cgroup %s: %w", pid, path, err)
		}
		return m.Delete, nil
	}
	cg, err := cgroup1.New(cgroup1.StaticPath(path), &specs.LinuxResources{})
	if err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", path, err)
	}
	if err := cg.Add(cgroup1.Process{Pid: pid}); err != nil {
		cg.Delete()
		return nil, fmt.Errorf("move sentry %d into cgroup %s: %w", pid, path, err)
	}
	return cg.Delete, nil
}
