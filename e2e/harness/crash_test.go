package harness

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "MOAT_HARNESS_CRASH_CHILD"

// TestMain runs crashChild instead of the tests in the child process of
// TestCleanStaleAfterCrash.
func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) == "1" {
		crashChild()
		return
	}
	os.Exit(m.Run())
}

// crashChild starts a harness with a running pod, prints the harness id
// and waits to be killed.
func crashChild() {
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(1)
	}
	e, err := New(ctx, Options{})
	if err != nil {
		fail(err)
	}
	pod, err := e.RunPod(ctx, e.PodConfig("crash"), HandlerRunc)
	if err != nil {
		fail(err)
	}
	if _, err := pod.Start(ctx, ContainerConfig("sleeper", BusyboxImage, "sleep", "3600")); err != nil {
		fail(err)
	}
	fmt.Printf("HARNESS %s\n", e.ID)
	time.Sleep(5 * time.Minute)
	os.Exit(2)
}

// TestCleanStaleAfterCrash: a test process that dies (SIGKILL) with a pod
// running leaves its shim, container, mounts, cgroups and bridge behind;
// the next harness's CleanStale removes all of it.
func TestCleanStaleAfterCrash(t *testing.T) {
	if _, err := FindTools(ToolsDir()); err != nil {
		SkipOrFail(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), crashChildEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id := ""
	var seen strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "HARNESS" {
			id = f[1]
			break
		}
	}
	if id == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child printed no harness id:\n%s", seen.String())
	}
	// What the harness has on the machine while its owner lives, so the
	// check below is known to look at something (taken before the kill: a
	// harness starting in another test process may clean up right after).
	left := Leftovers(id)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	var procs, mounts, cgroups int
	for _, l := range left {
		switch {
		case strings.HasPrefix(l, "process"):
			procs++
		case strings.HasPrefix(l, "mount"):
			mounts++
		case strings.HasPrefix(l, "cgroup"):
			cgroups++
		}
	}
	if procs == 0 || mounts == 0 || cgroups == 0 {
		t.Errorf("a running harness has no process, mount or cgroup (%q): the check proves nothing", left)
	}
	CleanStale(t.Logf)
	if left := Leftovers(id); len(left) > 0 {
		t.Errorf("after CleanStale, harness %s left:\n%s", id, strings.Join(left, "\n"))
	}
}
