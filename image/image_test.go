package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"moat.dev/moat/e2e/harness"
)

// goBuild builds a command of this module into dir.
func goBuild(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// nodeBinaries builds moat-node and moat; the shim's slot holds the moat
// binary until the shim has a command of its own in this tree.
func nodeBinaries(t *testing.T) (agent, shim, moat string) {
	t.Helper()
	dir := t.TempDir()
	agent = goBuild(t, dir, "moat.dev/moat/cmd/moat-node")
	moat = goBuild(t, dir, "moat.dev/moat/cmd/moat")
	shim = moat
	if _, err := os.Stat("../cmd/containerd-shim-moat-v2"); err == nil {
		shim = goBuild(t, dir, "moat.dev/moat/cmd/containerd-shim-moat-v2")
	}
	return agent, shim, moat
}

func writeTar(t *testing.T, s Spec, tag string) (string, string) {
	t.Helper()
	img, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(p, ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return p, d.String()
}

// The same binaries give the same bytes, whenever and wherever they are
// built; the layer holds exactly the agent and the two host binaries, owned
// by root, with the epoch as their time.
func TestBuildIsReproducible(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, n := range []string{"agent", "shim", "moat"} {
		p := filepath.Join(dir, n)
		os.WriteFile(p, bytes.Repeat([]byte{byte('a' + i)}, 1000+i), 0o600)
		files = append(files, p)
	}
	s := NodeSpec(files[0], files[1], files[2])
	a, da := writeTar(t, s, "moat.dev/moat-node:test")
	// Different file times and modes on the build machine change nothing.
	for _, f := range files {
		os.Chtimes(f, time.Now(), time.Unix(12345, 0))
		os.Chmod(f, 0o644)
	}
	b, db := writeTar(t, s, "moat.dev/moat-node:test")
	if da != db {
		t.Fatalf("digests differ: %s vs %s", da, db)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatal("image tarballs differ")
	}

	img, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if !slices.Equal(cf.Config.Entrypoint, []string{AgentPath}) || cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("config %+v", cf)
	}
	layers, _ := img.Layers()
	if len(layers) != 1 {
		t.Fatalf("%d layers", len(layers))
	}
	rc, _ := layers[0].Uncompressed()
	defer rc.Close()
	tr := tar.NewReader(rc)
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: uid %d gid %d time %v", h.Name, h.Uid, h.Gid, h.ModTime)
		}
		if h.Typeflag == tar.TypeReg && h.Mode != 0o755 {
			t.Errorf("%s: mode %o", h.Name, h.Mode)
		}
		got = append(got, h.Name)
	}
	want := []string{"opt/", "opt/moat/", "opt/moat/image/", "opt/moat/image/bin/", "opt/moat/image/bin/containerd-shim-moat-v2", "opt/moat/image/bin/moat", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/moat-node"}
	if !slices.Equal(got, want) {
		t.Errorf("layer holds %v, want %v", got, want)
	}

	// A different SOURCE_DATE_EPOCH is a different image.
	s.Created = time.Unix(1700000000, 0)
	if _, dc := writeTar(t, s, "moat.dev/moat-node:test"); dc == da {
		t.Error("creation time does not reach the digest")
	}
}

func TestBuildRejectsBadPaths(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	os.WriteFile(f, []byte("x"), 0o644)
	for _, files := range [][]File{
		{{Path: "relative/x", Src: f, Mode: 0o755}},
		{{Path: "/a/../b", Src: f, Mode: 0o755}},
		{{Path: "/a", Src: f, Mode: 0o755}, {Path: "/a", Src: f, Mode: 0o755}},
		{{Path: "/a", Src: filepath.Join(t.TempDir(), "missing"), Mode: 0o755}},
	} {
		if _, err := Build(Spec{Files: files}); err == nil {
			t.Errorf("Build(%+v) accepted", files)
		}
	}
}

// The image imports into a real containerd and its agent runs under runc
// through CRI: `moat-node check` prints the KVM report.
func TestImageRunsUnderContainerd(t *testing.T) {
	e := harness.Start(t, harness.Options{})
	agent, shim, moat := nodeBinaries(t)
	const tag = "moat.dev/moat-node:e2e"
	p, _ := writeTar(t, NodeSpec(agent, shim, moat), tag)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := e.Ctr(ctx, "images", "import", "--platform", "linux/amd64", p); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	pod, err := e.RunPod(ctx, e.PodConfig("moat-image"), harness.HandlerRunc)
	if err != nil {
		t.Fatal(err)
	}
	defer pod.Remove(context.Background())
	id, err := pod.Start(ctx, harness.ContainerConfig("agent", tag, AgentPath, "check", "--measure-exits=0"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.WaitExited(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := e.Logs(ctx, id, "stdout")
	if err != nil {
		t.Fatal(err)
	}
	// Without privileges the device cgroup keeps /dev/kvm away, so the
	// report says why; with them it says available. Either way the agent ran.
	if !strings.Contains(logs, `"device": "/dev/kvm"`) || !strings.Contains(logs, `"available":`) {
		t.Fatalf("agent in the image printed no KVM report (exit %d):\n%s", st.ExitCode, logs)
	}
	if st.ExitCode != 0 && st.ExitCode != 1 {
		t.Fatalf("moat-node check exited %d:\n%s", st.ExitCode, logs)
	}
	// The moat CLI the agent installs runs from the image too.
	id, err = pod.Start(ctx, harness.ContainerConfig("moat-help", tag, filepath.Join(SourceDir, "moat"), "help"))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := e.WaitExited(ctx, id); err != nil || st.ExitCode != 0 {
		t.Fatalf("moat help in the image: %v, %+v", err, st)
	}
}
