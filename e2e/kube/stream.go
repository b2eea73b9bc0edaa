package kube

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// Command is kubectl (or helm) with the cluster's environment, not yet
// started: for commands that run alongside a test (port-forward, watch,
// an interactive exec on a pty).
func (c *Client) Command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = c.Env()
	return cmd
}

// KubectlCommand is Command for kubectl.
func (c *Client) KubectlCommand(ctx context.Context, args ...string) *exec.Cmd {
	return c.Command(ctx, c.KubectlBin, args...)
}

// CommandLine is cmd as typed, for error messages: "kubectl port-forward ...".
func CommandLine(cmd *exec.Cmd) string {
	return fmt.Sprintf("%s %s", filepath.Base(cmd.Path), strings.Join(cmd.Args[1:], " "))
}
