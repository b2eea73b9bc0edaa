package harness

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestConfigStaysPrivate: every path in the containerd config lies under
// the harness's folders or the tools folder, nothing names the system
// containerd's defaults, and the shim socket folder fits containerd's
// length limit.
func TestConfigStaysPrivate(t *testing.T) {
	e := &Env{
		ID: "abc123", Root: filepath.Join(RootBase, "abc123"), State: filepath.Join(StateBase, "abc123"),
		Tools: &Tools{Dir: DefaultToolsDir, CNIBinDir: DefaultToolsDir + "/cni", Runc: "/usr/sbin/runc"},
		opts:  Options{MoatShim: "/opt/moat/bin/containerd-shim-moat-v2", MoatConfig: "/etc/moat/shim.toml"},
	}
	e.Socket = filepath.Join(e.State, "containerd.sock")
	e.ConfDir = filepath.Join(e.Root, "conf.d")
	d := e.configData()
	if len(d.ShimSocketDir) > 42 {
		t.Errorf("shim socket_dir %q is %d characters, containerd allows 42", d.ShimSocketDir, len(d.ShimSocketDir))
	}
	s, err := renderConfig(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"/run/containerd", "/var/lib/containerd", "/etc/containerd", "/opt/cni", "/etc/cni", "/var/run/nri", "/opt/containerd"} {
		if strings.Contains(s, bad) {
			t.Errorf("config names the system path %s:\n%s", bad, s)
		}
	}
	allowed := []string{e.Root, e.State, DefaultToolsDir, "/usr/sbin/runc", e.opts.MoatShim, e.opts.MoatConfig}
	for _, m := range regexp.MustCompile(`"(/[^"]*)"`).FindAllStringSubmatch(s, -1) {
		ok := false
		for _, a := range allowed {
			if m[1] == a || strings.HasPrefix(m[1], a+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("config path %s is outside the harness", m[1])
		}
	}
	for _, want := range []string{"restrict_oom_score_adj = true", "SystemdCgroup = false", "netns_mounts_under_state_dir = true",
		"[plugins.'io.containerd.server.v1.grpc']", `sandbox = "` + PauseImage + `"`, "runtimes.moat]"} {
		if !strings.Contains(s, want) {
			t.Errorf("config lacks %s", want)
		}
	}
	e.opts = Options{}
	if s, _ := renderConfig(e.configData()); strings.Contains(s, "runtimes.moat") || strings.Contains(s, MoatRuntimeType) {
		t.Errorf("config without a shim configures moat:\n%s", s)
	}
}

// TestWriteOCIArchive: the archive is a valid OCI layout whose index names
// the image and whose blobs match their digests.
func TestWriteOCIArchive(t *testing.T) {
	var buf bytes.Buffer
	img := Image{
		Name: "moat.test/unit:v1",
		Files: []File{
			{Path: "/bin/hello", Data: []byte("#!/bin/sh\necho hi\n"), Mode: 0o755},
			{Path: "/bin/sh", Link: "/bin/busybox"},
			{Path: "/bin/ash", HardLink: "/bin/hello"},
			{Path: "/bin/su", Data: []byte("x"), Mode: 0o755 | os.ModeSetuid},
			{Path: "/tmp", Dir: true, Mode: 0o777 | os.ModeSticky},
		},
		Entrypoint: []string{"/bin/hello"},
	}
	if err := WriteOCIArchive(&buf, img); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	for name, b := range files {
		if strings.HasPrefix(name, "blobs/sha256/") && len(b) > 0 {
			if got := digest.FromBytes(b).Encoded(); got != strings.TrimPrefix(name, "blobs/sha256/") {
				t.Errorf("blob %s has digest %s", name, got)
			}
		}
	}
	var idx ocispec.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Annotations["io.containerd.image.name"] != img.Name ||
		idx.Manifests[0].Annotations[ocispec.AnnotationRefName] != "v1" {
		t.Fatalf("index = %+v", idx)
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(files["blobs/sha256/"+idx.Manifests[0].Digest.Encoded()], &man); err != nil {
		t.Fatal(err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(files["blobs/sha256/"+man.Config.Digest.Encoded()], &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Config.Entrypoint[0] != "/bin/hello" || cfg.Architecture != "amd64" || len(cfg.RootFS.DiffIDs) != 1 {
		t.Errorf("config = %+v", cfg)
	}
	zr, err := gzip.NewReader(bytes.NewReader(files["blobs/sha256/"+man.Layers[0].Digest.Encoded()]))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	if digest.FromBytes(raw) != cfg.RootFS.DiffIDs[0] {
		t.Errorf("diff id %s does not match the layer", cfg.RootFS.DiffIDs[0])
	}
	got := map[string]*tar.Header{}
	lr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := lr.Next()
		if err != nil {
			break
		}
		got[h.Name] = h
	}
	if h := got["bin/"]; h == nil || h.Typeflag != tar.TypeDir {
		t.Errorf("layer lacks the parent directory bin/: %v", got)
	}
	if h := got["bin/sh"]; h == nil || h.Linkname != "/bin/busybox" {
		t.Errorf("layer symlink bin/sh = %+v", h)
	}
	if h := got["bin/ash"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "bin/hello" {
		t.Errorf("layer hard link bin/ash = %+v", h)
	}
	if h := got["bin/su"]; h == nil || h.Mode != 0o4755 {
		t.Errorf("layer bin/su = %+v, want mode 4755", h)
	}
	if h := got["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("layer tmp/ = %+v, want mode 1777", h)
	}
	if h := got["bin/hello"]; h == nil || h.Mode != 0o755 || h.Size != int64(len(img.Files[0].Data)) {
		t.Errorf("layer bin/hello = %+v", h)
	}
}

// TestHardLinkNeedsTarget: a hard link to a path that is not a regular
// file of the layer is refused.
func TestHardLinkNeedsTarget(t *testing.T) {
	err := WriteOCIArchive(io.Discard, Image{Name: "x:y", Files: []File{{Path: "/a", HardLink: "/missing"}}})
	if err == nil || !strings.Contains(err.Error(), "/missing") {
		t.Errorf("WriteOCIArchive with a dangling hard link: %v", err)
	}
}

func TestReadLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	log := "2026-01-01T00:00:00.000000001Z stdout P hel\n" +
		"2026-01-01T00:00:00.000000002Z stderr F oops\n" +
		"2026-01-01T00:00:00.000000003Z stdout F lo world\n" +
		"2026-01-01T00:00:00.000000004Z stdout F \n"
	if err := os.WriteFile(p, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLog(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []LogLine{{"stderr", "oops"}, {"stdout", "hello world"}, {"stdout", ""}}
	if len(got) != len(want) {
		t.Fatalf("ReadLog = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %q, want %q", i, got[i], want[i])
		}
	}
	if err := os.WriteFile(p, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadLog(p); err == nil {
		t.Error("ReadLog accepted a malformed line")
	}
}

// TestTarDir: a host tree packs with its directories, files, modes,
// symlinks and hard links; a fifo is left out.
func TestTarDir(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("tool"), 0o755))
	must(os.Link(filepath.Join(root, "usr/bin/tool"), filepath.Join(root, "usr/bin/alias")))
	must(os.Symlink("usr/bin", filepath.Join(root, "bin")))
	must(syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	b, err := tarDir(root)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		got[h.Name] = h
	}
	if h := got["usr/bin/"]; h == nil || h.Typeflag != tar.TypeDir {
		t.Errorf("usr/bin/ = %+v", h)
	}
	if h := got["bin"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin" {
		t.Errorf("bin = %+v", h)
	}
	// WalkDir goes in lexical order: alias comes first and is the file.
	if h := got["usr/bin/alias"]; h == nil || h.Typeflag != tar.TypeReg || h.Mode&0o777 != 0o755 || h.Size != 4 {
		t.Errorf("usr/bin/alias = %+v", h)
	}
	if h := got["usr/bin/tool"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "usr/bin/alias" {
		t.Errorf("usr/bin/tool = %+v", h)
	}
	if _, ok := got["fifo"]; ok {
		t.Error("the fifo was packed")
	}
}
