// Package ociimage unpacks an OCI image (an image layout directory, or a
// tarball of one, or a `docker save` tarball) into a root filesystem
// directory: layers applied in order with their whiteouts, every path
// created under the root with openat2(RESOLVE_IN_ROOT) so that no entry
// of a hostile image can write outside it.
package ociimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// Image is an unpacked image: its root filesystem and its configuration.
type Image struct {
	RootFS string
	Config v1.Config
}

// Progress receives a line per step (nil: none).
type Progress func(format string, args ...any)

// Open reads the image at ref: a directory holding an OCI image layout, or
// a tar file of one, or a `docker save` tarball.
func Open(ref string) (v1.Image, func(), error) {
	st, err := os.Stat(ref)
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: %w", ref, err)
	}
	noop := func() {}
	if st.IsDir() {
		img, err := fromLayout(ref)
		return img, noop, err
	}
	// A tarball: an OCI layout inside, or docker save's format.
	tmp, err := os.MkdirTemp("", "moat-image-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	f, err := os.Open(ref)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	defer f.Close()
	if err := extract(tar.NewReader(f), tmp, false); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("image %s: %w", ref, err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "oci-layout")); err == nil {
		img, err := fromLayout(tmp)
		if err != nil {
			cleanup()
		}
		return img, cleanup, err
	}
	img, err := tarball.ImageFromPath(ref, nil)
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("image %s is neither an OCI layout nor a docker save tarball: %w", ref, err)
	}
	return img, cleanup, nil
}

func fromLayout(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: index: %w", dir, err)
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && (d.Platform.Architecture != "amd64" || d.Platform.OS != "linux") {
			continue
		}
		if d.MediaType.IsImage() {
			return idx.Image(d.Digest)
		}
		if d.MediaType.IsIndex() {
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			cm, err := child.IndexManifest()
			if err != nil {
				return nil, err
			}
			for _, cd := range cm.Manifests {
				if cd.Platform == nil || cd.Platform.Architecture == "amd64" && cd.Platform.OS == "linux" {
					return child.Image(cd.Digest)
				}
			}
		}
	}
	return nil, fmt.Errorf("OCI layout %s has no linux/amd64 image", dir)
}

// Unpack flattens img into the empty directory dir.
func Unpack(img v1.Image, dir string, progress Progress) (*Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	if cf.Architecture != "" && cf.Architecture != "amd64" {
		return nil, fmt.Errorf("image is for %s/%s; moat runs linux/amd64 programs", cf.OS, cf.Architecture)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("image layers: %w", err)
	}
	for i, l := range layers {
		if progress != nil {
			size, _ := l.Size()
			progress("unpacking layer %d/%d (%d bytes)", i+1, len(layers), size)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
		err = extract(tar.NewReader(rc), dir, true)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
	}
	if progress != nil {
		progress("unpacked into %s", dir)
	}
	return &Image{RootFS: dir, Config: cf.Config}, nil
}

// extract writes the tar stream under root. With owners set it applies the
// entries' ownership (as root).
func extract(tr *tar.Reader, root string, owners bool) error {
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(rootfd)
	type dirTimes struct {
		name string
		h    *tar.Header
	}
	var dirs []dirTimes
	// created are the paths this layer made: an opaque whiteout hides
	// only what lower layers put in its directory.
	created := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer: %w", err)
		}
		name := path.Clean("/" + h.Name)
		if name == "/" {
			continue
		}
		rel := strings.TrimPrefix(name, "/")
		dir, base := path.Split(rel)
		if err := mkdirAll(rootfd, dir); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		if strings.HasPrefix(base, ".wh.") {
			parent, err := openDir(rootfd, dir)
			if err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
			if base == ".wh..wh..opq" {
				err = clearDir(parent, dir, created)
			} else {
				err = removeAt(parent, strings.TrimPrefix(base, ".wh."))
			}
			unix.Close(parent)
			if err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("whiteout %s: %w", h.Name, err)
			}
			continue
		}
		created[rel] = true
		mode := uint32(h.FileInfo().Mode().Perm())
		if h.Mode&04000 != 0 {
			mode |= unix.S_ISUID
		}
		if h.Mode&02000 != 0 {
			mode |= unix.S_ISGID
		}
		if h.Mode&01000 != 0 {
			mode |= unix.S_ISVTX
		}
		parent, err := openDir(rootfd, dir)
		if err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			var st unix.Stat_t
			if unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				removeAt(parent, base)
			}
			err = unix.Mkdirat(parent, base, mode)
			if errors.Is(err, unix.EEXIST) {
				err = unix.Fchmodat(parent, base, mode, 0)
			}
			dirs = append(dirs, dirTimes{rel, h})
		case tar.TypeReg:
			removeAt(parent, base)
			var fd int
			fd, err = unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
			if err == nil {
				f := os.NewFile(uintptr(fd), rel)
				_, err = io.Copy(f, tr)
				if err == nil {
					err = f.Chmod(os.FileMode(mode&0o777) | modeBits(mode))
				}
				f.Close()
			}
		case tar.TypeSymlink:
			removeAt(parent, base)
			err = unix.Symlinkat(h.Linkname, parent, base)
		case tar.TypeLink:
			target := strings.TrimPrefix(path.Clean("/"+h.Linkname), "/")
			tdir, tbase := path.Split(target)
			var tparent int
			if tparent, err = openDir(rootfd, tdir); err == nil {
				removeAt(parent, base)
				err = unix.Linkat(tparent, tbase, parent, base, 0)
				unix.Close(tparent)
			}
		case tar.TypeFifo:
			err = unix.Mknodat(parent, base, unix.S_IFIFO|mode, 0)
		case tar.TypeChar, tar.TypeBlock:
			// Device nodes in images are not created: the sandbox's
			// /dev is its own.
		}
		if err == nil && owners && h.Typeflag != tar.TypeChar && h.Typeflag != tar.TypeBlock {
			err = unix.Fchownat(parent, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW)
			if errors.Is(err, unix.EPERM) {
				err = nil // unprivileged unpacking keeps our own ids
			}
		}
		unix.Close(parent)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("unpack %s: %w", h.Name, err)
		}
	}
	return nil
}

func modeBits(m uint32) os.FileMode {
	var b os.FileMode
	if m&unix.S_ISUID != 0 {
		b |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		b |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		b |= os.ModeSticky
	}
	return b
}

// openDir opens dir (relative) under rootfd, resolving every component
// inside the root.
func openDir(rootfd int, dir string) (int, error) {
	if dir == "" {
		dir = "."
	}
	return unix.Openat2(rootfd, dir, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}

// mkdirAll creates dir and its parents under rootfd.
func mkdirAll(rootfd int, dir string) error {
	cur := ""
	for _, c := range strings.Split(strings.Trim(dir, "/"), "/") {
		if c == "" {
			continue
		}
		parent, err := openDir(rootfd, cur)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(parent, c, 0o755)
		unix.Close(parent)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		cur = path.Join(cur, c)
	}
	return nil
}

// removeAt removes name in directory dirfd, recursively, never following a
// symbolic link.
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return err
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAt(fd, n); err != nil && !errors.Is(err, unix.ENOENT) {
				break
			}
			err = nil
		}
	}
	f.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// clearDir removes what lower layers put in directory dir (open as fd).
func clearDir(fd int, dir string, created map[string]bool) error {
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dfd), dir)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if created[path.Join(dir, n)] {
			continue
		}
		if err := removeAt(fd, n); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return nil
}
