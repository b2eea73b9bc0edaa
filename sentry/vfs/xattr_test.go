package vfs_test

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/vfs"
)

func TestXattrs(t *testing.T) {
	e := newEnv(t)
	user := auth.User(1000, 1000)
	e.writeFile("/f", "", 0o644)
	e.mkdir("/tmp", 0o1777)
	e.symlink("/f", "/link")
	at := func(p string, follow bool) vfs.VirtualDentry {
		t.Helper()
		pop := e.pop(p)
		pop.FollowFinal = follow
		vd, err := e.v.GetDentryAt(e.ctx, e.cred, pop)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { vd.DecRef(e.ctx) })
		return vd
	}
	f := at("/f", true)
	wantErr(t, "set user.a", e.v.SetxattrAt(e.ctx, e.cred, f, "user.a", []byte("1"), 0), nil)
	wantErr(t, "create existing", e.v.SetxattrAt(e.ctx, e.cred, f, "user.a", []byte("2"), unix.XATTR_CREATE), unix.EEXIST)
	wantErr(t, "replace missing", e.v.SetxattrAt(e.ctx, e.cred, f, "user.b", []byte("2"), unix.XATTR_REPLACE), unix.ENODATA)
	wantErr(t, "set trusted as root", e.v.SetxattrAt(e.ctx, e.cred, f, "trusted.t", []byte("x"), 0), nil)
	if v, err := e.v.GetxattrAt(e.ctx, user, f, "user.a"); err != nil || string(v) != "1" {
		t.Fatalf("get user.a as a reader: %q %v", v, err)
	}
	_, err := e.v.GetxattrAt(e.ctx, user, f, "trusted.t")
	wantErr(t, "get trusted as a user", err, unix.ENODATA)
	wantErr(t, "set user.* without write permission", e.v.SetxattrAt(e.ctx, user, f, "user.c", nil, 0), unix.EACCES)
	wantErr(t, "set trusted.* as a user", e.v.SetxattrAt(e.ctx, user, f, "trusted.u", nil, 0), unix.EPERM)
	wantErr(t, "system.* (ACLs)", e.v.SetxattrAt(e.ctx, e.cred, f, "system.posix_acl_access", nil, 0), unix.EOPNOTSUPP)
	wantErr(t, "no namespace", e.v.SetxattrAt(e.ctx, e.cred, f, "plain", nil, 0), unix.EOPNOTSUPP)
	wantErr(t, "empty name", e.v.SetxattrAt(e.ctx, e.cred, f, "", nil, 0), unix.ERANGE)
	wantErr(t, "long name", e.v.SetxattrAt(e.ctx, e.cred, f, "user."+strings.Repeat("n", 251), nil, 0), unix.ERANGE)
	wantErr(t, "large value", e.v.SetxattrAt(e.ctx, e.cred, f, "user.big", make([]byte, 65537), 0), unix.E2BIG)
	wantErr(t, "user.* on a symlink", e.v.SetxattrAt(e.ctx, e.cred, at("/link", false), "user.a", nil, 0), unix.EPERM)
	wantErr(t, "user.* on another's sticky dir", e.v.SetxattrAt(e.ctx, user, at("/tmp", true), "user.a", nil, 0), unix.EPERM)
	for i := 0; ; i++ {
		err := e.v.SetxattrAt(e.ctx, e.cred, f, "user.fill"+strings.Repeat("x", i%10)+string(rune('a'+i%26))+string(rune('a'+i/26%26)), make([]byte, 4000), 0)
		if err == unix.ENOSPC {
			break
		}
		if err != nil || i > 100 {
			t.Fatalf("filling xattrs: %v after %d", err, i)
		}
	}
	names, err := e.v.ListxattrAt(e.ctx, user, f)
	if err != nil || len(names) == 0 || names[0] != "user.a" {
		t.Fatalf("list as a user: %v %v", names, err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "trusted.") {
			t.Fatalf("a user lists %s", n)
		}
	}
	wantErr(t, "remove", e.v.RemovexattrAt(e.ctx, e.cred, f, "user.a"), nil)
	wantErr(t, "remove again", e.v.RemovexattrAt(e.ctx, e.cred, f, "user.a"), unix.ENODATA)
}
