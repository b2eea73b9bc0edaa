// Command cluster runs moat's single-node test cluster (package
// moat.dev/moat/e2e/kube) on this machine, in the background:
//
//	cluster up      start it and wait until the node is Ready
//	cluster env     print KUBECONFIG and PATH for kubectl, helm, crictl
//	cluster status  say whether it runs, and show the node
//	cluster down    stop it and remove everything it made
//
// `up` starts `cluster serve` as a daemon that owns every process of the
// cluster (they die with it) and publishes its state in
// /run/moat-cluster/cluster.json; `down` signals it to tear down. Run as
// root from inside the moat module (up.sh and down.sh do both).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"moat.dev/moat/e2e/kube"
)

const (
	stateDir   = "/run/moat-cluster"
	serveLog   = stateDir + "/serve.log"
	resultFile = stateDir + "/teardown.result"
)

func main() {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 30*time.Minute, "how long up waits for the cluster (a cold build of the moat binaries, and another cluster or scenario run this one waits for, included)")
	noImage := fs.Bool("no-moat-image", false, "do not build and import the moat-node image")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: cluster [flags] up|down|status|env")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil || fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}
	var err error
	switch fs.Arg(0) {
	case "up":
		err = up(*timeout, *noImage)
	case "serve":
		err = serve(*noImage)
	case "down":
		err = down()
	case "status":
		err = status()
	case "env":
		err = printEnv()
	default:
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster %s: %v\n", fs.Arg(0), err)
		os.Exit(1)
	}
}

func up(timeout time.Duration, noImage bool) error {
	if s, alive, err := kube.ReadState(); err != nil {
		return err
	} else if alive {
		fmt.Printf("cluster already up (pid %d); KUBECONFIG=%s\n", s.Pid, s.Kubeconfig)
		return nil
	} else if s.HarnessID != "" {
		fmt.Fprintf(os.Stderr, "cleaning up after a cluster whose process (pid %d) died\n", s.Pid)
		if err := kube.ForceCleanup(s); err != nil {
			return fmt.Errorf("clean up the dead cluster: %w", err)
		}
		os.Remove(kube.StateFile)
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", stateDir, err)
	}
	os.Remove(resultFile)
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	logf, err := os.Create(serveLog)
	if err != nil {
		return fmt.Errorf("create %s: %w", serveLog, err)
	}
	defer logf.Close()
	args := []string{"serve"}
	if noImage {
		args = []string{"-no-moat-image", "serve"}
	}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s serve: %w", self, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t0 := time.Now()
	deadline := time.After(timeout)
	var shown string
	for {
		// Another cluster or scenario run holds the machine: say so.
		if l := lastLineWith(serveLog, "waiting for"); l != "" && l != shown {
			fmt.Fprintln(os.Stderr, l)
			shown = l
		}
		if s, alive, _ := kube.ReadState(); alive && s.Pid == cmd.Process.Pid {
			fmt.Printf("cluster up in %v: node %s (%s); daemon pid %d, log %s\n", time.Since(t0).Round(time.Millisecond), s.NodeName, s.NodeIP, s.Pid, serveLog)
			fmt.Printf("eval $(%s env)\n", self)
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the cluster process exited (%v); its log %s:\n%s", err, serveLog, tail(serveLog, 40))
		case <-deadline:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return fmt.Errorf("cluster not up after %v (signalled it to tear down); log %s:\n%s", timeout, serveLog, tail(serveLog, 40))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// serve runs the cluster until SIGTERM or SIGINT, then tears it down and
// writes the result to resultFile ("ok", or what is left).
func serve(noImage bool) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-sigs; cancel() }()
	logf := func(f string, a ...any) { fmt.Printf(time.Now().Format("15:04:05.000 ")+f+"\n", a...) }
	c, err := kube.Start(ctx, kube.Options{Logf: logf, NoMoatImage: noImage})
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(c.State(), "", "  ")
	if err == nil {
		err = os.WriteFile(kube.StateFile+".tmp", b, 0o644)
	}
	if err == nil {
		err = os.Rename(kube.StateFile+".tmp", kube.StateFile)
	}
	if err != nil {
		err = fmt.Errorf("publish %s: %w", kube.StateFile, err)
		if cerr := c.Close(); cerr != nil {
			err = fmt.Errorf("%w (and teardown: %v)", err, cerr)
		}
		return err
	}
	logf("cluster up; KUBECONFIG=%s", c.Kubeconfig)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			if err := c.Check(); err != nil {
				logf("cluster component down: %v", err)
			}
		}
	}
	logf("tearing down")
	os.Remove(kube.StateFile)
	err = c.Close()
	result := "ok\n"
	if err != nil {
		result = err.Error() + "\n"
	}
	_ = os.WriteFile(resultFile, []byte(result), 0o644)
	logf("teardown: %s", strings.TrimSpace(result))
	return err
}

func down() error {
	s, alive, err := kube.ReadState()
	if err != nil {
		return err
	}
	if s.HarnessID == "" {
		fmt.Println("no cluster is up")
		return nil
	}
	if !alive {
		fmt.Fprintf(os.Stderr, "the cluster's process (pid %d) is gone; cleaning up after it\n", s.Pid)
		err := kube.ForceCleanup(s)
		os.Remove(kube.StateFile)
		return err
	}
	if err := syscall.Kill(s.Pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal the cluster process %d: %w", s.Pid, err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for syscall.Kill(s.Pid, 0) == nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster process %d still runs 3 minutes after SIGTERM; log %s", s.Pid, serveLog)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, err := os.ReadFile(resultFile)
	if err != nil {
		return fmt.Errorf("no teardown result (%v); log %s:\n%s", err, serveLog, tail(serveLog, 30))
	}
	if r := strings.TrimSpace(string(b)); r != "ok" {
		return fmt.Errorf("teardown: %s", r)
	}
	os.Remove(resultFile)
	fmt.Println("cluster down; nothing left behind")
	return nil
}

func status() error {
	s, alive, err := kube.ReadState()
	if err != nil {
		return err
	}
	if !alive {
		if s.HarnessID != "" {
			return fmt.Errorf("the cluster's process (pid %d) is gone; run down to clean up", s.Pid)
		}
		fmt.Println("no cluster is up")
		return nil
	}
	fmt.Printf("cluster up: daemon pid %d, harness %s, node %s (%s)\nKUBECONFIG=%s\n", s.Pid, s.HarnessID, s.NodeName, s.NodeIP, s.Kubeconfig)
	out, err := s.Client().Kubectl(context.Background(), "get", "nodes", "-o", "wide")
	fmt.Print(out)
	return err
}

func printEnv() error {
	s, alive, err := kube.ReadState()
	if err != nil {
		return err
	}
	if !alive {
		return errors.New("no cluster is up (run up first)")
	}
	fmt.Printf("export KUBECONFIG=%s\n", s.Kubeconfig)
	fmt.Printf("export PATH=%s:%s:$PATH\n", filepath.Dir(s.Kubectl), s.ToolsDir)
	fmt.Printf("export CONTAINERD_ADDRESS=%s\n", s.Socket)
	fmt.Printf("export CONTAINERD_NAMESPACE=k8s.io\n")
	fmt.Printf("export CONTAINER_RUNTIME_ENDPOINT=unix://%s\n", s.Socket)
	fmt.Printf("export MOAT_CLUSTER_ROOT=%s\n", s.Root)
	return nil
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lastLineWith is the last line of the file that contains sub, or "".
func lastLineWith(path, sub string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}
