package e2e

import (
	"bufio"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"moat.dev/moat/e2e/harness"
)

// taskStatus is the STATUS column of `ctr tasks ls` for task id ("" when
// it is not listed).
func taskStatus(ctx context.Context, t *testing.T, e *harness.Env, id string) string {
	t.Helper()
	out, err := e.Ctr(ctx, "tasks", "ls")
	if err != nil {
		t.Fatalf("ctr tasks ls: %v", err)
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == id {
			return f[2]
		}
	}
	return ""
}

// eventLog collects the lines `ctr events` prints while a test runs.
type eventLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *eventLog) has(topic, id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, topic) && strings.Contains(s, id) {
			return true
		}
	}
	return false
}

func watchEvents(t *testing.T, e *harness.Env) *eventLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, e.Tools.Ctr, "--address", e.Socket, "events")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("ctr events: %v", err)
	}
	l := &eventLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l.mu.Lock()
			l.lines = append(l.lines, sc.Text())
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); cmd.Wait(); <-done })
	return l
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, cond func() bool) bool {
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}

// TestPauseResume: containerd's task API pauses and resumes a container
// (`ctr tasks pause`/`resume`, what `docker pause` and the freezer do):
// its output stops while paused, the task reports PAUSED, TaskPaused and
// TaskResumed are published, an exec into it is refused, and it goes on
// where it stopped. For moat, pausing the pod's sandbox container pauses
// the whole pod.
func TestPauseResume(t *testing.T) {
	t.Parallel()
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		ctx := testCtx(t)
		events := watchEvents(t, e)
		pod := runPod(t, e, h, "pause")
		cid := start(t, pod, harness.ContainerConfig("ticker", harness.BusyboxImage, "sh", "-c",
			`i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done`))
		waitLog(ctx, t, e, cid, "tick 3\n")

		if _, err := e.Ctr(ctx, "tasks", "pause", cid); err != nil {
			t.Fatalf("pause: %v", err)
		}
		if st := taskStatus(ctx, t, e, cid); st != "PAUSED" {
			t.Errorf("status of the paused task: %q, want PAUSED", st)
		}
		if !waitFor(ctx, func() bool { return events.has("/tasks/paused", cid) }) {
			t.Errorf("no /tasks/paused event for %s", cid)
		}
		before, _ := e.Logs(ctx, cid, "")
		time.Sleep(time.Second)
		after, _ := e.Logs(ctx, cid, "")
		if after != before {
			t.Errorf("the paused container kept writing: %d bytes of log, then %d", len(before), len(after))
		}
		if _, err := e.Ctr(ctx, "tasks", "pause", cid); err == nil {
			t.Errorf("pausing a paused task succeeded")
		}
		if out, _, err := e.Crictl(ctx, nil, "exec", cid, "true"); err == nil {
			t.Errorf("exec into a paused container succeeded: %q", out)
		}

		if _, err := e.Ctr(ctx, "tasks", "resume", cid); err != nil {
			t.Fatalf("resume: %v", err)
		}
		if st := taskStatus(ctx, t, e, cid); st != "RUNNING" {
			t.Errorf("status after resume: %q, want RUNNING", st)
		}
		if !waitFor(ctx, func() bool { return events.has("/tasks/resumed", cid) }) {
			t.Errorf("no /tasks/resumed event for %s", cid)
		}
		n := strings.Count(after, "\n")
		waitLog(ctx, t, e, cid, "tick "+strconv.Itoa(n+2)+"\n")
		if _, err := e.Ctr(ctx, "tasks", "resume", cid); err == nil {
			t.Errorf("resuming a running task succeeded")
		}

		if h != harness.HandlerMoat {
			return
		}
		// The sandbox container stands for the pod: pausing it stops
		// every container of the pod.
		if _, err := e.Ctr(ctx, "tasks", "pause", pod.ID); err != nil {
			t.Fatalf("pause the pod's sandbox: %v", err)
		}
		for _, id := range []string{pod.ID, cid} {
			if st := taskStatus(ctx, t, e, id); st != "PAUSED" {
				t.Errorf("status of %s with the pod paused: %q, want PAUSED", id, st)
			}
		}
		before, _ = e.Logs(ctx, cid, "")
		time.Sleep(time.Second)
		if after, _ = e.Logs(ctx, cid, ""); after != before {
			t.Errorf("a container of the paused pod kept writing")
		}
		if _, err := e.Ctr(ctx, "tasks", "resume", pod.ID); err != nil {
			t.Fatalf("resume the pod: %v", err)
		}
		n = strings.Count(after, "\n")
		waitLog(ctx, t, e, cid, "tick "+strconv.Itoa(n+2)+"\n")
	})
}
