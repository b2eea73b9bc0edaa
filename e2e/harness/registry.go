package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Registry is a local container registry (distribution v3) on 127.0.0.1,
// through which containerd pulls every image: the harness points all
// registries at it (certs.d/_default/hosts.toml), since no public one is
// reachable. Tools that insist on pulling (critest) pull from here.
type Registry struct {
	Addr string // host:port on 127.0.0.1
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRegistry starts the registry binary at bin (from $MOAT_TOOLS) with
// its storage under the harness root, and makes containerd pull every
// image from it. It is stopped by Close.
func (e *Env) StartRegistry(ctx context.Context, bin string) (*Registry, error) {
	if e.registry != nil {
		return e.registry, nil
	}
	if !isExecutable(bin) {
		return nil, &MissingToolsError{Missing: []string{bin + " (registry; .ci/install.d/31-critest.sh)"}}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pick a registry port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := filepath.Join(e.Root, "registry")
	conf := filepath.Join(dir, "config.yml")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	y := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(conf, []byte(y), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", conf, err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return nil, fmt.Errorf("create registry log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve %s: %w", bin, conf, err)
	}
	r := &Registry{Addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	e.registry = r
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("registry on %s did not answer: %w", addr, err)
		}
		select {
		case <-r.done:
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			return nil, fmt.Errorf("registry exited: %s", b)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Every registry host resolves through the local one, over plain HTTP.
	hosts := filepath.Join(e.Root, "certs.d", "_default", "hosts.toml")
	if err := os.MkdirAll(filepath.Dir(hosts), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(hosts), err)
	}
	h := fmt.Sprintf("[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n", "http://"+addr)
	if err := os.WriteFile(hosts, []byte(h), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", hosts, err)
	}
	return r, nil
}

func (r *Registry) stop() {
	if r == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// Push uploads img to the registry as repo:tag (repo without a registry
// host, e.g. "e2e-test-images/busybox"), so that a pull of
// "<any registry>/<repo>:<tag>" finds it.
func (r *Registry) Push(ctx context.Context, ref string, img Image) error {
	repo, tag, ok := strings.Cut(ref, ":")
	if !ok || repo == "" || tag == "" || strings.Contains(tag, "/") {
		return fmt.Errorf("push %q: want repo:tag", ref)
	}
	b, err := build(img)
	if err != nil {
		return err
	}
	base := "http://" + r.Addr + "/v2/" + repo
	for _, blob := range [][]byte{b.layer, b.config} {
		if err := r.pushBlob(ctx, base, blob); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/manifests/"+tag, bytes.NewReader(b.manifest))
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	if err := do(req, http.StatusCreated); err != nil {
		return fmt.Errorf("push %s manifest: %w", ref, err)
	}
	return nil
}

// pushBlob uploads one blob in a single request (POST, then PUT ?digest=).
func (r *Registry) pushBlob(ctx context.Context, base string, blob []byte) error {
	d := digest.FromBytes(blob)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/blobs/uploads/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("start upload of %s: %w", d, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("start upload of %s: %s", d, resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return fmt.Errorf("upload location %q: %w", resp.Header.Get("Location"), err)
	}
	u := (&url.URL{Scheme: "http", Host: r.Addr}).ResolveReference(loc)
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(blob))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	return do(req, http.StatusCreated)
}

func do(req *http.Request, want int) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
