package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// supervisor keeps one containerd running, as systemd's Restart=always
// would: when containerd exits for any reason other than stop, it is
// started again with the same configuration. The node agent restarts
// containerd by signalling it, so tests of the agent need this.
type supervisor struct {
	bin, config, logPath string
	pidFile              string // written with containerd's pid at each start, if set
	env                  []string
	logf                 func(string, ...any)

	mu       sync.Mutex
	cmd      *exec.Cmd // the running containerd, nil between runs
	starts   int       // how many times containerd was started
	stopping bool
	started  chan struct{} // closed after the first start attempt
	startErr error         // the first start's error, if any
	done     chan struct{} // closed when run returns
}

func newSupervisor(bin, config, logPath string, env []string, logf func(string, ...any)) *supervisor {
	return &supervisor{bin: bin, config: config, logPath: logPath, env: env, logf: logf,
		started: make(chan struct{}), done: make(chan struct{})}
}

// start launches the supervising goroutine and returns once containerd
// has been started the first time (not yet ready).
func (s *supervisor) start() error {
	go s.run()
	<-s.started
	return s.startErr
}

func (s *supervisor) run() {
	// The goroutine keeps its OS thread for its whole life, so Pdeathsig
	// (tied to the thread that forked) kills containerd if this test
	// process dies without tearing down.
	runtime.LockOSThread()
	defer close(s.done)
	first := true
	for {
		cmd, err := s.launch()
		if first {
			s.startErr = err
			close(s.started)
			first = false
		}
		if err != nil {
			s.logf("supervisor: start containerd: %v", err)
			if !s.sleepUnlessStopping(time.Second) {
				return
			}
			continue
		}
		err = cmd.Wait()
		s.mu.Lock()
		s.cmd = nil
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			return
		}
		s.logf("supervisor: containerd (pid %d) exited: %v; restarting", cmd.Process.Pid, err)
		if !s.sleepUnlessStopping(200 * time.Millisecond) {
			return
		}
	}
}

func (s *supervisor) sleepUnlessStopping(d time.Duration) bool {
	time.Sleep(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.stopping
}

func (s *supervisor) launch() (*exec.Cmd, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil, errors.New("supervisor stopping")
	}
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open containerd log %s: %w", s.logPath, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== harness: starting containerd (start #%d) at %s\n", s.starts+1, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(s.bin, "--config", s.config)
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s --config %s: %w", s.bin, s.config, err)
	}
	s.cmd = cmd
	s.starts++
	if s.pidFile != "" {
		// A node agent's "signal" restart strategy reads it; a stale file
		// is harmless (the agent checks the pid is containerd's).
		if err := os.WriteFile(s.pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
			s.logf("supervisor: write %s: %v", s.pidFile, err)
		}
	}
	return cmd, nil
}

// pid is the pid of the running containerd, 0 if none is running.
func (s *supervisor) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// startCount is how many times containerd has been started.
func (s *supervisor) startCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

// signal sends sig to the running containerd.
func (s *supervisor) signal(sig syscall.Signal) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0, errors.New("containerd is not running")
	}
	pid := s.cmd.Process.Pid
	if err := s.cmd.Process.Signal(sig); err != nil {
		return pid, fmt.Errorf("signal containerd pid %d with %v: %w", pid, sig, err)
	}
	return pid, nil
}

// stop ends supervision: SIGTERM to containerd, SIGKILL after grace.
func (s *supervisor) stop(grace time.Duration) {
	s.mu.Lock()
	s.stopping = true
	cmd := s.cmd
	s.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-s.done:
		return
	case <-time.After(grace):
	}
	s.mu.Lock()
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
	}
	s.mu.Unlock()
	<-s.done
}
