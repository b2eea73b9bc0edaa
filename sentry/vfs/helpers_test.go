package vfs_test

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/vfs"
)

// env is a VFS rooted on a tmpfs, for tests.
type env struct {
	t    *testing.T
	ctx  context.Context
	v    *vfs.VirtualFilesystem
	root vfs.VirtualDentry
	cred *auth.Credentials
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	v, err := vfs.New(ctx, tmpfs.New(tmpfs.Options{RootMode: 0o755}), vfs.MountOptions{})
	if err != nil {
		t.Fatalf("vfs.New: %v", err)
	}
	e := &env{t: t, ctx: ctx, v: v, root: v.Root(), cred: auth.Root()}
	t.Cleanup(func() { e.root.DecRef(ctx) })
	return e
}

func (e *env) pop(path string) vfs.PathOperation {
	return vfs.PathOperation{Root: e.root, Start: e.root, Path: path, FollowFinal: true}
}

func (e *env) nofollow(path string) vfs.PathOperation {
	p := e.pop(path)
	p.FollowFinal = false
	return p
}

func (e *env) mkdir(path string, mode uint32) {
	e.t.Helper()
	if err := e.v.Mkdir(e.ctx, e.cred, e.pop(path), mode); err != nil {
		e.t.Fatalf("mkdir %s: %v", path, err)
	}
}

func (e *env) symlink(target, path string) {
	e.t.Helper()
	if err := e.v.Symlink(e.ctx, e.cred, target, e.pop(path)); err != nil {
		e.t.Fatalf("symlink %s -> %s: %v", path, target, err)
	}
}

func (e *env) writeFile(path, data string, mode uint32) {
	e.t.Helper()
	f, err := e.v.Open(e.ctx, e.cred, e.pop(path), vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, Mode: mode})
	if err != nil {
		e.t.Fatalf("create %s: %v", path, err)
	}
	defer f.DecRef(e.ctx)
	if _, err := f.Write(e.ctx, []byte(data)); err != nil {
		e.t.Fatalf("write %s: %v", path, err)
	}
}

func (e *env) readFile(creds *auth.Credentials, path string) (string, error) {
	f, err := e.v.Open(e.ctx, creds, e.pop(path), vfs.OpenOptions{Flags: unix.O_RDONLY})
	if err != nil {
		return "", err
	}
	defer f.DecRef(e.ctx)
	buf := make([]byte, 4096)
	n, err := f.Read(e.ctx, buf)
	return string(buf[:n]), err
}

func (e *env) stat(path string) vfs.Stat {
	e.t.Helper()
	st, err := e.v.Stat(e.ctx, e.cred, e.nofollow(path))
	if err != nil {
		e.t.Fatalf("stat %s: %v", path, err)
	}
	return st
}

// wantErr fails unless err is want (nil for success).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s: %v, want success", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		t.Fatalf("%s: %v is not a unix.Errno", what, err)
	}
}

// readDir reads a whole directory with a buffer of n entries.
func readDir(t *testing.T, ctx context.Context, f *vfs.File, n int) []string {
	t.Helper()
	var names []string
	for {
		got := 0
		if err := f.Getdents(ctx, func(d vfs.Dirent) bool {
			if got == n {
				return false
			}
			got++
			names = append(names, d.Name)
			return true
		}); err != nil {
			t.Fatalf("getdents: %v", err)
		}
		if got == 0 {
			return names
		}
	}
}
