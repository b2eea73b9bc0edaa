package vfs_test

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/vfs"
)

func TestCheckPermissions(t *testing.T) {
	user := auth.User(1000, 1000, 20)
	root := auth.Root()
	readSearch := &auth.Credentials{UID: 5, GID: 5, Effective: auth.CapSetOf(auth.CapDACReadSearch)}
	const reg, dir = unix.S_IFREG, unix.S_IFDIR
	tests := []struct {
		name     string
		creds    *auth.Credentials
		ats      vfs.AccessTypes
		mode     uint32
		uid, gid uint32
		want     error
	}{
		{"owner reads 0600", user, vfs.MayRead, reg | 0o600, 1000, 1, nil},
		{"owner denied by owner bits though others may", user, vfs.MayRead, reg | 0o066, 1000, 1, unix.EACCES},
		{"group member reads 0040", user, vfs.MayRead, reg | 0o040, 1, 20, nil},
		{"group member denied write", user, vfs.MayWrite, reg | 0o646, 1, 20, unix.EACCES},
		{"other reads 0604", user, vfs.MayRead, reg | 0o604, 1, 1, nil},
		{"other denied 0640", user, vfs.MayRead, reg | 0o640, 1, 1, unix.EACCES},
		{"root writes 0000", root, vfs.MayWrite, reg | 0o000, 1, 1, nil},
		{"root cannot exec without x", root, vfs.MayExec, reg | 0o666, 1, 1, unix.EACCES},
		{"root execs with any x", root, vfs.MayExec, reg | 0o001, 1, 1, nil},
		{"root searches 0000 dir", root, vfs.MayExec, dir | 0o000, 1, 1, nil},
		{"read-search reads", readSearch, vfs.MayRead, reg | 0o000, 1, 1, nil},
		{"read-search searches", readSearch, vfs.MayExec, dir | 0o000, 1, 1, nil},
		{"read-search cannot write", readSearch, vfs.MayWrite, reg | 0o000, 1, 1, unix.EACCES},
		{"read-search cannot exec files", readSearch, vfs.MayExec, reg | 0o000, 1, 1, unix.EACCES},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := vfs.CheckPermissions(tc.creds, tc.ats, tc.mode, tc.uid, tc.gid)
			if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestBindMount(t *testing.T) {
	e := newEnv(t)
	e.mkdir("/src", 0o755)
	e.mkdir("/src/sub", 0o755)
	e.writeFile("/src/sub/f", "bound", 0o644)
	e.mkdir("/dst", 0o755)
	if err := e.v.BindMount(e.ctx, e.cred, e.pop("/src/sub"), e.pop("/dst"), vfs.MountOptions{Flags: vfs.MountReadOnly}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.readFile(e.cred, "/dst/f"); err != nil || got != "bound" {
		t.Fatalf("read through bind mount: %q %v", got, err)
	}
	if st := e.stat("/dst/.."); st.Ino != e.stat("/").Ino {
		t.Fatalf("/dst/.. is not /")
	}
	_, err := e.v.Open(e.ctx, e.cred, e.pop("/dst/f"), vfs.OpenOptions{Flags: unix.O_WRONLY})
	wantErr(t, "write through read-only bind", err, unix.EROFS)
	e.writeFile("/src/sub/g", "new", 0o644)
	if got, _ := e.readFile(e.cred, "/dst/g"); got != "new" {
		t.Fatalf("bind mount does not show a new file: %q", got)
	}
	wantErr(t, "rename across the bind", e.v.Rename(e.ctx, e.cred, e.pop("/dst/f"), e.pop("/src/f"), 0), unix.EXDEV)
}
