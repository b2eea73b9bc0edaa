// Command moat-image builds the moat-node OCI image from binaries already
// built, without a container engine, and writes it as an image tarball that
// `ctr images import`, `docker load` and `podman load` read.
//
//	moat-image --agent bin/moat-node --shim bin/containerd-shim-moat-v2 --moat bin/moat \
//	    --tag moat.dev/moat-node:0.1.0 --out moat-node.tar
//
// The timestamps come from $SOURCE_DATE_EPOCH (default 0), so the same
// binaries give the same image digest.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"moat.dev/moat/image"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("moat-image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	agent := fs.String("agent", "bin/moat-node", "the moat-node binary")
	shim := fs.String("shim", "bin/containerd-shim-moat-v2", "the containerd-shim-moat-v2 binary")
	moat := fs.String("moat", "bin/moat", "the moat binary")
	tag := fs.String("tag", "moat.dev/moat-node:dev", "the image's name and tag")
	out := fs.String("out", "moat-node.tar", "the image tarball to write")
	version := fs.String("version", "dev", "org.opencontainers.image.version label")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := build(*agent, *shim, *moat, *tag, *out, *version, stdout); err != nil {
		fmt.Fprintf(stderr, "moat-image: %v\n", err)
		return 1
	}
	return 0
}

func build(agent, shim, moat, tag, out, version string, stdout io.Writer) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	created := time.Unix(0, 0)
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		created = time.Unix(sec, 0)
	}
	spec := image.NodeSpec(agent, shim, moat)
	spec.Created = created
	spec.Labels = map[string]string{
		"org.opencontainers.image.title":   "moat-node",
		"org.opencontainers.image.version": version,
		"org.opencontainers.image.source":  "https://moat.dev",
	}
	img, err := image.Build(spec)
	if err != nil {
		return err
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s@%s\n", out, ref.String(), d)
	return nil
}
