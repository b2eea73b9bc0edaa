package sock

import "encoding/binary"

var le = binary.LittleEndian

// The layouts of the socket calls (sendmsg(2), recvmsg(2), sendmmsg(2),
// cmsg(3), unix(7), ip(7), socket(7)).

// MsghdrSize is the size of struct msghdr on x86-64.
const MsghdrSize = 56

// Msghdr is struct msghdr (struct user_msghdr in the kernel).
type Msghdr struct {
	Name       uint64 // 0
	NameLen    uint32 // 8; 4 bytes of padding follow
	Iov        uint64 // 16
	IovLen     uint64 // 24
	Control    uint64 // 32
	ControlLen uint64 // 40
	Flags      uint32 // 48; 4 bytes of padding follow
}

// Marshal writes m into b[:MsghdrSize].
func (m *Msghdr) Marshal(b []byte) {
	b = b[:MsghdrSize]
	clear(b)
	le.PutUint64(b[0:], m.Name)
	le.PutUint32(b[8:], m.NameLen)
	le.PutUint64(b[16:], m.Iov)
	le.PutUint64(b[24:], m.IovLen)
	le.PutUint64(b[32:], m.Control)
	le.PutUint64(b[40:], m.ControlLen)
	le.PutUint32(b[48:], m.Flags)
}

// Unmarshal reads m from b[:MsghdrSize].
func (m *Msghdr) Unmarshal(b []byte) {
	b = b[:MsghdrSize]
	m.Name = le.Uint64(b[0:])
	m.NameLen = le.Uint32(b[8:])
	m.Iov = le.Uint64(b[16:])
	m.IovLen = le.Uint64(b[24:])
	m.Control = le.Uint64(b[32:])
	m.ControlLen = le.Uint64(b[40:])
	m.Flags = le.Uint32(b[48:])
}

// MmsghdrSize is the size of struct mmsghdr: a msghdr and the length
// sendmmsg/recvmmsg store for it.
const MmsghdrSize = 64

// MmsghdrLenOffset is the offset of msg_len in struct mmsghdr.
const MmsghdrLenOffset = MsghdrSize

// CmsghdrSize is the size of struct cmsghdr, the header of one control
// message; the data follows it, and the next header starts at the next
// multiple of 8.
const CmsghdrSize = 16

// Cmsghdr is struct cmsghdr.
type Cmsghdr struct {
	Len   uint64 // 0: header and data, without the final padding
	Level int32  // 8
	Type  int32  // 12
}

// Marshal writes c into b[:CmsghdrSize].
func (c *Cmsghdr) Marshal(b []byte) {
	b = b[:CmsghdrSize]
	le.PutUint64(b[0:], c.Len)
	le.PutUint32(b[8:], uint32(c.Level))
	le.PutUint32(b[12:], uint32(c.Type))
}

// Unmarshal reads c from b[:CmsghdrSize].
func (c *Cmsghdr) Unmarshal(b []byte) {
	b = b[:CmsghdrSize]
	c.Len = le.Uint64(b[0:])
	c.Level = int32(le.Uint32(b[8:]))
	c.Type = int32(le.Uint32(b[12:]))
}

// CmsgAlign rounds n up to the alignment of control messages (CMSG_ALIGN).
func CmsgAlign(n uint64) uint64 { return (n + 7) &^ 7 }

// CmsgSpace is CMSG_SPACE: the room a control message with n data bytes
// takes, padding included.
func CmsgSpace(n uint64) uint64 { return CmsghdrSize + CmsgAlign(n) }

// CmsgLen is CMSG_LEN: the cmsg_len of a message with n data bytes.
func CmsgLen(n uint64) uint64 { return CmsghdrSize + n }

// UcredSize is the size of struct ucred (SO_PEERCRED, SCM_CREDENTIALS).
const UcredSize = 12

// Ucred is struct ucred.
type Ucred struct {
	PID int32  // 0
	UID uint32 // 4
	GID uint32 // 8
}

// Marshal writes u into b[:UcredSize].
func (u *Ucred) Marshal(b []byte) {
	b = b[:UcredSize]
	le.PutUint32(b[0:], uint32(u.PID))
	le.PutUint32(b[4:], u.UID)
	le.PutUint32(b[8:], u.GID)
}

// Unmarshal reads u from b[:UcredSize].
func (u *Ucred) Unmarshal(b []byte) {
	b = b[:UcredSize]
	u.PID = int32(le.Uint32(b[0:]))
	u.UID = le.Uint32(b[4:])
	u.GID = le.Uint32(b[8:])
}

// LingerSize is the size of struct linger (SO_LINGER).
const LingerSize = 8

// Linger is struct linger.
type Linger struct {
	Onoff  int32 // 0
	Linger int32 // 4
}

// Marshal writes l into b[:LingerSize].
func (l *Linger) Marshal(b []byte) {
	b = b[:LingerSize]
	le.PutUint32(b[0:], uint32(l.Onoff))
	le.PutUint32(b[4:], uint32(l.Linger))
}

// Unmarshal reads l from b[:LingerSize].
func (l *Linger) Unmarshal(b []byte) {
	b = b[:LingerSize]
	l.Onoff = int32(le.Uint32(b[0:]))
	l.Linger = int32(le.Uint32(b[4:]))
}

// Socket address sizes.
const (
	// SockaddrFamilySize is the size of sa_family_t, which every socket
	// address starts with.
	SockaddrFamilySize = 2
	// SockaddrUnixSize is the size of struct sockaddr_un; sun_path holds
	// at most UnixPathMax bytes.
	SockaddrUnixSize = 110
	UnixPathMax      = 108
	// SockaddrInetSize is the size of struct sockaddr_in.
	SockaddrInetSize = 16
	// SockaddrInet6Size is the size of struct sockaddr_in6; Linux accepts
	// the older 24-byte form without sin6_scope_id (SIN6_LEN_RFC2133).
	SockaddrInet6Size    = 28
	SockaddrInet6MinSize = 24
	// SockaddrStorageSize is the size of struct sockaddr_storage, the
	// largest address any call takes.
	SockaddrStorageSize = 128
)
