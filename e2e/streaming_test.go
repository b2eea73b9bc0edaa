package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"moat.dev/moat/e2e/harness"
)

// sleeper starts a busybox container that sleeps, for exec and friends.
func sleeper(t *testing.T, e *harness.Env, h, name string) (*harness.Pod, string) {
	pod := runPod(t, e, h, name)
	cid := start(t, pod, harness.ContainerConfig("sleeper", harness.BusyboxImage, "sleep", "3600"))
	if _, err := e.WaitState(testCtx(t), cid, runtimeapi.ContainerState_CONTAINER_RUNNING); err != nil {
		t.Fatal(err)
	}
	return pod, cid
}

// TestExec: ExecSync returns stdout, stderr and the exit code; a streamed
// exec (crictl exec -i) carries stdin; an exec with a TTY (crictl exec
// -it under a pseudo-terminal) gives the process a terminal of the
// caller's size.
func TestExec(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		_, cid := sleeper(t, e, h, "exec")

		r, err := e.CRI.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{
			ContainerId: cid, Cmd: []string{"sh", "-c", "echo $((6*7)); echo oops >&2; exit 5"}, Timeout: 30,
		})
		if err != nil {
			t.Fatalf("ExecSync: %v", err)
		}
		if string(r.Stdout) != "42\n" || string(r.Stderr) != "oops\n" || r.ExitCode != 5 {
			t.Errorf("ExecSync = stdout %q stderr %q exit %d; want %q %q 5", r.Stdout, r.Stderr, r.ExitCode, "42\n", "oops\n")
		}

		out, _, err := e.Crictl(ctx, strings.NewReader("abc\n"), "exec", "-i", cid, "sh", "-c", "read x; echo got:$x")
		if err != nil {
			t.Fatal(err)
		}
		if out != "got:abc\n" {
			t.Errorf("crictl exec -i output %q, want %q", out, "got:abc\n")
		}

		// The terminal size reaches the container's pty just after the
		// process starts (as with kubectl exec -it), so poll for it.
		script := `test -t 0 && test -t 1 && echo tty-yes; i=0; ` +
			`while [ $i -lt 100 ]; do (stty size) >/tmp/size 2>/dev/null; read r c </tmp/size; ` +
			`[ "${r:-0}" != 0 ] && break; sleep 0.05; i=$((i+1)); done; echo "size:$r $c"`
		cmd := e.CrictlCmd(ctx, "exec", "-it", cid, "sh", "-c", script)
		ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 33, Cols: 101})
		if err != nil {
			t.Fatalf("start crictl exec -it under a pty: %v", err)
		}
		var buf bytes.Buffer
		_, _ = io.Copy(&buf, ptmx) // ends with EIO when crictl exits
		ptmx.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("crictl exec -it: %v (output %q)", err, buf.String())
		}
		got := strings.ReplaceAll(buf.String(), "\r\n", "\n")
		if !strings.Contains(got, "tty-yes\n") || !strings.Contains(got, "size:33 101\n") {
			t.Errorf("crictl exec -it output %q, want tty-yes and size 33 101", got)
		}
	})
}

// TestAttach: crictl attach -i reaches the stdin of a running container's
// main process and shows its stdout, which also reaches the log.
func TestAttach(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "attach")
		c := harness.ContainerConfig("echoer", harness.BusyboxImage, "sh", "-c", `echo ready; while read l; do echo "echo:$l"; done`)
		c.Stdin = true
		cid := start(t, pod, c)
		waitLog(ctx, t, e, cid, "ready")

		actx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cmd := e.CrictlCmd(actx, "attach", "-i", cid)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start crictl attach: %v", err)
		}
		found := make(chan error, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if sc.Text() == "echo:ping" {
					found <- nil
					return
				}
			}
			found <- fmt.Errorf("attach output ended without echo:ping: %v; stderr %q", sc.Err(), stderr.String())
		}()
		// The attach stream may not be connected yet when we first write;
		// write until the echo comes back.
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
	loop:
		for {
			if _, err := io.WriteString(stdin, "ping\n"); err != nil {
				t.Fatalf("write to crictl attach: %v", err)
			}
			select {
			case err := <-found:
				if err != nil {
					t.Fatal(err)
				}
				break loop
			case <-tick.C:
			case <-actx.Done():
				t.Fatalf("no echo through attach: %v; stderr %q", actx.Err(), stderr.String())
			}
		}
		stdin.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		waitLog(ctx, t, e, cid, "echo:ping")
		if st, err := e.ContainerStatus(ctx, cid); err != nil || st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container after detach: %v (%v), want still running", st.GetState(), err)
		}
	})
}

var forwardingRE = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)

// TestPortForward: crictl port-forward reaches the static HTTP server in
// the pod through containerd's streaming server.
func TestPortForward(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		pod := runPod(t, e, h, "portfwd")
		id := start(t, pod, harness.ContainerConfig("web", harness.HTTPServerImage, "/httpserver", "-addr", ":8080"))
		waitLog(ctx, t, e, id, "listening on")

		pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		// forward starts crictl port-forward and returns its local port
		// and a channel closed when it exits: a connection made before
		// the server listens can end it, so the test starts it again.
		forward := func() (string, <-chan struct{}, func()) {
			cmd := e.CrictlCmd(pctx, "port-forward", pod.ID, "0:8080")
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout, cmd.Stderr = pw, pw
			if err := cmd.Start(); err != nil {
				t.Fatalf("start crictl port-forward: %v", err)
			}
			pw.Close()
			exited := make(chan struct{})
			stop := func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				<-exited
				pr.Close()
			}
			port := ""
			var seen strings.Builder
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				seen.WriteString(sc.Text() + "\n")
				if m := forwardingRE.FindStringSubmatch(sc.Text()); m != nil {
					port = m[1]
					break
				}
			}
			go func() { _, _ = io.Copy(io.Discard, pr); _ = cmd.Wait(); close(exited) }()
			if port == "" {
				stop()
				t.Fatalf("crictl port-forward printed no local port: %q", seen.String())
			}
			return port, exited, stop
		}
		port, exited, stop := forward()
		defer func() { stop() }()

		client := &http.Client{Timeout: 5 * time.Second}
		var body []byte
		var lastErr error
		url := ""
		for try := 0; try < 100; try++ { // the server may still be starting
			select {
			case <-exited:
				stop()
				port, exited, stop = forward()
			default:
			}
			url = "http://127.0.0.1:" + port + "/hello"
			resp, err := client.Get(url)
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode == http.StatusOK {
					lastErr = nil
					break
				}
				err = errors.Join(err, fmt.Errorf("status %s", resp.Status))
			}
			lastErr = err
			time.Sleep(100 * time.Millisecond)
		}
		if lastErr != nil {
			t.Fatalf("GET %s through port-forward: %v", url, lastErr)
		}
		if string(body) != harness.HTTPServerGreeting+"\n" {
			t.Errorf("GET %s = %q, want %q", url, body, harness.HTTPServerGreeting+"\n")
		}
	})
}
