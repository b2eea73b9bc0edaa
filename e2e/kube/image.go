package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"moat.dev/moat/e2e/harness"
	"moat.dev/moat/image"
)

// BuildMoatNodeImage builds moat-node, containerd-shim-moat-v2 and moat
// from this tree, assembles the moat-node image from them (package image,
// as `make image` does) and imports it into the node's containerd under
// tag.
func BuildMoatNodeImage(ctx context.Context, e *harness.Env, tag string) error {
	dir := filepath.Join(e.Root, "moat-image")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	bin := func(n string) string { return filepath.Join(dir, n) }
	for _, n := range []string{"moat-node", "containerd-shim-moat-v2", "moat"} {
		if err := e.Tools.BuildGo("moat.dev/moat/cmd/"+n, bin(n)); err != nil {
			return err
		}
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("image tag %q: %w", tag, err)
	}
	spec := image.NodeSpec(bin("moat-node"), bin("containerd-shim-moat-v2"), bin("moat"))
	spec.Created = time.Unix(0, 0)
	img, err := image.Build(spec)
	if err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	out := filepath.Join(dir, "moat-node.tar")
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	if _, err := e.Ctr(ctx, "images", "import", "--platform", "linux/amd64", out); err != nil {
		return fmt.Errorf("import %s: %w", tag, err)
	}
	return nil
}
