// Package shim is moat's containerd shim (runtime type io.containerd.moat.v2):
// the containerd task API v3 over ttrpc, one shim and one sentry process per
// pod. See README.md for how the pieces talk.
package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	cshim "github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"

	"moat.dev/moat/cri"
)

// RuntimeType is the containerd runtime type served by this shim.
const RuntimeType = "io.containerd.moat.v2"

// exitStatusKilled is what a process that was never seen to exit reports
// (128+SIGKILL, as runc).
const exitStatusKilled = 128 + int(syscall.SIGKILL)

// groupLabels decide which containers share a shim (and a sentry): the
// first present names the group; without any a container is alone.
var groupLabels = []string{
	"io.containerd.moat.v2.group",
	cri.AnnotationSandboxID,
}

// Manager starts, stops and describes the shim process (the containerd
// shim bootstrap protocol).
type Manager struct{ name string }

// NewManager returns the shim manager for runtime name.
func NewManager(name string) *Manager { return &Manager{name: name} }

// Name is the runtime's name.
func (m *Manager) Name() string { return m.name }

// Start runs the long-lived shim for the bundle in the working directory,
// or returns the address of the pod's running shim.
func (m *Manager) Start(ctx context.Context, p *bootapi.BootstrapParams) (_ *bootapi.BootstrapResult, retErr error) {
	res := &bootapi.BootstrapResult{Version: 3, Protocol: "ttrpc"}
	id := p.GetInstanceID()
	group, err := groupOf("config.json", id)
	if err != nil {
		return nil, err
	}
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	socketDir := p.GetSocketDir()
	if socketDir == "" {
		socketDir = filepath.Join(defaults.DefaultStateDir, "s")
	}
	addr, err := cshim.CreateSocketAddress(ctx, socketDir, p.GetContainerdGrpcAddress(), group, false)
	if err != nil {
		return nil, err
	}
	l, err := cshim.NewSocket(addr)
	if err != nil {
		if !cshim.SocketEaddrinuse(err) {
			return nil, fmt.Errorf("create shim socket %s: %w", addr, err)
		}
		if cshim.CanConnect(addr) {
			// The pod's shim runs already: this container joins it.
			res.Address = addr
			return res, nil
		}
		if err := cshim.RemoveSocket(addr); err != nil {
			return nil, fmt.Errorf("remove stale shim socket %s: %w", addr, err)
		}
		if l, err = cshim.NewSocket(addr); err != nil {
			return nil, fmt.Errorf("create shim socket %s: %w", addr, err)
		}
	}
	f, err := l.File()
	l.SetUnlinkOnClose(false) // the socket lives on in the shim
	l.Close()
	if err != nil {
		cshim.RemoveSocket(addr)
		return nil, err
	}
	defer f.Close()
	defer func() {
		if retErr != nil {
			cshim.RemoveSocket(addr)
		}
	}()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	args := []string{"-namespace", ns, "-id", id, "-address", p.GetContainerdGrpcAddress()}
	if p.GetLogLevel() <= bootapi.LogLevel_LOG_LEVEL_DEBUG {
		args = append(args, "-debug")
	}
	cmd := exec.Command(self, args...)
	cmd.Dir = cwd
	cmd.Env = append(os.Environ(), "GOMAXPROCS=4")
	cmd.ExtraFiles = []*os.File{f} // fd 3: the ttrpc socket
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start shim %s: %w", self, err)
	}
	go cmd.Wait()
	if err := cshim.AdjustOOMScore(cmd.Process.Pid); err != nil {
		// Raising a child's oom_score_adj needs CAP_SYS_RESOURCE on some
		// hosts; the shim works without it.
		log.G(ctx).WithError(err).Warn("could not adjust the shim's OOM score")
	}
	res.Address = addr
	return res, nil
}

// groupOf returns the shim group of the bundle's spec at path.
func groupOf(path, id string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read bundle spec %s: %w", path, err)
	}
	var s struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return "", fmt.Errorf("parse bundle spec %s: %w", path, err)
	}
	for _, k := range groupLabels {
		if g := s.Annotations[k]; g != "" {
			return g, nil
		}
	}
	return id, nil
}

// Stop cleans up after a shim that is gone (containerd's "delete"
// action): the rootfs mount of the bundle in the working directory's
// sibling id is undone; the container's processes died with their sentry.
func (m *Manager) Stop(ctx context.Context, id string) (cshim.StopStatus, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return cshim.StopStatus{}, err
	}
	bundle := filepath.Join(filepath.Dir(cwd), id)
	if err := mount.UnmountRecursive(filepath.Join(bundle, "rootfs"), 0); err != nil {
		log.G(ctx).WithError(err).Warn("unmount rootfs of a dead shim")
	}
	return cshim.StopStatus{Pid: 0, ExitStatus: exitStatusKilled, ExitedAt: time.Now()}, nil
}

// Info describes the runtime, with the OCI features it supports (what
// `runc features` reports for runc): containerd reads them, for one to
// know that recursive read-only mounts ("rro") are supported.
func (m *Manager) Info(ctx context.Context, r io.Reader) (*types.RuntimeInfo, error) {
	info := &types.RuntimeInfo{Name: m.name, Version: &types.RuntimeVersion{Version: "moat"}}
	f, err := typeurl.MarshalAnyToProto(runtimeFeatures())
	if err != nil {
		return nil, fmt.Errorf("marshal the runtime's features: %w", err)
	}
	info.Features = f
	return info, nil
}

var _ cshim.Shim = (*Manager)(nil)
