// Package unixsock implements AF_UNIX sockets inside the sentry: stream,
// datagram and seqpacket sockets, socketpair, names in the VFS (a socket
// file that connect resolves) and in the abstract namespace, listen and
// accept with a backlog, SCM_RIGHTS (the sentry's own open files pass
// between processes) and SCM_CREDENTIALS, SO_PEERCRED, shutdown, and
// readiness for poll and epoll. Nothing here touches a host socket.
package unixsock

import (
	"context"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/fs/sock"
	"moat.dev/moat/sentry/vfs"
	"moat.dev/moat/sentry/waiter"
)

// Limits, as Linux's defaults.
const (
	// DefaultBuf is the default SO_RCVBUF and SO_SNDBUF
	// (net.core.rmem_default).
	DefaultBuf = 212992
	// MaxBuf bounds SO_RCVBUF and SO_SNDBUF (twice net.core.rmem_max).
	MaxBuf = 2 * DefaultBuf
	minBuf = 4608
	// MaxBacklog is net.core.somaxconn.
	MaxBacklog = abi.SOMAXCONN
	// maxDgramQueue bounds the datagrams waiting on one socket.
	maxDgramQueue = 512
	// MaxRights is SCM_MAX_FD: the files one message may carry.
	MaxRights = abi.SCM_MAX_FD
	fionread  = 0x541b
	// overflowID is the uid and gid reported for an unknown sender
	// (/proc/sys/kernel/overflowuid).
	overflowID = 65534
	siocoutq   = 0x5411
)

type state int

const (
	stateNone state = iota
	stateConnecting
	stateConnected
	stateListening
)

type message struct {
	data []byte
	ctl  sock.Control
	from addr
}

// Socket is one AF_UNIX socket.
type Socket struct {
	vfs.FileDefaults
	base  sock.Base
	ns    *Namespace
	typ   int
	queue waiter.Queue

	// mu guards what follows. Two sockets' mu are never held at once.
	mu      sync.Mutex
	state   state
	local   addr
	binding bool // a bind is making the name
	pathKey *pathKey
	// peer is the other end of a connection, or a datagram socket's
	// default destination.
	peer *Socket
	// rcvShut: nothing more will arrive; sndShut: nothing more may be
	// sent. A connection's end sets both on the other side.
	rcvShut, sndShut bool
	recvQ            []*message
	recvBytes        int
	backlog          int
	pending          []*Socket
	peerCred         sock.Cred
	hasPeerCred      bool
	listenCred       sock.Cred
	passcred         bool
	rcvbuf, sndbuf   int
	closed           bool
	// blocked holds the sockets that found no room in recvQ, to wake
	// when room appears.
	blocked map[*Socket]struct{}
	opts    map[int]int32 // SOL_SOCKET options stored without effect
	// err is the pending socket error (SO_ERROR): ECONNRESET when the
	// peer closed with data unread.
	err    error
	linger [2]int32
}

func newSocket(ns *Namespace, typ int) *Socket {
	return &Socket{ns: ns, typ: typ, rcvbuf: DefaultBuf, sndbuf: DefaultBuf}
}

// New returns an unconnected socket of type typ (SOCK_STREAM,
// SOCK_DGRAM or SOCK_SEQPACKET); protocol must be 0 (or PF_UNIX).
func New(ns *Namespace, typ, protocol int) (*Socket, error) {
	switch typ {
	case unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_SEQPACKET:
	case unix.SOCK_RAW:
		typ = unix.SOCK_DGRAM // Linux treats it as a datagram socket
	default:
		return nil, unix.ESOCKTNOSUPPORT
	}
	if protocol != 0 && protocol != unix.AF_UNIX {
		return nil, unix.EPROTONOSUPPORT
	}
	return newSocket(ns, typ), nil
}

// Pair returns two connected sockets (socketpair), both reporting cred as
// their peer's.
func Pair(ns *Namespace, typ, protocol int, cred sock.Cred) (*Socket, *Socket, error) {
	a, err := New(ns, typ, protocol)
	if err != nil {
		return nil, nil, err
	}
	b := newSocket(ns, a.typ)
	a.peer, b.peer = b, a
	a.state, b.state = stateConnected, stateConnected
	a.peerCred, b.peerCred = cred, cred
	a.hasPeerCred, b.hasPeerCred = true, true
	return a, b, nil
}

func (s *Socket) connectionless() bool { return s.typ == unix.SOCK_DGRAM }

// Family implements sock.Socket.
func (s *Socket) Family() int { return unix.AF_UNIX }

// Type implements sock.Socket.
func (s *Socket) Type() int { return s.typ }

// Protocol implements sock.Socket.
func (s *Socket) Protocol() int { return 0 }

// Base implements sock.Socket.
func (s *Socket) Base() *sock.Base { return &s.base }

// Bind implements sock.Socket.
func (s *Socket) Bind(c sock.Caller, b []byte) error {
	a, auto, err := parseAddr(b)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.local.bound || s.binding || s.closed {
		s.mu.Unlock()
		return unix.EINVAL
	}
	s.binding = true // a concurrent bind fails
	s.mu.Unlock()
	var k *pathKey
	switch {
	case auto || a.abstract:
		a.abstract, a.bound = true, true
		a.name, err = s.ns.bindAbstract(s, a.name, auto)
	case a.name == "":
		err = unix.ENOENT
	default:
		var key pathKey
		key, err = s.ns.bindPath(c, s, a.name)
		k = &key
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.binding = false
	if err != nil {
		return err
	}
	s.local, s.pathKey = a, k
	return nil
}

// Listen implements sock.Socket.
func (s *Socket) Listen(c sock.Caller, backlog int) error {
	if s.connectionless() {
		return unix.EOPNOTSUPP
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.local.bound || (s.state != stateNone && s.state != stateListening) {
		return unix.EINVAL
	}
	s.backlog = min(max(backlog, 0), MaxBacklog)
	if s.state == stateNone {
		s.listenCred = c.Cred()
		s.state = stateListening
	}
	return nil
}

// Accept implements sock.Socket.
func (s *Socket) Accept(c sock.Caller, flags uint32) (*vfs.File, []byte, error) {
	if s.connectionless() {
		return nil, nil, unix.EOPNOTSUPP
	}
	s.mu.Lock()
	if s.state != stateListening {
		s.mu.Unlock()
		return nil, nil, unix.EINVAL
	}
	if len(s.pending) == 0 {
		shut := s.rcvShut
		s.mu.Unlock()
		if shut {
			return nil, nil, unix.EINVAL
		}
		return nil, nil, unix.EAGAIN
	}
	srv := s.pending[0]
	s.pending[0] = nil
	s.pending = s.pending[1:]
	wake := s.blocked
	s.blocked = nil
	s.mu.Unlock()
	for b := range wake {
		b.queue.Notify(waiter.WritableEvents)
	}
	f, err := sock.NewFile(c, srv, flags)
	if err != nil {
		srv.Release(c.Ctx())
		return nil, nil, err
	}
	srv.mu.Lock()
	var peerAddr []byte
	if p := srv.peer; p != nil {
		srv.mu.Unlock()
		p.mu.Lock()
		peerAddr = p.local.bytes()
		p.mu.Unlock()
	} else {
		srv.mu.Unlock()
		peerAddr = addr{}.bytes()
	}
	return f, peerAddr, nil
}

// Connect implements sock.Socket.
func (s *Socket) Connect(c sock.Caller, b []byte) error {
	if len(b) >= sock.SockaddrFamilySize && le16(b) == unix.AF_UNSPEC && s.connectionless() {
		s.mu.Lock()
		s.peer = nil
		s.mu.Unlock()
		return nil
	}
	a, auto, err := parseAddr(b)
	if err != nil {
		return err
	}
	if auto {
		return unix.EINVAL
	}
	target, err := s.ns.lookup(c, a)
	if err != nil {
		return err
	}
	if s.connectionless() {
		return s.connectDgram(target)
	}
	s.mu.Lock()
	switch s.state {
	case stateConnected:
		s.mu.Unlock()
		return unix.EISCONN
	case stateConnecting:
		s.mu.Unlock()
		return unix.EALREADY
	case stateListening:
		s.mu.Unlock()
		return unix.EINVAL
	}
	if s.closed {
		s.mu.Unlock()
		return unix.EBADF
	}
	s.state = stateConnecting
	s.mu.Unlock()

	srv := newSocket(s.ns, s.typ)
	srv.state = stateConnected
	srv.peer = s
	srv.peerCred, srv.hasPeerCred = c.Cred(), true

	target.mu.Lock()
	err = nil
	switch {
	case target.typ != s.typ:
		err = unix.EPROTOTYPE
	case target.closed || target.state != stateListening:
		err = unix.ECONNREFUSED
	case len(target.pending) > target.backlog:
		// Woken when the listener accepts (or goes).
		if target.blocked == nil {
			target.blocked = map[*Socket]struct{}{}
		}
		target.blocked[s] = struct{}{}
		err = unix.EAGAIN
	}
	if err != nil {
		target.mu.Unlock()
		s.mu.Lock()
		s.state = stateNone
		s.mu.Unlock()
		return err
	}
	srv.local = target.local
	srv.passcred = target.passcred
	srv.rcvbuf, srv.sndbuf = target.rcvbuf, target.sndbuf
	listenCred := target.listenCred
	target.pending = append(target.pending, srv)
	target.mu.Unlock()

	s.mu.Lock()
	s.peer = srv
	s.state = stateConnected
	s.peerCred, s.hasPeerCred = listenCred, true
	s.mu.Unlock()
	target.queue.Notify(waiter.ReadableEvents)
	s.queue.Notify(waiter.WritableEvents)
	return nil
}

func (s *Socket) connectDgram(target *Socket) error {
	target.mu.Lock()
	bad := target.typ != s.typ
	closed := target.closed
	target.mu.Unlock()
	if bad {
		return unix.EPROTOTYPE
	}
	if closed {
		return unix.ECONNREFUSED
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peer = target
	return nil
}

// ConnectResult implements sock.Socket: a unix connect never goes on in
// the background.
func (s *Socket) ConnectResult() error { return nil }

// Shutdown implements sock.Socket.
func (s *Socket) Shutdown(how int) error {
	var rd, wr bool
	switch how {
	case unix.SHUT_RD:
		rd = true
	case unix.SHUT_WR:
		wr = true
	case unix.SHUT_RDWR:
		rd, wr = true, true
	default:
		return unix.EINVAL
	}
	// Linux lets any unix socket shut down, connected or not.
	s.mu.Lock()
	if rd {
		s.rcvShut = true
	}
	if wr {
		s.sndShut = true
	}
	peer := s.peer
	if s.state != stateConnected {
		peer = nil
	}
	s.mu.Unlock()
	s.queue.Notify(waiter.AllEvents)
	if peer == nil || s.connectionless() {
		return nil
	}
	peer.mu.Lock()
	if peer.peer == s {
		if wr {
			peer.rcvShut = true
		}
		if rd {
			peer.sndShut = true
		}
	}
	peer.mu.Unlock()
	peer.queue.Notify(waiter.AllEvents)
	return nil
}

// SockName implements sock.Socket.
func (s *Socket) SockName() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.local.bytes(), nil
}

// PeerName implements sock.Socket.
func (s *Socket) PeerName() ([]byte, error) {
	s.mu.Lock()
	p := s.peer
	connected := s.state == stateConnected || (s.connectionless() && p != nil)
	s.mu.Unlock()
	if !connected || p == nil {
		return nil, unix.ENOTCONN
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.local.bytes(), nil
}

// Release implements vfs.FileImpl: the last close of the socket.
func (s *Socket) Release(ctx context.Context) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	peer := s.peer
	s.peer = nil
	q := s.recvQ
	s.recvQ, s.recvBytes = nil, 0
	pending := s.pending
	s.pending = nil
	local, key := s.local, s.pathKey
	blocked := s.blocked
	s.blocked = nil
	s.rcvShut, s.sndShut = true, true
	s.mu.Unlock()

	if local.bound {
		s.ns.unbind(s, local, key)
	}
	for _, m := range q {
		m.ctl.Release(ctx)
	}
	for _, p := range pending {
		p.Release(ctx)
	}
	if peer != nil && !s.connectionless() {
		peer.mu.Lock()
		if peer.peer == s {
			peer.rcvShut, peer.sndShut = true, true
			if len(q) > 0 {
				// Data the closing end never read: the peer learns
				// its data was lost.
				peer.err = unix.ECONNRESET
			}
		}
		peer.mu.Unlock()
		peer.queue.Notify(waiter.AllEvents)
	}
	for b := range blocked {
		b.queue.Notify(waiter.WritableEvents | waiter.EventErr)
	}
	s.queue.Notify(waiter.AllEvents)
}

// roomLocked returns how many more bytes the receive queue takes from a
// sender whose SO_SNDBUF is sndbuf: a stream's bytes in flight count
// against the larger of the sender's SO_SNDBUF and the receiver's
// SO_RCVBUF (Linux counts them against the sender's), a datagram's
// against the receiver's.
//
// Preconditions: s.mu is held.
func (s *Socket) roomLocked(sndbuf int) int {
	if s.connectionless() {
		if len(s.recvQ) >= maxDgramQueue {
			return 0
		}
		return max(s.rcvbuf-s.recvBytes, 0)
	}
	return max(max(s.rcvbuf, sndbuf)-s.recvBytes, 0)
}

// writableLocked says whether a sender of type typ with SO_SNDBUF sndbuf
// should be told it may write: any room for a stream (its writes may be
// partial), a quarter of the buffer for messages, which go whole, as
// Linux decides.
//
// Preconditions: s.mu is held.
func (s *Socket) writableLocked(typ, sndbuf int) bool {
	room := s.roomLocked(sndbuf)
	if typ == unix.SOCK_STREAM {
		return room > 0
	}
	return room >= s.rcvbuf/4 || (room > 0 && s.recvBytes == 0)
}

// Read implements vfs.FileImpl.
func (s *Socket) Read(ctx context.Context, p []byte, _ int64) (int, error) {
	r, err := s.recv(ctx, p, 0)
	if err != nil {
		return 0, err
	}
	r.Control.Release(ctx)
	return r.N, nil
}

// Write implements vfs.FileImpl.
func (s *Socket) Write(ctx context.Context, p []byte, _ int64) (int, error) {
	return s.send(nil, p, &sock.SendOptions{})
}

// SendMsg implements sock.Socket.
func (s *Socket) SendMsg(c sock.Caller, data []byte, opts *sock.SendOptions) (int, error) {
	if opts.Flags&unix.MSG_OOB != 0 {
		return 0, unix.EOPNOTSUPP
	}
	return s.send(c, data, opts)
}

// send delivers data. On success the socket owns opts.Control.
func (s *Socket) send(c sock.Caller, data []byte, opts *sock.SendOptions) (int, error) {
	if len(opts.Control.Rights) > MaxRights {
		return 0, unix.EINVAL
	}
	// A write through the file alone (splice, sendfile) knows no
	// sender: it claims nobody's identity.
	from := sock.Cred{UID: overflowID, GID: overflowID}
	if c != nil {
		from = c.Cred()
	}
	s.mu.Lock()
	if s.sndShut && (s.connectionless() || s.state == stateConnected) {
		s.mu.Unlock()
		return 0, unix.EPIPE
	}
	local := s.local
	peer := s.peer
	st := s.state
	sndbuf := s.sndbuf
	s.mu.Unlock()

	var target *Socket
	if s.connectionless() {
		if opts.To != nil {
			a, auto, err := parseAddr(opts.To)
			if err != nil {
				return 0, err
			}
			if auto {
				return 0, unix.EINVAL
			}
			if c == nil {
				return 0, unix.EDESTADDRREQ
			}
			if target, err = s.ns.lookup(c, a); err != nil {
				return 0, err
			}
		} else if peer != nil {
			target = peer
		} else {
			return 0, unix.ENOTCONN
		}
		if len(data) > sndbuf-32 {
			return 0, unix.EMSGSIZE
		}
	} else {
		if opts.To != nil {
			if st == stateConnected {
				return 0, unix.EISCONN
			}
			return 0, unix.EOPNOTSUPP
		}
		if st != stateConnected || peer == nil {
			return 0, unix.ENOTCONN
		}
		target = peer
		if s.typ == unix.SOCK_SEQPACKET && len(data) > sndbuf-32 {
			return 0, unix.EMSGSIZE
		}
	}

	cred := opts.Control.Cred
	if cred == nil {
		cred = &from
	}
	target.mu.Lock()
	switch {
	case target.closed:
		target.mu.Unlock()
		if s.connectionless() {
			return 0, unix.ECONNREFUSED
		}
		return 0, unix.EPIPE
	case s.connectionless() && target.typ != s.typ:
		target.mu.Unlock()
		return 0, unix.EPROTOTYPE
	case s.connectionless() && target.peer != nil && target.peer != s && target != s:
		target.mu.Unlock()
		return 0, unix.EPERM
	case target.rcvShut:
		target.mu.Unlock()
		return 0, unix.EPIPE
	}
	if s.typ == unix.SOCK_STREAM && len(data) == 0 {
		target.mu.Unlock()
		return 0, nil
	}
	room := target.roomLocked(sndbuf)
	n := len(data)
	fits := room > 0 && (room >= n || target.recvBytes == 0)
	if s.typ == unix.SOCK_STREAM {
		n = min(n, room)
	}
	if !fits {
		if target.blocked == nil {
			target.blocked = map[*Socket]struct{}{}
		}
		target.blocked[s] = struct{}{}
		target.mu.Unlock()
		return 0, unix.EAGAIN
	}
	m := &message{data: append([]byte(nil), data[:n]...), from: local}
	m.ctl.Rights = opts.Control.Rights
	m.ctl.Cred = cred
	target.recvQ = append(target.recvQ, m)
	target.recvBytes += n
	target.mu.Unlock()
	opts.Control.Rights = nil
	target.queue.Notify(waiter.ReadableEvents)
	return n, nil
}

// RecvMsg implements sock.Socket.
func (s *Socket) RecvMsg(c sock.Caller, data []byte, flags int) (sock.RecvResult, error) {
	if flags&unix.MSG_OOB != 0 {
		return sock.RecvResult{}, unix.EOPNOTSUPP
	}
	return s.recv(c.Ctx(), data, flags)
}

func (s *Socket) recv(ctx context.Context, p []byte, flags int) (sock.RecvResult, error) {
	peek := flags&unix.MSG_PEEK != 0
	s.mu.Lock()
	if !s.connectionless() && s.state != stateConnected {
		s.mu.Unlock()
		return sock.RecvResult{}, unix.EINVAL
	}
	if len(s.recvQ) == 0 {
		shut := s.rcvShut
		if err := s.err; err != nil && !peek {
			s.err = nil
			s.mu.Unlock()
			return sock.RecvResult{}, err
		}
		s.mu.Unlock()
		if shut {
			return sock.RecvResult{}, nil
		}
		return sock.RecvResult{}, unix.EAGAIN
	}
	var r sock.RecvResult
	if s.typ != unix.SOCK_STREAM {
		m := s.recvQ[0]
		r.N = copy(p, m.data)
		r.MsgLen = len(m.data)
		r.From = m.from.from()
		if r.N < len(m.data) {
			r.Flags |= unix.MSG_TRUNC
		}
		if s.typ == unix.SOCK_SEQPACKET {
			r.Flags |= unix.MSG_EOR
		}
		r.Control = takeControl(m, peek, s.passcred)
		if !peek {
			s.recvQ[0] = nil
			s.recvQ = s.recvQ[1:]
			s.recvBytes -= len(m.data)
		}
	} else {
		r.From = s.recvQ[0].from.from()
		i := 0
		for i < len(s.recvQ) && r.N < len(p) {
			m := s.recvQ[i]
			if r.N > 0 && len(m.ctl.Rights) > 0 {
				break // files travel with the bytes they were sent with
			}
			if i == 0 {
				r.Control = takeControl(m, peek, s.passcred)
			}
			c := copy(p[r.N:], m.data)
			r.N += c
			if peek {
				i++
				continue
			}
			m.data = m.data[c:]
			s.recvBytes -= c
			if len(m.data) > 0 {
				break
			}
			m.ctl.Release(ctx)
			s.recvQ[i] = nil
			i++
		}
		if !peek {
			s.recvQ = s.recvQ[i:]
		}
		r.MsgLen = r.N
	}
	if len(s.recvQ) == 0 {
		s.recvQ = nil
	}
	var wake map[*Socket]struct{}
	if !peek {
		wake = s.blocked
		s.blocked = nil
	}
	s.mu.Unlock()
	for b := range wake {
		b.queue.Notify(waiter.WritableEvents)
	}
	return r, nil
}

// takeControl returns what message m delivers: its files (taken, or with
// new references for a peek) and, if the receiver asked with
// SO_PASSCRED, the sender's credentials.
//
// Preconditions: the receiver's mu is held.
func takeControl(m *message, peek, passcred bool) sock.Control {
	var c sock.Control
	if len(m.ctl.Rights) > 0 {
		if peek {
			for _, f := range m.ctl.Rights {
				f.IncRef()
			}
			c.Rights = append([]*vfs.File(nil), m.ctl.Rights...)
		} else {
			c.Rights = m.ctl.Rights
			m.ctl.Rights = nil
		}
	}
	if passcred {
		if m.ctl.Cred != nil {
			cr := *m.ctl.Cred
			c.Cred = &cr
		} else {
			c.Cred = &sock.Cred{UID: overflowID, GID: overflowID}
		}
	}
	return c
}

// Readiness implements waiter.Waitable.
func (s *Socket) Readiness(mask waiter.EventMask) waiter.EventMask {
	s.mu.Lock()
	var r waiter.EventMask
	if len(s.recvQ) > 0 || len(s.pending) > 0 {
		r |= waiter.ReadableEvents
	}
	if s.rcvShut {
		r |= waiter.ReadableEvents | waiter.EventRdHUp
	}
	if s.rcvShut && s.sndShut {
		r |= waiter.EventHUp
	}
	if s.err != nil {
		r |= waiter.EventErr
	}
	if !s.connectionless() && s.state == stateNone {
		r |= waiter.EventHUp
	}
	peer := s.peer
	st := s.state
	sndbuf := s.sndbuf
	s.mu.Unlock()
	if mask&waiter.WritableEvents != 0 {
		switch {
		case s.connectionless() && peer == nil:
			r |= waiter.WritableEvents
		case st == stateListening:
		case st == stateNone && !s.connectionless():
			r |= waiter.WritableEvents
		case peer != nil:
			peer.mu.Lock()
			if peer.closed || peer.rcvShut || peer.writableLocked(s.typ, sndbuf) {
				r |= waiter.WritableEvents
			} else {
				if peer.blocked == nil {
					peer.blocked = map[*Socket]struct{}{}
				}
				peer.blocked[s] = struct{}{}
			}
			peer.mu.Unlock()
		}
	}
	return r & (mask | waiter.EventErr | waiter.EventHUp)
}

// EventRegister implements waiter.Waitable.
func (s *Socket) EventRegister(e *waiter.Entry) error {
	s.queue.EventRegister(e)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (s *Socket) EventUnregister(e *waiter.Entry) { s.queue.EventUnregister(e) }

// Ioctl implements vfs.FileImpl: FIONREAD and SIOCOUTQ.
func (s *Socket) Ioctl(ctx context.Context, mem vfs.Memory, cmd uint32, arg uint64) (uint64, error) {
	var v int
	switch cmd {
	case fionread:
		s.mu.Lock()
		if s.state == stateListening {
			s.mu.Unlock()
			return 0, unix.EINVAL
		}
		if s.typ == unix.SOCK_STREAM {
			v = s.recvBytes
		} else if len(s.recvQ) > 0 {
			v = len(s.recvQ[0].data)
		}
		s.mu.Unlock()
	case siocoutq:
		v = 0 // what is sent is at once in the peer's queue
	default:
		return 0, unix.ENOTTY
	}
	b := make([]byte, 4)
	le32put(b, uint32(v))
	return 0, mem.CopyOut(arg, b)
}

func le32put(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func le32(b []byte) int32 {
	return int32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
}
