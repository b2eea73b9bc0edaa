package unixsock

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/hostfs"
	"moat.dev/moat/sentry/fs/sock"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// testCaller is a task as the socket code sees it, in a tmpfs tree.
type testCaller struct {
	v     *vfs.VirtualFilesystem
	creds *auth.Credentials
	cred  sock.Cred
}

func (c *testCaller) Ctx() context.Context           { return context.Background() }
func (c *testCaller) VFS() *vfs.VirtualFilesystem    { return c.v }
func (c *testCaller) FSCreds() *auth.Credentials     { return c.creds }
func (c *testCaller) Cred() sock.Cred                { return c.cred }
func (c *testCaller) Umask() uint32                  { return 0o022 }
func (c *testCaller) HasCap(cp auth.Capability) bool { return c.creds.HasCap(cp) }
func (c *testCaller) PathOp(p string, follow bool) (vfs.PathOperation, func(), error) {
	root := c.v.Root()
	root.IncRef()
	return vfs.PathOperation{Root: root, Start: root, Path: p, FollowFinal: follow}, func() {
		root.DecRef(context.Background())
		root.DecRef(context.Background())
	}, nil
}

func newCaller(t *testing.T) *testCaller {
	t.Helper()
	v, err := vfs.New(context.Background(), tmpfs.New(tmpfs.Options{RootMode: 0o1777}), vfs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &testCaller{v: v, creds: auth.Root(), cred: sock.Cred{PID: 7, UID: 0, GID: 0}}
}

func addrOf(path string) []byte {
	return append([]byte{unix.AF_UNIX, 0}, path...)
}

// TestBindMakesSocketFile binds to a path: the name is a S_IFSOCK file
// in the directory, connect finds the socket through it, and after the
// file is unlinked the name leads nowhere.
func TestBindMakesSocketFile(t *testing.T) {
	c := newCaller(t)
	ns := NewNamespace()
	ctx := c.Ctx()
	l, _ := New(ns, unix.SOCK_STREAM, 0)
	defer l.Release(ctx)
	if err := l.Bind(c, addrOf("/srv.sock")); err != nil {
		t.Fatalf("bind /srv.sock: %v", err)
	}
	pop, done, _ := c.PathOp("/", true)
	dir, err := c.v.Open(ctx, c.creds, pop, vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
	done()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	dir.Getdents(ctx, func(d vfs.Dirent) bool {
		if d.Name == "srv.sock" {
			found = d.Type == unix.DT_SOCK
		}
		return true
	})
	dir.DecRef(ctx)
	if !found {
		t.Errorf("srv.sock is not listed as DT_SOCK")
	}
	pop, done, _ = c.PathOp("/srv.sock", false)
	st, err := c.v.Stat(ctx, c.creds, pop)
	done()
	if err != nil || st.Type() != unix.S_IFSOCK || st.Mode&0o777 != 0o755 {
		t.Errorf("stat /srv.sock: mode %o, %v; want a socket with mode 755", st.Mode, err)
	}
	if err := l.Listen(c, 1); err != nil {
		t.Fatal(err)
	}
	// A symbolic link to the socket file leads to the socket.
	pop, done, _ = c.PathOp("/link", false)
	if err := c.v.Symlink(ctx, c.creds, "/srv.sock", pop); err != nil {
		t.Fatal(err)
	}
	done()
	cl, _ := New(ns, unix.SOCK_STREAM, 0)
	defer cl.Release(ctx)
	if err := cl.Connect(c, addrOf("/link")); err != nil {
		t.Fatalf("connect through a symlink: %v", err)
	}
	pop, done, _ = c.PathOp("/srv.sock", false)
	if err := c.v.Unlink(ctx, c.creds, pop); err != nil {
		t.Fatal(err)
	}
	done()
	c2, _ := New(ns, unix.SOCK_STREAM, 0)
	defer c2.Release(ctx)
	if err := c2.Connect(c, addrOf("/srv.sock")); err != unix.ENOENT {
		t.Errorf("connect after unlink: %v, want ENOENT", err)
	}
	// Another socket may bind the name again.
	l2, _ := New(ns, unix.SOCK_STREAM, 0)
	defer l2.Release(ctx)
	if err := l2.Bind(c, addrOf("/srv.sock")); err != nil {
		t.Errorf("bind after unlink: %v", err)
	}
	// A regular file is not a socket.
	pop, done, _ = c.PathOp("/plain", false)
	f, err := c.v.Open(ctx, c.creds, pop, vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_WRONLY, Mode: 0o666})
	done()
	if err != nil {
		t.Fatal(err)
	}
	f.DecRef(ctx)
	if err := c2.Connect(c, addrOf("/plain")); err != unix.ECONNREFUSED {
		t.Errorf("connect to a regular file: %v, want ECONNREFUSED", err)
	}
	// Without write permission on the socket file, connect is refused.
	user := &testCaller{v: c.v, creds: auth.User(1000, 1000), cred: sock.Cred{PID: 8, UID: 1000, GID: 1000}}
	l3, _ := New(ns, unix.SOCK_STREAM, 0)
	defer l3.Release(ctx)
	if err := l3.Bind(c, addrOf("/root-only")); err != nil {
		t.Fatal(err)
	}
	l3.Listen(c, 1)
	c3, _ := New(ns, unix.SOCK_STREAM, 0)
	defer c3.Release(ctx)
	if err := c3.Connect(user, addrOf("/root-only")); err != unix.EACCES {
		t.Errorf("connect without write permission: %v, want EACCES", err)
	}
}

// TestBacklogAndAccept fills a listener's backlog and empties it.
func TestBacklogAndAccept(t *testing.T) {
	c := newCaller(t)
	ns := NewNamespace()
	ctx := c.Ctx()
	l, _ := New(ns, unix.SOCK_SEQPACKET, 0)
	defer l.Release(ctx)
	if err := l.Bind(c, []byte{unix.AF_UNIX, 0}); err != nil {
		t.Fatalf("autobind: %v", err)
	}
	name, _ := l.SockName()
	if len(name) != 2+1+5 || name[2] != 0 {
		t.Fatalf("autobind name %q", name)
	}
	if err := l.Listen(c, 1); err != nil {
		t.Fatal(err)
	}
	var clients []*Socket
	defer func() {
		for _, s := range clients {
			s.Release(ctx)
		}
	}()
	for i := 0; ; i++ {
		s, _ := New(ns, unix.SOCK_SEQPACKET, 0)
		clients = append(clients, s)
		err := s.Connect(c, name)
		if err == unix.EAGAIN {
			if i != 2 {
				t.Errorf("backlog 1 held %d connections, Linux holds 2", i)
			}
			break
		}
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
	}
	if l.Readiness(waiter.EventIn) == 0 {
		t.Errorf("listener with pending connections not readable")
	}
	for range 2 {
		f, peer, err := l.Accept(c, 0)
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
		if !bytes.Equal(peer, []byte{unix.AF_UNIX, 0}) {
			t.Errorf("peer address %q of an unbound client", peer)
		}
		f.DecRef(ctx)
	}
	if _, _, err := l.Accept(c, 0); err != unix.EAGAIN {
		t.Errorf("accept on an empty backlog: %v", err)
	}
	// The accepted sockets are gone: their clients see the end.
	buf := make([]byte, 4)
	if r, err := clients[0].RecvMsg(c, buf, 0); err != nil || r.N != 0 {
		t.Errorf("recv after the server closed: %v %v", r, err)
	}
	if _, err := clients[0].SendMsg(c, []byte("x"), &sock.SendOptions{}); err != unix.EPIPE {
		t.Errorf("send after the server closed: %v, want EPIPE", err)
	}
}

// TestBlockedSenderWakes fills a datagram receiver; the sender is woken
// when the receiver reads.
func TestBlockedSenderWakes(t *testing.T) {
	c := newCaller(t)
	ns := NewNamespace()
	ctx := c.Ctx()
	a, b, err := Pair(ns, unix.SOCK_DGRAM, 0, c.cred)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release(ctx)
	defer b.Release(ctx)
	msg := make([]byte, 1000)
	sent := 0
	for {
		_, err := a.SendMsg(c, msg, &sock.SendOptions{})
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sent++
	}
	if sent == 0 || a.Readiness(waiter.EventOut) != 0 {
		t.Fatalf("sent %d, writable %v", sent, a.Readiness(waiter.EventOut))
	}
	e, ch := waiter.NewChannelEntry(waiter.EventOut)
	a.EventRegister(e)
	defer a.EventUnregister(e)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.RecvMsg(c, make([]byte, 2000), 0)
	}()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked sender was not woken")
	}
	wg.Wait()
	if _, err := a.SendMsg(c, msg, &sock.SendOptions{}); err != nil {
		t.Errorf("send after room appeared: %v", err)
	}
}

// TestRightsInFlightReleased closes a socket with files queued on it:
// their references go.
func TestRightsInFlightReleased(t *testing.T) {
	c := newCaller(t)
	ns := NewNamespace()
	ctx := c.Ctx()
	a, b, _ := Pair(ns, unix.SOCK_STREAM, 0, c.cred)
	x, y, _ := Pair(ns, unix.SOCK_STREAM, 0, c.cred)
	fx, err := sock.NewFile(c, x, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Release(ctx)
	fx.IncRef() // the reference the message takes
	opts := &sock.SendOptions{Control: sock.Control{Rights: []*vfs.File{fx}}}
	if n, err := a.SendMsg(c, []byte("f"), opts); n != 1 || err != nil {
		t.Fatalf("send with a file: %d %v", n, err)
	}
	if len(opts.Control.Rights) != 0 {
		t.Errorf("the socket did not take the file")
	}
	// A peek gives a new reference and leaves the file queued.
	r, err := b.RecvMsg(c, make([]byte, 1), unix.MSG_PEEK)
	if err != nil || len(r.Control.Rights) != 1 {
		t.Fatalf("peek: %v %v", r, err)
	}
	r.Control.Release(ctx)
	a.Release(ctx)
	b.Release(ctx)
	fx.DecRef(ctx) // the last reference: x goes
	x.mu.Lock()
	closed := x.closed
	x.mu.Unlock()
	if !closed {
		t.Errorf("a file queued on a closed socket kept its reference")
	}
	if y.Readiness(waiter.EventHUp) == 0 {
		t.Errorf("x's peer does not see the hang-up")
	}
}

// TestStreamShutdown checks the directions shutdown closes.
func TestStreamShutdown(t *testing.T) {
	c := newCaller(t)
	ns := NewNamespace()
	ctx := c.Ctx()
	a, b, _ := Pair(ns, unix.SOCK_STREAM, 0, c.cred)
	defer a.Release(ctx)
	defer b.Release(ctx)
	if _, err := a.SendMsg(c, []byte("last"), &sock.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Shutdown(unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SendMsg(c, []byte("x"), &sock.SendOptions{}); err != unix.EPIPE {
		t.Errorf("send after SHUT_WR: %v", err)
	}
	if b.Readiness(waiter.EventRdHUp) == 0 {
		t.Errorf("no RDHUP after the peer's SHUT_WR")
	}
	buf := make([]byte, 10)
	if r, err := b.RecvMsg(c, buf, 0); err != nil || string(buf[:r.N]) != "last" {
		t.Errorf("recv: %q %v", buf[:r.N], err)
	}
	if r, err := b.RecvMsg(c, buf, 0); err != nil || r.N != 0 {
		t.Errorf("recv after the data: %v %v, want end of file", r, err)
	}
	// b may still send to a.
	if _, err := b.SendMsg(c, []byte("reply"), &sock.SendOptions{}); err != nil {
		t.Errorf("send the other way: %v", err)
	}
	if err := a.Shutdown(99); err != unix.EINVAL {
		t.Errorf("shutdown(99): %v", err)
	}
}

// TestResetOnUnreadData closes a stream end with data it never read: the
// peer gets ECONNRESET once, then end of file.
func TestResetOnUnreadData(t *testing.T) {
	c := newCaller(t)
	ns := NewNamespace()
	ctx := c.Ctx()
	a, b, _ := Pair(ns, unix.SOCK_STREAM, 0, c.cred)
	defer a.Release(ctx)
	if _, err := a.SendMsg(c, []byte("unread"), &sock.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	b.Release(ctx)
	if a.Readiness(waiter.EventErr) == 0 {
		t.Errorf("no POLLERR after a reset")
	}
	buf := make([]byte, 8)
	if _, err := a.RecvMsg(c, buf, 0); err != unix.ECONNRESET {
		t.Errorf("recv after the reset: %v, want ECONNRESET", err)
	}
	if r, err := a.RecvMsg(c, buf, 0); err != nil || r.N != 0 {
		t.Errorf("second recv: %v %v, want end of file", r, err)
	}
}

// TestConnectWaitsForAccept: a connect that found the backlog full is
// woken when the listener accepts.
func TestConnectWaitsForAccept(t *testing.T) {
	c := newCaller(t)
	ns := NewNamespace()
	ctx := c.Ctx()
	l, _ := New(ns, unix.SOCK_STREAM, 0)
	defer l.Release(ctx)
	l.Bind(c, addrOf("\x00full"))
	l.Listen(c, 0)
	first, _ := New(ns, unix.SOCK_STREAM, 0)
	defer first.Release(ctx)
	if err := first.Connect(c, addrOf("\x00full")); err != nil {
		t.Fatal(err)
	}
	second, _ := New(ns, unix.SOCK_STREAM, 0)
	defer second.Release(ctx)
	if err := second.Connect(c, addrOf("\x00full")); err != unix.EAGAIN {
		t.Fatalf("connect with the backlog full: %v", err)
	}
	e, ch := waiter.NewChannelEntry(waiter.EventOut)
	second.EventRegister(e)
	defer second.EventUnregister(e)
	f, _, err := l.Accept(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.DecRef(ctx)
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting connect was not woken by accept")
	}
	if err := second.Connect(c, addrOf("\x00full")); err != nil {
		t.Errorf("connect after accept: %v", err)
	}
}

// TestSharedHostDirectory binds a socket in a host directory mounted at
// one place and connects through another mount of the same directory:
// two containers of a pod sharing a volume.
func TestSharedHostDirectory(t *testing.T) {
	c := newCaller(t)
	ns := NewNamespace()
	ctx := c.Ctx()
	dir := t.TempDir()
	for _, at := range []string{"/a", "/b"} {
		pop, done, _ := c.PathOp(at, false)
		if err := c.v.Mkdir(ctx, c.creds, pop, 0o755); err != nil {
			t.Fatal(err)
		}
		fs, err := hostfs.New(dir, hostfs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.v.Mount(ctx, c.creds, pop, fs, vfs.MountOptions{}); err != nil {
			t.Fatalf("mount %s: %v", at, err)
		}
		done()
	}
	l, _ := New(ns, unix.SOCK_STREAM, 0)
	defer l.Release(ctx)
	if err := l.Bind(c, addrOf("/a/app.sock")); err != nil {
		t.Fatalf("bind in the host directory: %v", err)
	}
	l.Listen(c, 1)
	cl, _ := New(ns, unix.SOCK_STREAM, 0)
	defer cl.Release(ctx)
	if err := cl.Connect(c, addrOf("/b/app.sock")); err != nil {
		t.Errorf("connect through the other mount: %v", err)
	}
}

// TestStreamSendBuffer: a stream sender's SO_SNDBUF lets more bytes be in
// flight than the receiver's buffer alone.
func TestStreamSendBuffer(t *testing.T) {
	c := newCaller(t)
	ns := NewNamespace()
	ctx := c.Ctx()
	fill := func(a *Socket) int {
		total := 0
		chunk := make([]byte, 64<<10)
		for {
			n, err := a.SendMsg(c, chunk, &sock.SendOptions{})
			total += n
			if err == unix.EAGAIN {
				return total
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b, _ := Pair(ns, unix.SOCK_STREAM, 0, c.cred)
	defer a.Release(ctx)
	defer b.Release(ctx)
	before := fill(a)
	a2, b2, _ := Pair(ns, unix.SOCK_STREAM, 0, c.cred)
	defer a2.Release(ctx)
	defer b2.Release(ctx)
	v := []byte{0, 0, 8, 0} // 512 KiB, doubled and capped
	if err := a2.SetSockOpt(c, unix.SOL_SOCKET, unix.SO_SNDBUF, v); err != nil {
		t.Fatal(err)
	}
	if after := fill(a2); after <= before {
		t.Errorf("with a larger SO_SNDBUF %d bytes went, before %d", after, before)
	}
}
