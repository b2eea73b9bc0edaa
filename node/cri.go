package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"moat.dev/moat/cri"
)

// Runtime is what the agent asks containerd over CRI.
type Runtime interface {
	// Version returns the runtime's name and version, e.g. "containerd", "v2.4.2".
	Version(ctx context.Context) (name, version string, err error)
	// Handlers returns the runtime handlers the running containerd knows.
	Handlers(ctx context.Context) ([]string, error)
	// Sandboxes returns how many ready pod sandboxes use handler.
	Sandboxes(ctx context.Context, handler string) (int, error)
	Close() error
}

// CRIClient is the agent's Runtime: containerd's CRI service through the
// project's CRI client.
type CRIClient struct {
	*cri.Client
}

// DialCRI connects to the CRI socket and checks that containerd answers.
func DialCRI(socket string) (*CRIClient, error) {
	c, err := cri.Dial(context.Background(), socket, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &CRIClient{c}, nil
}

func (c *CRIClient) Version(ctx context.Context) (string, string, error) {
	v, err := c.Client.Version(ctx)
	if err != nil {
		return "", "", err
	}
	return v.RuntimeName, v.RuntimeVersion, nil
}

// Handlers lists the handlers from StatusResponse.runtime_handlers (what
// the kubelet publishes as node.status.runtimeHandlers) and, for runtimes
// that do not fill it (containerd 1.7), from the runtimes in the verbose
// config.
func (c *CRIClient) Handlers(ctx context.Context) ([]string, error) {
	st, err := c.Client.Status(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, h := range st.RuntimeHandlers {
		if h.Name != "" {
			names = append(names, h.Name)
		}
	}
	if raw, ok := st.Info["config"]; ok {
		var cfg struct {
			Containerd struct {
				Runtimes map[string]json.RawMessage `json:"runtimes"`
			} `json:"containerd"`
		}
		if json.Unmarshal([]byte(raw), &cfg) == nil {
			for n := range cfg.Containerd.Runtimes {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

func (c *CRIClient) Sandboxes(ctx context.Context, handler string) (int, error) {
	resp, err := c.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{
		Filter: &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}},
	})
	if err != nil {
		return 0, fmt.Errorf("CRI ListPodSandbox on %s: %w", c.Socket, err)
	}
	n := 0
	for _, s := range resp.Items {
		if s.RuntimeHandler == handler {
			n++
		}
	}
	return n, nil
}

// WaitReady polls the runtime's Version until it answers or ctx ends.
func WaitReady(ctx context.Context, rt Runtime, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		_, _, err := rt.Version(cctx)
		ccancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("containerd's CRI did not answer within %v: %w", timeout, errors.Join(ctx.Err(), last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
