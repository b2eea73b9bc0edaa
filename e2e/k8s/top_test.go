package k8s

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"moat.dev/moat/e2e/harness"
	"moat.dev/moat/e2e/kube"
)

// metricsServerImage is metrics-server (.ci/install.d/41-metrics-server.sh)
// in a local image: no registry is reachable.
const (
	metricsServerImage = "moat.test/metrics-server:e2e"
	// metricsServerPort is its HTTPS port on the host (host network).
	metricsServerPort = 10261
)

var metricsOnce struct {
	sync.Mutex
	done bool
}

// requireMetricsServer deploys metrics-server once, the way a cluster
// without kube-proxy can reach it: host network, the kubelet scraped
// over its InternalIP (--kubelet-insecure-tls: the kubelet's certificate
// is from the cluster's own CA), and the metrics.k8s.io APIService
// pointing at an ExternalName Service "localhost", which the API server's
// aggregator resolves itself. Authentication is a real cluster's: the
// aggregator proxies with its front-proxy client certificate and the
// caller in X-Remote-User/X-Remote-Group, metrics-server trusts those
// headers by the front-proxy CA it reads from
// kube-system/extension-apiserver-authentication (the
// extension-apiserver-authentication-reader Role) and asks the API
// server whether the caller may read metrics (system:auth-delegator).
// Reading metrics.k8s.io is granted as upstream does: a ClusterRole
// aggregated into view, edit and admin; the admin is system:masters.
func requireMetricsServer(t *testing.T) {
	t.Helper()
	metricsOnce.Lock()
	defer metricsOnce.Unlock()
	if metricsOnce.done {
		return
	}
	bin := filepath.Join(st.ToolsDir, "k8s", "metrics-server")
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		if harness.Required() {
			t.Fatalf("%s is missing (run .ci/install.d/41-metrics-server.sh)", bin)
		}
		t.Skipf("%s is missing (run .ci/install.d/41-metrics-server.sh; set %s=1 to make this a failure)", bin, harness.RequireE2E)
	}
	ctx := testCtx(t, 3*time.Minute)
	archive := filepath.Join(st.Root, "images", "metrics-server.tar")
	if err := os.MkdirAll(filepath.Dir(archive), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	err = harness.WriteOCIArchive(f, harness.Image{
		Name: metricsServerImage,
		Files: []harness.File{
			{Path: "/metrics-server", HostPath: bin, Mode: 0o755},
			{Path: "/tmp", Dir: true, Mode: 0o777 | os.ModeSticky},
		},
		Entrypoint: []string{"/metrics-server"},
		User:       "65534:65534",
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("write %s: %v", archive, err)
	}
	if out, err := exec.CommandContext(ctx, st.Ctr, "--address", st.Socket, "--namespace", "k8s.io",
		"images", "import", "--platform", "linux/amd64", archive).CombinedOutput(); err != nil {
		t.Fatalf("ctr images import %s: %v: %s", archive, err, out)
	}
	if err := kc.Apply(ctx, metricsServerManifest()); err != nil {
		t.Fatal(err)
	}
	// Stays for the cluster's life (other scenarios may read metrics);
	// the cluster's teardown removes it.
	if err := kube.Poll(ctx, "the metrics.k8s.io APIService Available", time.Second, func() (bool, error) {
		out, err := kc.Kubectl(ctx, "get", "apiservice", "v1beta1.metrics.k8s.io",
			"-o", `jsonpath={.status.conditions[?(@.type=="Available")].status}`)
		return strings.TrimSpace(out) == "True", err
	}); err != nil {
		t.Fatalf("%v\n%s", err, metricsServerDiagnostics())
	}
	metricsOnce.done = true
}

func metricsServerManifest() string {
	return fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: metrics-server, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "moat-e2e:metrics-server"}
rules:
- apiGroups: [""]
  resources: [nodes/metrics]
  verbs: [get]
- apiGroups: [""]
  resources: [pods, nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "moat-e2e:metrics-server"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "moat-e2e:metrics-server"}
subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "moat-e2e:metrics-server:auth-delegator"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator"}
subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "moat-e2e:metrics-server:auth-reader", namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects: [{kind: ServiceAccount, name: metrics-server, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: "moat-e2e:aggregated-metrics-reader"
  labels:
    rbac.authorization.k8s.io/aggregate-to-view: "true"
    rbac.authorization.k8s.io/aggregate-to-edit: "true"
    rbac.authorization.k8s.io/aggregate-to-admin: "true"
rules:
- apiGroups: [metrics.k8s.io]
  resources: [pods, nodes]
  verbs: [get, list, watch]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: metrics-server, namespace: kube-system}
spec:
  replicas: 1
  selector: {matchLabels: {app: metrics-server}}
  template:
    metadata: {labels: {app: metrics-server}}
    spec:
      serviceAccountName: metrics-server
      hostNetwork: true
      terminationGracePeriodSeconds: 1
      containers:
      - name: metrics-server
        image: %s
        imagePullPolicy: Never
        args:
        - --secure-port=%d
        - --cert-dir=/tmp
        - --kubelet-insecure-tls
        - --kubelet-preferred-address-types=InternalIP
        - --kubelet-use-node-status-port
        - --metric-resolution=15s
        env:
        - {name: KUBERNETES_SERVICE_HOST, value: "127.0.0.1"}
        - {name: KUBERNETES_SERVICE_PORT, value: "6443"}
---
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec:
  type: ExternalName
  externalName: localhost
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  service: {name: metrics-server, namespace: kube-system, port: %d}
  group: metrics.k8s.io
  version: v1beta1
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
`, metricsServerImage, metricsServerPort, metricsServerPort)
}

// Scenario 2, `kubectl top pod`: the metrics API (metrics-server reading
// the kubelet's /metrics/resource, which the kubelet makes from moat's
// CRI stats) shows a busy moat pod's CPU and memory.
func TestKubectlTop(t *testing.T) {
	requireMoat(t)
	requireMetricsServer(t)
	ctx := testCtx(t, 4*time.Minute)
	ns := namespace(t, ctx)
	apply(t, ctx, podSpec{Name: "busy", Namespace: ns, RuntimeClass: "moat", Containers: []containerSpec{
		// Keeps a vCPU busy and holds ~20 MiB.
		{Name: "main", Script: "x=$(head -c 20000000 /dev/zero | tr '\\0' a); while :; do :; done"},
	}}.YAML())
	if _, err := kc.WaitPodReady(ctx, ns, "busy"); err != nil {
		t.Fatal(err)
	}
	// The first sample may be taken while the shell still builds its
	// string (or before the loop has run a whole metrics window), so the
	// samples are read until one shows both; the last one is reported.
	var (
		out      string
		cpu, mem int
		parsed   bool
	)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := kube.Poll(sctx, "kubectl top pod busy showing the busy loop and the 20 MB string", 2*time.Second, func() (bool, error) {
		var err error
		out, err = kc.Kubectl(ctx, "top", "pod", "busy", "-n", ns, "--no-headers", "--containers")
		if err != nil || strings.TrimSpace(out) == "" {
			return false, err
		}
		// POD NAME CPU(cores) MEMORY(bytes)
		f := strings.Fields(out)
		if len(f) != 4 || f[0] != "busy" || f[1] != "main" {
			return false, fmt.Errorf("kubectl top pod busy --containers: %q", out)
		}
		if _, err := fmt.Sscanf(f[2], "%dm", &cpu); err != nil {
			return false, fmt.Errorf("CPU %q of kubectl top: %v", f[2], err)
		}
		if _, err := fmt.Sscanf(f[3], "%dMi", &mem); err != nil {
			return false, fmt.Errorf("memory %q of kubectl top: %v", f[3], err)
		}
		parsed = true
		// A spinning loop shows CPU use; the 20 MB string shows in
		// memory (an idle busybox pod shows about 2 MiB).
		return cpu >= 100 && mem >= 15, nil
	})
	t.Logf("kubectl top pod busy --containers: %s", strings.TrimSpace(out))
	if err != nil {
		if !parsed {
			t.Fatalf("%v\n%s", err, metricsServerDiagnostics())
		}
		if cpu < 100 {
			t.Errorf("kubectl top: a busy loop uses %dm CPU, want at least 100m", cpu)
		}
		if mem < 15 {
			t.Errorf("kubectl top: the pod holding 20 MB (19 MiB) shows %d MiB, want at least 15", mem)
		}
		t.FailNow()
	}
	// A namespace viewer (not system:masters) reads the metrics too: the
	// aggregator passes the caller on to metrics-server, which asks the
	// API server (the view role carries metrics.k8s.io by aggregation).
	viewer := "system:serviceaccount:" + ns + ":default"
	apply(t, ctx, fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: metrics-viewer, namespace: %s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: default, namespace: %s}]
`, ns, ns))
	err = kube.Poll(ctx, "kubectl top pod busy as "+viewer, 2*time.Second, func() (bool, error) {
		var err error
		out, err = kc.Kubectl(ctx, "top", "pod", "busy", "-n", ns, "--no-headers", "--as="+viewer)
		return err == nil && strings.HasPrefix(strings.TrimSpace(out), "busy "), nil
	})
	if err != nil {
		t.Fatalf("%v: %s\n%s", err, out, metricsServerDiagnostics())
	}
}

// metricsServerDiagnostics is the APIService's status, metrics-server's
// pods and log, for failure messages (on a fresh context: the test's may
// be over).
func metricsServerDiagnostics() string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	for _, args := range [][]string{
		{"get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "jsonpath={.status.conditions}"},
		{"get", "pods", "-n", "kube-system", "-l", "app=metrics-server", "-o", "wide"},
		{"logs", "-n", "kube-system", "deploy/metrics-server", "--tail=20"},
	} {
		out, err := kc.Kubectl(ctx, args...)
		fmt.Fprintf(&b, "$ kubectl %s\n%s", strings.Join(args, " "), out)
		if err != nil {
			fmt.Fprintf(&b, "(%v)", err)
		}
		b.WriteString("\n")
	}
	return b.String()
}
