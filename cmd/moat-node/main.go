// Command moat-node is the moat node agent, one pod per node (the chart's
// DaemonSet): it checks KVM, installs the moat shim, registers the moat
// runtime handler with containerd, labels the node and advertises its
// moat.dev/sandbox capacity. Its logic is in package node.
//
//	moat-node [run] [flags]          set the node up and keep it so; serve /healthz, /readyz, /metrics
//	moat-node cleanup [flags]        undo everything on this node and exit
//	moat-node rollback [flags]       put the previously installed binaries back
//	moat-node check [flags]          print the KVM report as JSON
//	moat-node request-cleanup [flags] ask every agent to clean up and wait (the chart's pre-delete hook)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"moat.dev/moat/kvm"
	"moat.dev/moat/node"
)

const usage = `moat-node: the moat node agent.

Usage:
  moat-node [run] [flags]            set the node up, keep it so, serve /healthz /readyz /metrics
  moat-node cleanup [flags]          undo the install on this node and exit
  moat-node rollback [flags]         put the previously installed binaries back
  moat-node check [flags]            print this node's KVM report as JSON
  moat-node request-cleanup [flags]  ask every agent to clean up, wait until done (pre-delete hook)

Run "moat-node COMMAND --help" for the flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run", "cleanup", "rollback", "check":
		o, err := parseOptions(cmd, args, stderr)
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintf(stderr, "moat-node %s: %v\n", cmd, err)
			return 2
		}
		if err := o.do(cmd, stdout); err != nil {
			fmt.Fprintf(stderr, "moat-node %s: %v\n", cmd, err)
			return 1
		}
		return 0
	case "request-cleanup":
		if err := requestCleanup(args, stderr); err != nil {
			fmt.Fprintf(stderr, "moat-node request-cleanup: %v\n", err)
			return 1
		}
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "moat-node: unknown command %q\n\n%s", cmd, usage)
	return 2
}

type options struct {
	nodeName, namespace, daemonSet, kubeconfig string
	standalone                                 bool

	handler, kvmDevice string
	measureExits       int

	sourceDir, prefix, hostPrefix string

	containerdConfig, containerdDropIn, containerdSocket string
	runtimeOptionsFile, runtimeOptionsPath               string

	restart, systemdUnit, systemdSocket, containerdPidFile string
	restartTimeout                                         time.Duration

	maxSandboxes                 int
	sandboxMemory, systemReserve string

	listen, cleanupOnExit, logFormat string
	resync                           time.Duration
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseOptions(cmd string, args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("moat-node "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.nodeName, "node-name", env("NODE_NAME", ""), "this node's name (default $NODE_NAME)")
	fs.StringVar(&o.namespace, "namespace", env("POD_NAMESPACE", "moat-system"), "the agent's namespace, for its events and DaemonSet (default $POD_NAMESPACE)")
	fs.StringVar(&o.daemonSet, "daemonset", env("MOAT_DAEMONSET", "moat-node"), "the agent's DaemonSet, watched for uninstall")
	fs.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file (default: in-cluster)")
	fs.BoolVar(&o.standalone, "standalone", false, "no API server: do the host-side work only (no labels, capacity or events)")
	fs.StringVar(&o.handler, "handler", "moat", "runtime handler name (the RuntimeClass's handler)")
	fs.StringVar(&o.kvmDevice, "kvm-device", "", "KVM device (default $MOAT_KVM_DEVICE or /dev/kvm)")
	fs.IntVar(&o.measureExits, "measure-exits", 200, "guest exits to time in the KVM check (0: none)")
	fs.StringVar(&o.sourceDir, "source-dir", "/opt/moat/image/bin", "where the image holds the binaries to install")
	fs.StringVar(&o.prefix, "prefix", "/opt/moat/bin", "install directory as the agent sees it")
	fs.StringVar(&o.hostPrefix, "host-prefix", "", "install directory as containerd on the host sees it (default: --prefix)")
	fs.StringVar(&o.containerdConfig, "containerd-config", "/etc/containerd/config.toml", "containerd's main config file")
	fs.StringVar(&o.containerdDropIn, "containerd-dropin", "/etc/containerd/conf.d/moat.toml", "the moat drop-in file containerd imports")
	fs.StringVar(&o.containerdSocket, "containerd-socket", "/run/containerd/containerd.sock", "containerd's socket (CRI)")
	fs.StringVar(&o.runtimeOptionsFile, "runtime-options-file", "", "moat runtime options to install (the chart's ConfigMap); empty for none")
	fs.StringVar(&o.runtimeOptionsPath, "runtime-options-path", "/etc/moat/runtime.toml", "where the runtime options go on the host")
	fs.StringVar(&o.restart, "restart", node.RestartSystemd, "how to restart containerd: systemd (over D-Bus), nsenter (systemctl in the host's namespaces), signal or none")
	fs.StringVar(&o.systemdSocket, "systemd-socket", "/run/systemd/private", "systemd's D-Bus socket (restart=systemd): its private socket or the system bus")
	fs.StringVar(&o.systemdUnit, "systemd-unit", "containerd.service", "containerd's systemd unit (restart=systemd or nsenter)")
	fs.StringVar(&o.containerdPidFile, "containerd-pid-file", "", "containerd's pid file (restart=signal; default: find it by its socket)")
	fs.DurationVar(&o.restartTimeout, "restart-timeout", 2*time.Minute, "how long containerd may take to come back")
	fs.IntVar(&o.maxSandboxes, "max-sandboxes", 110, "most moat pods one node may run")
	fs.StringVar(&o.sandboxMemory, "sandbox-memory", "40Mi", "memory one sandbox needs beyond its containers (the RuntimeClass overhead)")
	fs.StringVar(&o.systemReserve, "system-reserve", "512Mi", "node memory not counted for sandboxes")
	fs.StringVar(&o.listen, "listen", ":9477", "address for /healthz, /readyz and /metrics (empty: none)")
	fs.StringVar(&o.cleanupOnExit, "cleanup-on-exit", "auto", "on SIGTERM: auto (clean up when moat is being uninstalled), always or never")
	fs.DurationVar(&o.resync, "resync", 5*time.Minute, "how often to check the node again")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch o.cleanupOnExit {
	case "auto", "always", "never":
	default:
		return nil, fmt.Errorf("--cleanup-on-exit %q: want auto, always or never", o.cleanupOnExit)
	}
	return o, nil
}

func (o *options) logger() *slog.Logger {
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

func (o *options) client() (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if o.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config (use --standalone to run without an API server): %w", err)
	}
	cfg.UserAgent = "moat-node"
	return kubernetes.NewForConfig(cfg)
}

func (o *options) restarter() (node.Restarter, error) {
	switch o.restart {
	case node.RestartSystemd:
		return node.DBusRestarter{Socket: o.systemdSocket, Unit: o.systemdUnit, Timeout: o.restartTimeout}, nil
	case node.RestartNsenter:
		return node.NsenterRestarter{Unit: o.systemdUnit}, nil
	case node.RestartSignal:
		return node.SignalRestarter{PidFile: o.containerdPidFile, Socket: o.containerdSocket, Timeout: o.restartTimeout}, nil
	case node.RestartNone:
		return node.NoRestarter{}, nil
	}
	return nil, fmt.Errorf("--restart %q: want systemd, nsenter, signal or none", o.restart)
}

func (o *options) config(log *slog.Logger) (node.Config, error) {
	var cfg node.Config
	rs, err := o.restarter()
	if err != nil {
		return cfg, err
	}
	mem, err := resource.ParseQuantity(o.sandboxMemory)
	if err != nil {
		return cfg, fmt.Errorf("--sandbox-memory %q: %w", o.sandboxMemory, err)
	}
	reserve, err := resource.ParseQuantity(o.systemReserve)
	if err != nil {
		return cfg, fmt.Errorf("--system-reserve %q: %w", o.systemReserve, err)
	}
	if o.maxSandboxes < 0 {
		return cfg, fmt.Errorf("--max-sandboxes %d: must not be negative", o.maxSandboxes)
	}
	hostPrefix := o.hostPrefix
	if hostPrefix == "" {
		hostPrefix = o.prefix
	}
	for _, p := range []struct{ flag, v string }{{"prefix", o.prefix}, {"host-prefix", hostPrefix}, {"containerd-config", o.containerdConfig}, {"containerd-dropin", o.containerdDropIn}} {
		if !filepath.IsAbs(p.v) {
			return cfg, fmt.Errorf("--%s %q: must be an absolute path", p.flag, p.v)
		}
	}
	var opts []byte
	if o.runtimeOptionsFile != "" {
		if opts, err = os.ReadFile(o.runtimeOptionsFile); err != nil {
			return cfg, fmt.Errorf("read runtime options: %w", err)
		}
	}
	measure, device := o.measureExits, o.kvmDevice
	cfg = node.Config{
		Handler: o.handler,
		Check: func(context.Context) kvm.Report {
			return kvm.Check(kvm.CheckOptions{Device: device, MeasureExits: measure})
		},
		Installer: node.Installer{
			SourceDir: o.sourceDir, Prefix: o.prefix,
			Binaries: []string{"containerd-shim-moat-v2", "moat"},
		},
		RuntimePath:    filepath.Join(hostPrefix, "containerd-shim-moat-v2"),
		Containerd:     node.ContainerdConfig{MainPath: o.containerdConfig, DropInPath: o.containerdDropIn},
		RuntimeOptions: opts,
		OptionsPath:    o.runtimeOptionsPath,
		Runtime:        func() (node.Runtime, error) { return node.DialCRI(o.containerdSocket) },
		Restarter:      rs,
		RestartTimeout: o.restartTimeout,
		Capacity:       node.CapacityLimits{Max: o.maxSandboxes, SandboxMemory: mem, SystemReserve: reserve},
		Logger:         log,
	}
	if !o.standalone {
		if o.nodeName == "" {
			return cfg, errors.New("--node-name (or $NODE_NAME) is required unless --standalone")
		}
		cs, err := o.client()
		if err != nil {
			return cfg, err
		}
		cfg.Kube = &node.Kube{Client: cs, NodeName: o.nodeName, Namespace: o.namespace}
	}
	return cfg, nil
}

func (o *options) do(cmd string, stdout io.Writer) error {
	log := o.logger()
	if cmd == "check" {
		r := kvm.Check(kvm.CheckOptions{Device: o.kvmDevice, MeasureExits: o.measureExits})
		stdout.Write(r.JSON())
		if !r.Available {
			return fmt.Errorf("KVM not usable: %s", r.Reason)
		}
		return nil
	}
	cfg, err := o.config(log)
	if err != nil {
		return err
	}
	if cmd == "rollback" {
		rolled, err := cfg.Installer.Rollback()
		log.Info("rolled back", "binaries", rolled, "prefix", cfg.Installer.Prefix)
		return err
	}
	a, err := node.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if cmd == "cleanup" {
		return a.Cleanup(context.Background())
	}
	return o.serve(ctx, a, cfg, log)
}

// serve runs the agent until SIGTERM, then cleans up if moat is being
// uninstalled (or always/never, as --cleanup-on-exit says).
func (o *options) serve(ctx context.Context, a *node.Agent, cfg node.Config, log *slog.Logger) error {
	if o.listen != "" {
		ln, err := net.Listen("tcp", o.listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", o.listen, err)
		}
		srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("serving health and metrics", "address", ln.Addr().String())
	}
	var un *node.Uninstall
	if cfg.Kube != nil && o.daemonSet != "" {
		un = &node.Uninstall{Client: cfg.Kube.Client, Namespace: o.namespace, DaemonSet: o.daemonSet}
	}
	if un != nil {
		if req, why, err := un.Requested(ctx); err == nil && req {
			return o.cleanupAndWait(ctx, a, log, why)
		}
	}
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	requested := make(chan string, 1)
	if un != nil {
		// Watch for the pre-delete hook's request while the agent runs, so
		// cleanup happens while the agent's RBAC still exists.
		go func() {
			for {
				select {
				case <-runCtx.Done():
					return
				case <-time.After(5 * time.Second):
				}
				if req, why, err := un.Requested(runCtx); err == nil && req {
					requested <- why
					cancelRun()
					return
				}
			}
		}()
	}
	a.Run(runCtx, o.resync)
	select {
	case why := <-requested:
		return o.cleanupAndWait(ctx, a, log, why)
	default:
	}
	cancelRun()
	switch o.cleanupOnExit {
	case "never":
		return nil
	case "auto":
		if un == nil {
			log.Info("exiting without cleanup (no API server to tell an uninstall from a restart)")
			return nil
		}
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, why, err := un.Requested(cctx)
		cancel()
		if err != nil {
			log.Warn("exiting without cleanup: cannot tell whether moat is being uninstalled", "err", err)
			return nil
		}
		if !req {
			log.Info("exiting without cleanup: the DaemonSet stays (restart, upgrade or node drain)")
			return nil
		}
		log.Info("moat is being uninstalled: cleaning up the node", "why", why)
	}
	return a.Cleanup(context.Background())
}

// cleanupAndWait cleans the node up, then stays up until the uninstall
// deletes the pod, so the DaemonSet does not start the agent again meanwhile.
func (o *options) cleanupAndWait(ctx context.Context, a *node.Agent, log *slog.Logger, why string) error {
	log.Info("moat is being uninstalled: cleaning up the node", "why", why)
	err := a.Cleanup(context.Background())
	if err != nil {
		log.Error("cleanup failed", "err", err)
	}
	<-ctx.Done()
	return err
}

func requestCleanup(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("moat-node request-cleanup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ns := fs.String("namespace", env("POD_NAMESPACE", "moat-system"), "the DaemonSet's namespace")
	ds := fs.String("daemonset", env("MOAT_DAEMONSET", "moat-node"), "the moat-node DaemonSet")
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file (default: in-cluster)")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the nodes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := &options{kubeconfig: *kubeconfig}
	cs, err := o.client()
	if err != nil {
		return err
	}
	u := node.Uninstall{Client: cs, Namespace: *ns, DaemonSet: *ds}
	ctx := context.Background()
	if err := u.Request(ctx); err != nil {
		return err
	}
	if _, err := u.WaitClean(ctx, *timeout, 2*time.Second); err != nil {
		// Do not block the uninstall: a node whose agent is gone (NotReady,
		// deleted) can never report back. Say which nodes to look at.
		fmt.Fprintf(stderr, "moat-node request-cleanup: %v; uninstalling anyway: check these nodes by hand\n", err)
		return nil
	}
	fmt.Fprintln(stderr, "moat-node request-cleanup: every node is clean")
	return nil
}
