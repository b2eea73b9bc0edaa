package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"moat.dev/moat/sentry/sandbox/sandboxtest"
)

// tarDir returns a tar of the tree at dir.
func tarDir(t *testing.T, dir string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = rel
		if fi.IsDir() {
			h.Name += "/"
		}
		tw.WriteHeader(h)
		if fi.Mode().IsRegular() {
			f, _ := os.Open(p)
			io.Copy(tw, f)
			f.Close()
		}
		return nil
	})
	tw.Close()
	return buf.Bytes()
}

// TestRunImage: moat run --image takes an OCI image layout, unpacks it and
// runs the image's command (or the one given) with the image's env.
func TestRunImage(t *testing.T) {
	sandboxtest.RequireKVM(t)
	bin := moatBinary(t)
	root := sandboxtest.Rootfs(t, true)
	layerTar := tarDir(t, root)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config.Cmd = []string{"/bin/sh", "-c", "echo from image $GREETING"}
	cf.Config.Env = []string{"PATH=/bin", "GREETING=hello"}
	img, _ = mutate.ConfigFile(img, cf)
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "run", "--image", dir).CombinedOutput()
	if err != nil || string(out) != "from image hello\n" {
		t.Fatalf("image command: %v %q", err, out)
	}
	out, err = exec.Command(bin, "run", "--image", dir, "--", "sh", "-c", "echo $GREETING; ls /bin/busybox").CombinedOutput()
	if err != nil || string(out) != "hello\n/bin/busybox\n" {
		t.Fatalf("given command: %v %q", err, out)
	}
	out, _ = exec.Command(bin, "run", "--image", filepath.Join(t.TempDir(), "missing")).CombinedOutput()
	if !strings.Contains(string(out), "missing") {
		t.Fatalf("missing image: %q", out)
	}
}
