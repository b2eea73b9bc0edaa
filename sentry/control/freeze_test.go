package control_test

import (
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/control"
)

// startPiped starts argv in container id with a pipe as stdout and
// returns the read end.
func startPiped(t *testing.T, c *control.Client, id, exec string, argv ...string) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if _, err := c.Start(control.StartArgs{ID: id, ExecID: exec, Argv: argv, Env: []string{"PATH=/bin"}}, [3]*os.File{nil, w, w}); err != nil {
		w.Close()
		t.Fatalf("start %v: %v", argv, err)
	}
	w.Close()
	return r
}

// waiter waits for a process in the background.
type waiter struct {
	done  chan struct{}
	reply control.WaitReply
	err   error
}

func waitAsync(c *control.Client, id, exec string) *waiter {
	w := &waiter{done: make(chan struct{})}
	go func() {
		w.reply, w.err = c.Wait(id, exec)
		close(w.done)
	}()
	return w
}

// ended reports whether the process has ended, without waiting.
func (w *waiter) ended() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// status waits for the end and returns the exit status (-1: wait failed,
// -2: still running after a minute; the sentry's goroutines are then
// dumped into the test's log).
func (w *waiter) status(c *control.Client) int {
	select {
	case <-w.done:
	case <-time.After(time.Minute):
		syscall.Kill(c.Pid(), syscall.SIGQUIT)
		time.Sleep(2 * time.Second)
		return -2
	}
	if w.err != nil {
		return -1
	}
	return w.reply.ExitStatus
}

func cpu(t *testing.T, c *control.Client, id string) uint64 {
	t.Helper()
	st, err := c.Stats(id)
	if err != nil {
		t.Fatalf("stats %s: %v", id, err)
	}
	return st.CPUNanos
}

const spin = "i=0; while true; do i=$((i+1)); done"

// TestPauseResume: a paused container's tasks stop and use no CPU, its
// signals and expired timers wait for the resume, SIGKILL still ends it;
// the other container runs on; pausing the pod stops every container.
func TestPauseResume(t *testing.T) {
	c := launch(t)
	if _, err := c.Start(control.StartArgs{ID: "pod", PodInit: true}, [3]*os.File{}); err != nil {
		t.Fatalf("pod init: %v", err)
	}
	for _, id := range []string{"a", "b"} {
		if err := addContainer(c, id, busyboxRoot(t), nil); err != nil {
			t.Fatalf("add container %s: %v", id, err)
		}
	}
	if _, err := c.Update(control.UpdateArgs{CPUs: 2}); err != nil {
		t.Fatal(err)
	}
	// Container a's init only sleeps (a namespace's init ignores
	// SIGTERM); the spinner is an exec.
	if _, err := c.Start(control.StartArgs{ID: "a", Argv: []string{"sleep", "100000"}, Env: []string{"PATH=/bin"}}, [3]*os.File{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(control.StartArgs{ID: "a", ExecID: "spin", Argv: []string{"sh", "-c", spin}, Env: []string{"PATH=/bin"}}, [3]*os.File{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(control.StartArgs{ID: "b", Argv: []string{"sh", "-c", spin}, Env: []string{"PATH=/bin"}}, [3]*os.File{}); err != nil {
		t.Fatal(err)
	}
	out := startPiped(t, c, "a", "timer", "sh", "-c", "sleep 1; echo done")
	timerDone := waitAsync(c, "a", "timer")
	spinDone := waitAsync(c, "a", "spin")

	if st, err := c.FreezeState("a", false); err != nil || st.Frozen {
		t.Fatalf("freeze state before the pause: %+v, %v", st, err)
	}
	st, err := c.Pause("a", false)
	if err != nil || !st.Frozen || !st.Settled {
		t.Fatalf("pause a: %+v, %v; want frozen and settled", st, err)
	}
	if st, err := c.FreezeState("a", false); err != nil || !st.Frozen || !st.Settled {
		t.Errorf("freeze state of a: %+v, %v", st, err)
	}
	if st, err := c.FreezeState("b", false); err != nil || st.Frozen {
		t.Errorf("freeze state of b while a is paused: %+v, %v", st, err)
	}
	if _, err := c.Pause("nope", false); !control.IsNotFound(err) {
		t.Errorf("pause of an unknown container: %v, want not found", err)
	}
	// SIGTERM to the spinner queues; the timer's sleep expires meanwhile.
	if err := c.Signal("a", "spin", int(unix.SIGTERM), false); err != nil {
		t.Fatal(err)
	}
	a0, b0 := cpu(t, c, "a"), cpu(t, c, "b")
	time.Sleep(1500 * time.Millisecond)
	a1, b1 := cpu(t, c, "a"), cpu(t, c, "b")
	if a1 != a0 {
		t.Errorf("paused container a used CPU: %d ns, then %d ns", a0, a1)
	}
	if b1 <= b0 {
		t.Errorf("container b stopped too while a was paused: %d ns, then %d ns", b0, b1)
	}
	if spinDone.ended() || timerDone.ended() {
		t.Fatalf("a process of the paused container ended")
	}
	if pids, err := c.Pids("a"); err != nil || len(pids) < 3 {
		t.Errorf("pids of the paused container: %v, %v; want at least 3", pids, err)
	}

	if st, err := c.Resume("a", false); err != nil || st.Frozen {
		t.Fatalf("resume a: %+v, %v", st, err)
	}
	if st := spinDone.status(c); st != 128+int(unix.SIGTERM) {
		t.Errorf("spinner after the resume: exit %d, want 143 (the queued SIGTERM)", st)
	}
	if st := timerDone.status(c); st != 0 {
		t.Errorf("timer after the resume: exit %d", st)
	}
	if b, _ := io.ReadAll(out); string(b) != "done\n" {
		t.Errorf("timer output %q, want done", b)
	}

	// A paused process still dies of SIGKILL.
	if _, err := c.Start(control.StartArgs{ID: "a", ExecID: "k", Argv: []string{"sh", "-c", spin}, Env: []string{"PATH=/bin"}}, [3]*os.File{}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Pause("a", false); err != nil || !st.Settled {
		t.Fatalf("pause a again: %+v, %v", st, err)
	}
	if err := c.Signal("a", "k", int(unix.SIGKILL), false); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Wait("a", "k"); err != nil || r.ExitStatus != 137 {
		t.Errorf("SIGKILL of a paused process: %+v, %v; want 137", r, err)
	}
	if _, err := c.Resume("a", false); err != nil {
		t.Fatal(err)
	}

	// Pausing the pod stops every container, b included.
	st, err = c.Pause("pod", true)
	if err != nil || !st.Frozen || !st.Settled {
		t.Fatalf("pause the pod: %+v, %v", st, err)
	}
	if st, err := c.FreezeState("b", false); err != nil || !st.Frozen || !st.Settled {
		t.Errorf("b while the pod is paused: %+v, %v", st, err)
	}
	b0 = cpu(t, c, "b")
	time.Sleep(300 * time.Millisecond)
	if b1 := cpu(t, c, "b"); b1 != b0 {
		t.Errorf("b used CPU while the pod was paused: %d ns, then %d ns", b0, b1)
	}
	if _, err := c.Resume("pod", true); err != nil {
		t.Fatal(err)
	}
	if st, err := c.FreezeState("b", false); err != nil || st.Frozen {
		t.Errorf("b after the pod's resume: %+v, %v", st, err)
	}
	b0 = cpu(t, c, "b")
	time.Sleep(300 * time.Millisecond)
	if b1 := cpu(t, c, "b"); b1 <= b0 {
		t.Errorf("b did not run after the pod's resume: %d ns, then %d ns", b0, b1)
	}
}

// TestStatsCumulative: a container's CPU time keeps that of its ended
// processes, as a cgroup's does, and the pod's holds every container's;
// memory is the guest memory the processes really touched.
func TestStatsCumulative(t *testing.T) {
	c := launch(t)
	if _, err := c.Start(control.StartArgs{ID: "pod", PodInit: true}, [3]*os.File{}); err != nil {
		t.Fatalf("pod init: %v", err)
	}
	for _, id := range []string{"c", "d"} {
		if err := addContainer(c, id, busyboxRoot(t), nil); err != nil {
			t.Fatal(err)
		}
	}
	// c's init sleeps; its work is done by execs that end.
	if _, err := c.Start(control.StartArgs{ID: "c", Argv: []string{"sleep", "100000"}, Env: []string{"PATH=/bin"}}, [3]*os.File{}); err != nil {
		t.Fatal(err)
	}
	count := "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo $i"
	if out, code := run(t, c, "c", "once", "sh", "-c", count); code != 0 || out != "20000\n" {
		t.Fatalf("count: %q, exit %d", out, code)
	}
	st1, err := c.Stats("c")
	if err != nil {
		t.Fatal(err)
	}
	if st1.Pids != 1 || st1.CPUNanos == 0 || st1.UserNanos == 0 || st1.SystemNanos == 0 || st1.CPUNanos != st1.UserNanos+st1.SystemNanos {
		t.Errorf("stats after the process ended: %+v; want its CPU time kept, split into user and system", st1)
	}
	if out, code := run(t, c, "c", "again", "sh", "-c", count); code != 0 || out != "20000\n" {
		t.Fatalf("count again: %q, exit %d", out, code)
	}
	st2, err := c.Stats("c")
	if err != nil {
		t.Fatal(err)
	}
	if st2.CPUNanos <= st1.CPUNanos {
		t.Errorf("CPU time after a second process: %d ns, before %d ns; want the sum", st2.CPUNanos, st1.CPUNanos)
	}
	// 24 MiB held by a shell variable, touched byte by byte (used after
	// the sleep, so that the shell does not exec sleep in its place).
	if _, err := c.Start(control.StartArgs{ID: "d", Argv: []string{"sh", "-c",
		"a=$(busybox head -c 25165824 /dev/zero | busybox tr '\\0' a); echo ready; sleep 100; echo ${#a}"},
		Env: []string{"PATH=/bin"}}, [3]*os.File{}); err != nil {
		t.Fatal(err)
	}
	var sd control.StatsReply
	for i := 0; i < 600; i++ {
		if sd, err = c.Stats("d"); err != nil {
			t.Fatal(err)
		}
		if sd.MemoryBytes >= 24<<20 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sd.MemoryBytes < 24<<20 || sd.MemoryBytes > sd.SandboxMemoryBytes {
		t.Errorf("memory of a container holding 24 MiB: %+v", sd)
	}
	pod, err := c.PodStats("pod")
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := c.Stats("c")
	if pod.CPUNanos < sc.CPUNanos+sd.CPUNanos || pod.MemoryBytes != pod.SandboxMemoryBytes || pod.MemoryBytes < sd.MemoryBytes || pod.Pids < 2 {
		t.Errorf("pod stats %+v; containers c %+v, d %+v", pod, sc, sd)
	}
	// A removed container's time stays in the pod's.
	if err := c.RemoveContainer("c"); err != nil {
		t.Fatal(err)
	}
	if pod2, err := c.PodStats("pod"); err != nil || pod2.CPUNanos < pod.CPUNanos {
		t.Errorf("pod CPU after removing c: %+v, %v; before %d ns", pod2, err, pod.CPUNanos)
	}
	// The shell and its sleep, as a cgroup would count them.
	if err := c.Signal("d", "", int(unix.SIGKILL), true); err != nil {
		t.Fatal(err)
	}
	c.Wait("d", "")
	for i := 0; i < 100; i++ {
		if pids, _ := c.Pids("d"); len(pids) == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, err := c.Stats("d"); err != nil || st.MemoryBytes != 0 {
		t.Errorf("memory of d once its process ended: %+v, %v", st, err)
	}
}
