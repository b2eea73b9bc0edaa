// Package node is the moat node agent: it checks a node's KVM, installs the
// moat shim, registers the moat runtime handler with containerd, and
// publishes what it found as node labels, an extended resource, events and
// metrics. cmd/moat-node runs it as a DaemonSet pod.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"

	"moat.dev/moat/kvm"
)

// StateUnsupported is the agent's state on a node that cannot run moat (no
// usable KVM): nothing is installed and the node advertises no capacity.
const StateUnsupported = "unsupported"

// Config is everything the agent needs; cmd/moat-node fills it from flags.
type Config struct {
	Handler string // runtime handler, "moat"

	// Check examines the node's KVM (kvm.Check in production).
	Check func(ctx context.Context) kvm.Report

	Installer  Installer
	Containerd ContainerdConfig
	// RuntimePath is the shim's path as containerd on the host sees it;
	// empty means Installer.Prefix/containerd-shim-moat-v2.
	RuntimePath string
	// RuntimeOptions is the moat runtime options file's content (the
	// chart's ConfigMap), written to OptionsPath; nil writes none.
	RuntimeOptions []byte
	OptionsPath    string

	// Runtime connects to containerd's CRI service.
	Runtime        func() (Runtime, error)
	Restarter      Restarter
	RestartTimeout time.Duration // how long containerd may take to answer again after a restart

	// Kube is the node's API object; nil runs without an API server (the
	// host-side work only).
	Kube     *Kube
	Capacity CapacityLimits // Max, SandboxMemory and SystemReserve; the rest is filled in

	Logger  *slog.Logger
	Metrics *Metrics
}

// Agent does the node's install and cleanup and serves its status.
type Agent struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	state     string
	report    kvm.Report
	lastErr   string
	capacity  int
	lastEvent string
}

// New checks cfg and returns an agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Handler == "" {
		cfg.Handler = "moat"
	}
	if cfg.Check == nil {
		return nil, errors.New("node agent: no KVM check configured")
	}
	if cfg.Runtime == nil {
		return nil, errors.New("node agent: no CRI connection configured")
	}
	if cfg.Restarter == nil {
		cfg.Restarter = NoRestarter{}
	}
	if cfg.RestartTimeout == 0 {
		cfg.RestartTimeout = 2 * time.Minute
	}
	if cfg.RuntimePath == "" {
		cfg.RuntimePath = cfg.Installer.Prefix + "/containerd-shim-moat-v2"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	a := &Agent{cfg: cfg, log: cfg.Logger}
	a.setState(StateInstalling)
	return a, nil
}

func (a *Agent) setState(s string) {
	a.mu.Lock()
	a.state = s
	a.mu.Unlock()
	a.cfg.Metrics.setState(s)
}

// State returns the agent's current install state.
func (a *Agent) State() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

func (a *Agent) fail(step string, err error) error {
	a.cfg.Metrics.errors.WithLabelValues(step).Inc()
	a.mu.Lock()
	a.lastErr = err.Error()
	a.mu.Unlock()
	return err
}

// event records a Kubernetes event about the node (when there is an API
// server) unless it repeats the previous one.
func (a *Agent) event(ctx context.Context, typ, reason, msg string) {
	a.mu.Lock()
	dup := a.lastEvent == reason+"\x00"+msg
	a.lastEvent = reason + "\x00" + msg
	a.mu.Unlock()
	if dup || a.cfg.Kube == nil {
		return
	}
	if err := a.cfg.Kube.Event(ctx, typ, reason, msg); err != nil {
		a.log.Warn("could not record event", "reason", reason, "err", err)
	}
}

func (a *Agent) labels(ctx context.Context, l map[string]*string) error {
	if a.cfg.Kube == nil {
		return nil
	}
	return a.cfg.Kube.SetLabels(ctx, l)
}

// Setup brings the node to its ready state: it checks KVM, installs the
// binaries, registers the handler with containerd (restarting containerd
// only when its configuration changed or it does not know the handler),
// verifies the handler over CRI and publishes labels and capacity. It is
// idempotent: a second run on a ready node changes nothing.
func (a *Agent) Setup(ctx context.Context) error {
	rep := a.cfg.Check(ctx)
	a.mu.Lock()
	a.report = rep
	a.mu.Unlock()
	a.cfg.Metrics.setReport(rep)
	a.log.Info("KVM check", "device", rep.Device, "available", rep.Available, "reason", rep.Reason,
		"apiVersion", rep.APIVersion, "hypervisor", rep.Hypervisor, "nested", rep.Nested,
		"maxVCPUs", rep.MaxVCPUs, "exitRoundTrip", rep.ExitRoundTrip)

	if !rep.Available {
		reason := rep.Reason
		if reason == "" {
			reason = "KVM is not usable"
		}
		a.log.Warn("this node cannot run moat sandboxes; nothing is installed", "device", rep.Device, "reason", reason)
		a.event(ctx, corev1.EventTypeWarning, "MoatKVMUnavailable", fmt.Sprintf("moat cannot run on this node: %s (device %s)", reason, rep.Device))
		if err := a.labels(ctx, map[string]*string{LabelKVM: boolLabel(false), LabelNested: boolLabel(rep.Nested), LabelRuntime: nil}); err != nil {
			return a.fail("labels", err)
		}
		if err := a.publishCapacity(ctx, 0); err != nil {
			return a.fail("capacity", err)
		}
		a.setState(StateUnsupported)
		return nil
	}

	if a.State() != StateReady {
		a.setState(StateInstalling)
		if err := a.labels(ctx, map[string]*string{LabelKVM: boolLabel(true), LabelNested: boolLabel(rep.Nested), LabelRuntime: ptr(StateInstalling)}); err != nil {
			return a.fail("labels", err)
		}
	}
	if err := a.install(ctx); err != nil {
		a.setState(StateFailed)
		a.event(ctx, corev1.EventTypeWarning, "MoatInstallFailed", err.Error())
		if lerr := a.labels(ctx, map[string]*string{LabelRuntime: ptr(StateFailed)}); lerr != nil {
			a.log.Warn("could not label node", "err", lerr)
		}
		return err
	}

	n, why, err := a.computeCapacity(ctx)
	if err != nil {
		return a.fail("capacity", err)
	}
	if err := a.publishCapacity(ctx, n); err != nil {
		return a.fail("capacity", err)
	}
	if err := a.labels(ctx, map[string]*string{LabelKVM: boolLabel(true), LabelNested: boolLabel(rep.Nested), LabelRuntime: ptr(StateReady)}); err != nil {
		return a.fail("labels", err)
	}
	if a.State() != StateReady {
		a.log.Info("moat runtime ready", "handler", a.cfg.Handler, "capacity", n, "limitedBy", why)
		a.event(ctx, corev1.EventTypeNormal, "MoatReady", fmt.Sprintf("moat runtime handler %q ready; capacity %d %s (limited by %s)", a.cfg.Handler, n, ResourceName, why))
	}
	a.mu.Lock()
	a.lastErr = ""
	a.mu.Unlock()
	a.setState(StateReady)
	return nil
}

// install does the host-side part of Setup.
func (a *Agent) install(ctx context.Context) error {
	rt, err := a.connect(ctx)
	if err != nil {
		return a.fail("cri", err)
	}
	defer rt.Close()
	name, version, err := rt.Version(ctx)
	if err != nil {
		return a.fail("cri", err)
	}
	if name != "containerd" {
		return a.fail("cri", fmt.Errorf("the CRI runtime is %s %s: moat-node registers its handler with containerd only", name, version))
	}
	a.cfg.Metrics.setInfo(a.Status().KVM.Hypervisor, version)
	cfgVersion, err := ConfigVersionFor(version)
	if err != nil {
		return a.fail("containerd-version", err)
	}

	changed, err := a.cfg.Installer.Install()
	if err != nil {
		return a.fail("install", err)
	}
	if len(changed) > 0 {
		a.log.Info("installed binaries", "prefix", a.cfg.Installer.Prefix, "changed", changed)
	}
	optionsPath := ""
	if a.cfg.RuntimeOptions != nil && a.cfg.OptionsPath != "" {
		optionsPath = a.cfg.OptionsPath
		var parsed map[string]any
		if _, err := toml.Decode(string(a.cfg.RuntimeOptions), &parsed); err != nil {
			return a.fail("options", fmt.Errorf("runtime options are not valid TOML, not installing them: %w", err))
		}
		if wrote, err := writeFileIfChanged(optionsPath, a.cfg.RuntimeOptions, 0o644); err != nil {
			return a.fail("options", err)
		} else if wrote {
			a.log.Info("wrote runtime options", "path", optionsPath)
		}
	}
	cfgChanged, err := a.cfg.Containerd.Ensure(DropIn{
		Handler: a.cfg.Handler, RuntimePath: a.cfg.RuntimePath, OptionsPath: optionsPath, ConfigVersion: cfgVersion,
	})
	if err != nil {
		return a.fail("containerd-config", err)
	}
	handlers, err := rt.Handlers(ctx)
	if err != nil {
		return a.fail("cri", err)
	}
	known := slices.Contains(handlers, a.cfg.Handler)
	if !cfgChanged && known {
		return nil
	}
	a.log.Info("restarting containerd to load the moat handler", "configChanged", cfgChanged, "handlerKnown", known, "strategy", a.cfg.Restarter.String(), "containerd", version)
	if err := a.restart(ctx, rt); err != nil {
		return err
	}
	handlers, err = rt.Handlers(ctx)
	if err != nil {
		return a.fail("cri", err)
	}
	if !slices.Contains(handlers, a.cfg.Handler) {
		return a.fail("verify", fmt.Errorf("containerd restarted but its CRI does not list the %q handler (it lists %v): see containerd's log for errors in %s", a.cfg.Handler, handlers, a.cfg.Containerd.DropInPath))
	}
	a.log.Info("containerd knows the handler", "handler", a.cfg.Handler, "handlers", handlers)
	return nil
}

// connect reaches containerd's CRI, waiting up to RestartTimeout for a
// containerd that is (re)starting.
func (a *Agent) connect(ctx context.Context) (Runtime, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RestartTimeout)
	defer cancel()
	for {
		rt, err := a.cfg.Runtime()
		if err == nil {
			return rt, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("containerd's CRI did not answer within %v: %w", a.cfg.RestartTimeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (a *Agent) restart(ctx context.Context, rt Runtime) error {
	if err := a.cfg.Restarter.Restart(ctx); err != nil {
		return a.fail("restart", err)
	}
	a.cfg.Metrics.restarts.Inc()
	if err := WaitReady(ctx, rt, a.cfg.RestartTimeout); err != nil {
		return a.fail("restart", fmt.Errorf("after restarting containerd: %w", err))
	}
	return nil
}

func (a *Agent) computeCapacity(ctx context.Context) (int, string, error) {
	l := a.cfg.Capacity
	l.KVMAvailable = true
	if a.cfg.Kube != nil {
		nd, err := a.cfg.Kube.Node(ctx)
		if err != nil {
			return 0, "", err
		}
		l.NodeMemory = nd.Status.Capacity[corev1.ResourceMemory]
		if m, ok := nd.Status.Allocatable[corev1.ResourceMemory]; ok {
			l.NodeMemory = m
		}
		if p, ok := nd.Status.Capacity[corev1.ResourcePods]; ok {
			l.NodePodCapacity = int(p.Value())
		}
	}
	n, why := l.Capacity()
	return n, why, nil
}

func (a *Agent) publishCapacity(ctx context.Context, n int) error {
	a.mu.Lock()
	a.capacity = n
	a.mu.Unlock()
	a.cfg.Metrics.capacity.Set(float64(n))
	if a.cfg.Kube == nil {
		return nil
	}
	return a.cfg.Kube.SetCapacity(ctx, n)
}

// Cleanup undoes Setup: the drop-in goes and containerd restarts (when its
// configuration changed); the labels and the capacity are removed; the
// binaries are removed only when no moat sandbox runs on the node.
// ErrPodsRunning is returned by Cleanup while moat pods still run on the
// node: the handler and the shim stay until they are gone.
var ErrPodsRunning = errors.New("moat pods still run on this node")

func (a *Agent) Cleanup(ctx context.Context) error {
	a.setState(StateCleanup)
	if err := a.labels(ctx, map[string]*string{LabelRuntime: ptr(StateCleanup)}); err != nil {
		a.log.Warn("could not label node", "err", err)
	}
	var errs []error
	if err := a.publishCapacity(ctx, 0); err != nil {
		a.log.Warn("could not zero the capacity", "err", err)
	}
	rt, err := a.connect(ctx)
	if err != nil {
		return a.fail("cri", errors.Join(append(errs, err)...))
	}
	defer rt.Close()
	// containerd needs a pod's runtime handler to stop the pod: while
	// moat pods run, the handler and the shim stay (capacity is already
	// zero, so no new moat pod lands here) and cleanup finishes on a
	// later call, once they are gone.
	if running, err := rt.Sandboxes(ctx, a.cfg.Handler); err != nil || running > 0 {
		if err != nil {
			err = fmt.Errorf("count moat sandboxes, handler and binaries kept: %w", err)
			a.event(ctx, corev1.EventTypeWarning, "MoatCleanupFailed", err.Error())
			return err
		}
		a.log.Warn("moat pods still run on this node: their handler and the shim stay until they are gone", "sandboxes", running, "prefix", a.cfg.Installer.Prefix)
		a.event(ctx, corev1.EventTypeWarning, "MoatCleanupDeferred", fmt.Sprintf("%d moat pods still run: the moat handler and %s stay until they are gone", running, a.cfg.Installer.Prefix))
		return ErrPodsRunning
	}
	changed, err := a.cfg.Containerd.Remove()
	if err != nil {
		errs = append(errs, a.fail("containerd-config", err))
	}
	handlers, err := rt.Handlers(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	if changed || slices.Contains(handlers, a.cfg.Handler) {
		a.log.Info("restarting containerd to unload the moat handler", "strategy", a.cfg.Restarter.String())
		if err := a.restart(ctx, rt); err != nil {
			errs = append(errs, err)
		} else if handlers, err := rt.Handlers(ctx); err == nil && slices.Contains(handlers, a.cfg.Handler) {
			errs = append(errs, fmt.Errorf("containerd still lists the %q handler after the drop-in was removed: another config file defines it", a.cfg.Handler))
		}
	}
	removed, err := a.cfg.Installer.Uninstall()
	if err != nil {
		errs = append(errs, a.fail("uninstall", err))
	}
	if a.cfg.OptionsPath != "" {
		if err := os.Remove(a.cfg.OptionsPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove runtime options: %w", err))
		}
	}
	a.log.Info("removed binaries", "prefix", a.cfg.Installer.Prefix, "removed", removed)
	if a.cfg.Kube != nil {
		if err := a.cfg.Kube.SetCapacity(ctx, -1); err != nil {
			errs = append(errs, err)
		}
		if err := a.labels(ctx, map[string]*string{LabelKVM: nil, LabelNested: nil, LabelRuntime: nil}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		a.event(ctx, corev1.EventTypeWarning, "MoatCleanupFailed", err.Error())
		return err
	}
	a.event(ctx, corev1.EventTypeNormal, "MoatRemoved", "moat runtime handler removed from this node")
	a.log.Info("cleanup done")
	return nil
}

// Run sets the node up, retrying with backoff while it fails, then checks it
// again every resync until ctx ends.
func (a *Agent) Run(ctx context.Context, resync time.Duration) {
	go func() {
		// The sandbox count is cheap to ask for; keep the metric fresh.
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(30 * time.Second):
			}
			if a.State() == StateReady {
				a.refreshSandboxes(ctx)
			}
		}
	}()
	backoff := 5 * time.Second
	for {
		wait := resync
		if err := a.Setup(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Error("node setup failed; will retry", "err", err, "retryIn", backoff)
			wait = backoff
			backoff = min(backoff*2, 5*time.Minute)
		} else {
			backoff = 5 * time.Second
			a.refreshSandboxes(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (a *Agent) refreshSandboxes(ctx context.Context) {
	rt, err := a.cfg.Runtime()
	if err != nil {
		return
	}
	defer rt.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if n, err := rt.Sandboxes(cctx, a.cfg.Handler); err == nil {
		a.cfg.Metrics.sandboxesRunning.Set(float64(n))
	}
}

// Status is what /healthz and /readyz return.
type Status struct {
	State    string     `json:"state"`
	Handler  string     `json:"handler"`
	Capacity int        `json:"capacity"`
	Error    string     `json:"error,omitempty"`
	KVM      kvm.Report `json:"kvm"`
}

// Status returns the agent's current status.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Status{State: a.state, Handler: a.cfg.Handler, Capacity: a.capacity, Error: a.lastErr, KVM: a.report}
}

// Handler serves /healthz (the agent is alive: always 200, with the KVM
// report), /readyz (200 once the node is ready, or known unable to run moat,
// so a rollout does not wait forever on nodes without KVM; 503 before) and
// /metrics.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	writeStatus := func(w http.ResponseWriter, code int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		b, _ := json.MarshalIndent(a.Status(), "", "  ")
		w.Write(append(b, '\n'))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeStatus(w, http.StatusOK) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		switch a.State() {
		case StateReady, StateUnsupported:
			writeStatus(w, http.StatusOK)
		default:
			writeStatus(w, http.StatusServiceUnavailable)
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.cfg.Metrics.Registry, promhttp.HandlerOpts{}))
	return mux
}
