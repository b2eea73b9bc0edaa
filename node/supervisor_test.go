package node

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// toolPath finds a test tool in $MOAT_TOOLS (default
// /usr/local/lib/moat-test/bin), skipping the test when it is missing unless
// MOAT_REQUIRE_E2E=1 says it must be there.
func toolPath(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("MOAT_TOOLS")
	if dir == "" {
		dir = "/usr/local/lib/moat-test/bin"
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("MOAT_REQUIRE_E2E") == "1" {
			t.Fatalf("%s is missing (%v): run .ci/install.d to install it", p, err)
		}
		t.Skipf("%s is missing (%v); set MOAT_REQUIRE_E2E=1 to make this a failure", p, err)
	}
	return p
}

// supervisedContainerd runs a private containerd (its own root, state and
// socket under a temporary directory) and starts it again whenever it exits,
// as systemd's Restart=always would on a node.
type supervisedContainerd struct {
	Config string // main config file
	Socket string
	Dir    string

	mu      sync.Mutex
	cmd     *exec.Cmd
	starts  int
	stopped bool
	done    chan struct{}
}

func startContainerd(t *testing.T, mainConfig func(base, etcDir string) string) *supervisedContainerd {
	t.Helper()
	return startContainerdBin(t, toolPath(t, "containerd"), 3, mainConfig)
}

// startContainerdBin runs the containerd binary bin with a main config of
// the given version (2 for containerd 1.7, 3 for 2.x).
func startContainerdBin(t *testing.T, bin string, version int, mainConfig func(base, etcDir string) string) *supervisedContainerd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("containerd needs root")
	}
	dir, err := os.MkdirTemp("", "moat-ctd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &supervisedContainerd{Dir: dir, Config: filepath.Join(dir, "etc", "config.toml"), Socket: filepath.Join(dir, "c.sock"), done: make(chan struct{})}
	os.MkdirAll(filepath.Dir(s.Config), 0o755)
	// mainConfig gets the settings that keep this containerd apart from any
	// other on the machine and returns the whole main config file.
	base := fmt.Sprintf(`version = %d
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.nri.v1.nri"]
  disable = true
`, version, filepath.Join(dir, "root"), filepath.Join(dir, "state"), s.Socket)
	if mainConfig != nil {
		if err := os.WriteFile(s.Config, []byte(mainConfig(base, filepath.Dir(s.Config))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		defer logf.Close()
		for {
			s.mu.Lock()
			if s.stopped {
				s.mu.Unlock()
				return
			}
			cmd := exec.Command(bin, "--config", s.Config)
			cmd.Stdout, cmd.Stderr = logf, logf
			if err := cmd.Start(); err != nil {
				s.mu.Unlock()
				fmt.Fprintf(logf, "supervisor: start containerd: %v\n", err)
				return
			}
			s.cmd = cmd
			s.starts++
			s.mu.Unlock()
			cmd.Wait()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		s.mu.Lock()
		s.stopped = true
		if s.cmd != nil && s.cmd.Process != nil {
			s.cmd.Process.Kill()
		}
		s.mu.Unlock()
		<-s.done
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("containerd log (tail):\n%s", b)
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		rt, err := DialCRI(s.Socket)
		if err == nil {
			rt.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("private containerd did not come up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Starts returns how many times containerd was started.
func (s *supervisedContainerd) Starts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

// dialWait connects to a containerd that may be restarting.
func dialWait(t *testing.T, socket string) *CRIClient {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		rt, err := DialCRI(socket)
		if err == nil {
			return rt
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd at %s did not answer: %v", socket, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
