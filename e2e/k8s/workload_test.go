package k8s

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	corev1 "k8s.io/api/core/v1"

	"moat.dev/moat/e2e/harness"
	"moat.dev/moat/e2e/kube"
)

// Scenario 2: a user's day with a moat pod, each step as typed: `kubectl
// run` → Running, `kubectl logs`, `kubectl exec` (plain, with stdin, and
// -it on a terminal), `kubectl attach`, `kubectl port-forward` to a server
// in the pod, and `kubectl delete` honouring the grace period.
func TestKubectlRunLogsExec(t *testing.T) {
	requireMoat(t)
	ctx := testCtx(t, 6*time.Minute)
	ns := namespace(t, ctx)

	// kubectl run, as the README shows it.
	script := `echo started; echo to-stderr >&2; trap 'echo got TERM; exit 42' TERM; while :; do sleep 1; done`
	kubectl(t, ctx, "run", "shell", "-n", ns, "--image="+busybox, "--image-pull-policy=Never", "--restart=Never",
		`--overrides={"spec":{"runtimeClassName":"moat","terminationGracePeriodSeconds":30}}`,
		"--", "sh", "-c", script)
	p, err := kc.WaitPodReady(ctx, ns, "shell")
	if err != nil {
		t.Fatalf("%v\n%s", err, kc.Describe(ctx, "pod", ns, "shell"))
	}
	if rc := p.Spec.RuntimeClassName; rc == nil || *rc != "moat" {
		t.Fatalf("pod's runtimeClassName = %v, want moat", rc)
	}
	if p.Status.Phase != corev1.PodRunning {
		t.Fatalf("pod not Running: %s", kube.PodSummary(p))
	}

	t.Run("logs", func(t *testing.T) {
		var logs string
		err := kube.Poll(ctx, "kubectl logs shell", 200*time.Millisecond, func() (bool, error) {
			var err error
			logs, err = kc.Logs(ctx, ns, "shell", "")
			return strings.Contains(logs, "to-stderr"), err
		})
		if err != nil {
			t.Fatal(err)
		}
		if logs != "started\nto-stderr\n" {
			t.Errorf("kubectl logs: %q, want %q", logs, "started\nto-stderr\n")
		}
	})

	t.Run("exec", func(t *testing.T) {
		out, err := kc.Exec(ctx, ns, "shell", "sh", "-c", "echo out; echo err >&2; exit 3")
		var ce *kube.CommandError
		if !errors.As(err, &ce) {
			t.Fatalf("kubectl exec of a command exiting 3: err %v, want an exit status", err)
		}
		if ce.ExitCode() != 3 {
			t.Errorf("kubectl exec exit status %d, want 3 (the command's): %v", ce.ExitCode(), err)
		}
		if out != "out\n" || !strings.Contains(ce.Stderr, "err\n") {
			t.Errorf("kubectl exec: stdout %q (want \"out\\n\"), stderr %q (want err)", out, ce.Stderr)
		}
		// The exec runs in the pod: same hostname, sees pid 1's script.
		host, err := kc.Exec(ctx, ns, "shell", "hostname")
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(host) != "shell" {
			t.Errorf("hostname in the pod: %q, want shell", host)
		}
	})

	t.Run("exec-stdin", func(t *testing.T) {
		in := "line one\nline two\n"
		out, err := kc.KubectlStdin(ctx, in, "exec", "-i", "shell", "-n", ns, "--", "sh", "-c", "wc -l; echo done")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Fields(out)[0] != "2" || !strings.HasSuffix(out, "done\n") {
			t.Errorf("kubectl exec -i ... wc -l of two lines: %q", out)
		}
	})

	t.Run("exec-tty", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := kc.KubectlCommand(ctx, "exec", "-it", "shell", "-n", ns, "--", "sh")
		f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 37, Cols: 101})
		if err != nil {
			t.Fatalf("%s on a pty: %v", kube.CommandLine(cmd), err)
		}
		defer f.Close()
		var mu sync.Mutex
		var screen bytes.Buffer
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := f.Read(buf)
				mu.Lock()
				screen.Write(buf[:n])
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
		seen := func(s string) bool {
			mu.Lock()
			defer mu.Unlock()
			return strings.Contains(screen.String(), s)
		}
		// The arithmetic is typed, so only the shell's answer matches.
		if _, err := io.WriteString(f, "[ -t 0 ] && echo IS-A-$((6*7))-TTY; stty size\n"); err != nil {
			t.Fatal(err)
		}
		if err := kube.Poll(ctx, "the shell's answer on the pty", 100*time.Millisecond, func() (bool, error) {
			return seen("IS-A-42-TTY"), nil
		}); err != nil {
			mu.Lock()
			t.Fatalf("%v; screen: %q", err, screen.String())
		}
		if err := kube.Poll(ctx, "stty size on the pty", 100*time.Millisecond, func() (bool, error) {
			return seen("37 101"), nil
		}); err != nil {
			mu.Lock()
			t.Errorf("the terminal's size did not reach the pod: %v; screen: %q", err, screen.String())
			mu.Unlock()
		}
		io.WriteString(f, "exit 5\n")
		err = cmd.Wait()
		var xe interface{ ExitCode() int }
		if !errors.As(err, &xe) || xe.ExitCode() != 5 {
			t.Errorf("kubectl exec -it ... exit 5: %v, want exit status 5", err)
		}
	})

	t.Run("attach", func(t *testing.T) {
		apply(t, ctx, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: reader
  namespace: %s
spec:
  runtimeClassName: moat
  restartPolicy: Never
  terminationGracePeriodSeconds: 5
  containers:
  - name: main
    image: %s
    imagePullPolicy: Never
    stdin: true
    stdinOnce: true
    command: ["sh", "-c", "read a; read b; echo \"got: $b $a\"; exit 7"]
`, ns, busybox))
		if _, err := kc.WaitPodPhase(ctx, ns, "reader", corev1.PodRunning); err != nil {
			t.Fatal(err)
		}
		out, err := kc.KubectlStdin(ctx, "world\nhello\n", "attach", "-i", "reader", "-n", ns, "-c", "main")
		// kubectl attach exits with the container's status.
		var ce *kube.CommandError
		if err != nil && !errors.As(err, &ce) {
			t.Fatal(err)
		}
		if !strings.Contains(out, "got: hello world") {
			t.Errorf("kubectl attach -i: stdout %q, err %v", out, err)
		}
		p, err := kc.WaitPod(ctx, ns, "reader", "terminated", func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
		})
		if err != nil {
			t.Fatal(err)
		}
		if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 7 {
			t.Errorf("after attach: %s, want main terminated with exit 7", kube.PodSummary(p))
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		apply(t, ctx, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: %s
spec:
  runtimeClassName: moat
  terminationGracePeriodSeconds: 5
  containers:
  - name: web
    image: %s
    imagePullPolicy: Never
    command: ["/httpserver", "-addr", ":8080"]
    ports:
    - containerPort: 8080
`, ns, httpserver))
		if _, err := kc.WaitPodReady(ctx, ns, "web"); err != nil {
			t.Fatal(err)
		}
		// Ready (no probe) says the container started, not that the
		// server listens yet: its log line says that.
		if err := kube.Poll(ctx, "web's \"listening on\" log line", 200*time.Millisecond, func() (bool, error) {
			out, err := kc.Logs(ctx, ns, "web", "web")
			return err == nil && strings.Contains(out, "listening on"), nil
		}); err != nil {
			t.Fatalf("%v; %s", err, kc.Describe(ctx, "pod", ns, "web"))
		}
		body, err := portForwardGet(ctx, ns, "pod/web", 8080, "/hello")
		if err != nil {
			// A server that died (restarts, a termination) is another
			// failure than one that never listened where it was reached.
			logs, _ := kc.Logs(ctx, ns, "web", "web")
			t.Fatalf("%v; web's log: %q; %s", err, logs, kc.Describe(ctx, "pod", ns, "web"))
		}
		if body != harness.HTTPServerGreeting+"\n" {
			t.Errorf("GET /hello through kubectl port-forward: %q, want %q", body, harness.HTTPServerGreeting+"\n")
		}
	})

	// Last: the pod is deleted. Its SIGTERM handler runs (exit 42).
	t.Run("delete-grace", func(t *testing.T) {
		final := watchFinalStatus(t, ctx, ns, "shell")
		t0 := time.Now()
		kubectl(t, ctx, "delete", "pod", "shell", "-n", ns, "--wait=true")
		t.Logf("kubectl delete pod shell (SIGTERM handler) took %v", time.Since(t0).Round(time.Millisecond))
		st := final()
		if st == nil || st.State.Terminated == nil {
			t.Fatalf("no terminated status of container shell seen before the pod was gone: %+v", st)
		}
		if code := st.State.Terminated.ExitCode; code != 42 {
			t.Errorf("deleted pod's container exit code %d, want 42 from its SIGTERM handler (%s)", code, st.State.Terminated.Reason)
		}
	})
}

// A process that ignores SIGTERM is killed once terminationGracePeriodSeconds
// have passed, not before.
func TestDeleteStubbornPod(t *testing.T) {
	requireMoat(t)
	ctx := testCtx(t, 4*time.Minute)
	ns := namespace(t, ctx)
	const grace = 4
	apply(t, ctx, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: stubborn
  namespace: %s
spec:
  runtimeClassName: moat
  restartPolicy: Never
  terminationGracePeriodSeconds: %d
  containers:
  - name: main
    image: %s
    imagePullPolicy: Never
    command: ["sh", "-c", "trap 'echo ignoring TERM' TERM; echo up; while :; do sleep 1; done"]
`, ns, grace, busybox))
	if _, err := kc.WaitPodReady(ctx, ns, "stubborn"); err != nil {
		t.Fatal(err)
	}
	final := watchFinalStatus(t, ctx, ns, "stubborn")
	t0 := time.Now()
	kubectl(t, ctx, "delete", "pod", "stubborn", "-n", ns, "--wait=true")
	took := time.Since(t0)
	t.Logf("kubectl delete pod stubborn (grace %ds) took %v", grace, took.Round(time.Millisecond))
	st := final()
	if st == nil || st.State.Terminated == nil {
		t.Fatalf("no terminated status of container main seen before the pod was gone: %+v", st)
	}
	if code := st.State.Terminated.ExitCode; code != 137 {
		t.Errorf("stubborn container's exit code %d, want 137 (SIGKILL after the grace period)", code)
	}
	// Killed no earlier than the grace period allows (a correctness
	// bound, not a speed: the kill must wait).
	if took < grace*time.Second-500*time.Millisecond {
		t.Errorf("the stubborn pod was gone %v after kubectl delete, before its %ds grace period", took, grace)
	}
}

// watchFinalStatus watches a pod (`kubectl get pod -w -o json`) and returns
// a function that, once the pod is deleted, gives the last status of its
// first container seen (the kubelet reports the terminated state before
// the pod object goes).
func watchFinalStatus(t *testing.T, ctx context.Context, ns, name string) func() *corev1.ContainerStatus {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	cmd := kc.KubectlCommand(wctx, "get", "pod", name, "-n", ns, "-w", "-o", "json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", kube.CommandLine(cmd), err)
	}
	var mu sync.Mutex
	var last *corev1.ContainerStatus
	first := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		dec := json.NewDecoder(out)
		once := sync.Once{}
		for {
			var p corev1.Pod
			if err := dec.Decode(&p); err != nil {
				return
			}
			once.Do(func() { close(first) })
			if len(p.Status.ContainerStatuses) > 0 {
				mu.Lock()
				cs := p.Status.ContainerStatuses[0]
				last = &cs
				mu.Unlock()
			}
		}
	}()
	// The watch has its first object before the test deletes the pod.
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s printed nothing in 30s", kube.CommandLine(cmd))
	}
	return func() *corev1.ContainerStatus {
		// The watch may see the final update a moment after delete returns.
		time.Sleep(time.Second)
		cancel()
		cmd.Wait()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

var forwardingRE = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) ->`)

// portForwardGet runs `kubectl port-forward TARGET :PORT`, GETs path
// through the local port it chose and stops it.
func portForwardGet(ctx context.Context, ns, target string, port int, path string) (string, error) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := kc.KubectlCommand(pctx, "port-forward", "-n", ns, target, fmt.Sprintf(":%d", port), "--address", "127.0.0.1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("%s: %w", kube.CommandLine(cmd), err)
	}
	defer func() { cancel(); cmd.Wait() }()
	local := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := forwardingRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case local <- m[1]:
				default:
				}
			}
		}
		close(local)
	}()
	var lport string
	select {
	case lport = <-local:
	case <-time.After(30 * time.Second):
	}
	if lport == "" {
		return "", fmt.Errorf("%s printed no forwarding port; stderr: %s", kube.CommandLine(cmd), stderr.String())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+lport+path, nil)
	if err != nil {
		return "", err
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s through %s: %w; its stderr: %s", path, kube.CommandLine(cmd), err, stderr.String())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s through port-forward: %s", path, resp.Status)
	}
	return string(b), nil
}
