package ociimage

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func layerOf(t *testing.T, entries []entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return buf.Bytes()
}

// TestUnpackLayout: layers apply in order with whiteouts, and entries that
// try to leave the root (.. paths, absolute symlinks written through) stay
// inside it.
func TestUnpackLayout(t *testing.T) {
	outside := t.TempDir()
	l1 := layerOf(t, []entry{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/hello", body: "#!/bin/sh\necho hi\n", typ: tar.TypeReg, mode: 0o755},
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/gone", body: "x", typ: tar.TypeReg},
		{name: "escape", link: outside, typ: tar.TypeSymlink},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
	})
	l2 := layerOf(t, []entry{
		{name: "etc/.wh.gone", typ: tar.TypeReg},
		{name: "etc/new", body: "new", typ: tar.TypeReg},
		{name: "../../../evil", body: "evil", typ: tar.TypeReg},
		{name: "bin/sh", link: "hello", typ: tar.TypeSymlink},
		{name: "bin/hardlink", link: "bin/hello", typ: tar.TypeLink},
	})
	img := empty.Image
	for _, l := range [][]byte{l1, l2} {
		b := l
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			t.Fatal(err)
		}
	}
	cf, _ := img.ConfigFile()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config.Cmd = []string{"/bin/hello"}
	img, _ = mutate.ConfigFile(img, cf)
	lp := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(lp, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	opened, cleanup, err := Open(lp)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	root := t.TempDir()
	var lines []string
	got, err := Unpack(opened, root, func(f string, a ...any) { lines = append(lines, f) })
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Config.Cmd) != 1 || got.Config.Cmd[0] != "/bin/hello" || len(lines) == 0 {
		t.Fatalf("config %+v progress %v", got.Config, lines)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "bin/hello")); string(b) != "#!/bin/sh\necho hi\n" {
		t.Fatalf("bin/hello = %q", b)
	}
	if st, err := os.Stat(filepath.Join(root, "bin/hello")); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("bin/hello mode: %v %v", st, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/gone")); !os.IsNotExist(err) {
		t.Fatalf("whiteout not applied: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/new")); string(b) != "new" {
		t.Fatalf("etc/new = %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(root, "bin/sh")); l != "hello" {
		t.Fatalf("bin/sh -> %q", l)
	}
	// Writing through the planted absolute symlink resolves inside the
	// root, where its target does not exist: refused, nothing outside.
	l3 := layerOf(t, []entry{{name: "escape/evil", body: "evil", typ: tar.TypeReg}})
	layer, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l3)), nil })
	img3, _ := mutate.AppendLayers(img, layer)
	if _, err := Unpack(img3, t.TempDir(), nil); err == nil {
		t.Error("writing through a symlink out of the root did not fail")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("an entry escaped the root: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(root))), "evil")); err == nil {
		t.Fatal("../ entry escaped the root")
	}
	if b, err := os.ReadFile(filepath.Join(root, "evil")); err != nil || string(b) != "evil" {
		t.Fatalf("../../../evil should land at /evil inside the root: %q %v", b, err)
	}
}
