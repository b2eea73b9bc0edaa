// Package charts holds the tests of the moat Helm chart: lint, render with
// the real helm, decode every object strictly with client-go's scheme, and
// check what the objects say for several sets of values.
package charts

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
)

func helmPath(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MOAT_TOOLS")
	if dir == "" {
		dir = "/usr/local/lib/moat-test/bin"
	}
	p := filepath.Join(dir, "helm")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("MOAT_REQUIRE_E2E") == "1" || os.Getenv("MOAT_REQUIRE_KVM") == "1" {
			t.Fatalf("helm is missing at %s (%v): run .ci/install.d/30-helm.sh", p, err)
		}
		t.Skipf("helm is missing at %s (%v); run .ci/install.d/30-helm.sh", p, err)
	}
	return p
}

func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmPath(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	err := cmd.Run()
	if err != nil {
		return out.String(), &helmError{args, err, errb.String()}
	}
	return out.String(), nil
}

type helmError struct {
	args   []string
	err    error
	stderr string
}

func (e *helmError) Error() string {
	return "helm " + strings.Join(e.args, " ") + ": " + e.err.Error() + ": " + e.stderr
}

// decodeStrict splits a multi-document YAML stream and decodes every
// document with client-go's scheme, failing on unknown or duplicate fields.
func decodeStrict(t *testing.T, yamlText string) []runtime.Object {
	t.Helper()
	objs, err := decodeStrictErr(yamlText)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func decodeStrictErr(yamlText string) ([]runtime.Object, error) {
	dec := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var objs []runtime.Object
	for i, doc := range strings.Split(yamlText, "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		obj, _, err := dec.Decode([]byte(doc), nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d does not decode strictly: %w\n%s", i, err, doc)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// The strict decoder is what catches a typo in a template.
func TestDecodeStrictCatchesUnknownFields(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: x\nhandler: x\nhandlr: y\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  name: y\n",
		"apiVersion: example.com/v1\nkind: Nope\nmetadata:\n  name: x\n",
	} {
		if _, err := decodeStrictErr(doc); err == nil {
			t.Errorf("accepted:\n%s", doc)
		}
	}
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func render(t *testing.T, args ...string) []runtime.Object {
	t.Helper()
	out, err := helm(t, append([]string{"template", "moat", "moat", "--namespace", "moat-system"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return decodeStrict(t, out)
}

func find[T runtime.Object](objs []runtime.Object, name string) T {
	var zero T
	for _, o := range objs {
		if v, ok := o.(T); ok {
			if m, ok := any(v).(interface{ GetName() string }); ok && (name == "" || m.GetName() == name) {
				return v
			}
		}
	}
	return zero
}

func TestLint(t *testing.T) {
	if out, err := helm(t, "lint", "--strict", "moat"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

func TestDefaults(t *testing.T) {
	objs := render(t)
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[typeName(o)]++
	}
	want := map[string]int{"ServiceAccount": 2, "ConfigMap": 1, "ClusterRole": 2, "ClusterRoleBinding": 2, "Role": 2, "RoleBinding": 2, "DaemonSet": 1, "RuntimeClass": 1, "Job": 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d %s objects, want %d (all: %v)", kinds[k], k, n, kinds)
		}
	}

	rc := find[*nodev1.RuntimeClass](objs, "moat")
	if rc == nil || rc.Handler != "moat" || rc.Scheduling == nil || rc.Scheduling.NodeSelector["moat.dev/kvm"] != "true" {
		t.Fatalf("RuntimeClass: %+v", rc)
	}
	if rc.Overhead == nil {
		t.Fatal("RuntimeClass has no overhead")
	}
	slot := rc.Overhead.PodFixed["moat.dev/sandbox"]
	if slot.Value() != 1 || rc.Overhead.PodFixed.Memory().IsZero() || rc.Overhead.PodFixed.Cpu().IsZero() {
		t.Errorf("RuntimeClass overhead %v", rc.Overhead.PodFixed)
	}

	ds := find[*appsv1.DaemonSet](objs, "moat-node")
	if ds == nil {
		t.Fatal("no DaemonSet moat-node")
	}
	pod := ds.Spec.Template.Spec
	if pod.HostPID || pod.HostNetwork {
		t.Errorf("hostPID %v hostNetwork %v: the systemd strategy (D-Bus) needs neither", pod.HostPID, pod.HostNetwork)
	}
	c := pod.Containers[0]
	for _, a := range []string{"--prefix=/opt/moat/bin", "--restart=systemd", "--containerd-config=/etc/containerd/config.toml", "--handler=moat", "--sandbox-memory=40Mi"} {
		if !slices.Contains(c.Args, a) {
			t.Errorf("agent args lack %s: %v", a, c.Args)
		}
	}
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.HostPath.Path] = v.Name
		}
	}
	for _, p := range []string{"/etc/containerd", "/run/containerd", "/opt/moat/bin", "/etc/moat", "/run/systemd"} {
		if _, ok := hostPaths[p]; !ok {
			t.Errorf("no hostPath volume for %s (have %v)", p, hostPaths)
		}
	}
	if len(hostPaths) != 5 {
		t.Errorf("host paths %v: the agent should see exactly the five it needs", hostPaths)
	}
	if _, ok := hostPaths["/"]; ok {
		t.Error("the agent mounts the host's root")
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: %+v %+v", c.ReadinessProbe, c.LivenessProbe)
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("root filesystem not read-only: %+v", c.SecurityContext)
	}
	envs := map[string]bool{}
	for _, e := range c.Env {
		envs[e.Name] = true
	}
	if !envs["NODE_NAME"] || !envs["POD_NAMESPACE"] || !envs["MOAT_DAEMONSET"] {
		t.Errorf("env %v", c.Env)
	}

	// RBAC: the agent may get and patch its node, patch node status, create
	// events and get its own DaemonSet, and nothing else.
	cr := find[*rbacv1.ClusterRole](objs, "moat-node")
	var got []string
	for _, r := range cr.Rules {
		for _, res := range r.Resources {
			for _, v := range r.Verbs {
				got = append(got, res+":"+v)
			}
		}
	}
	role := find[*rbacv1.Role](objs, "moat-node")
	for _, r := range role.Rules {
		for _, res := range r.Resources {
			for _, v := range r.Verbs {
				got = append(got, res+":"+v+":"+strings.Join(r.ResourceNames, ","))
			}
		}
	}
	slices.Sort(got)
	wantRules := []string{"daemonsets:get:moat-node", "events:create:", "nodes/status:patch", "nodes:get", "nodes:patch"}
	if !slices.Equal(got, wantRules) {
		t.Errorf("agent RBAC %v, want %v", got, wantRules)
	}

	job := find[*batchv1.Job](objs, "moat-node-uninstall")
	if job == nil || job.Annotations["helm.sh/hook"] != "pre-delete" || job.Spec.Template.Spec.Containers[0].Args[0] != "request-cleanup" {
		t.Errorf("uninstall hook: %+v", job)
	}
	cm := find[*corev1.ConfigMap](objs, "moat-node")
	if cm == nil || !strings.Contains(cm.Data["runtime.toml"], "max_vcpus") {
		t.Errorf("ConfigMap: %+v", cm)
	}
}

func TestValuesVariants(t *testing.T) {
	t.Run("custom prefix", func(t *testing.T) {
		objs := render(t, "--set", "install.prefix=/usr/local/moat/bin")
		pod := find[*appsv1.DaemonSet](objs, "moat-node").Spec.Template.Spec
		if !slices.Contains(pod.Containers[0].Args, "--prefix=/usr/local/moat/bin") {
			t.Errorf("args %v", pod.Containers[0].Args)
		}
		found := false
		for _, v := range pod.Volumes {
			if v.HostPath != nil && v.HostPath.Path == "/usr/local/moat/bin" {
				found = true
			}
			if v.HostPath != nil && v.HostPath.Path == "/opt/moat/bin" {
				t.Error("default prefix still mounted")
			}
		}
		if !found {
			t.Error("custom prefix not mounted")
		}
	})
	t.Run("nodeSelector and affinity", func(t *testing.T) {
		objs := render(t, "--set", "nodeSelector.pool=sandbox",
			"--set", "runtimeClass.nodeSelector.pool=sandbox",
			"--set", "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=kvm",
			"--set", "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists")
		pod := find[*appsv1.DaemonSet](objs, "moat-node").Spec.Template.Spec
		if pod.NodeSelector["pool"] != "sandbox" || pod.NodeSelector["kubernetes.io/os"] != "linux" {
			t.Errorf("agent nodeSelector %v", pod.NodeSelector)
		}
		if pod.Affinity == nil || pod.Affinity.NodeAffinity == nil {
			t.Errorf("affinity %+v", pod.Affinity)
		}
		rc := find[*nodev1.RuntimeClass](objs, "moat")
		if rc.Scheduling.NodeSelector["pool"] != "sandbox" || rc.Scheduling.NodeSelector["moat.dev/kvm"] != "true" {
			t.Errorf("RuntimeClass nodeSelector %v", rc.Scheduling.NodeSelector)
		}
	})
	t.Run("overhead off", func(t *testing.T) {
		rc := find[*nodev1.RuntimeClass](render(t, "--set", "runtimeClass.overhead.enabled=false"), "moat")
		if rc.Overhead != nil {
			t.Errorf("overhead %v", rc.Overhead)
		}
	})
	t.Run("signal restart with pid file", func(t *testing.T) {
		objs := render(t, "--set", "containerd.restart.strategy=signal", "--set", "containerd.restart.pidFile=/var/run/containerd.pid")
		pod := find[*appsv1.DaemonSet](objs, "moat-node").Spec.Template.Spec
		if !pod.HostPID || !slices.Contains(pod.Containers[0].Args, "--containerd-pid-file=/var/run/containerd.pid") || !slices.Contains(pod.Containers[0].Args, "--restart=signal") {
			t.Errorf("hostPID %v args %v", pod.HostPID, pod.Containers[0].Args)
		}
	})
	t.Run("nsenter restart", func(t *testing.T) {
		pod := find[*appsv1.DaemonSet](render(t, "--set", "containerd.restart.strategy=nsenter"), "moat-node").Spec.Template.Spec
		if !pod.HostPID || !slices.Contains(pod.Containers[0].Args, "--restart=nsenter") {
			t.Errorf("hostPID %v args %v", pod.HostPID, pod.Containers[0].Args)
		}
		for _, v := range pod.Volumes {
			if v.HostPath != nil && v.HostPath.Path == "/run/systemd" {
				t.Error("systemd's socket mounted though the strategy does not use it")
			}
		}
	})
	t.Run("no restart, no hook, no RuntimeClass", func(t *testing.T) {
		objs := render(t, "--set", "containerd.restart.strategy=none", "--set", "uninstall.hook=false", "--set", "runtimeClass.create=false")
		if find[*appsv1.DaemonSet](objs, "moat-node").Spec.Template.Spec.HostPID {
			t.Error("hostPID without a restart strategy that needs it")
		}
		if find[*batchv1.Job](objs, "") != nil || find[*nodev1.RuntimeClass](objs, "") != nil {
			t.Error("hook or RuntimeClass rendered though turned off")
		}
	})
	t.Run("drop-in outside the config dir", func(t *testing.T) {
		pod := find[*appsv1.DaemonSet](render(t, "--set", "containerd.dropInPath=/etc/containerd-moat/moat.toml"), "moat-node").Spec.Template.Spec
		n := 0
		for _, v := range pod.Volumes {
			if v.HostPath != nil && (v.HostPath.Path == "/etc/containerd-moat" || v.HostPath.Path == "/etc/containerd") {
				n++
			}
		}
		if n != 2 {
			t.Errorf("want both config dirs mounted, volumes %+v", pod.Volumes)
		}
	})
	t.Run("host network and API server address", func(t *testing.T) {
		objs := render(t, "--set", "hostNetwork=true", "--set", "apiServer.host=127.0.0.1", "--set", "apiServer.port=6443")
		env := func(c corev1.Container) map[string]string {
			m := map[string]string{}
			for _, e := range c.Env {
				m[e.Name] = e.Value
			}
			return m
		}
		pod := find[*appsv1.DaemonSet](objs, "moat-node").Spec.Template.Spec
		job := find[*batchv1.Job](objs, "").Spec.Template.Spec
		for name, spec := range map[string]corev1.PodSpec{"agent": pod, "uninstall hook": job} {
			e := env(spec.Containers[0])
			if !spec.HostNetwork || spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet ||
				e["KUBERNETES_SERVICE_HOST"] != "127.0.0.1" || e["KUBERNETES_SERVICE_PORT"] != "6443" {
				t.Errorf("%s: hostNetwork %v dnsPolicy %q env %v", name, spec.HostNetwork, spec.DNSPolicy, e)
			}
		}
		def := find[*appsv1.DaemonSet](render(t), "moat-node").Spec.Template.Spec
		if def.HostNetwork || env(def.Containers[0])["KUBERNETES_SERVICE_HOST"] != "" {
			t.Error("host network or API server address set by default")
		}
	})
	t.Run("image digest", func(t *testing.T) {
		d := "sha256:" + strings.Repeat("ab", 32)
		pod := find[*appsv1.DaemonSet](render(t, "--set", "image.digest="+d), "moat-node").Spec.Template.Spec
		if pod.Containers[0].Image != "moat.dev/moat-node@"+d {
			t.Errorf("image %s", pod.Containers[0].Image)
		}
	})
}

// The schema turns bad values away before anything reaches a node.
func TestSchemaRejects(t *testing.T) {
	for _, set := range []string{
		"containerd.restart.strategy=reboot",
		"install.prefix=relative/bin",
		"install.prefix=/opt/moat\"evil",
		"runtimeClass.handler=Not_A_Label",
		"capacity.maxSandboxes=-1",
		"agent.cleanupOnExit=sometimes",
		"unknownKey=1",
		"containerd.dropInPath=/etc/containerd/conf.d/*.toml",
	} {
		if _, err := helm(t, "template", "moat", "moat", "--set", set); err == nil {
			t.Errorf("--set %s was accepted", set)
		}
	}
}

// manifests/moat.yaml is what `make manifests` renders now.
func TestManifestsUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "moat.yaml")
	cmd := exec.Command("./render-manifests.sh", helmPath(t), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("render-manifests.sh: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../manifests/moat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("manifests/moat.yaml is stale: run `make manifests` and commit the result")
	}
	objs := decodeStrict(t, string(got))
	if find[*corev1.Namespace](objs, "moat-system") == nil || find[*appsv1.DaemonSet](objs, "moat-node") == nil || find[*nodev1.RuntimeClass](objs, "moat") == nil {
		t.Error("manifests lack the namespace, the DaemonSet or the RuntimeClass")
	}
	if find[*batchv1.Job](objs, "") != nil {
		t.Error("manifests hold the helm-only uninstall hook")
	}
}

func typeName(o runtime.Object) string { return reflect.TypeOf(o).Elem().Name() }
