// Package k8s holds moat's scenarios on a real single-node Kubernetes
// cluster (e2e/kube): helm and kubectl run exactly as a user types them.
// TestMain brings the cluster up once (or uses the one `e2e/cluster/up.sh`
// published), runs the scenarios, tears it down and checks that nothing
// is left. See e2e/cluster/README.md.
package k8s

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat.dev/moat/e2e/harness"
	"moat.dev/moat/e2e/kube"
)

var (
	// kc drives the cluster; st describes it.
	kc *kube.Client
	st kube.State
	// cluster is nil when the tests use a published cluster.
	cluster *kube.Cluster
	// ctdConfigBefore and ctdConfDirBefore are containerd's main config
	// and its drop-in folder's listing before any test ran: after helm
	// uninstall they must be so again.
	ctdConfigBefore  []byte
	ctdConfDirBefore []string
	// repoRoot holds charts/moat.
	repoRoot string
)

func logf(f string, a ...any) {
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+"k8s: "+f+"\n", a...)
	}
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8s:", err)
		return 1
	}
	repoRoot = filepath.Join(wd, "..", "..")
	// One test process at a time drives a cluster on this machine.
	lockCtx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	release, err := kube.Lock(lockCtx, kube.TestsLock, func(f string, a ...any) { fmt.Fprintf(os.Stderr, "k8s: "+f+"\n", a...) })
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8s:", err)
		return 1
	}
	defer release()
	if s, alive, err := kube.ReadState(); err == nil && alive {
		logf("using the published cluster (pid %d, %s)", s.Pid, kube.StateFile)
		st, kc = s, s.Client()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		cluster, err = kube.Start(ctx, kube.Options{Logf: logf})
		cancel()
		if err != nil {
			if harness.IsMissingTools(err) && !harness.Required() {
				fmt.Fprintf(os.Stderr, "k8s: skipping the Kubernetes scenarios (set %s=1 to make this a failure): %v\n", harness.RequireE2E, err)
				return 0
			}
			fmt.Fprintln(os.Stderr, "k8s: start cluster:", err)
			return 1
		}
		st, kc = cluster.State(), cluster.Client
	}
	if cluster == nil {
		// A published cluster may have moat installed by hand: start from
		// a node without it, as a fresh one is.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if installed(ctx) {
			logf("uninstalling the moat release found on the published cluster")
			err = uninstallMoat(ctx)
		}
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "k8s: helm uninstall moat:", err)
			return 1
		}
	}
	if ctdConfigBefore, err = os.ReadFile(st.ContainerdConfig); err == nil {
		ctdConfDirBefore, err = listDir(st.ContainerdConfDir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8s:", err)
		return 1
	}
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if installed(ctx) {
		// The cluster goes on (published) or is torn down: either way
		// moat leaves the node as it found it.
		if err := uninstallMoat(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "k8s: helm uninstall moat at the end:", err)
			code = 1
		}
	}
	if cluster != nil {
		if code != 0 {
			for _, c := range []string{"kubelet", "kube-apiserver"} {
				fmt.Fprintf(os.Stderr, "k8s: %s log (last lines):\n%s\n", c, cluster.LogTail(c, 30))
			}
			fmt.Fprintf(os.Stderr, "k8s: containerd log (last lines):\n%s\n", cluster.Env.ContainerdLogTail(30))
		}
		if err := cluster.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "k8s: cluster teardown:", err)
			code = 1
		} else {
			logf("cluster torn down; nothing left")
		}
	}
	return code
}

func listDir(d string) ([]string, error) {
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", d, err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, nil
}

// testCtx is a context bounded for one scenario.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// kubectl runs kubectl or fails the test.
func kubectl(t testing.TB, ctx context.Context, args ...string) string {
	t.Helper()
	out, err := kc.Kubectl(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// apply applies a manifest and deletes it when the test ends.
func apply(t testing.TB, ctx context.Context, manifest string) {
	t.Helper()
	if err := kc.Apply(ctx, manifest); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := kc.Delete(ctx, manifest); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// namespace creates a namespace for one test, deleted when it ends.
func namespace(t testing.TB, ctx context.Context) string {
	t.Helper()
	ns := "t-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(ns) > 63 {
		ns = strings.TrimRight(ns[:63], "-")
	}
	apply(t, ctx, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n")
	// Pods cannot be created before the namespace's service account exists.
	if err := kube.Poll(ctx, "service account default in "+ns, 100*time.Millisecond, func() (bool, error) {
		_, err := kc.Kubectl(ctx, "get", "serviceaccount", "default", "-n", ns, "-o", "name")
		return err == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	return ns
}
