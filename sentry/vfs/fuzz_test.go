package vfs_test

import (
	"strings"
	"testing"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/vfs"
)

// FuzzResolveStaysInRoot resolves arbitrary paths from a task rooted at
// /jail (a chroot on a mount) in a tree with links that point up, out and
// around, and checks that whatever a path reaches is inside the jail.
func FuzzResolveStaysInRoot(f *testing.F) {
	for _, seed := range []string{
		"../../..", "/up/up/secret", "a/../../../secret", "abs/x", "loop", "/./../jail2",
		"dir/..//..", "rel/../../secret", "up/", "dir/sub/../../up/../secret", "mnt/../../..",
	} {
		f.Add(seed)
	}
	e := newEnv(&testing.T{})
	e.mkdir("/jail", 0o755)
	e.writeFile("/secret", "outside", 0o644)
	e.mkdir("/jail2", 0o755)
	e.mkdir("/jail/dir", 0o755)
	e.mkdir("/jail/dir/sub", 0o755)
	e.mkdir("/jail/mnt", 0o755)
	e.v.Mount(e.ctx, e.cred, e.pop("/jail/mnt"), tmpfs.New(tmpfs.Options{}), vfs.MountOptions{})
	e.symlink("..", "/jail/up")
	e.symlink("/secret", "/jail/abs")
	e.symlink("../secret", "/jail/rel")
	e.symlink("loop", "/jail/loop")
	e.symlink("../../..", "/jail/mnt/out")
	jail, err := e.v.GetDirectoryAt(e.ctx, e.cred, e.pop("/jail"))
	if err != nil {
		f.Fatal(err)
	}
	creds := auth.Root()
	f.Fuzz(func(t *testing.T, path string) {
		for _, start := range []string{"/", "/dir/sub", "/mnt"} {
			sd, err := e.v.GetDentryAt(e.ctx, creds, vfs.PathOperation{Root: jail, Start: jail, Path: start, FollowFinal: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, follow := range []bool{true, false} {
				vd, err := e.v.GetDentryAt(e.ctx, creds, vfs.PathOperation{Root: jail, Start: sd, Path: path, FollowFinal: follow})
				if err != nil {
					continue
				}
				p, ok := e.v.PathOf(jail, vd)
				real, _ := e.v.PathOf(e.root, vd)
				vd.DecRef(e.ctx)
				if !ok || !strings.HasPrefix(real, "/jail") {
					t.Fatalf("%q from %s reached %s (in the jail: %q %v)", path, start, real, p, ok)
				}
			}
			sd.DecRef(e.ctx)
		}
	})
}
