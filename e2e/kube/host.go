package kube

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Kernel settings the kubelet rewrites on the host (its
// setupKernelTunables): saved at start and written back at teardown.
var savedSysctls = []string{"vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"}

// Paths the kubelet writes outside its --root-dir and --pod-logs-dir
// whatever its flags say.
const (
	kubeletDir         = "/var/lib/kubelet"
	devicePluginDir    = "/var/lib/kubelet/device-plugins"
	devicePluginSocket = "/var/lib/kubelet/device-plugins/kubelet.sock"
	containerLogLinks  = "/var/log/containers"
)

// hostState is what Close puts back on the host. It is also kept in
// HostStateFile, outside the harness's folders (which a later harness
// removes as stale), so the next cluster, or ForceCleanup, puts back what
// a cluster whose process died had changed.
type hostState struct {
	Sysctls map[string]string `json:"sysctls"`
	// Existed says which of the kubelet's outside folders were there
	// before: the ones that were not are removed when empty.
	Existed map[string]bool `json:"existed"`
	// SocketExisted: a kubelet.sock was already there (another kubelet):
	// leave it.
	SocketExisted bool `json:"socketExisted"`
	// PodLogs is the cluster's pod log folder; links into it in
	// /var/log/containers are the cluster's.
	PodLogs string `json:"podLogs"`
	// Chains lists, per "iptables -t TABLE" (and ip6tables), the
	// kubelet's canary chains that existed before; the ones it adds are
	// removed. Empty when the host has no iptables (the kubelet then
	// makes none).
	Chains map[string][]string `json:"chains,omitempty"`
}

// The chains the kubelet creates when iptables is installed: a hint for
// kube-proxy and canaries it watches to notice a firewall flush.
var kubeletChains = map[string][]string{
	"mangle": {"KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"},
	"nat":    {"KUBE-KUBELET-CANARY"},
	"filter": {"KUBE-KUBELET-CANARY"},
}

// kubeletChainsPresent lists "<bin> <table> <chain>" for each of the
// kubelet's chains present on the host.
func kubeletChainsPresent() map[string][]string {
	out := map[string][]string{}
	for _, bin := range []string{"iptables", "ip6tables"} {
		p, err := exec.LookPath(bin)
		if err != nil {
			continue
		}
		for table, chains := range kubeletChains {
			b, err := exec.Command(p, "-w", "5", "-t", table, "-S").Output()
			if err != nil {
				continue
			}
			for _, c := range chains {
				if strings.Contains(string(b), "-N "+c+"\n") {
					out[bin+" "+table] = append(out[bin+" "+table], c)
				}
			}
		}
	}
	return out
}

// newChains are the kubelet's chains present now that were not before.
func (h *hostState) newChains() [][3]string {
	var out [][3]string
	for key, chains := range kubeletChainsPresent() {
		for _, c := range chains {
			if !slices.Contains(h.Chains[key], c) {
				bin, table, _ := strings.Cut(key, " ")
				out = append(out, [3]string{bin, table, c})
			}
		}
	}
	return out
}

// HostStateFile holds the running cluster's hostState (one cluster runs
// at a time: ClusterLock).
const HostStateFile = LockDir + "/host.json"

// restoreDeadCluster puts back the host state of a cluster that died
// without teardown; the caller holds ClusterLock, so no live cluster owns
// HostStateFile.
func restoreDeadCluster(logf func(string, ...any)) error {
	h, err := loadHostState()
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	logf("cluster: putting back the host state a dead cluster left (%s)", HostStateFile)
	if err := h.restore(); err != nil {
		return err
	}
	return os.Remove(HostStateFile)
}

func saveHostState(dir string) (*hostState, error) {
	h := &hostState{Sysctls: map[string]string{}, Existed: map[string]bool{}, PodLogs: filepath.Join(dir, "pod-logs")}
	for _, k := range savedSysctls {
		b, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			return nil, fmt.Errorf("read sysctl %s: %w", k, err)
		}
		h.Sysctls[k] = strings.TrimSpace(string(b))
	}
	for _, d := range []string{kubeletDir, devicePluginDir, containerLogLinks} {
		_, err := os.Stat(d)
		h.Existed[d] = err == nil
	}
	_, err := os.Lstat(devicePluginSocket)
	h.SocketExisted = err == nil
	h.Chains = kubeletChainsPresent()
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode host state: %w", err)
	}
	p := HostStateFile
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(p), err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", p, err)
	}
	return h, nil
}

func loadHostState() (*hostState, error) {
	p := HostStateFile
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var h hostState
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("decode %s: %w", p, err)
	}
	return &h, nil
}

// restore writes the saved kernel settings back and removes what the
// kubelet wrote outside the cluster's folders.
func (h *hostState) restore() error {
	var errs []error
	for k, v := range h.Sysctls {
		p := filepath.Join("/proc/sys", k)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", k, v, err))
		}
	}
	if !h.SocketExisted {
		if err := os.Remove(devicePluginSocket); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", devicePluginSocket, err))
		}
	}
	if ents, err := os.ReadDir(containerLogLinks); err == nil && h.PodLogs != "" {
		for _, e := range ents {
			p := filepath.Join(containerLogLinks, e.Name())
			if t, err := os.Readlink(p); err == nil && strings.HasPrefix(t, h.PodLogs+"/") {
				if err := os.Remove(p); err != nil {
					errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
				}
			}
		}
	}
	for _, c := range h.newChains() {
		// A chain goes once empty and unreferenced: flush, then delete.
		for _, op := range []string{"-F", "-X"} {
			if out, err := exec.Command(c[0], "-w", "5", "-t", c[1], op, c[2]).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("%s -t %s %s %s: %w: %s", c[0], c[1], op, c[2], err, strings.TrimSpace(string(out))))
				break
			}
		}
	}
	// Folders the kubelet created, deepest first, when nothing else is in them.
	for _, d := range []string{devicePluginDir, kubeletDir, containerLogLinks} {
		if !h.Existed[d] {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
				errs = append(errs, fmt.Errorf("remove %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// leftovers lists what of the host state is not back as it was.
func (h *hostState) leftovers() []string {
	var left []string
	for k, v := range h.Sysctls {
		b, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if got := strings.TrimSpace(string(b)); err != nil || got != v {
			left = append(left, fmt.Sprintf("sysctl %s=%s (was %s)", k, got, v))
		}
	}
	if !h.SocketExisted {
		if _, err := os.Lstat(devicePluginSocket); err == nil {
			left = append(left, "file "+devicePluginSocket)
		}
	}
	if ents, err := os.ReadDir(containerLogLinks); err == nil {
		for _, e := range ents {
			p := filepath.Join(containerLogLinks, e.Name())
			if t, err := os.Readlink(p); err == nil && strings.HasPrefix(t, h.PodLogs+"/") {
				left = append(left, "link "+p)
			}
		}
	}
	for _, c := range h.newChains() {
		left = append(left, fmt.Sprintf("%s chain %s in table %s", c[0], c[2], c[1]))
	}
	return left
}

// createCgroupRoot makes the kubelet's cgroupRoot (the harness's cgroup
// parent, which its teardown removes) in every cgroup v1 hierarchy; the
// kubelet refuses a cgroupRoot that does not exist. A new cpuset cgroup
// starts with no CPUs and no memory nodes: it gets its parent's.
func createCgroupRoot(name string) error {
	ents, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return fmt.Errorf("list cgroup hierarchies: %w", err)
	}
	for _, e := range ents {
		base := filepath.Join("/sys/fs/cgroup", e.Name())
		if fi, err := os.Lstat(base); err != nil || !fi.IsDir() {
			continue // symlinks such as cpu,cpuacct -> cpu
		}
		d := filepath.Join(base, strings.TrimPrefix(name, "/"))
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", d, err)
		}
		if e.Name() == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(base, f))
				if err != nil {
					return fmt.Errorf("read %s: %w", filepath.Join(base, f), err)
				}
				if err := os.WriteFile(filepath.Join(d, f), v, 0o644); err != nil {
					return fmt.Errorf("write %s: %w", filepath.Join(d, f), err)
				}
			}
		}
	}
	return nil
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}
