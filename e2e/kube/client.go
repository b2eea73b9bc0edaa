package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Client drives a cluster as a user does: kubectl and helm are run as
// programs with the cluster's kubeconfig. Methods that return objects run
// `kubectl get -o json` and decode into the API's types.
type Client struct {
	Kubeconfig string
	KubectlBin string
	HelmBin    string
	// HelmHome holds helm's and kubectl's caches and config (HOME), so a
	// run never touches the user's.
	HelmHome string
}

// Env is the environment kubectl and helm run with.
func (c *Client) Env() []string {
	return []string{
		"KUBECONFIG=" + c.Kubeconfig,
		"HOME=" + c.HelmHome,
		"HELM_CACHE_HOME=" + filepath.Join(c.HelmHome, "cache"),
		"HELM_CONFIG_HOME=" + filepath.Join(c.HelmHome, "config"),
		"HELM_DATA_HOME=" + filepath.Join(c.HelmHome, "data"),
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	}
}

// CommandError is a kubectl or helm run that failed: its arguments,
// exit status and both outputs.
type CommandError struct {
	Args           []string
	Err            error
	Stdout, Stderr string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Args, " "), e.Err, strings.TrimSpace(e.Stderr+" "+e.Stdout))
}

func (e *CommandError) Unwrap() error { return e.Err }

// ExitCode is the command's exit status, -1 if it did not exit normally.
func (e *CommandError) ExitCode() int {
	if x, ok := e.Err.(*exec.ExitError); ok {
		return x.ExitCode()
	}
	return -1
}

// Run runs bin with args (stdin may be nil) and returns its stdout; a
// failure is a *CommandError with both outputs.
func (c *Client) Run(ctx context.Context, stdin []byte, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = c.Env()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), &CommandError{Args: append([]string{filepath.Base(bin)}, args...), Err: err, Stdout: out.String(), Stderr: errb.String()}
	}
	return out.String(), nil
}

// Kubectl runs kubectl with args and returns its stdout.
func (c *Client) Kubectl(ctx context.Context, args ...string) (string, error) {
	return c.Run(ctx, nil, c.KubectlBin, args...)
}

// KubectlStdin runs kubectl with args and stdin.
func (c *Client) KubectlStdin(ctx context.Context, stdin string, args ...string) (string, error) {
	return c.Run(ctx, []byte(stdin), c.KubectlBin, args...)
}

// Helm runs helm with args and returns its stdout.
func (c *Client) Helm(ctx context.Context, args ...string) (string, error) {
	return c.Run(ctx, nil, c.HelmBin, args...)
}

// Apply is `kubectl apply -f -` of the YAML manifest.
func (c *Client) Apply(ctx context.Context, manifest string) error {
	_, err := c.KubectlStdin(ctx, manifest, "apply", "-f", "-")
	return err
}

// Delete is `kubectl delete -f -` of the YAML manifest (missing objects
// are fine), waiting for the objects to be gone.
func (c *Client) Delete(ctx context.Context, manifest string) error {
	_, err := c.KubectlStdin(ctx, manifest, "delete", "--ignore-not-found", "--wait=true", "-f", "-")
	return err
}

// GetJSON runs `kubectl get ARGS -o json` and decodes the result into v.
func (c *Client) GetJSON(ctx context.Context, v any, args ...string) error {
	out, err := c.Kubectl(ctx, append(append([]string{"get"}, args...), "-o", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("decode kubectl get %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// Pod gets a pod.
func (c *Client) Pod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	var p corev1.Pod
	if err := c.GetJSON(ctx, &p, "pod", name, "-n", ns); err != nil {
		return nil, err
	}
	return &p, nil
}

// Pods lists the pods of ns matching the label selector ("" for all).
func (c *Client) Pods(ctx context.Context, ns, selector string) ([]corev1.Pod, error) {
	var l corev1.PodList
	args := []string{"pods", "-n", ns}
	if selector != "" {
		args = append(args, "-l", selector)
	}
	if err := c.GetJSON(ctx, &l, args...); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// Node gets a node.
func (c *Client) Node(ctx context.Context, name string) (*corev1.Node, error) {
	var n corev1.Node
	if err := c.GetJSON(ctx, &n, "node", name); err != nil {
		return nil, err
	}
	return &n, nil
}

// NodeReady reports whether the node's Ready condition is True.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// PodReady reports whether the pod's Ready condition is True.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Poll calls fn every interval until it returns true or an error, or ctx
// ends; the error then names what was awaited and fn's last error.
func Poll(ctx context.Context, what string, interval time.Duration, fn func() (bool, error)) error {
	var last error
	for {
		ok, err := fn()
		if ok && err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// WaitPod polls the pod until cond holds; it returns the pod as last
// seen. A pod that does not exist yet is waited for.
func (c *Client) WaitPod(ctx context.Context, ns, name, what string, cond func(*corev1.Pod) bool) (*corev1.Pod, error) {
	var last *corev1.Pod
	err := Poll(ctx, fmt.Sprintf("pod %s/%s %s", ns, name, what), 250*time.Millisecond, func() (bool, error) {
		p, err := c.Pod(ctx, ns, name)
		if err != nil {
			return false, err
		}
		last = p
		return cond(p), nil
	})
	if err != nil && last != nil {
		err = fmt.Errorf("%w; pod status: %s", err, PodSummary(last))
	}
	return last, err
}

// WaitPodPhase waits for the pod to reach phase.
func (c *Client) WaitPodPhase(ctx context.Context, ns, name string, phase corev1.PodPhase) (*corev1.Pod, error) {
	return c.WaitPod(ctx, ns, name, "in phase "+string(phase), func(p *corev1.Pod) bool { return p.Status.Phase == phase })
}

// WaitPodReady waits for the pod's Ready condition.
func (c *Client) WaitPodReady(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	return c.WaitPod(ctx, ns, name, "Ready", PodReady)
}

// WaitPodGone waits until the pod no longer exists.
func (c *Client) WaitPodGone(ctx context.Context, ns, name string) error {
	return Poll(ctx, fmt.Sprintf("pod %s/%s gone", ns, name), 250*time.Millisecond, func() (bool, error) {
		out, err := c.Kubectl(ctx, "get", "pod", name, "-n", ns, "--ignore-not-found", "-o", "name")
		return err == nil && strings.TrimSpace(out) == "", err
	})
}

// WaitNode polls the node until cond holds and returns it as last seen.
func (c *Client) WaitNode(ctx context.Context, name, what string, cond func(*corev1.Node) bool) (*corev1.Node, error) {
	var last *corev1.Node
	err := Poll(ctx, fmt.Sprintf("node %s %s", name, what), 250*time.Millisecond, func() (bool, error) {
		n, err := c.Node(ctx, name)
		if err != nil {
			return false, err
		}
		last = n
		return cond(n), nil
	})
	return last, err
}

// Logs is `kubectl logs` of a pod's container ("" for the only one).
func (c *Client) Logs(ctx context.Context, ns, pod, container string) (string, error) {
	args := []string{"logs", pod, "-n", ns}
	if container != "" {
		args = append(args, "-c", container)
	}
	return c.Kubectl(ctx, args...)
}

// Exec is `kubectl exec POD -- CMD...` and returns its stdout.
func (c *Client) Exec(ctx context.Context, ns, pod string, cmd ...string) (string, error) {
	return c.Kubectl(ctx, append([]string{"exec", pod, "-n", ns, "--"}, cmd...)...)
}

// Describe is `kubectl describe`, for failure messages.
func (c *Client) Describe(ctx context.Context, kind, ns, name string) string {
	out, err := c.Kubectl(ctx, "describe", kind, name, "-n", ns)
	if err != nil {
		return fmt.Sprintf("(describe %s %s/%s: %v)", kind, ns, name, err)
	}
	return out
}

// PodSummary is a one-line account of a pod's status: phase, reason and
// each container's state.
func PodSummary(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s", p.Status.Phase)
	if p.Status.Reason != "" {
		fmt.Fprintf(&b, " reason=%s", p.Status.Reason)
	}
	if p.Status.Message != "" {
		fmt.Fprintf(&b, " message=%q", p.Status.Message)
	}
	for _, cond := range p.Status.Conditions {
		if cond.Status != corev1.ConditionTrue && cond.Message != "" {
			fmt.Fprintf(&b, " %s=%s(%s)", cond.Type, cond.Status, cond.Message)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Running != nil:
			fmt.Fprintf(&b, " %s=running", cs.Name)
		case cs.State.Waiting != nil:
			fmt.Fprintf(&b, " %s=waiting(%s: %s)", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)
		case cs.State.Terminated != nil:
			fmt.Fprintf(&b, " %s=terminated(exit %d, %s)", cs.Name, cs.State.Terminated.ExitCode, cs.State.Terminated.Reason)
		}
	}
	return b.String()
}
