package node

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// PreviousSuffix names the copy of a binary that an install replaced, kept so
// an upgrade can be rolled back.
const PreviousSuffix = ".previous"

// writeFileIfChanged writes data to path atomically (temporary file in the
// same directory, fsync, rename, fsync of the directory) unless the file
// already holds exactly data. It reports whether it wrote.
func writeFileIfChanged(path string, data []byte, mode os.FileMode) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm() == mode.Perm() {
			return false, nil
		}
	}
	if err := writeAtomic(path, bytes.NewReader(data), mode); err != nil {
		return false, err
	}
	return true, nil
}

// writeAtomic writes r to path through a temporary file and a rename, so a
// reader sees either the old or the new content, never a part.
func writeAtomic(path string, r io.Reader, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(mode.Perm()); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return h.Sum(nil), nil
}

// Installer copies moat's host binaries from the agent's image into a
// directory on the host.
type Installer struct {
	SourceDir string   // where the image holds the binaries
	Prefix    string   // the host directory they go to, e.g. /opt/moat/bin
	Binaries  []string // file names, e.g. containerd-shim-moat-v2, moat
}

func checkName(name string) error {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("binary name %q: must be a plain file name", name)
	}
	return nil
}

// Install puts every binary into the prefix. A binary whose installed copy is
// identical is left alone; one that differs is replaced atomically and the
// copy it replaced is kept as NAME.previous. It returns the names it changed.
func (in Installer) Install() (changed []string, err error) {
	if !filepath.IsAbs(in.Prefix) {
		return nil, fmt.Errorf("install prefix %q: must be an absolute path", in.Prefix)
	}
	if err := os.MkdirAll(in.Prefix, 0o755); err != nil {
		return nil, fmt.Errorf("create install prefix %s: %w", in.Prefix, err)
	}
	for _, name := range in.Binaries {
		if err := checkName(name); err != nil {
			return changed, err
		}
		src := filepath.Join(in.SourceDir, name)
		dst := filepath.Join(in.Prefix, name)
		srcSum, err := fileSHA256(src)
		if err != nil {
			return changed, fmt.Errorf("read binary to install %s: %w", src, err)
		}
		dstSum, err := fileSHA256(dst)
		if err == nil && bytes.Equal(srcSum, dstSum) {
			continue
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return changed, fmt.Errorf("read installed binary %s: %w", dst, err)
		}
		f, err := os.Open(src)
		if err != nil {
			return changed, fmt.Errorf("open %s: %w", src, err)
		}
		tmpDst := dst + ".new"
		err = writeAtomic(tmpDst, f, 0o755)
		f.Close()
		if err != nil {
			return changed, err
		}
		if dstSum != nil {
			// Keep the running version as the rollback copy. A hard link keeps
			// dst in place until the rename below replaces it.
			prev := dst + PreviousSuffix
			os.Remove(prev)
			if err := os.Link(dst, prev); err != nil {
				return changed, fmt.Errorf("keep previous version of %s: %w", dst, err)
			}
		}
		if err := os.Rename(tmpDst, dst); err != nil {
			return changed, fmt.Errorf("rename %s to %s: %w", tmpDst, dst, err)
		}
		if err := syncDir(in.Prefix); err != nil {
			return changed, err
		}
		changed = append(changed, name)
	}
	return changed, nil
}

// Rollback puts every NAME.previous back in place of NAME. The version it
// replaces becomes NAME.previous, so a second Rollback undoes the first.
func (in Installer) Rollback() (rolled []string, err error) {
	for _, name := range in.Binaries {
		if err := checkName(name); err != nil {
			return rolled, err
		}
		dst := filepath.Join(in.Prefix, name)
		prev := dst + PreviousSuffix
		if _, err := os.Stat(prev); errors.Is(err, os.ErrNotExist) {
			continue
		}
		swap := dst + ".swap"
		os.Remove(swap)
		if err := os.Link(dst, swap); err != nil && !errors.Is(err, os.ErrNotExist) {
			return rolled, fmt.Errorf("roll back %s: %w", dst, err)
		}
		if err := os.Rename(prev, dst); err != nil {
			return rolled, fmt.Errorf("roll back %s: %w", dst, err)
		}
		if err := os.Rename(swap, prev); err != nil && !errors.Is(err, os.ErrNotExist) {
			return rolled, fmt.Errorf("keep %s: %w", prev, err)
		}
		rolled = append(rolled, name)
	}
	if len(rolled) > 0 {
		return rolled, syncDir(in.Prefix)
	}
	return rolled, nil
}

// Uninstall removes the binaries and their rollback copies, and the prefix
// itself when that leaves it empty.
func (in Installer) Uninstall() (removed []string, err error) {
	for _, name := range in.Binaries {
		if err := checkName(name); err != nil {
			return removed, err
		}
		for _, p := range []string{filepath.Join(in.Prefix, name), filepath.Join(in.Prefix, name+PreviousSuffix)} {
			if err := os.Remove(p); err == nil {
				removed = append(removed, filepath.Base(p))
			} else if !errors.Is(err, os.ErrNotExist) {
				return removed, fmt.Errorf("remove %s: %w", p, err)
			}
		}
	}
	os.Remove(in.Prefix) // only succeeds when empty
	return removed, nil
}
