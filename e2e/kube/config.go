package kube

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// writeConfig generates the cluster's certificates and writes the
// kubeconfigs and the kubelet's configuration.
func (c *Cluster) writeConfig() error {
	dir := filepath.Join(c.Dir, "pki")
	ca, err := newAuthority("moat-e2e-ca")
	if err != nil {
		return err
	}
	if err := ca.write(dir, "ca"); err != nil {
		return err
	}
	if err := writeFrontProxy(dir); err != nil {
		return err
	}
	nodeIP := net.ParseIP(c.NodeIP)
	loop := net.ParseIP("127.0.0.1")
	for _, r := range []certRequest{
		{name: "apiserver", cn: "kube-apiserver", server: true,
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", c.NodeName},
			ips: []net.IP{loop, net.ParseIP(serviceIP), nodeIP}},
		{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, client: true},
		{name: "admin", cn: "kubernetes-admin", orgs: []string{"system:masters"}, client: true},
		{name: "controller-manager", cn: "system:kube-controller-manager", client: true},
		{name: "scheduler", cn: "system:kube-scheduler", client: true},
		{name: "kubelet-client", cn: "system:node:" + c.NodeName, orgs: []string{"system:nodes"}, client: true},
		// The API server reaches the kubelet at the node IP (logs, exec,
		// port-forward) and checks this certificate against the CA.
		{name: "kubelet", cn: c.NodeName, server: true, dns: []string{c.NodeName, "localhost"}, ips: []net.IP{loop, nodeIP}},
	} {
		if err := ca.issue(dir, r); err != nil {
			return err
		}
	}
	if err := writeServiceAccountKey(dir); err != nil {
		return err
	}
	for _, k := range []struct{ file, cert string }{
		{"admin", "admin"}, {"controller-manager", "controller-manager"},
		{"scheduler", "scheduler"}, {"kubelet", "kubelet-client"},
	} {
		if err := c.writeKubeconfig(filepath.Join(c.Dir, k.file+".kubeconfig"), k.cert, ca.certPEM); err != nil {
			return err
		}
	}
	return c.writeKubeletConfig()
}

// FrontProxyClientCN is the name of the front-proxy client certificate:
// the API server's --requestheader-allowed-names, so an extension API
// server believes request headers only from a connection with it.
const FrontProxyClientCN = "front-proxy-client"

// writeFrontProxy makes the aggregation layer's certificates, as kubeadm
// does: front-proxy-ca.crt/.key, a CA of its own, and front-proxy-client
// .crt/.key (CN front-proxy-client) signed by it, which the API server
// presents when it proxies a request to an extension API server.
func writeFrontProxy(dir string) error {
	ca, err := newAuthority("moat-e2e-front-proxy-ca")
	if err != nil {
		return err
	}
	if err := ca.write(dir, "front-proxy-ca"); err != nil {
		return err
	}
	return ca.issue(dir, certRequest{name: "front-proxy-client", cn: FrontProxyClientCN, client: true})
}

// writeKubeconfig writes a kubeconfig for the API server on 127.0.0.1
// with the client certificate pki/<cert>.crt.
func (c *Cluster) writeKubeconfig(path, cert string, caPEM []byte) error {
	s := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: moat-e2e
  cluster:
    server: https://%s:%s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: moat-e2e
  context:
    cluster: moat-e2e
    user: %s
    namespace: default
current-context: moat-e2e
`, APIServerHost, APIServerPort, base64.StdEncoding.EncodeToString(caPEM), cert,
		c.pki(cert+".crt"), c.pki(cert+".key"), cert)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// writeKubeletConfig writes the KubeletConfiguration. Facts of these
// machines drive it: cgroup v1 without systemd (cgroupfs, failCgroupV1
// false), no CAP_SYS_RESOURCE outside pid 1 (oomScoreAdj 0, as containerd's
// restrict_oom_score_adj), and a disk shared with other work (image GC and
// eviction thresholds that never remove the imported test images).
func (c *Cluster) writeKubeletConfig() error {
	q := strconv.Quote
	lines := []string{
		"apiVersion: kubelet.config.k8s.io/v1beta1",
		"kind: KubeletConfiguration",
		"address: " + q(c.NodeIP),
		"port: " + strconv.Itoa(kubeletPort),
		"readOnlyPort: 0",
		"healthzBindAddress: 127.0.0.1",
		"healthzPort: 10248",
		"tlsCertFile: " + q(c.pki("kubelet.crt")),
		"tlsPrivateKeyFile: " + q(c.pki("kubelet.key")),
		"authentication:",
		"  anonymous: {enabled: false}",
		"  webhook: {enabled: true}",
		"  x509: {clientCAFile: " + q(c.pki("ca.crt")) + "}",
		"authorization: {mode: Webhook}",
		"containerRuntimeEndpoint: " + q("unix://"+c.Env.Socket),
		"imageServiceEndpoint: " + q("unix://"+c.Env.Socket),
		"cgroupDriver: cgroupfs",
		"cgroupRoot: " + q(c.Env.CgroupParent),
		"failCgroupV1: false",
		"oomScoreAdj: 0",
		"failSwapOn: false",
		"podLogsDir: " + q(filepath.Join(c.Dir, "pod-logs")),
		"resolvConf: " + q(c.resolvConf()),
		"imageGCHighThresholdPercent: 100",
		"imageGCLowThresholdPercent: 99",
		"evictionHard: {memory.available: 50Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}",
		"syncFrequency: 10s",
		"fileCheckFrequency: 10s",
		"nodeStatusUpdateFrequency: 5s",
		"serializeImagePulls: false",
		"maxPods: 110",
		"shutdownGracePeriod: 0s",
		"protectKernelDefaults: false",
		"registerNode: true",
	}
	p := filepath.Join(c.Dir, "kubelet.yaml")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// resolvConf is a resolv.conf for pods: the host's, unless it names a
// loopback resolver (pods have their own loopback), then an empty one.
func (c *Cluster) resolvConf() string {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err == nil && !strings.Contains(string(b), "nameserver 127.") {
		return "/etc/resolv.conf"
	}
	p := filepath.Join(c.Dir, "resolv.conf")
	_ = os.WriteFile(p, []byte("# no DNS in the moat e2e cluster\n"), 0o644)
	return p
}

// writeMoatValues writes the values of charts/moat for this cluster
// (State.MoatValues): the locally built image, never pulled; the host
// network and the API server on 127.0.0.1 (no kube-proxy); the node's
// containerd paths; restart by signal to the harness's supervised
// containerd, found by its pid file.
func (c *Cluster) writeMoatValues() error {
	repo, tag, _ := strings.Cut(MoatNodeImage, ":")
	q := strconv.Quote
	s := strings.Join([]string{
		"# charts/moat on the moat e2e cluster: helm install moat charts/moat -f THIS",
		"image:",
		"  repository: " + q(repo),
		"  tag: " + q(tag),
		"  pullPolicy: Never",
		"hostNetwork: true",
		"apiServer:",
		"  host: " + q(APIServerHost),
		"  port: " + q(APIServerPort),
		"install:",
		"  prefix: " + q(c.MoatPrefixPath()),
		"  runtimeOptionsPath: " + q(c.MoatRuntimeOptionsPath()),
		"containerd:",
		"  configPath: " + q(c.Env.ConfigPath),
		"  dropInPath: " + q(filepath.Join(c.Env.ConfDir, "moat.toml")),
		"  socket: " + q(c.Env.Socket),
		"  restart:",
		"    strategy: signal",
		"    pidFile: " + q(c.Env.PidFile),
		"    timeout: 1m",
		"agent:",
		"  resync: 30s",
		"uninstall:",
		"  timeout: 2m",
	}, "\n") + "\n"
	p := filepath.Join(c.Dir, "moat-values.yaml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}
