// Package sock holds what every socket family of the sentry shares: the
// Socket interface the syscall layer drives, the identity of the caller,
// control messages, the inode that fstat reports for a socket, the
// options every socket keeps in the sentry (timeouts), and the binary
// layouts of the socket calls.
//
// The families live in subpackages: unixsock (AF_UNIX, the sentry's own)
// and hostinet (AF_INET and AF_INET6 on host sockets). Like every file of
// the sentry, a socket never blocks: an operation that would wait returns
// unix.EAGAIN (or unix.EINPROGRESS for a connect) and notifies its waiter
// queue when that may have changed; the syscall layer waits.
package sock

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/vfs"
)

// Cred is a process identity as SO_PEERCRED and SCM_CREDENTIALS carry it.
type Cred struct {
	PID int32
	UID uint32
	GID uint32
}

// Caller is the task making a socket call, as far as a socket needs to
// know it.
type Caller interface {
	// Ctx is the task's context.
	Ctx() context.Context
	// VFS is the filesystem tree the caller sees.
	VFS() *vfs.VirtualFilesystem
	// FSCreds are what the VFS checks permissions with.
	FSCreds() *auth.Credentials
	// Cred is the caller's process identity (tgid, euid, egid).
	Cred() Cred
	// PathOp resolves path like an *at call with AT_FDCWD.
	PathOp(path string, follow bool) (vfs.PathOperation, func(), error)
	// Umask is the caller's file mode creation mask.
	Umask() uint32
	// HasCap says whether the caller holds a capability (by number).
	HasCap(c auth.Capability) bool
}

// Control is the ancillary data of one message: the files of
// SCM_RIGHTS (each holding a reference that whoever takes the message
// owns), the credentials of SCM_CREDENTIALS, and the inet messages
// (IP_PKTINFO, IPV6_PKTINFO) that pass as bytes once checked.
type Control struct {
	Rights []*vfs.File
	Cred   *Cred
	Inet   []Cmsg
}

// Cmsg is one control message other than files and credentials.
type Cmsg struct {
	Level, Type int
	Data        []byte
}

// Release drops the references of files that were never delivered.
func (c *Control) Release(ctx context.Context) {
	for _, f := range c.Rights {
		f.DecRef(ctx)
	}
	c.Rights = nil
}

// Empty says whether there is nothing to deliver.
func (c *Control) Empty() bool { return len(c.Rights) == 0 && c.Cred == nil && len(c.Inet) == 0 }

// SendOptions are the arguments of one send.
type SendOptions struct {
	// To is the destination address as the guest wrote it (nil: none).
	To []byte
	// Control is what the message carries besides data; the socket takes
	// the references of Control.Rights when the send succeeds.
	Control Control
	// Flags are the MSG_* flags.
	Flags int
}

// RecvResult is what one receive returns besides the data.
type RecvResult struct {
	// N is how many bytes were copied; MsgLen is the length of the
	// whole message (larger than N for a truncated datagram).
	N      int
	MsgLen int
	// From is the sender's address in the guest's format (nil: none).
	From []byte
	// Control is the ancillary data received; the caller installs or
	// releases it.
	Control Control
	// Flags are the msg_flags to report (MSG_TRUNC, MSG_CTRUNC, MSG_EOR).
	Flags int
}

// Socket is an open socket. Every method validates its arguments: the
// bytes of an address come from the guest as they are.
type Socket interface {
	vfs.FileImpl
	// Family, Type and Protocol are what socket(2) was called with.
	Family() int
	Type() int
	Protocol() int
	// Base returns the options kept for every socket.
	Base() *Base

	Bind(c Caller, addr []byte) error
	Listen(c Caller, backlog int) error
	// Accept takes a pending connection and returns its file (with the
	// status flags of flags: O_NONBLOCK) and the peer's address, or
	// unix.EAGAIN if none is pending.
	Accept(c Caller, flags uint32) (*vfs.File, []byte, error)
	// Connect connects to addr. unix.EINPROGRESS means the connection
	// goes on: wait for EventOut and ask ConnectResult. unix.EAGAIN means
	// it cannot start yet (a full backlog): try again later.
	Connect(c Caller, addr []byte) error
	// ConnectResult is the outcome of a connection that went on.
	ConnectResult() error
	Shutdown(how int) error
	// SockName and PeerName return addresses in the guest's format.
	SockName() ([]byte, error)
	PeerName() ([]byte, error)
	// SendMsg sends data; it returns how much went, or unix.EAGAIN if
	// nothing could go now.
	SendMsg(c Caller, data []byte, opts *SendOptions) (int, error)
	// RecvMsg receives into data; unix.EAGAIN if nothing waits.
	RecvMsg(c Caller, data []byte, flags int) (RecvResult, error)
	// SetSockOpt and GetSockOpt handle the options of the family; the
	// syscall layer handles those of Base. size is the room the caller
	// gave for the value.
	SetSockOpt(c Caller, level, name int, val []byte) error
	GetSockOpt(c Caller, level, name int, size int) ([]byte, error)
}

// Base holds the options the syscall layer keeps for every socket: the
// receive and send timeouts (SO_RCVTIMEO, SO_SNDTIMEO), which it applies
// itself because sockets never block.
type Base struct {
	rcvTimeo atomic.Int64 // nanoseconds, 0: none
	sndTimeo atomic.Int64
}

// Timeouts returns the receive and send timeouts (0: none).
func (b *Base) Timeouts() (rcv, snd time.Duration) {
	return time.Duration(b.rcvTimeo.Load()), time.Duration(b.sndTimeo.Load())
}

// SetTimeout sets the receive (send false) or send timeout.
func (b *Base) SetTimeout(send bool, d time.Duration) {
	if send {
		b.sndTimeo.Store(int64(d))
	} else {
		b.rcvTimeo.Store(int64(d))
	}
}

// Inode is what fstat reports for a socket: a file of type S_IFSOCK on
// the sentry's socket filesystem.
type Inode struct {
	ino uint64
	mu  sync.Mutex
	st  vfs.Stat
}

var (
	sockDev  = vfs.NewAnonDev()
	nextIno  atomic.Uint64
	pageSize = int64(4096)
)

// NewInode returns the inode of a new socket owned by creds.
func NewInode(creds *auth.Credentials) *Inode {
	now := vfs.Now()
	i := &Inode{ino: nextIno.Add(1)}
	i.st = vfs.Stat{
		Dev: sockDev, Ino: i.ino, Mode: unix.S_IFSOCK | 0o777, Nlink: 1,
		UID: creds.UID, GID: creds.GID, Blksize: pageSize,
		Atime: now, Mtime: now, Ctime: now, Btime: now,
	}
	return i
}

// Stat implements vfs.Inode.
func (i *Inode) Stat(context.Context) (vfs.Stat, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.st, nil
}

// SetStat implements vfs.Inode.
func (i *Inode) SetStat(_ context.Context, s vfs.SetStat) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if s.Mask&vfs.SetMode != 0 {
		i.st.Mode = unix.S_IFSOCK | s.Mode&0o7777
	}
	if s.Mask&vfs.SetUID != 0 {
		i.st.UID = s.UID
	}
	if s.Mask&vfs.SetGID != 0 {
		i.st.GID = s.GID
	}
	if s.Mask&vfs.SetAtime != 0 {
		i.st.Atime = s.Atime
	}
	if s.Mask&vfs.SetMtime != 0 {
		i.st.Mtime = s.Mtime
	}
	if s.Mask&vfs.SetCtime != 0 {
		i.st.Ctime = s.Ctime
	} else {
		i.st.Ctime = vfs.Now()
	}
	return nil
}

// Open implements vfs.Inode: a socket is never opened by name.
func (i *Inode) Open(context.Context, uint32) (vfs.FileImpl, error) {
	return nil, unix.ENXIO
}

// NewFile wraps s in a File for the caller: readable, writable, a stream
// (no offset), with O_NONBLOCK from flags.
func NewFile(c Caller, s Socket, flags uint32) (*vfs.File, error) {
	return c.VFS().NewAnonFile(c.Ctx(), NewInode(c.FSCreds()), s, unix.O_RDWR|flags&unix.O_NONBLOCK, true)
}

// FromFile returns the socket behind f, or nil if f is not a socket.
func FromFile(f *vfs.File) Socket {
	s, _ := f.Impl().(Socket)
	return s
}

// The capabilities socket calls check, numbered as in Linux.
const (
	CapNetBindService auth.Capability = 10
	CapNetAdmin       auth.Capability = 12
	CapNetRaw         auth.Capability = 13
)
