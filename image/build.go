// Package image builds the moat-node OCI image without a container engine:
// one layer holding the agent and the binaries it installs on the host,
// with fixed timestamps and ownership, so the same binaries always give
// the same image digest.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths inside the image.
const (
	AgentPath = "/usr/local/bin/moat-node"
	// SourceDir holds the binaries the agent installs on the host; it is
	// moat-node's --source-dir default.
	SourceDir = "/opt/moat/image/bin"
)

// File is one file of the image's layer.
type File struct {
	Path string // absolute path in the image
	Src  string // file on the build machine
	Mode int64  // permission bits
}

// Spec says what goes into the image.
type Spec struct {
	Files   []File
	Created time.Time         // image and file timestamps (SOURCE_DATE_EPOCH); zero means the Unix epoch
	Labels  map[string]string // OCI annotations on the config, e.g. org.opencontainers.image.version
}

// NodeSpec is the moat-node image: the agent, the shim and the moat CLI.
func NodeSpec(agent, shim, moat string) Spec {
	return Spec{Files: []File{
		{Path: AgentPath, Src: agent, Mode: 0o755},
		{Path: path.Join(SourceDir, "containerd-shim-moat-v2"), Src: shim, Mode: 0o755},
		{Path: path.Join(SourceDir, "moat"), Src: moat, Mode: 0o755},
	}}
}

// layerTar writes the files, and every directory above them, as a tar with
// fixed owner, mode and time, in sorted order.
func layerTar(files []File, mtime time.Time) ([]byte, error) {
	dirs := map[string]bool{}
	entries := map[string]File{}
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return nil, fmt.Errorf("image path %q: must be absolute and clean", f.Path)
		}
		if _, dup := entries[f.Path]; dup {
			return nil, fmt.Errorf("image path %q given twice", f.Path)
		}
		entries[f.Path] = f
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var names []string
	for d := range dirs {
		names = append(names, d+"/")
	}
	for p := range entries {
		names = append(names, p)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		hdr := &tar.Header{Name: n[1:], ModTime: mtime, Uid: 0, Gid: 0, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		if n[len(n)-1] == '/' {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, err
			}
			continue
		}
		f := entries[n]
		data, err := os.ReadFile(f.Src)
		if err != nil {
			return nil, fmt.Errorf("read %s for %s: %w", f.Src, f.Path, err)
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, f.Mode, int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Build assembles the image.
func Build(s Spec) (v1.Image, error) {
	created := s.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()
	data, err := layerTar(s.Files, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: "moat-image: moat-node and the binaries it installs", Comment: "moat"},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: created}
	cf.Config.Entrypoint = []string{AgentPath}
	cf.Config.Cmd = []string{"run"}
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	cf.Config.User = "0:0"
	cf.Config.WorkingDir = "/"
	cf.Config.Labels = s.Labels
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return img, nil
}
