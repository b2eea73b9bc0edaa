package kube

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one control-plane or node process of the cluster. It is not
// restarted when it exits: a component that dies is a failure the tests
// should see (Cluster.Check reports it).
type proc struct {
	name    string
	argv    []string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	err  error // why it exited
	done chan struct{}
}

// start launches p from a goroutine that keeps its OS thread for the
// process's life, so Pdeathsig (tied to the forking thread) kills the
// process if the program running the cluster dies without teardown.
func (p *proc) start(env []string) error {
	logf, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", p.name, err)
	}
	p.done = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer close(p.done)
		defer logf.Close()
		fmt.Fprintf(logf, "=== cluster: starting %s at %s\n", strings.Join(p.argv, " "), time.Now().Format(time.RFC3339Nano))
		cmd := exec.Command(p.argv[0], p.argv[1:]...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("start %s (%s): %w", p.name, p.argv[0], err)
			return
		}
		p.mu.Lock()
		p.cmd = cmd
		p.mu.Unlock()
		started <- nil
		err := cmd.Wait()
		p.mu.Lock()
		p.err = fmt.Errorf("%s (pid %d) exited: %v", p.name, cmd.Process.Pid, err)
		p.mu.Unlock()
	}()
	return <-started
}

// exited returns why p has exited, or nil while it runs.
func (p *proc) exited() error {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	default:
		return nil
	}
}

// pid is the process id (0 before start).
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// stop sends SIGTERM, then SIGKILL to the process group after grace.
func (p *proc) stop(grace time.Duration) {
	if p.done == nil {
		return
	}
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// logTail is the last n lines of p's log.
func (p *proc) logTail(n int) string { return fileTail(p.logPath, n) }

func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
