package cri

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxMsgSize matches the kubelet's CRI client limit (16 MiB).
const maxMsgSize = 16 << 20

// Client talks CRI (k8s.io/cri-api runtime/v1) to a container runtime over
// a unix socket. Runtime and Image are the raw services for calls the
// helpers below do not cover.
type Client struct {
	Socket  string
	Runtime runtimeapi.RuntimeServiceClient
	Image   runtimeapi.ImageServiceClient
	conn    *grpc.ClientConn
}

// Dial connects to the CRI socket (a path, or "unix://path") and checks
// that a runtime answers Version within timeout.
func Dial(ctx context.Context, socket string, timeout time.Duration) (*Client, error) {
	path := strings.TrimPrefix(socket, "unix://")
	if path == "" {
		return nil, errors.New("dial CRI: empty socket path")
	}
	conn, err := grpc.NewClient("passthrough:///"+path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)),
	)
	if err != nil {
		return nil, fmt.Errorf("dial CRI %s: %w", path, err)
	}
	c := &Client{
		Socket:  path,
		Runtime: runtimeapi.NewRuntimeServiceClient(conn),
		Image:   runtimeapi.NewImageServiceClient(conn),
		conn:    conn,
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := c.Version(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Version asks the runtime for its name and versions.
func (c *Client) Version(ctx context.Context) (*runtimeapi.VersionResponse, error) {
	v, err := c.Runtime.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return nil, fmt.Errorf("CRI Version on %s: %w", c.Socket, err)
	}
	return v, nil
}

// Status returns the runtime's status with verbose info.
func (c *Client) Status(ctx context.Context) (*runtimeapi.StatusResponse, error) {
	s, err := c.Runtime.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		return nil, fmt.Errorf("CRI Status on %s: %w", c.Socket, err)
	}
	return s, nil
}

// Ready returns nil when the runtime reports both RuntimeReady and
// NetworkReady, and otherwise an error naming the conditions not met.
func (c *Client) Ready(ctx context.Context) error {
	s, err := c.Status(ctx)
	if err != nil {
		return err
	}
	var bad []string
	for _, want := range []string{runtimeapi.RuntimeReady, runtimeapi.NetworkReady} {
		found := false
		for _, cond := range s.GetStatus().GetConditions() {
			if cond.GetType() != want {
				continue
			}
			found = true
			if !cond.GetStatus() {
				bad = append(bad, fmt.Sprintf("%s=false (%s: %s)", want, cond.GetReason(), cond.GetMessage()))
			}
		}
		if !found {
			bad = append(bad, want+" missing")
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("CRI runtime on %s not ready: %s", c.Socket, strings.Join(bad, "; "))
	}
	return nil
}

// RuntimeHandlers lists the names of the runtime handlers the runtime
// offers (RuntimeClass handlers such as "runc" or "moat"). The default
// handler is reported with an empty name.
func (c *Client) RuntimeHandlers(ctx context.Context) ([]string, error) {
	s, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, h := range s.GetRuntimeHandlers() {
		names = append(names, h.GetName())
	}
	return names, nil
}

// HasHandler reports whether the runtime offers the named handler.
func (c *Client) HasHandler(ctx context.Context, name string) (bool, error) {
	hs, err := c.RuntimeHandlers(ctx)
	if err != nil {
		return false, err
	}
	for _, h := range hs {
		if h == name {
			return true, nil
		}
	}
	return false, nil
}

// RuntimeConfig returns the runtime's configuration as the kubelet sees it
// (the cgroup driver on Linux).
func (c *Client) RuntimeConfig(ctx context.Context) (*runtimeapi.RuntimeConfigResponse, error) {
	r, err := c.Runtime.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		return nil, fmt.Errorf("CRI RuntimeConfig on %s: %w", c.Socket, err)
	}
	return r, nil
}

// WaitReady polls Dial and Ready until both succeed or ctx ends, and
// returns the connected client. It is for a runtime that is (re)starting.
func WaitReady(ctx context.Context, socket string, poll time.Duration) (*Client, error) {
	var last error
	for {
		c, err := Dial(ctx, socket, poll*5)
		if err == nil {
			if err = c.Ready(ctx); err == nil {
				return c, nil
			}
			c.Close()
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for CRI runtime on %s: %w (last error: %v)", socket, ctx.Err(), last)
		case <-time.After(poll):
		}
	}
}
