package harness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodNamespace is the Kubernetes namespace of every test pod.
const PodNamespace = "moat-e2e"

// Pod is a pod sandbox run through CRI.
type Pod struct {
	Env     *Env
	ID      string
	Handler string
	Config  *runtimeapi.PodSandboxConfig
}

// PodConfig is a sandbox config as the kubelet would send it: a fresh uid,
// a log folder, the harness's cgroup parent, pod network and IPC, a pid
// namespace per container.
func (e *Env) PodConfig(name string) *runtimeapi.PodSandboxConfig {
	uid := randomHex(8)
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Uid: uid, Namespace: PodNamespace},
		Hostname:     name,
		LogDirectory: filepath.Join(e.LogDir, PodNamespace+"_"+name+"_"+uid),
		Labels:       map[string]string{"moat.dev/e2e": e.ID},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: e.CgroupParent + "/pod" + uid,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_POD,
					Pid:     runtimeapi.NamespaceMode_CONTAINER,
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
			},
		},
	}
}

// RunPod runs a sandbox from cfg (see PodConfig) with the given handler.
func (e *Env) RunPod(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, handler string) (*Pod, error) {
	if err := os.MkdirAll(cfg.LogDirectory, 0o755); err != nil {
		return nil, fmt.Errorf("create pod log folder %s: %w", cfg.LogDirectory, err)
	}
	r, err := e.CRI.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
	if err != nil {
		return nil, fmt.Errorf("RunPodSandbox %s (handler %s): %w", cfg.Metadata.Name, handler, err)
	}
	return &Pod{Env: e, ID: r.PodSandboxId, Handler: handler, Config: cfg}, nil
}

// ContainerConfig is a container of image running argv, logging to
// <name>.log in the pod's log folder.
func ContainerConfig(name, image string, argv ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Command:  argv,
		LogPath:  name + ".log",
	}
}

// Create creates a container in the pod.
func (p *Pod) Create(ctx context.Context, c *runtimeapi.ContainerConfig) (string, error) {
	r, err := p.Env.CRI.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: p.ID, Config: c, SandboxConfig: p.Config,
	})
	if err != nil {
		return "", fmt.Errorf("CreateContainer %s in pod %s: %w", c.Metadata.Name, p.Config.Metadata.Name, err)
	}
	return r.ContainerId, nil
}

// Start creates and starts a container in the pod and returns its id.
func (p *Pod) Start(ctx context.Context, c *runtimeapi.ContainerConfig) (string, error) {
	id, err := p.Create(ctx, c)
	if err != nil {
		return "", err
	}
	if _, err := p.Env.CRI.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		return id, fmt.Errorf("StartContainer %s (%s): %w", c.Metadata.Name, id, err)
	}
	return id, nil
}

// Remove stops and removes the pod and its containers, then removes the
// pod's cgroup parent as the kubelet does (runc removes only the
// containers' own cgroups).
func (p *Pod) Remove(ctx context.Context) error {
	if _, err := p.Env.CRI.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.ID}); err != nil {
		return fmt.Errorf("StopPodSandbox %s: %w", p.ID, err)
	}
	if _, err := p.Env.CRI.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.ID}); err != nil {
		return fmt.Errorf("RemovePodSandbox %s: %w", p.ID, err)
	}
	for _, d := range p.CgroupDirs() {
		if err := removeCgroupTree(d); err != nil {
			return err
		}
	}
	return nil
}

// CgroupDirs lists the pod's cgroup parent folder in every cgroup
// hierarchy where it exists.
func (p *Pod) CgroupDirs() []string {
	rel := strings.TrimPrefix(p.Config.GetLinux().GetCgroupParent(), "/")
	if rel == "" {
		return nil
	}
	var out []string
	ents, _ := os.ReadDir(cgroupRoot)
	for _, d := range ents {
		c := filepath.Join(cgroupRoot, d.Name(), rel)
		if _, err := os.Stat(c); err == nil {
			out = append(out, c)
		}
	}
	if c := filepath.Join(cgroupRoot, rel); len(out) == 0 {
		if _, err := os.Stat(filepath.Join(c, "cgroup.procs")); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// Status returns the pod's CRI status.
func (p *Pod) Status(ctx context.Context) (*runtimeapi.PodSandboxStatus, error) {
	r, err := p.Env.CRI.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.ID})
	if err != nil {
		return nil, fmt.Errorf("PodSandboxStatus %s: %w", p.ID, err)
	}
	return r.Status, nil
}

// ContainerStatus returns a container's CRI status.
func (e *Env) ContainerStatus(ctx context.Context, id string) (*runtimeapi.ContainerStatus, error) {
	r, err := e.CRI.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return nil, fmt.Errorf("ContainerStatus %s: %w", id, err)
	}
	return r.Status, nil
}

// WaitState polls a container until it reaches state or ctx ends.
func (e *Env) WaitState(ctx context.Context, id string, state runtimeapi.ContainerState) (*runtimeapi.ContainerStatus, error) {
	for {
		st, err := e.ContainerStatus(ctx, id)
		if err != nil {
			return nil, err
		}
		if st.State == state {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("container %s: still %v, waiting for %v: %w", id, st.State, state, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitExited waits for a container to exit and returns its status.
func (e *Env) WaitExited(ctx context.Context, id string) (*runtimeapi.ContainerStatus, error) {
	return e.WaitState(ctx, id, runtimeapi.ContainerState_CONTAINER_EXITED)
}

// LogLine is one line of a CRI container log.
type LogLine struct {
	Stream string // "stdout" or "stderr"
	Text   string
}

// ReadLog parses a container log file in the CRI format
// ("<RFC3339Nano> <stream> <P|F> <text>"), joining partial lines.
func ReadLog(path string) ([]LogLine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read container log %s: %w", path, err)
	}
	var out []LogLine
	partial := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		if len(f) < 3 {
			return nil, fmt.Errorf("container log %s: malformed line %q", path, sc.Text())
		}
		text := ""
		if len(f) == 4 {
			text = f[3]
		}
		if f[2] == "P" {
			partial[f[1]] += text
			continue
		}
		out = append(out, LogLine{Stream: f[1], Text: partial[f[1]] + text})
		delete(partial, f[1])
	}
	return out, sc.Err()
}

// Logs returns a container's log as text: the lines of the given stream
// ("stdout", "stderr", or "" for both), each ending in a newline.
func (e *Env) Logs(ctx context.Context, id, stream string) (string, error) {
	st, err := e.ContainerStatus(ctx, id)
	if err != nil {
		return "", err
	}
	lines, err := ReadLog(st.LogPath)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, l := range lines {
		if stream == "" || l.Stream == stream {
			b.WriteString(l.Text + "\n")
		}
	}
	return b.String(), nil
}

// Crictl runs crictl against this harness's containerd, with stdin (may
// be nil), and returns its stdout and stderr.
func (e *Env) Crictl(ctx context.Context, stdin io.Reader, args ...string) (string, string, error) {
	cmd := e.CrictlCmd(ctx, args...)
	var so, se bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &so, &se
	if err := cmd.Run(); err != nil {
		return so.String(), se.String(), fmt.Errorf("crictl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(se.String()))
	}
	return so.String(), se.String(), nil
}

// CrictlCmd is an unstarted crictl command against this harness.
func (e *Env) CrictlCmd(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--config", filepath.Join(e.State, "crictl.yaml")}, args...)
	cmd := exec.CommandContext(ctx, e.Tools.Crictl, full...)
	cmd.Env = append(os.Environ(), "HOME="+e.Root)
	return cmd
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
