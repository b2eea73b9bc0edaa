package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/mount"
	crtruntime "github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/containerd/v2/pkg/protobuf"
	cshim "github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"
	"github.com/containerd/ttrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/emptypb"

	"moat.dev/moat/cri"
	"moat.dev/moat/sentry/control"
)

func init() {
	registry.Register(&plugin.Registration{
		Type:     plugins.TTRPCPlugin,
		ID:       "task",
		Requires: []plugin.Type{plugins.EventPlugin, plugins.InternalPlugin},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			pp, err := ic.GetByID(plugins.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			ss, err := ic.GetByID(plugins.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			return NewService(ic.Context, pp.(cshim.Publisher), ss.(shutdown.Service), SentryCommand())
		},
	})
}

// SentryArg is the hidden first argument that makes the shim binary a
// sentry process.
const SentryArg = "sentry"

// SentryCommand is how the shim starts a pod's sentry: its own binary in
// the hidden sentry mode.
func SentryCommand() []string {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return []string{self, SentryArg}
}

var empty = &emptypb.Empty{}

// service is the containerd task service of one pod.
type service struct {
	ctx       context.Context
	publisher cshim.Publisher
	sd        shutdown.Service
	sentryCmd []string
	events    chan any

	mu         sync.Mutex
	containers map[string]*container
	opts       *Options
	sentry     *control.Client
	sandbox    *cri.Info // the pod's sandbox container, once created
	vcpus      int
	memory     uint64
	// dropCgroup removes the sentry's cgroup once the sentry is gone.
	dropCgroup func() error
}

// NewService returns the task service; sentryCmd starts a sentry process.
func NewService(ctx context.Context, pub cshim.Publisher, sd shutdown.Service, sentryCmd []string) (taskAPI.TTRPCTaskService, error) {
	s := &service{
		ctx: ctx, publisher: pub, sd: sd, sentryCmd: sentryCmd,
		events: make(chan any, 128), containers: map[string]*container{},
	}
	go s.forward()
	sd.RegisterCallback(func(context.Context) error {
		s.mu.Lock()
		c := s.sentry
		s.sentry = nil
		s.mu.Unlock()
		if c != nil {
			c.Kill()
		}
		return nil
	})
	return s, nil
}

func (s *service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	return nil
}

// forward publishes events in order.
func (s *service) forward() {
	ctx := context.WithoutCancel(s.ctx)
	publish := func(e any) {
		if err := s.publisher.Publish(ctx, crtruntime.GetTopic(e), e); err != nil {
			log.G(ctx).WithError(err).Error("publish event")
		}
	}
	for {
		select {
		case e := <-s.events:
			publish(e)
		case <-s.sd.Done():
			for {
				select {
				case e := <-s.events:
					publish(e)
				default:
					s.publisher.Close()
					return
				}
			}
		}
	}
}

func (s *service) send(e any) {
	select {
	case s.events <- e:
	case <-s.sd.Done():
	}
}

func grpcErr(err error) error { return errgrpc.ToGRPC(err) }

func (s *service) getContainer(id string) (*container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[id]
	if !ok {
		return nil, grpcErr(fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound))
	}
	return c, nil
}

func (s *service) getProcess(id, execID string) (*container, *process, error) {
	c, err := s.getContainer(id)
	if err != nil {
		return nil, nil, err
	}
	if execID == "" {
		return c, c.init, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := c.execs[execID]
	if !ok {
		return nil, nil, grpcErr(fmt.Errorf("exec %s in container %s: %w", execID, id, errdefs.ErrNotFound))
	}
	return c, p, nil
}

// readSpec reads and checks the bundle's OCI spec.
func readSpec(bundle string) (*specs.Spec, error) {
	p := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read OCI spec: %w", err)
	}
	var sp specs.Spec
	if err := json.Unmarshal(b, &sp); err != nil {
		return nil, fmt.Errorf("parse OCI spec %s: %w", p, err)
	}
	return &sp, nil
}

// Create prepares a container: its spec, its root filesystem and, for the
// pod's first container, the sentry.
func (s *service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (_ *taskAPI.CreateTaskResponse, retErr error) {
	if !sandboxIDOK(r.ID) {
		return nil, grpcErr(fmt.Errorf("create %q: %w: bad container id", r.ID, errdefs.ErrInvalidArgument))
	}
	if r.Checkpoint != "" {
		return nil, grpcErr(fmt.Errorf("create %s from a checkpoint: %w", r.ID, errdefs.ErrNotImplemented))
	}
	sp, err := readSpec(r.Bundle)
	if err != nil {
		return nil, grpcErr(fmt.Errorf("create %s: %w: %v", r.ID, errdefs.ErrInvalidArgument, err))
	}
	info, err := cri.FromSpec(sp)
	if err != nil && !errors.Is(err, cri.ErrNotCRI) {
		return nil, grpcErr(fmt.Errorf("create %s: %w: %v", r.ID, errdefs.ErrInvalidArgument, err))
	}
	c := &container{id: r.ID, bundle: r.Bundle, info: info, spec: sp, execs: map[string]*process{}}
	c.sandbox = info != nil && info.IsSandbox()
	if sp.Linux != nil {
		c.limits = limitsOf(sp.Linux.Resources)
	}
	if c.seccomp, err = seccompProfile(sp.Linux); err != nil {
		return nil, grpcErr(fmt.Errorf("create %s: %w: %v", r.ID, errdefs.ErrInvalidArgument, err))
	}
	if !c.sandbox && sp.Process == nil {
		return nil, grpcErr(fmt.Errorf("create %s: %w: the OCI spec has no process", r.ID, errdefs.ErrInvalidArgument))
	}
	c.init = newProcess(r.ID, "", sp.Process, r.Stdin, r.Stdout, r.Stderr, r.Terminal)
	var netSysctls, sbSysctls map[string]string
	if sp.Linux != nil {
		netSysctls, sbSysctls, err = control.SplitSysctls(sp.Linux.Sysctl, netNS(sp) == "" && !ownNetNS(sp))
		if err != nil {
			return nil, grpcErr(fmt.Errorf("create %s: %w: %v", r.ID, errdefs.ErrInvalidArgument, err))
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.containers[r.ID]; ok {
		return nil, grpcErr(fmt.Errorf("create %s: %w", r.ID, errdefs.ErrAlreadyExists))
	}
	if s.opts == nil {
		o, err := optionsFromAny(r.Options)
		if err != nil {
			return nil, grpcErr(fmt.Errorf("create %s: %w: %v", r.ID, errdefs.ErrInvalidArgument, err))
		}
		s.opts = &o
	}

	rootfs, err := s.mountRootfs(ctx, c, r.Rootfs)
	if err != nil {
		return nil, grpcErr(fmt.Errorf("create %s: %w", r.ID, err))
	}
	defer func() {
		if retErr != nil && c.mounted {
			mount.UnmountRecursive(rootfs, 0)
		}
	}()
	if c.sandbox {
		s.sandbox = info
	}
	s.containers[r.ID] = c
	defer func() {
		if retErr != nil {
			delete(s.containers, r.ID)
		}
	}()
	pod := r.ID
	if info != nil {
		pod = info.SandboxID
	}
	if ns := netNS(sp); ns != "" {
		if err := writeNetSysctls(ns, netSysctls); err != nil {
			return nil, grpcErr(fmt.Errorf("create %s: %w", r.ID, err))
		}
		netSysctls = nil
	}
	started := s.sentry == nil
	if err := s.ensureSentryLocked(ctx, pod, r.Bundle, sp, sbSysctls); err != nil {
		return nil, grpcErr(fmt.Errorf("create %s: %w", r.ID, err))
	}
	if len(netSysctls) > 0 {
		// The sentry's own network namespace (no path in the spec):
		// written before any process of the container starts.
		if err := writeNetSysctls(fmt.Sprintf("/proc/%d/ns/net", s.sentry.Pid()), netSysctls); err != nil {
			return nil, grpcErr(fmt.Errorf("create %s: %w", r.ID, err))
		}
	}
	if !started && c.sandbox && len(sbSysctls) > 0 {
		return nil, grpcErr(fmt.Errorf("create %s: %w: the pod's sandbox already runs; its sysctls cannot change", r.ID, errdefs.ErrFailedPrecondition))
	}
	if !c.sandbox {
		var ms []control.Mount
		for _, m := range sp.Mounts {
			ms = append(ms, control.Mount{Destination: m.Destination, Type: m.Type, Source: m.Source, Options: m.Options})
		}
		ms = withHostSubmounts(ms, "/proc/self/mountinfo")
		args, dirs, err := control.PrepareContainer(r.ID, rootfs, sp.Root != nil && sp.Root.Readonly, ms)
		if err != nil {
			return nil, grpcErr(fmt.Errorf("create %s: %w", r.ID, err))
		}
		pidMode, err := pidNamespaceMode(sp)
		if err != nil {
			for _, d := range dirs {
				d.Close()
			}
			return nil, grpcErr(fmt.Errorf("create %s: %w: %v", r.ID, errdefs.ErrInvalidArgument, err))
		}
		if pidMode == pidHost {
			log.G(ctx).WithField("id", r.ID).Warn("host PID namespace asked for: a sandbox cannot show the host's processes; the container gets the sandbox's namespace, which shows every process of the pod")
			pidMode = control.PIDNamespaceSandbox
		}
		args.PIDNamespace = pidMode
		if sp.Linux != nil {
			args.MaskedPaths, args.ReadonlyPaths = sp.Linux.MaskedPaths, sp.Linux.ReadonlyPaths
		}
		if !started {
			args.Sysctls = sbSysctls
		}
		err = s.sentry.AddContainer(args, dirs)
		for _, d := range dirs {
			d.Close()
		}
		if err != nil {
			return nil, grpcErr(fmt.Errorf("create %s: %w", r.ID, err))
		}
	}
	s.resizeLocked(ctx)
	c.init.pid = uint32(s.sentry.Pid())
	s.send(&eventstypes.TaskCreate{
		ContainerID: r.ID, Bundle: r.Bundle, Rootfs: r.Rootfs,
		IO:  &eventstypes.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
		Pid: c.init.pid,
	})
	return &taskAPI.CreateTaskResponse{Pid: c.init.pid}, nil
}

func sandboxIDOK(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, ch := range id {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-' || ch == '.') {
			return false
		}
	}
	return id[0] != '.' && id[0] != '-'
}

// mountRootfs mounts the Create request's rootfs mounts at bundle/rootfs
// (as the runc shim does) and returns the host directory of the root.
func (s *service) mountRootfs(ctx context.Context, c *container, ms []*types.Mount) (string, error) {
	rootfs := filepath.Join(c.bundle, "rootfs")
	if len(ms) == 0 {
		if c.spec.Root != nil && c.spec.Root.Path != "" {
			if filepath.IsAbs(c.spec.Root.Path) {
				return c.spec.Root.Path, nil
			}
			return filepath.Join(c.bundle, c.spec.Root.Path), nil
		}
		return rootfs, nil
	}
	if err := os.Mkdir(rootfs, 0o711); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("mkdir rootfs %s: %w", rootfs, err)
	}
	var mounts []mount.Mount
	for _, m := range ms {
		mounts = append(mounts, mount.Mount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
	}
	if err := mount.All(mounts, rootfs); err != nil {
		return "", fmt.Errorf("mount rootfs at %s: %w", rootfs, err)
	}
	c.mounted = true
	return rootfs, nil
}

// ensureSentryLocked starts the pod's sentry if it is not running.
//
// Preconditions: s.mu is held.
func (s *service) ensureSentryLocked(ctx context.Context, pod, bundle string, sp *specs.Spec, sysctls map[string]string) error {
	if s.sentry != nil {
		select {
		case <-s.sentry.Exited():
			return fmt.Errorf("the pod's sentry has died: %v", s.sentry.ExitError())
		default:
			return nil
		}
	}
	vcpus, mem := s.podResourcesLocked()
	cfg := control.Config{CPUs: vcpus, Memory: mem, Hostname: podHostname(sp), LogLevel: s.opts.LogLevel, Strace: s.opts.Strace, Pod: pod, Bundle: bundle, Confine: true, NetNS: netNS(sp), NewNetNS: ownNetNS(sp), Sysctls: sysctls}
	lw := &logWriter{entry: log.G(s.ctx).WithField("sentry", true)}
	c, err := control.Launch(s.sentryCmd, cfg, lw)
	if err != nil {
		return fmt.Errorf("start sentry: %w", err)
	}
	s.sentry, s.vcpus, s.memory = c, vcpus, mem
	if sp.Linux != nil && sp.Linux.CgroupsPath != "" {
		drop, err := joinCgroup(sp.Linux.CgroupsPath, c.Pid())
		if err != nil {
			// The sentry still runs the pod; its threads are then
			// bounded by the shim's cgroup only.
			log.G(ctx).WithError(err).Warn("sentry outside the pod's cgroup")
		} else {
			s.dropCgroup = drop
		}
	}
	log.G(ctx).WithField("pid", c.Pid()).WithField("vcpus", vcpus).WithField("memory", mem).Info("sentry started")
	go func() {
		<-c.Exited()
		if err := c.ExitError(); err != nil {
			log.G(s.ctx).WithError(err).Error("the pod's sentry ended")
		}
	}()
	return nil
}

// podResourcesLocked computes the pod's vCPUs and memory limit.
//
// Preconditions: s.mu is held.
func (s *service) podResourcesLocked() (int, uint64) {
	var ls []limits
	for _, c := range s.containers {
		if !c.sandbox {
			ls = append(ls, c.limits)
		}
	}
	max := 0
	if s.opts != nil {
		max = s.opts.MaxVCPUs
	}
	return podResources(s.sandbox, ls, runtime.NumCPU(), max)
}

// resizeLocked applies the pod's resources to the running sentry.
//
// Preconditions: s.mu is held.
func (s *service) resizeLocked(ctx context.Context) {
	if s.sentry == nil {
		return
	}
	vcpus, mem := s.podResourcesLocked()
	if vcpus == s.vcpus && mem == s.memory {
		return
	}
	a := control.UpdateArgs{CPUs: vcpus, Memory: mem, NoMemoryLimit: mem == 0}
	if _, err := s.sentry.Update(a); err != nil {
		log.G(ctx).WithError(err).Warn("resize the pod's sandbox")
		return
	}
	log.G(ctx).WithField("vcpus", vcpus).WithField("memory", mem).Info("pod resized")
	s.vcpus, s.memory = vcpus, mem
}

// Start starts a container's init or an exec.
func (s *service) Start(ctx context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	c, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	sentry := s.sentry
	s.mu.Unlock()
	if sentry == nil {
		return nil, grpcErr(fmt.Errorf("start %s: %w: no sentry", r.ID, errdefs.ErrFailedPrecondition))
	}
	p.mu.Lock()
	if p.status != task.Status_CREATED {
		p.mu.Unlock()
		return nil, grpcErr(fmt.Errorf("start %s/%s: %w: process is %s", r.ID, r.ExecID, errdefs.ErrFailedPrecondition, p.status))
	}
	p.status = task.Status_RUNNING // claimed; reset on failure
	p.mu.Unlock()
	fail := func(err error) (*taskAPI.StartResponse, error) {
		p.mu.Lock()
		p.status = task.Status_CREATED
		p.mu.Unlock()
		return nil, grpcErr(err)
	}
	if r.ExecID != "" {
		if st, _, _, _ := c.init.state(); st != task.Status_RUNNING {
			return fail(fmt.Errorf("exec %s in %s: %w: container is not running", r.ExecID, r.ID, errdefs.ErrFailedPrecondition))
		}
		if s.paused(c) {
			return fail(fmt.Errorf("exec %s in %s: %w: cannot exec in a paused container", r.ExecID, r.ID, errdefs.ErrFailedPrecondition))
		}
	}
	var args control.StartArgs
	if c.sandbox && r.ExecID == "" {
		args = control.StartArgs{ID: r.ID, PodInit: true}
	} else {
		args, err = startArgs(r.ID, r.ExecID, p.spec)
		if err != nil {
			return fail(fmt.Errorf("start: %w: %v", errdefs.ErrInvalidArgument, err))
		}
		// As runc: the container's filter applies to its execs too.
		args.Seccomp = c.seccomp
	}
	var files [3]*os.File
	release := func() {}
	if p.tty && !(c.sandbox && r.ExecID == "") {
		files, release, err = p.openTerminal(ctx)
	} else {
		files, err = p.openStdio(ctx)
		release = func() {
			closed := map[*os.File]bool{}
			for _, f := range files {
				if f != nil && !closed[f] {
					f.Close()
					closed[f] = true
				}
			}
		}
	}
	if err != nil {
		p.closeIO()
		return fail(fmt.Errorf("start %s/%s: %w", r.ID, r.ExecID, err))
	}
	_, err = sentry.Start(args, files)
	release()
	if err != nil {
		p.closeIO()
		return fail(fmt.Errorf("start %s/%s: %w", r.ID, r.ExecID, err))
	}
	pid := uint32(sentry.Pid())
	p.mu.Lock()
	p.pid = pid
	p.mu.Unlock()
	if r.ExecID == "" {
		s.send(&eventstypes.TaskStart{ContainerID: r.ID, Pid: pid})
	} else {
		s.send(&eventstypes.TaskExecStarted{ContainerID: r.ID, ExecID: r.ExecID, Pid: pid})
	}
	go s.waitProcess(sentry, c, p)
	return &taskAPI.StartResponse{Pid: pid}, nil
}

// waitProcess waits for a started process to end and publishes its exit
// (an OOM event first if the kernel killed it for memory). When the
// sentry dies the process ends with 128+SIGKILL.
func (s *service) waitProcess(sentry *control.Client, c *container, p *process) {
	wr, err := sentry.Wait(p.id, p.execID)
	status, at := wr.ExitStatus, wr.ExitedAt
	if err != nil {
		log.G(s.ctx).WithError(err).WithField("container", p.id).WithField("exec", p.execID).Warn("process lost with the sentry")
		status, at = exitStatusKilled, time.Now()
	}
	if at.IsZero() {
		at = time.Now()
	}
	p.closeIO()
	if wr.OOM {
		s.send(&eventstypes.TaskOOM{ContainerID: p.id})
	}
	if p.execID == "" && !c.sandbox {
		// A container's init exit is its last: end its execs first.
		s.endExecs(sentry, c)
	}
	if p.execID == "" {
		// A paused container whose init ended is resumed, as runc does.
		s.thawEnded(sentry, c)
	}
	if !p.setExited(status, at) {
		return
	}
	s.send(&eventstypes.TaskExit{
		ContainerID: p.id, ID: execOrID(p), Pid: p.pid,
		ExitStatus: uint32(status), ExitedAt: protobuf.ToTimestamp(at),
	})
}

// endExecs kills the execs still running in c and waits a while for
// their exits to be published.
func (s *service) endExecs(sentry *control.Client, c *container) {
	s.mu.Lock()
	var running []*process
	for _, e := range c.execs {
		if st, _, _, _ := e.state(); st == task.Status_RUNNING {
			running = append(running, e)
		}
	}
	s.mu.Unlock()
	if len(running) == 0 {
		return
	}
	if err := sentry.Signal(c.id, "", 9, true); err != nil {
		log.G(s.ctx).WithError(err).Warn("kill the execs of an ended container")
	}
	deadline := time.After(5 * time.Second)
	for _, e := range running {
		select {
		case <-e.done:
		case <-deadline:
			return
		}
	}
}

func execOrID(p *process) string {
	if p.execID != "" {
		return p.execID
	}
	return p.id
}

// Delete removes an exec, or a container with its root filesystem; the
// last container ends the sentry.
func (s *service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	c, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	st, pid, status, at := p.state()
	if st == task.Status_RUNNING {
		return nil, grpcErr(fmt.Errorf("delete %s/%s: %w: process is running", r.ID, r.ExecID, errdefs.ErrFailedPrecondition))
	}
	if st == task.Status_CREATED {
		p.setExited(0, time.Now())
		_, pid, status, at = p.state()
	}
	s.mu.Lock()
	sentry := s.sentry
	s.mu.Unlock()
	if r.ExecID != "" {
		s.mu.Lock()
		delete(c.execs, r.ExecID)
		s.mu.Unlock()
		if sentry != nil {
			if err := sentry.RemoveProcess(r.ID, r.ExecID); err != nil && !control.IsNotFound(err) && !errors.Is(err, control.ErrSentryGone) {
				log.G(ctx).WithError(err).Warn("remove exec from the sentry")
			}
		}
		return &taskAPI.DeleteResponse{Pid: pid, ExitStatus: status, ExitedAt: protobuf.ToTimestamp(at)}, nil
	}
	if sentry != nil && !c.sandbox {
		if err := sentry.RemoveContainer(r.ID); err != nil && !errors.Is(err, control.ErrSentryGone) {
			log.G(ctx).WithError(err).Warn("remove container from the sentry")
		}
	}
	if c.mounted {
		if err := mount.UnmountRecursive(filepath.Join(c.bundle, "rootfs"), 0); err != nil {
			log.G(ctx).WithError(err).Warn("unmount rootfs")
		}
	}
	s.mu.Lock()
	delete(s.containers, r.ID)
	var orphans []*container
	if c.sandbox {
		// The pod is over with its sandbox: containers containerd has
		// lost track of (e.g. after a restart without this runtime) go
		// with it, so the sentry, its cgroup and their mounts do not stay.
		s.sandbox = nil
		for id, o := range s.containers {
			orphans = append(orphans, o)
			delete(s.containers, id)
		}
	}
	last := len(s.containers) == 0
	drop := s.dropCgroup
	if last {
		s.sentry, s.dropCgroup = nil, nil
	} else {
		s.resizeLocked(ctx)
	}
	s.mu.Unlock()
	if last && sentry != nil {
		if err := sentry.Shutdown(); err != nil && !errors.Is(err, control.ErrSentryGone) {
			log.G(ctx).WithError(err).Warn("shut the sentry down")
		}
	}
	if last && drop != nil {
		if err := drop(); err != nil {
			log.G(ctx).WithError(err).Warn("remove the sentry's cgroup")
		}
	}
	for _, o := range orphans {
		log.G(ctx).WithField("container", o.id).Warn("container removed with its pod's sandbox")
		for _, p := range append([]*process{o.init}, execsOf(o)...) {
			p.closeIO()
			if p.setExited(exitStatusKilled, time.Now()) {
				s.send(&eventstypes.TaskExit{ContainerID: o.id, ID: execOrID(p), Pid: p.pid,
					ExitStatus: uint32(exitStatusKilled), ExitedAt: protobuf.ToTimestamp(time.Now())})
			}
		}
		if o.mounted {
			if err := mount.UnmountRecursive(filepath.Join(o.bundle, "rootfs"), 0); err != nil {
				log.G(ctx).WithError(err).Warn("unmount rootfs")
			}
		}
	}
	s.send(&eventstypes.TaskDelete{ContainerID: r.ID, Pid: pid, ExitStatus: status, ExitedAt: protobuf.ToTimestamp(at), ID: r.ID})
	return &taskAPI.DeleteResponse{Pid: pid, ExitStatus: status, ExitedAt: protobuf.ToTimestamp(at)}, nil
}

// Exec adds an exec process to a container.
func (s *service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*emptypb.Empty, error) {
	c, err := s.getContainer(r.ID)
	if err != nil {
		return nil, err
	}
	if r.ExecID == "" || !sandboxIDOK(r.ExecID) {
		return nil, grpcErr(fmt.Errorf("exec %q in %s: %w: bad exec id", r.ExecID, r.ID, errdefs.ErrInvalidArgument))
	}
	var ps specs.Process
	if r.Spec == nil || json.Unmarshal(r.Spec.GetValue(), &ps) != nil {
		return nil, grpcErr(fmt.Errorf("exec %s in %s: %w: the process spec is not an OCI process", r.ExecID, r.ID, errdefs.ErrInvalidArgument))
	}
	if c.sandbox {
		return nil, grpcErr(fmt.Errorf("exec %s in %s: %w: exec into the pod's sandbox container", r.ExecID, r.ID, errdefs.ErrNotImplemented))
	}
	if s.paused(c) {
		return nil, grpcErr(fmt.Errorf("exec %s in %s: %w: cannot exec in a paused container", r.ExecID, r.ID, errdefs.ErrFailedPrecondition))
	}
	s.mu.Lock()
	if _, ok := c.execs[r.ExecID]; ok {
		s.mu.Unlock()
		return nil, grpcErr(fmt.Errorf("exec %s in %s: %w", r.ExecID, r.ID, errdefs.ErrAlreadyExists))
	}
	c.execs[r.ExecID] = newProcess(r.ID, r.ExecID, &ps, r.Stdin, r.Stdout, r.Stderr, r.Terminal)
	s.mu.Unlock()
	s.send(&eventstypes.TaskExecAdded{ContainerID: r.ID, ExecID: r.ExecID})
	return empty, nil
}

// ResizePty sets the size of a terminal process's pty.
func (s *service) ResizePty(ctx context.Context, r *taskAPI.ResizePtyRequest) (*emptypb.Empty, error) {
	_, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if r.Width > 0xffff || r.Height > 0xffff {
		return nil, grpcErr(fmt.Errorf("resize %s/%s: %w: %dx%d", r.ID, r.ExecID, errdefs.ErrInvalidArgument, r.Width, r.Height))
	}
	if err := p.resize(r.Width, r.Height); err != nil {
		return nil, grpcErr(fmt.Errorf("resize %s/%s: %w", r.ID, r.ExecID, err))
	}
	return empty, nil
}

// State reports a process.
func (s *service) State(ctx context.Context, r *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	c, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	st, pid, status, at := p.state()
	if st == task.Status_RUNNING {
		st = s.pauseStatus(c)
	}
	return &taskAPI.StateResponse{
		ID: r.ID, ExecID: r.ExecID, Bundle: c.bundle, Pid: pid, Status: st,
		Stdin: p.stdin, Stdout: p.stdout, Stderr: p.stderr, Terminal: p.tty,
		ExitStatus: status, ExitedAt: protobuf.ToTimestamp(at),
	}, nil
}

// Checkpoint is not implemented.
func (s *service) Checkpoint(ctx context.Context, r *taskAPI.CheckpointTaskRequest) (*emptypb.Empty, error) {
	return nil, grpcErr(fmt.Errorf("checkpoint %s: %w: moat does not checkpoint containers", r.ID, errdefs.ErrNotImplemented))
}

// Kill signals a process, or with All every process of the container.
func (s *service) Kill(ctx context.Context, r *taskAPI.KillRequest) (*emptypb.Empty, error) {
	c, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if r.Signal == 0 || r.Signal > 64 {
		return nil, grpcErr(fmt.Errorf("kill %s/%s: %w: signal %d", r.ID, r.ExecID, errdefs.ErrInvalidArgument, r.Signal))
	}
	st, _, _, _ := p.state()
	switch st {
	case task.Status_STOPPED:
		return nil, grpcErr(fmt.Errorf("kill %s/%s: process already finished: %w", r.ID, r.ExecID, errdefs.ErrNotFound))
	case task.Status_CREATED:
		// Never started: it ends here, as if the signal had killed it.
		if p.setExited(128+int(r.Signal), time.Now()) {
			s.send(&eventstypes.TaskExit{ContainerID: r.ID, ID: execOrID(p), Pid: p.pid,
				ExitStatus: 128 + r.Signal, ExitedAt: protobuf.ToTimestamp(time.Now())})
		}
		return empty, nil
	}
	s.mu.Lock()
	sentry := s.sentry
	s.mu.Unlock()
	if sentry == nil {
		return nil, grpcErr(fmt.Errorf("kill %s: %w: no sentry", r.ID, errdefs.ErrNotFound))
	}
	all := r.All && r.ExecID == ""
	if c.sandbox && r.ExecID == "" {
		// The pod's init: a signal to the sandbox container is for it alone.
		all = false
	}
	log.G(ctx).WithField("container", r.ID).WithField("exec", r.ExecID).WithField("signal", signalName(r.Signal)).Debug("kill")
	if err := sentry.Signal(r.ID, r.ExecID, int(r.Signal), all); err != nil {
		if control.IsFinished(err) || control.IsNotFound(err) {
			return nil, grpcErr(fmt.Errorf("kill %s/%s: process already finished: %w", r.ID, r.ExecID, errdefs.ErrNotFound))
		}
		if errors.Is(err, control.ErrSentryGone) {
			return nil, grpcErr(fmt.Errorf("kill %s/%s: process already finished (%v): %w", r.ID, r.ExecID, err, errdefs.ErrNotFound))
		}
		return nil, grpcErr(err)
	}
	return empty, nil
}

// Pids lists the container's processes (pids inside the sandbox).
func (s *service) Pids(ctx context.Context, r *taskAPI.PidsRequest) (*taskAPI.PidsResponse, error) {
	if _, err := s.getContainer(r.ID); err != nil {
		return nil, err
	}
	s.mu.Lock()
	sentry := s.sentry
	s.mu.Unlock()
	if sentry == nil {
		return &taskAPI.PidsResponse{}, nil
	}
	pids, err := sentry.Pids(r.ID)
	if err != nil {
		return nil, grpcErr(err)
	}
	out := &taskAPI.PidsResponse{}
	for _, p := range pids {
		out.Processes = append(out.Processes, &task.ProcessInfo{Pid: uint32(p)})
	}
	return out, nil
}

// CloseIO: the process reads containerd's stdin FIFO itself, so it sees
// the end of input when the writer closes; nothing to do here.
func (s *service) CloseIO(ctx context.Context, r *taskAPI.CloseIORequest) (*emptypb.Empty, error) {
	if _, _, err := s.getProcess(r.ID, r.ExecID); err != nil {
		return nil, err
	}
	return empty, nil
}

// Update takes a container's new resources and resizes the pod.
func (s *service) Update(ctx context.Context, r *taskAPI.UpdateTaskRequest) (*emptypb.Empty, error) {
	c, err := s.getContainer(r.ID)
	if err != nil {
		return nil, err
	}
	var res specs.LinuxResources
	if r.Resources != nil && len(r.Resources.GetValue()) > 0 {
		if err := json.Unmarshal(r.Resources.GetValue(), &res); err != nil {
			return nil, grpcErr(fmt.Errorf("update %s: %w: resources: %v", r.ID, errdefs.ErrInvalidArgument, err))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := limitsOf(&res)
	if c.sandbox && s.sandbox != nil {
		// A pod-level resize: the new pod limits.
		if l.cpu > 0 && res.CPU != nil && res.CPU.Quota != nil && res.CPU.Period != nil {
			s.sandbox.CPUQuota, s.sandbox.CPUPeriod = *res.CPU.Quota, int64(*res.CPU.Period)
		}
		if l.memory > 0 {
			s.sandbox.MemoryLimit = l.memory
		}
		if l.cpuset != "" {
			s.sandbox.CPUSet = l.cpuset
		}
	} else {
		var others []limits
		for _, o := range s.containers {
			if !o.sandbox && o != c {
				others = append(others, o.limits)
			}
		}
		followResize(s.sandbox, others, c.limits, l)
		c.limits = l
	}
	s.resizeLocked(ctx)
	return empty, nil
}

// Wait waits for a process to end.
func (s *service) Wait(ctx context.Context, r *taskAPI.WaitRequest) (*taskAPI.WaitResponse, error) {
	_, p, err := s.getProcess(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, grpcErr(ctx.Err())
	}
	_, _, status, at := p.state()
	return &taskAPI.WaitResponse{ExitStatus: status, ExitedAt: protobuf.ToTimestamp(at)}, nil
}

// Stats reports a container's CPU time and memory as cgroup v2 metrics.
func (s *service) Stats(ctx context.Context, r *taskAPI.StatsRequest) (*taskAPI.StatsResponse, error) {
	c, err := s.getContainer(r.ID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	sentry := s.sentry
	s.mu.Unlock()
	if sentry == nil {
		return nil, grpcErr(fmt.Errorf("stats %s: %w: no sentry", r.ID, errdefs.ErrNotFound))
	}
	var st control.StatsReply
	if c.sandbox {
		// The sandbox container stands for the pod (what CRI's pod
		// stats read): every container's processes and memory.
		st, err = sentry.PodStats(r.ID)
	} else {
		st, err = sentry.Stats(r.ID)
	}
	if err != nil {
		return nil, grpcErr(err)
	}
	a, err := metricsAny(st)
	if err != nil {
		return nil, grpcErr(err)
	}
	return &taskAPI.StatsResponse{Stats: a}, nil
}

// Connect reports the shim's pid and the task's.
func (s *service) Connect(ctx context.Context, r *taskAPI.ConnectRequest) (*taskAPI.ConnectResponse, error) {
	var pid uint32
	if c, err := s.getContainer(r.ID); err == nil {
		_, pid, _, _ = c.init.state()
	}
	return &taskAPI.ConnectResponse{ShimPid: uint32(os.Getpid()), TaskPid: pid, Version: "moat"}, nil
}

// Shutdown ends the shim once it serves no container.
func (s *service) Shutdown(ctx context.Context, r *taskAPI.ShutdownRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	n := len(s.containers)
	s.mu.Unlock()
	if n > 0 {
		return empty, nil
	}
	s.sd.Shutdown()
	return empty, nil
}

// logWriter turns the sentry's log lines into the shim's log.
type logWriter struct {
	entry *log.Entry
	mu    sync.Mutex
	buf   []byte
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.entry.Info(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 {
		w.entry.Info(string(w.buf))
		w.buf = nil
	}
	return len(b), nil
}

// netNS is the path of the network namespace the spec names ("" if none:
// the host's, or a new one the runtime would make).
func netNS(sp *specs.Spec) string {
	if sp.Linux == nil {
		return ""
	}
	for _, ns := range sp.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			return ns.Path
		}
	}
	return ""
}

// podHostname is the sandbox's hostname: the spec's, or the host's when
// the spec shares the host's UTS namespace (CRI's host networking brings
// it along) and names none.
func podHostname(sp *specs.Spec) string {
	if sp.Hostname != "" || sp.Linux == nil {
		return sp.Hostname
	}
	for _, ns := range sp.Linux.Namespaces {
		if ns.Type == specs.UTSNamespace {
			return ""
		}
	}
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

// ownNetNS says whether the spec asks for a new network namespace (a
// network namespace without a path, as `ctr run` makes): the sentry then
// gets one of its own. With no network namespace at all (CRI's host
// network) it shares the host's.
func ownNetNS(sp *specs.Spec) bool {
	if sp.Linux == nil {
		return false
	}
	for _, ns := range sp.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			return ns.Path == ""
		}
	}
	return false
}

// execsOf lists a container's execs.
func execsOf(c *container) []*process {
	var out []*process
	for _, p := range c.execs {
		out = append(out, p)
	}
	return out
}
