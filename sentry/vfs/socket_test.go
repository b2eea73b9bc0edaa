package vfs_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/vfs"
)

func TestUnixSocketBinding(t *testing.T) {
	e := newEnv(t)
	e.mkdir("/run", 0o755)
	type endpoint struct{ name string }
	ep := &endpoint{"server"}
	b, err := e.v.BindSocket(e.ctx, e.cred, e.pop("/run/s.sock"), 0o755, ep)
	if err != nil {
		t.Fatalf("bind: %v", err)
	}
	if st := e.stat("/run/s.sock"); st.Type() != unix.S_IFSOCK || st.Mode&0o777 != 0o755 {
		t.Fatalf("socket node mode %#o", st.Mode)
	}
	_, err = e.v.BindSocket(e.ctx, e.cred, e.pop("/run/s.sock"), 0o755, ep)
	wantErr(t, "bind to an existing path", err, unix.EADDRINUSE)
	e.symlink("/run/s.sock", "/link")
	got, err := e.v.ConnectSocket(e.ctx, e.cred, e.pop("/link"))
	if err != nil || got != ep {
		t.Fatalf("connect through a symlink: %v, %v", got, err)
	}
	_, err = e.v.ConnectSocket(e.ctx, auth.User(1000, 1000), e.pop("/run/s.sock"))
	wantErr(t, "connect without write permission", err, unix.EACCES)
	e.writeFile("/file", "", 0o666)
	_, err = e.v.ConnectSocket(e.ctx, e.cred, e.pop("/file"))
	wantErr(t, "connect to a regular file", err, unix.ECONNREFUSED)
	b.Release()
	_, err = e.v.ConnectSocket(e.ctx, e.cred, e.pop("/run/s.sock"))
	wantErr(t, "connect after the socket closed", err, unix.ECONNREFUSED)
	_, err = e.v.Open(e.ctx, e.cred, e.pop("/run/s.sock"), vfs.OpenOptions{})
	wantErr(t, "open of a socket node", err, unix.ENXIO)
}
