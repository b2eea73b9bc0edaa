package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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

// CRIClient talks to containerd's CRI service on its unix socket.
type CRIClient struct {
	conn *grpc.ClientConn
	rs   runtimeapi.RuntimeServiceClient
}

// DialCRI connects to the CRI socket (no I/O happens until the first call).
func DialCRI(socket string) (*CRIClient, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connect to CRI socket %s: %w", socket, err)
	}
	return &CRIClient{conn: conn, rs: runtimeapi.NewRuntimeServiceClient(conn)}, nil
}

func (c *CRIClient) Close() error { return c.conn.Close() }

func (c *CRIClient) Version(ctx context.Context) (string, string, error) {
	v, err := c.rs.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return "", "", fmt.Errorf("CRI Version: %w", err)
	}
	return v.RuntimeName, v.RuntimeVersion, nil
}

// Handlers lists the handlers from StatusResponse.runtime_handlers and, for
// runtimes that do not fill it, from the runtimes in the verbose config.
func (c *CRIClient) Handlers(ctx context.Context) ([]string, error) {
	st, err := c.rs.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		return nil, fmt.Errorf("CRI Status: %w", err)
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
	resp, err := c.rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{
		Filter: &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}},
	})
	if err != nil {
		return 0, fmt.Errorf("CRI ListPodSandbox: %w", err)
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
