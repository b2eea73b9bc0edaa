package harness

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image describes a single-layer linux/amd64 image built by the harness.
// No registry is reachable, so every test image is made from files on this
// machine and imported into containerd (ctr images import), the way an
// air-gapped node is loaded.
type Image struct {
	Name string // full reference, e.g. "moat.test/busybox:e2e"
	// Files make the layer; or LayerTar, an uncompressed tar of a whole
	// root filesystem, is the layer as is; or LayerDir, a root filesystem
	// tree on the host (such as a debootstrap tree), is packed into one.
	Files      []File
	LayerTar   string
	LayerDir   string
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
}

// File is one entry of an image layer. Exactly one of HostPath, Data,
// Link or HardLink is used; Dir marks a directory. Parent directories are
// added. Entries are owned by root; Mode may carry os.ModeSetuid and
// os.ModeSticky.
type File struct {
	Path     string // absolute path in the image
	HostPath string // copy this file from the host
	Data     []byte // or these bytes
	Link     string // or a symlink to this target
	HardLink string // or a hard link to this earlier entry (absolute path)
	Dir      bool   // or an empty directory
	Mode     os.FileMode
}

// epoch is the fixed mtime of every layer entry, so an image's digest
// depends on its content only.
var epoch = time.Unix(1700000000, 0).UTC()

// builtImage is an image's blobs and their descriptors.
type builtImage struct {
	layer, config, manifest          []byte
	layerDesc, configDesc, manifestD ocispec.Descriptor
}

// build makes the layer, config and manifest of img.
func build(img Image) (*builtImage, error) {
	var layer []byte
	var diffID digest.Digest
	mediaType := ocispec.MediaTypeImageLayerGzip
	sources := 0
	for _, set := range []bool{len(img.Files) > 0, img.LayerTar != "", img.LayerDir != ""} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		return nil, fmt.Errorf("image %s: more than one of Files, LayerTar and LayerDir given", img.Name)
	}
	switch {
	case img.LayerTar != "" || img.LayerDir != "":
		var b []byte
		var err error
		if img.LayerTar != "" {
			b, err = os.ReadFile(img.LayerTar)
		} else {
			b, err = tarDir(img.LayerDir)
		}
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		layer, diffID, mediaType = b, digest.FromBytes(b), ocispec.MediaTypeImageLayer
	default:
		var err error
		if layer, diffID, err = buildLayer(img.Files); err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
	}
	layerDigest := diffID // an uncompressed layer is its own diff
	if mediaType == ocispec.MediaTypeImageLayerGzip {
		layerDigest = digest.FromBytes(layer)
	}
	layerDesc := ocispec.Descriptor{
		MediaType: mediaType,
		Digest:    layerDigest,
		Size:      int64(len(layer)),
	}
	cfg := ocispec.Image{
		Created:  &epoch,
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		Config: ocispec.ImageConfig{
			Entrypoint: img.Entrypoint,
			Cmd:        img.Cmd,
			Env:        append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, img.Env...),
			User:       img.User,
			WorkingDir: img.WorkingDir,
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("image %s: encode config: %w", img.Name, err)
	}
	cfgDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfgJSON), Size: int64(len(cfgJSON))}
	man := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	}
	man.SchemaVersion = 2
	manJSON, err := json.Marshal(man)
	if err != nil {
		return nil, fmt.Errorf("image %s: encode manifest: %w", img.Name, err)
	}
	return &builtImage{
		layer: layer, config: cfgJSON, manifest: manJSON,
		layerDesc: layerDesc, configDesc: cfgDesc,
		manifestD: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageManifest,
			Digest:    digest.FromBytes(manJSON),
			Size:      int64(len(manJSON)),
			Platform:  &ocispec.Platform{Architecture: "amd64", OS: "linux"},
		},
	}, nil
}

// WriteOCIArchive writes img as an OCI image-layout tar archive (the format
// `ctr images import` reads) to w.
func WriteOCIArchive(w io.Writer, img Image) error {
	b, err := build(img)
	if err != nil {
		return err
	}
	tag := img.Name
	if i := strings.LastIndex(tag, ":"); i > strings.LastIndex(tag, "/") {
		tag = tag[i+1:]
	}
	desc := b.manifestD
	desc.Annotations = map[string]string{
		"io.containerd.image.name": img.Name,
		ocispec.AnnotationRefName:  tag,
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{desc}}
	idx.SchemaVersion = 2
	idxJSON, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("image %s: encode index: %w", img.Name, err)
	}
	tw := tar.NewWriter(w)
	put := func(name string, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
			return fmt.Errorf("image %s: write archive: %w", img.Name, err)
		}
	}
	for _, e := range []struct {
		name string
		data []byte
	}{
		{ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"blobs/sha256/" + b.layerDesc.Digest.Encoded(), b.layer},
		{"blobs/sha256/" + b.configDesc.Digest.Encoded(), b.config},
		{"blobs/sha256/" + b.manifestD.Digest.Encoded(), b.manifest},
		{ocispec.ImageIndexFile, idxJSON},
	} {
		if err := put(e.name, e.data); err != nil {
			return fmt.Errorf("image %s: write %s: %w", img.Name, e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("image %s: close archive: %w", img.Name, err)
	}
	return nil
}

// buildLayer returns the gzipped layer tar and the digest of the
// uncompressed tar (the diff id).
func buildLayer(files []File) ([]byte, digest.Digest, error) {
	entries := map[string]File{}
	for _, f := range files {
		p := path.Clean("/" + f.Path)
		if p == "/" {
			return nil, "", fmt.Errorf("layer entry with empty path")
		}
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := entries[d]; !ok {
				entries[d] = File{Path: d, Dir: true, Mode: 0o755}
			}
		}
		f.Path = p
		entries[p] = f
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	// Parents sort before their children; hard links go last, after the
	// files they point to.
	sort.Slice(names, func(i, j int) bool {
		hi, hj := entries[names[i]].HardLink != "", entries[names[j]].HardLink != ""
		if hi != hj {
			return hj
		}
		return names[i] < names[j]
	})

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, h))
	for _, n := range names {
		f := entries[n]
		hdr := &tar.Header{Name: strings.TrimPrefix(n, "/"), ModTime: epoch, Mode: int64(f.Mode.Perm())}
		var data []byte
		switch {
		case f.Dir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
			if f.Mode == 0 {
				hdr.Mode = 0o755
			}
			if f.Mode&os.ModeSticky != 0 {
				hdr.Mode |= 0o1000
			}
		case f.Link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, f.Link, 0o777
		case f.HardLink != "":
			target := path.Clean("/" + f.HardLink)
			if t, ok := entries[target]; !ok || t.HardLink != "" || t.Dir || t.Link != "" {
				return nil, "", fmt.Errorf("layer entry %s: hard link to %s, which is not a regular file of the layer", n, target)
			}
			// The link shares the target's inode: give it the target's mode,
			// since unpackers chmod the link's path (and so the inode).
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, strings.TrimPrefix(target, "/")
			hdr.Mode = int64(entries[target].Mode.Perm())
			if hdr.Mode == 0 {
				hdr.Mode = 0o644
			}
		case f.HostPath != "":
			b, err := os.ReadFile(f.HostPath)
			if err != nil {
				return nil, "", fmt.Errorf("layer entry %s: %w", n, err)
			}
			data = b
		default:
			data = f.Data
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
			if f.Mode == 0 {
				hdr.Mode = 0o644
			}
			if f.Mode&os.ModeSetuid != 0 {
				hdr.Mode |= 0o4000
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, "", fmt.Errorf("layer entry %s: %w", n, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, "", fmt.Errorf("layer entry %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", fmt.Errorf("close layer tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, "", fmt.Errorf("close layer gzip: %w", err)
	}
	return gz.Bytes(), digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil))), nil
}

// ImportImage builds img as an OCI archive and imports it into
// containerd's k8s.io namespace with ctr, where the CRI plugin sees it.
func (e *Env) ImportImage(ctx context.Context, img Image) error {
	p := filepath.Join(e.Root, "images", strings.NewReplacer("/", "_", ":", "_").Replace(img.Name)+".tar")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
	}
	f, err := os.Create(p)
	if err != nil {
		return fmt.Errorf("create image archive %s: %w", p, err)
	}
	werr := WriteOCIArchive(f, img)
	if cerr := f.Close(); werr == nil && cerr != nil {
		werr = fmt.Errorf("close image archive %s: %w", p, cerr)
	}
	if werr != nil {
		return werr
	}
	if _, err := e.Ctr(ctx, "images", "import", "--platform", "linux/amd64", p); err != nil {
		return fmt.Errorf("import image %s: %w", img.Name, err)
	}
	e.logf("imported %s", img.Name)
	return nil
}

// Ctr runs ctr against this harness's containerd in namespace k8s.io.
func (e *Env) Ctr(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"--address", e.Socket, "--namespace", "k8s.io"}, args...)
	cmd := exec.CommandContext(ctx, e.Tools.Ctr, full...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// tarDir packs the tree at root into an uncompressed tar: directories,
// regular files, symlinks and hard links, with their modes and numeric
// owners. Device nodes, fifos and sockets are left out (a container gets
// its /dev from the runtime).
func tarDir(root string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		var link string
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		} else if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				key := inode{uint64(st.Dev), st.Ino}
				if first, dup := seen[key]; dup {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
					return tw.WriteHeader(hdr)
				}
				seen[key] = hdr.Name
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", root, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("pack %s: %w", root, err)
	}
	return buf.Bytes(), nil
}
