// Package harness runs a private containerd for end-to-end tests: it finds
// the tools, writes a containerd configuration whose every path lies under
// the harness's own folders, keeps containerd running under a supervisor
// (restarted when it exits, as systemd would), sets up a CNI bridge made
// for the test, builds and imports the test images, and hands out a CRI
// client. Close tears everything down and checks that nothing is left:
// no process, mount, cgroup, network link or file.
//
// Every test that uses moat with real containerd stands on this package;
// see docs/e2e.md.
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"moat.dev/moat/cri"
)

// Base folders: Root (on disk) holds containerd's content and snapshots,
// the pod logs and volumes; State (tmpfs) holds sockets, runc state and
// network namespaces. Each harness uses <base>/<id>.
const (
	RootBase  = "/var/lib/moat-e2e"
	StateBase = "/run/moat-e2e"
)

// Options configure a harness.
type Options struct {
	// ToolsDir holds containerd, ctr, the runc shim, crictl and cni/;
	// default $MOAT_TOOLS or DefaultToolsDir.
	ToolsDir string
	// MoatShim is the absolute path of containerd-shim-moat-v2. When set,
	// the handler "moat" is configured (runtime_type io.containerd.moat.v2)
	// and the shim's folder is put on containerd's PATH.
	MoatShim string
	// MoatConfig is the moat handler's options.ConfigPath.
	MoatConfig string
	// Logf receives progress lines (t.Logf); default: discard.
	Logf func(format string, args ...any)
	// ReadyTimeout bounds the wait for containerd's CRI to report ready
	// (default 60s).
	ReadyTimeout time.Duration
	// ExtraPath are folders put first on containerd's PATH, such as the
	// folder a node agent installs containerd-shim-moat-v2 into: containerd
	// finds a runtime's shim on its PATH again after a restart. A relative
	// entry is taken under the harness's Root (which New chooses).
	ExtraPath []string
}

// Env is one running harness.
type Env struct {
	ID            string
	Tools         *Tools
	Root, State   string
	Socket        string // containerd's gRPC socket (CRI endpoint), in RunDir
	RunDir        string // holds only the socket and the pid file, as /run/containerd
	PidFile       string // containerd's pid, rewritten at every (re)start
	ConfigPath    string // containerd's config file, in EtcDir
	EtcDir        string // holds only the config and ConfDir, as /etc/containerd
	ConfDir       string // imported drop-ins (<ConfDir>/*.toml), as /etc/containerd/conf.d
	LogDir        string // pod log folders
	VolumeDir     string // host folders for volumes
	ContainerdLog string
	Bridge        string // the CNI bridge
	CgroupParent  string // cgroupfs parent of every pod ("/moat-e2e-<id>")
	Handlers      []string

	// CRI is connected to containerd; after a restart of containerd it
	// reconnects by itself (gRPC redials).
	CRI *cri.Client

	opts     Options
	sup      *supervisor
	registry *Registry
}

// New starts a harness. On error everything already set up is torn down.
func New(ctx context.Context, opts Options) (*Env, error) {
	if opts.ToolsDir == "" {
		opts.ToolsDir = ToolsDir()
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	if opts.MoatShim != "" && !filepath.IsAbs(opts.MoatShim) {
		return nil, fmt.Errorf("harness: MoatShim %q is not an absolute path", opts.MoatShim)
	}
	for _, d := range opts.ExtraPath {
		if strings.Contains(d, ":") || d == "" || (!filepath.IsAbs(d) && !filepath.IsLocal(d)) {
			return nil, fmt.Errorf("harness: ExtraPath entry %q: want an absolute path, or one local to the harness root, without ':'", d)
		}
	}
	tools, err := FindTools(opts.ToolsDir)
	if err != nil {
		return nil, err
	}
	idb := make([]byte, 3)
	if _, err := rand.Read(idb); err != nil {
		return nil, fmt.Errorf("harness id: %w", err)
	}
	id := hex.EncodeToString(idb)
	e := &Env{
		ID:           id,
		Tools:        tools,
		Root:         filepath.Join(RootBase, id),
		State:        filepath.Join(StateBase, id),
		Bridge:       "me2e-" + id,
		CgroupParent: "/moat-e2e-" + id,
		Handlers:     []string{HandlerRunc},
		opts:         opts,
	}
	if opts.MoatShim != "" {
		e.Handlers = append(e.Handlers, HandlerMoat)
	}
	// The config and the socket sit in folders of their own, as
	// /etc/containerd and /run/containerd do on a node, so a node agent
	// can mount exactly those (hostPath) and nothing else of the harness.
	e.RunDir = filepath.Join(e.State, "run")
	e.Socket = filepath.Join(e.RunDir, "containerd.sock")
	e.PidFile = filepath.Join(e.RunDir, "containerd.pid")
	e.EtcDir = filepath.Join(e.Root, "etc", "containerd")
	e.ConfigPath = filepath.Join(e.EtcDir, "config.toml")
	e.ConfDir = filepath.Join(e.EtcDir, "conf.d")
	e.LogDir = filepath.Join(e.Root, "pod-logs")
	e.VolumeDir = filepath.Join(e.Root, "volumes")
	e.ContainerdLog = filepath.Join(e.Root, "containerd.log")

	CleanStale(opts.Logf)
	steps := []struct {
		name string
		fn   func() error
	}{
		{"create folders", e.makeDirs},
		{"write containerd config", e.writeConfig},
		{"set up network", e.setupNetwork},
		{"start containerd", e.startContainerd},
		{"wait for CRI", func() error { return e.waitCRI(ctx) }},
		{"import test images", func() error { return e.importTestImages(ctx) }},
	}
	for _, s := range steps {
		t0 := time.Now()
		err := s.fn()
		e.logf("harness %s: %s (%v)", id, s.name, time.Since(t0).Round(time.Millisecond))
		if err != nil {
			err = fmt.Errorf("harness %s: %s: %w", id, s.name, err)
			if tail := e.ContainerdLogTail(30); tail != "" {
				err = fmt.Errorf("%w\ncontainerd log:\n%s", err, tail)
			}
			if cerr := e.Close(); cerr != nil {
				err = fmt.Errorf("%w (and teardown: %v)", err, cerr)
			}
			return nil, err
		}
	}
	return e, nil
}

func (e *Env) logf(format string, args ...any) { e.opts.Logf(format, args...) }

func (e *Env) makeDirs() error {
	for _, d := range []string{e.Root, e.State, e.RunDir, e.EtcDir, e.ConfDir, e.LogDir, e.VolumeDir,
		filepath.Join(e.Root, "certs.d"), filepath.Join(e.Root, "tmp"), filepath.Join(e.Root, "cdi")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	// The owner file lets a later run clean up after a test process that
	// died without tearing down (CleanStale).
	p := filepath.Join(e.State, "owner.pid")
	if err := os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func (e *Env) writeConfig() error {
	s, err := renderConfig(e.configData())
	if err != nil {
		return err
	}
	if err := os.WriteFile(e.ConfigPath, []byte(s), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", e.ConfigPath, err)
	}
	p := filepath.Join(e.State, "crictl.yaml")
	y := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n", e.Socket, e.Socket)
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func (e *Env) startContainerd() error {
	path := e.Tools.Dir
	for i := len(e.opts.ExtraPath) - 1; i >= 0; i-- {
		d := e.opts.ExtraPath[i]
		if !filepath.IsAbs(d) {
			d = filepath.Join(e.Root, d)
		}
		path = d + ":" + path
	}
	if e.opts.MoatShim != "" {
		path += ":" + filepath.Dir(e.opts.MoatShim)
	}
	path += ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	env := []string{"PATH=" + path, "HOME=/root", "TMPDIR=" + filepath.Join(e.Root, "tmp")}
	e.sup = newSupervisor(e.Tools.Containerd, e.ConfigPath, e.ContainerdLog, env, e.logf)
	e.sup.pidFile = e.PidFile
	return e.sup.start()
}

func (e *Env) waitCRI(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.ReadyTimeout)
	defer cancel()
	c, err := cri.WaitReady(ctx, e.Socket, 100*time.Millisecond)
	if err != nil {
		return err
	}
	e.CRI = c
	return nil
}

// ContainerdPID is the pid of the running containerd (0 between restarts).
func (e *Env) ContainerdPID() int { return e.sup.pid() }

// ContainerdStarts is how many times the supervisor has started containerd.
func (e *Env) ContainerdStarts() int { return e.sup.startCount() }

// SignalContainerd sends sig to containerd, as the node agent does to make
// the service restart; the supervisor starts it again when it exits.
func (e *Env) SignalContainerd(sig syscall.Signal) (int, error) { return e.sup.signal(sig) }

// WaitRestarted waits until containerd has been started more than
// `before` times and its CRI is ready again.
func (e *Env) WaitRestarted(ctx context.Context, before int) error {
	for e.sup.startCount() <= before {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for containerd restart (starts still %d): %w", before, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	c, err := cri.WaitReady(ctx, e.Socket, 100*time.Millisecond)
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// ContainerdLogTail returns the last n lines of containerd's log.
func (e *Env) ContainerdLogTail(n int) string {
	b, err := os.ReadFile(e.ContainerdLog)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Close removes every pod, stops containerd, and removes all the harness
// made: processes, mounts, cgroups, the bridge, network namespaces and
// files. It returns an error naming anything it could not remove.
func (e *Env) Close() error {
	var errs []error
	if e.CRI != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		if err := e.RemoveAllPods(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
		e.CRI.Close()
	}
	if e.sup != nil {
		e.sup.stop(10 * time.Second)
	}
	e.registry.stop()
	if err := teardown(e.ID, e.Tools.IP); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
