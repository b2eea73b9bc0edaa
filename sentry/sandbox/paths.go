package sandbox

import (
	"context"
	"errors"
	"fmt"
	"path"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/vfs"
)

// applyPathRules masks and write-protects paths of the container whose
// root is croot, as a runtime does with the OCI spec's linux.maskedPaths
// and linux.readonlyPaths once the container's mounts are in place:
//
//   - a masked directory is covered by an empty read-only tmpfs;
//   - a masked file is covered by the sandbox's /dev/null, not
//     executable (reads give nothing, writes are discarded, exec is
//     refused);
//   - a read-only path is bound over itself read-only.
//
// The paths are the container's (its /proc and /sys included); a path
// that does not exist is skipped.
func (s *Sandbox) applyPathRules(ctx context.Context, croot vfs.VirtualDentry, masked, readOnly []string) error {
	creds := auth.Root()
	podRoot := s.VFS.Root()
	defer podRoot.DecRef(ctx)
	at := func(p string) vfs.PathOperation {
		return vfs.PathOperation{Root: croot, Start: croot, Path: p, FollowFinal: true}
	}
	for _, p := range readOnly {
		p, err := cleanContainerPath(p)
		if err != nil {
			return fmt.Errorf("read-only path: %w", err)
		}
		if _, err := s.VFS.Stat(ctx, creds, at(p)); err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				continue
			}
			return fmt.Errorf("read-only path %s: %w", p, err)
		}
		if err := s.VFS.BindMount(ctx, creds, at(p), at(p), vfs.MountOptions{Flags: vfs.MountReadOnly | vfs.MountNoSuid | vfs.MountNoDev}); err != nil {
			return fmt.Errorf("read-only path %s: %w", p, err)
		}
	}
	for _, p := range masked {
		p, err := cleanContainerPath(p)
		if err != nil {
			return fmt.Errorf("masked path: %w", err)
		}
		st, err := s.VFS.Stat(ctx, creds, at(p))
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				continue
			}
			return fmt.Errorf("masked path %s: %w", p, err)
		}
		if st.Type() == unix.S_IFDIR {
			fs := tmpfs.New(tmpfs.Options{RootMode: 0o755, MaxBytes: 4096})
			err = s.VFS.Mount(ctx, creds, at(p), fs, vfs.MountOptions{Flags: vfs.MountReadOnly | vfs.MountNoSuid | vfs.MountNoDev | vfs.MountNoExec})
		} else {
			null := vfs.PathOperation{Root: podRoot, Start: podRoot, Path: "/dev/null", FollowFinal: true}
			err = s.VFS.BindMount(ctx, creds, null, at(p), vfs.MountOptions{Flags: vfs.MountReadOnly | vfs.MountNoSuid | vfs.MountNoExec})
		}
		if err != nil {
			return fmt.Errorf("masked path %s: %w", p, err)
		}
	}
	return nil
}

// cleanContainerPath checks that p is an absolute path and cleans it.
func cleanContainerPath(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("%q is not an absolute path", p)
	}
	c := path.Clean(p)
	if c == "/" {
		return "", fmt.Errorf("%q names the root", p)
	}
	return c, nil
}
