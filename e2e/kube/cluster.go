// Package kube runs a real single-node Kubernetes cluster for moat's
// end-to-end tests and drives it the way a user does: kubectl and helm
// executed as typed, `-o json` parsed into the API's own types where a
// test needs structure.
//
// The node stands on e2e/harness: its private containerd v2.4.2 (own
// paths, own CNI bridge, a supervisor that restarts containerd when it
// exits, as moat-node's "signal" restart strategy needs), its test images
// and its teardown. On top, Start generates the certificates, starts etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler on 127.0.0.1
// and the kubelet on that containerd, and imports the moat-node image.
// Close stops it all and checks that nothing is left on the machine.
package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"moat.dev/moat/e2e/harness"
)

// Versions of the cluster's parts (.ci/install.d/40-kubernetes.sh builds
// them; 30-helm.sh builds helm).
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.7.0"
)

// Fixed addresses: one cluster runs on a machine at a time.
const (
	APIServerHost = "127.0.0.1"
	APIServerPort = "6443"
	etcdClient    = "http://127.0.0.1:2379"
	etcdPeer      = "http://127.0.0.1:2380"
	// ServiceCIDR holds the kubernetes Service's address. Nothing routes
	// it (no kube-proxy): in-cluster clients use APIServerHost:Port.
	ServiceCIDR = "10.214.0.0/24"
	serviceIP   = "10.214.0.1"
	kubeletPort = 10250
)

// Paths relative to the harness root of the cluster's node.
const (
	// MoatPrefix is where moat-node installs its binaries (the chart's
	// install.prefix); it is on containerd's PATH.
	MoatPrefix = "opt/moat/bin"
	// MoatRuntimeOptions is the chart's install.runtimeOptionsPath.
	MoatRuntimeOptions = "etc/moat/runtime.toml"
)

// MoatNodeImage is the moat-node image built from this tree and imported
// into the node (a non-latest tag; pods use imagePullPolicy Never).
const MoatNodeImage = "moat.dev/moat-node:e2e"

// Options configure a cluster.
type Options struct {
	// ToolsDir holds containerd and friends (harness.ToolsDir()), helm and
	// k8s/ with the Kubernetes binaries and etcd.
	ToolsDir string
	// Logf receives progress lines; default: discard.
	Logf func(format string, args ...any)
	// NoMoatImage skips building and importing the moat-node image.
	NoMoatImage bool
	// ReadyTimeout bounds the wait for the node to be Ready (default 3m).
	ReadyTimeout time.Duration
}

// Cluster is one running single-node cluster.
type Cluster struct {
	*Client
	Env      *harness.Env // the node's containerd
	Dir      string       // <harness root>/k8s: certificates, kubeconfigs, data, logs
	NodeName string
	NodeIP   string

	opts    Options
	bins    *Binaries
	procs   []*proc
	procsMu sync.Mutex
	host    *hostState
	unlock  func() // releases ClusterLock
}

// Binaries are the paths of the cluster's programs.
type Binaries struct {
	Etcd, APIServer, ControllerManager, Scheduler, Kubelet, Kubectl, Helm string
}

// FindBinaries looks for the Kubernetes binaries and etcd in toolsDir/k8s
// and helm in toolsDir; what is missing is a *harness.MissingToolsError.
func FindBinaries(toolsDir string) (*Binaries, error) {
	k := filepath.Join(toolsDir, "k8s")
	b := &Binaries{
		Etcd:              filepath.Join(k, "etcd"),
		APIServer:         filepath.Join(k, "kube-apiserver"),
		ControllerManager: filepath.Join(k, "kube-controller-manager"),
		Scheduler:         filepath.Join(k, "kube-scheduler"),
		Kubelet:           filepath.Join(k, "kubelet"),
		Kubectl:           filepath.Join(k, "kubectl"),
		Helm:              filepath.Join(toolsDir, "helm"),
	}
	var missing []string
	for _, p := range []string{b.Etcd, b.APIServer, b.ControllerManager, b.Scheduler, b.Kubelet, b.Kubectl} {
		if !isExecutable(p) {
			missing = append(missing, p+" (run .ci/install.d/40-kubernetes.sh, or make cluster-tools)")
		}
	}
	if !isExecutable(b.Helm) {
		missing = append(missing, b.Helm+" (run .ci/install.d/30-helm.sh)")
	}
	if len(missing) > 0 {
		return b, &harness.MissingToolsError{Missing: missing}
	}
	return b, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Start brings a cluster up: the harness's containerd, certificates,
// etcd, the API server, the controller-manager, the scheduler and the
// kubelet; it returns once the node is Ready and the default service
// account exists. On error everything already started is torn down.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.ToolsDir == "" {
		opts.ToolsDir = harness.ToolsDir()
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 3 * time.Minute
	}
	bins, err := FindBinaries(opts.ToolsDir)
	if err != nil {
		// Report the harness's missing tools too, all at once.
		if _, herr := harness.FindTools(opts.ToolsDir); herr != nil && harness.IsMissingTools(herr) {
			var a, b *harness.MissingToolsError
			errors.As(err, &a)
			errors.As(herr, &b)
			a.Missing = append(a.Missing, b.Missing...)
		}
		return nil, err
	}
	release, err := Lock(ctx, ClusterLock, opts.Logf)
	if err != nil {
		return nil, err
	}
	if err := portsFree(); err != nil {
		release()
		return nil, err
	}
	nodeName, err := nodeName()
	if err != nil {
		return nil, err
	}
	if err != nil {
		release()
		return nil, err
	}
	nodeIP, err := PrimaryIP()
	if err != nil {
		release()
		return nil, err
	}
	c := &Cluster{opts: opts, bins: bins, NodeName: nodeName, NodeIP: nodeIP, unlock: release}
	t0 := time.Now()
	c.Env, err = harness.New(ctx, harness.Options{
		ToolsDir:  opts.ToolsDir,
		Logf:      opts.Logf,
		ExtraPath: []string{MoatPrefix},
	})
	if err != nil {
		release()
		return nil, err
	}
	c.logf("cluster: containerd up (%v)", time.Since(t0).Round(time.Millisecond))
	c.Dir = filepath.Join(c.Env.Root, "k8s")
	c.Client = &Client{
		Kubeconfig: filepath.Join(c.Dir, "admin.kubeconfig"),
		KubectlBin: bins.Kubectl,
		HelmBin:    bins.Helm,
		HelmHome:   filepath.Join(c.Dir, "helm"),
	}
	if err := c.start(ctx); err != nil {
		err = fmt.Errorf("cluster: %w", err)
		if cerr := c.Close(); cerr != nil {
			err = fmt.Errorf("%w (and teardown: %v)", err, cerr)
		}
		return nil, err
	}
	c.logf("cluster: up %v after start", time.Since(t0).Round(time.Millisecond))
	return c, nil
}

func (c *Cluster) logf(format string, args ...any) { c.opts.Logf(format, args...) }

// MoatPrefixPath is the absolute folder moat-node installs the shim into.
func (c *Cluster) MoatPrefixPath() string { return filepath.Join(c.Env.Root, MoatPrefix) }

// MoatRuntimeOptionsPath is the absolute path of moat's runtime options.
func (c *Cluster) MoatRuntimeOptionsPath() string {
	return filepath.Join(c.Env.Root, MoatRuntimeOptions)
}

func (c *Cluster) start(ctx context.Context) error {
	for _, d := range []string{c.Dir, filepath.Join(c.Dir, "pki"), filepath.Join(c.Dir, "logs"),
		filepath.Join(c.Dir, "etcd"), filepath.Join(c.Dir, "kubelet"), filepath.Join(c.Dir, "pod-logs"), c.HelmHome} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	var err error
	if err := restoreDeadCluster(c.logf); err != nil {
		return err
	}
	if c.host, err = saveHostState(c.Dir); err != nil {
		return err
	}
	if err := createCgroupRoot(c.Env.CgroupParent); err != nil {
		return err
	}
	if err := c.writeConfig(); err != nil {
		return err
	}
	if err := c.writeMoatValues(); err != nil {
		return err
	}
	// The moat-node image builds while the control plane starts.
	imgErr := make(chan error, 1)
	if c.opts.NoMoatImage {
		imgErr <- nil
	} else {
		go func() {
			t0 := time.Now()
			err := BuildMoatNodeImage(ctx, c.Env, MoatNodeImage)
			c.logf("cluster: moat-node image %s built and imported (%v)", MoatNodeImage, time.Since(t0).Round(time.Millisecond))
			imgErr <- err
		}()
	}
	if err := c.startControlPlane(ctx); err != nil {
		<-imgErr
		return err
	}
	t0 := time.Now()
	if err := c.startKubelet(); err != nil {
		<-imgErr
		return err
	}
	if err := c.waitReady(ctx); err != nil {
		<-imgErr
		return err
	}
	c.logf("cluster: node %s Ready %v after the kubelet started", c.NodeName, time.Since(t0).Round(time.Millisecond))
	return <-imgErr
}

// startProc starts one component and remembers it for Close.
func (c *Cluster) startProc(name string, argv ...string) (*proc, error) {
	p := &proc{name: name, argv: argv, logPath: filepath.Join(c.Dir, "logs", name+".log")}
	env := []string{"PATH=" + c.opts.ToolsDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + c.Dir}
	if err := p.start(env); err != nil {
		return nil, err
	}
	c.procsMu.Lock()
	c.procs = append(c.procs, p)
	c.procsMu.Unlock()
	return p, nil
}

func (c *Cluster) pki(name string) string { return filepath.Join(c.Dir, "pki", name) }

func (c *Cluster) startControlPlane(ctx context.Context) error {
	t0 := time.Now()
	etcd, err := c.startProc("etcd", c.bins.Etcd,
		"--name=default",
		"--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+etcdClient,
		"--advertise-client-urls="+etcdClient,
		"--listen-peer-urls="+etcdPeer,
		"--initial-advertise-peer-urls="+etcdPeer,
		"--initial-cluster=default="+etcdPeer,
		"--listen-metrics-urls=",
		// A test cluster's data dies with it: no fsync.
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, etcd, etcdClient+"/health", nil, 60*time.Second); err != nil {
		return err
	}
	c.logf("cluster: etcd up (%v)", time.Since(t0).Round(time.Millisecond))
	apiserver, err := c.startProc("kube-apiserver", c.bins.APIServer,
		"--bind-address="+APIServerHost,
		"--secure-port="+APIServerPort,
		"--advertise-address="+c.NodeIP,
		"--etcd-servers="+etcdClient,
		"--tls-cert-file="+c.pki("apiserver.crt"),
		"--tls-private-key-file="+c.pki("apiserver.key"),
		"--client-ca-file="+c.pki("ca.crt"),
		"--kubelet-client-certificate="+c.pki("apiserver-kubelet-client.crt"),
		"--kubelet-client-key="+c.pki("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority="+c.pki("ca.crt"),
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+c.pki("sa.pub"),
		"--service-account-signing-key-file="+c.pki("sa.key"),
		"--service-cluster-ip-range="+ServiceCIDR,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--profiling=false",
		"--cert-dir="+filepath.Join(c.Dir, "apiserver-certs"),
		// The aggregation layer: the API server proxies metrics.k8s.io to
		// metrics-server with the front-proxy client certificate and the
		// caller in request headers, which metrics-server believes because
		// the certificate chains to the front-proxy CA and names
		// front-proxy-client (it reads both from the configmap
		// kube-system/extension-apiserver-authentication).
		"--requestheader-client-ca-file="+c.pki("front-proxy-ca.crt"),
		"--requestheader-allowed-names="+FrontProxyClientCN,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+c.pki("front-proxy-client.crt"),
		"--proxy-client-key-file="+c.pki("front-proxy-client.key"),
	)
	if err != nil {
		return err
	}
	tlsCfg, err := c.adminTLS()
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, apiserver, "https://"+APIServerHost+":"+APIServerPort+"/readyz", tlsCfg, 3*time.Minute); err != nil {
		return err
	}
	c.logf("cluster: kube-apiserver ready (%v)", time.Since(t0).Round(time.Millisecond))
	kc := func(name string) string { return filepath.Join(c.Dir, name+".kubeconfig") }
	if _, err := c.startProc("kube-controller-manager", c.bins.ControllerManager,
		"--kubeconfig="+kc("controller-manager"),
		"--authentication-kubeconfig="+kc("controller-manager"),
		"--authorization-kubeconfig="+kc("controller-manager"),
		"--bind-address=127.0.0.1",
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+c.pki("sa.key"),
		"--root-ca-file="+c.pki("ca.crt"),
		"--cluster-signing-cert-file="+c.pki("ca.crt"),
		"--cluster-signing-key-file="+c.pki("ca.key"),
		"--allocate-node-cidrs=false",
		"--service-cluster-ip-range="+ServiceCIDR,
		"--profiling=false",
	); err != nil {
		return err
	}
	if _, err := c.startProc("kube-scheduler", c.bins.Scheduler,
		"--kubeconfig="+kc("scheduler"),
		"--authentication-kubeconfig="+kc("scheduler"),
		"--authorization-kubeconfig="+kc("scheduler"),
		"--bind-address=127.0.0.1",
		"--leader-elect=false",
		"--profiling=false",
	); err != nil {
		return err
	}
	return nil
}

func (c *Cluster) startKubelet() error {
	_, err := c.startProc("kubelet", c.bins.Kubelet,
		"--config="+filepath.Join(c.Dir, "kubelet.yaml"),
		"--kubeconfig="+filepath.Join(c.Dir, "kubelet.kubeconfig"),
		"--root-dir="+filepath.Join(c.Dir, "kubelet"),
		"--cert-dir="+filepath.Join(c.Dir, "kubelet-certs"),
		"--hostname-override="+c.NodeName,
		"--node-ip="+c.NodeIP,
		"--v=2",
	)
	return err
}

// adminTLS is a client TLS config with the admin certificate.
func (c *Cluster) adminTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.pki("admin.crt"), c.pki("admin.key"))
	if err != nil {
		return nil, fmt.Errorf("load admin certificate: %w", err)
	}
	caPEM, err := os.ReadFile(c.pki("ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// waitHTTP polls url until it answers 200, p exits, or timeout passes.
func waitHTTP(ctx context.Context, p *proc, url string, tlsCfg *tls.Config, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if err := p.exited(); err != nil {
			return fmt.Errorf("%w; log:\n%s", err, p.logTail(30))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not healthy at %s after %v (last: %s); log:\n%s", p.name, url, timeout, last, p.logTail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady waits for the node to be Ready and the default service
// account to exist (pods cannot be created before).
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ReadyTimeout)
	defer cancel()
	for {
		if err := c.Check(); err != nil {
			return err
		}
		n, err := c.Node(ctx, c.NodeName)
		ready := err == nil && NodeReady(n)
		if ready {
			if _, err := c.Kubectl(ctx, "get", "serviceaccount", "default", "-n", "default", "-o", "name"); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s not Ready within %v (last error: %v); kubelet log:\n%s",
				c.NodeName, c.opts.ReadyTimeout, err, fileTail(filepath.Join(c.Dir, "logs", "kubelet.log"), 40))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Check reports any component of the cluster that has exited.
func (c *Cluster) Check() error {
	c.procsMu.Lock()
	defer c.procsMu.Unlock()
	var errs []error
	for _, p := range c.procs {
		if err := p.exited(); err != nil {
			errs = append(errs, fmt.Errorf("%w; log:\n%s", err, p.logTail(20)))
		}
	}
	return errors.Join(errs...)
}

// LogPath is the log file of a component ("kubelet", "kube-apiserver",
// "kube-controller-manager", "kube-scheduler", "etcd").
func (c *Cluster) LogPath(component string) string {
	return filepath.Join(c.Dir, "logs", component+".log")
}

// LogTail returns the last n lines of a component's log.
func (c *Cluster) LogTail(component string, n int) string { return fileTail(c.LogPath(component), n) }

// Close stops the kubelet, then the control plane, then tears the
// harness down (pods, containerd, mounts, cgroups, the bridge, folders),
// removes what the kubelet wrote outside its folders, restores the kernel
// settings it changed, and checks that nothing is left.
func (c *Cluster) Close() error {
	var errs []error
	c.procsMu.Lock()
	procs := append([]*proc(nil), c.procs...)
	c.procsMu.Unlock()
	// The kubelet first, so it restarts no pod the harness removes.
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(15 * time.Second)
	}
	if c.Env != nil {
		if err := c.Env.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.host != nil {
		if err := c.host.restore(); err != nil {
			errs = append(errs, err)
		} else if err := os.Remove(HostStateFile); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", HostStateFile, err))
		}
	}
	if err := portsFree(); err != nil {
		errs = append(errs, fmt.Errorf("after teardown: %w", err))
	}
	if left := c.Leftovers(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("cluster left: %s", strings.Join(left, "; ")))
	}
	if c.unlock != nil {
		c.unlock()
		c.unlock = nil
	}
	return errors.Join(errs...)
}

// portsFree checks that no other cluster (or anything else) holds the
// cluster's fixed ports.
func portsFree() error {
	var busy []string
	for _, a := range []string{APIServerHost + ":" + APIServerPort, "127.0.0.1:2379", "127.0.0.1:2380",
		fmt.Sprintf(":%d", kubeletPort), "127.0.0.1:10248", "127.0.0.1:10257", "127.0.0.1:10259"} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			busy = append(busy, a)
			continue
		}
		l.Close()
	}
	if len(busy) > 0 {
		return fmt.Errorf("ports in use: %s (is a cluster already running? `go run ./e2e/cluster status`)", strings.Join(busy, ", "))
	}
	return nil
}

func nodeName() (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("hostname: %w", err)
	}
	return strings.ToLower(h), nil
}

// PrimaryIP is the host's primary non-loopback IPv4 address: the source
// address of its default route (the kubelet refuses a loopback node IP).
func PrimaryIP() (string, error) {
	// A UDP "connection" sends nothing; it only picks the route's source.
	conn, err := net.Dial("udp4", "192.0.2.255:9")
	if err == nil {
		ip := conn.LocalAddr().(*net.UDPAddr).IP
		conn.Close()
		if !ip.IsLoopback() && !ip.IsUnspecified() {
			return ip.String(), nil
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("list interfaces: %w", err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.String(), nil
			}
		}
	}
	return "", errors.New("no non-loopback IPv4 address on this host (the kubelet needs one as the node IP)")
}

// State is what a running cluster publishes for other programs (the
// e2e/cluster command's status and env, tests reusing it).
type State struct {
	HarnessID  string `json:"harnessID"`
	Pid        int    `json:"pid"` // the process that runs the cluster
	Kubeconfig string `json:"kubeconfig"`
	Kubectl    string `json:"kubectl"`
	Helm       string `json:"helm"`
	HelmHome   string `json:"helmHome"`
	Socket     string `json:"containerdSocket"`
	Ctr        string `json:"ctr"`
	Crictl     string `json:"crictl"`
	NodeName   string `json:"nodeName"`
	NodeIP     string `json:"nodeIP"`
	Root       string `json:"root"`
	Dir        string `json:"dir"`
	ToolsDir   string `json:"toolsDir"`
	// The node's containerd, as moat-node sees it.
	ContainerdConfig  string `json:"containerdConfig"`
	ContainerdConfDir string `json:"containerdConfDir"`
	ContainerdPidFile string `json:"containerdPidFile"`
	// MoatPrefix is where moat-node installs the shim (on containerd's PATH).
	MoatPrefix string `json:"moatPrefix"`
	// MoatValues is a values file for charts/moat on this cluster.
	MoatValues string `json:"moatValues"`
}

// State describes c.
func (c *Cluster) State() State {
	return State{
		HarnessID: c.Env.ID, Pid: os.Getpid(), Kubeconfig: c.Kubeconfig, Kubectl: c.KubectlBin,
		Helm: c.HelmBin, HelmHome: c.HelmHome, Socket: c.Env.Socket, Ctr: c.Env.Tools.Ctr,
		Crictl: c.Env.Tools.Crictl, NodeName: c.NodeName, NodeIP: c.NodeIP, Root: c.Env.Root,
		Dir: c.Dir, ToolsDir: c.opts.ToolsDir,
		ContainerdConfig: c.Env.ConfigPath, ContainerdConfDir: c.Env.ConfDir, ContainerdPidFile: c.Env.PidFile,
		MoatPrefix: c.MoatPrefixPath(), MoatValues: filepath.Join(c.Dir, "moat-values.yaml"),
	}
}

// StateFile is where the e2e/cluster command publishes its cluster.
const StateFile = "/run/moat-cluster/cluster.json"

// ReadState reads StateFile; ok is false when no cluster is published or
// the process running it is gone.
func ReadState() (s State, ok bool, err error) {
	b, err := os.ReadFile(StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("read %s: %w", StateFile, err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, false, fmt.Errorf("decode %s: %w", StateFile, err)
	}
	return s, s.Pid > 0 && processAlive(s.Pid), nil
}

// Client is a Client for a published cluster.
func (s State) Client() *Client {
	return &Client{Kubeconfig: s.Kubeconfig, KubectlBin: s.Kubectl, HelmBin: s.Helm, HelmHome: s.HelmHome}
}

// Leftovers lists what of the cluster is still on the machine after
// Close: the harness's leftovers and the host state not restored.
func (c *Cluster) Leftovers() []string {
	var left []string
	if c.Env != nil {
		left = harness.Leftovers(c.Env.ID)
	}
	if c.host != nil {
		left = append(left, c.host.leftovers()...)
	}
	return left
}

// ForceCleanup tears down a published cluster whose process died: the
// harness's processes, mounts, cgroups, bridge and folders, and the host
// state its kubelet changed.
func ForceCleanup(s State) error {
	var errs []error
	if err := harness.Teardown(s.HarnessID); err != nil {
		errs = append(errs, err)
	}
	// The host state file is the dead cluster's only if no other cluster
	// runs (holds the lock); one that started since has put it back.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	release, err := Lock(ctx, ClusterLock, func(string, ...any) {})
	cancel()
	if err == nil {
		if err := restoreDeadCluster(func(string, ...any) {}); err != nil {
			errs = append(errs, fmt.Errorf("host state not restored: %w", err))
		}
		release()
	}
	return errors.Join(errs...)
}
