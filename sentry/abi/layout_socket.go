package abi

import "encoding/binary"

var be = binary.BigEndian

// SockaddrInet4Size is the size of struct sockaddr_in.
const SockaddrInet4Size = 16

// SockaddrInet4 is struct sockaddr_in. Port is in host order here; the
// encoding is big-endian, as on the wire.
type SockaddrInet4 struct {
	Family uint16  // 0: AF_INET
	Port   uint16  // 2, big-endian
	Addr   [4]byte // 4; 8 zero bytes follow
}

// Marshal writes s into b[:SockaddrInet4Size].
func (s *SockaddrInet4) Marshal(b []byte) {
	b = b[:SockaddrInet4Size]
	clear(b)
	le.PutUint16(b[0:], s.Family)
	be.PutUint16(b[2:], s.Port)
	copy(b[4:], s.Addr[:])
}

// Unmarshal reads s from b[:SockaddrInet4Size].
func (s *SockaddrInet4) Unmarshal(b []byte) {
	b = b[:SockaddrInet4Size]
	s.Family = le.Uint16(b[0:])
	s.Port = be.Uint16(b[2:])
	copy(s.Addr[:], b[4:])
}

// SockaddrInet6Size is the size of struct sockaddr_in6.
const SockaddrInet6Size = 28

// SockaddrInet6 is struct sockaddr_in6. Port and Flowinfo are in host
// order here and big-endian in the encoding.
type SockaddrInet6 struct {
	Family   uint16   // 0: AF_INET6
	Port     uint16   // 2, big-endian
	Flowinfo uint32   // 4, big-endian
	Addr     [16]byte // 8
	ScopeID  uint32   // 24
}

// Marshal writes s into b[:SockaddrInet6Size].
func (s *SockaddrInet6) Marshal(b []byte) {
	b = b[:SockaddrInet6Size]
	le.PutUint16(b[0:], s.Family)
	be.PutUint16(b[2:], s.Port)
	be.PutUint32(b[4:], s.Flowinfo)
	copy(b[8:], s.Addr[:])
	le.PutUint32(b[24:], s.ScopeID)
}

// Unmarshal reads s from b[:SockaddrInet6Size].
func (s *SockaddrInet6) Unmarshal(b []byte) {
	b = b[:SockaddrInet6Size]
	s.Family = le.Uint16(b[0:])
	s.Port = be.Uint16(b[2:])
	s.Flowinfo = be.Uint32(b[4:])
	copy(s.Addr[:], b[8:])
	s.ScopeID = le.Uint32(b[24:])
}

// SockaddrUnixSize is the size of struct sockaddr_un. Callers pass shorter
// addresses: the family and the used part of the path (addrlen).
const SockaddrUnixSize = 2 + UNIX_PATH_MAX

// SockaddrUnix is struct sockaddr_un. A path starting with a NUL names an
// abstract socket; its length then comes from addrlen, not from a NUL.
type SockaddrUnix struct {
	Family uint16              // 0: AF_UNIX
	Path   [UNIX_PATH_MAX]byte // 2
}

// Marshal writes s into b[:SockaddrUnixSize].
func (s *SockaddrUnix) Marshal(b []byte) {
	b = b[:SockaddrUnixSize]
	le.PutUint16(b[0:], s.Family)
	copy(b[2:], s.Path[:])
}

// Unmarshal reads s from b[:SockaddrUnixSize].
func (s *SockaddrUnix) Unmarshal(b []byte) {
	b = b[:SockaddrUnixSize]
	s.Family = le.Uint16(b[0:])
	copy(s.Path[:], b[2:])
}

// LingerSize is the size of struct linger.
const LingerSize = 8

// Linger is struct linger (SO_LINGER).
type Linger struct {
	Onoff  int32 // 0
	Linger int32 // 4, seconds
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

// UcredSize is the size of struct ucred.
const UcredSize = 12

// Ucred is struct ucred (SO_PEERCRED, SCM_CREDENTIALS).
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

// MsghdrSize is the size of struct msghdr on x86-64.
const MsghdrSize = 56

// Msghdr is struct msghdr (sendmsg(2), recvmsg(2)).
type Msghdr struct {
	Name       uint64 // 0, address of the peer's sockaddr
	Namelen    uint32 // 8; 4 bytes of padding follow
	Iov        uint64 // 16, address of an Iovec array
	Iovlen     uint64 // 24
	Control    uint64 // 32, address of the control messages
	Controllen uint64 // 40
	Flags      int32  // 48; 4 bytes of padding follow
}

// Marshal writes m into b[:MsghdrSize].
func (m *Msghdr) Marshal(b []byte) {
	b = b[:MsghdrSize]
	clear(b)
	le.PutUint64(b[0:], m.Name)
	le.PutUint32(b[8:], m.Namelen)
	le.PutUint64(b[16:], m.Iov)
	le.PutUint64(b[24:], m.Iovlen)
	le.PutUint64(b[32:], m.Control)
	le.PutUint64(b[40:], m.Controllen)
	le.PutUint32(b[48:], uint32(m.Flags))
}

// Unmarshal reads m from b[:MsghdrSize].
func (m *Msghdr) Unmarshal(b []byte) {
	b = b[:MsghdrSize]
	m.Name = le.Uint64(b[0:])
	m.Namelen = le.Uint32(b[8:])
	m.Iov = le.Uint64(b[16:])
	m.Iovlen = le.Uint64(b[24:])
	m.Control = le.Uint64(b[32:])
	m.Controllen = le.Uint64(b[40:])
	m.Flags = int32(le.Uint32(b[48:]))
}

// MmsghdrSize is the size of struct mmsghdr (sendmmsg(2), recvmmsg(2)).
const MmsghdrSize = 64

// Mmsghdr is struct mmsghdr.
type Mmsghdr struct {
	Hdr Msghdr // 0
	Len uint32 // 56: bytes sent or received; 4 bytes of padding follow
}

// Marshal writes m into b[:MmsghdrSize].
func (m *Mmsghdr) Marshal(b []byte) {
	b = b[:MmsghdrSize]
	m.Hdr.Marshal(b)
	le.PutUint32(b[56:], m.Len)
	le.PutUint32(b[60:], 0)
}

// Unmarshal reads m from b[:MmsghdrSize].
func (m *Mmsghdr) Unmarshal(b []byte) {
	b = b[:MmsghdrSize]
	m.Hdr.Unmarshal(b)
	m.Len = le.Uint32(b[56:])
}

// CmsghdrSize is the size of struct cmsghdr, the header of each control
// message; its data follows, and the next header starts CmsgAlign bytes on.
const CmsghdrSize = 16

// Cmsghdr is struct cmsghdr.
type Cmsghdr struct {
	Len   uint64 // 0: header plus data, without the final padding (CmsgLen)
	Level int32  // 8: SOL_SOCKET
	Type  int32  // 12: SCM_RIGHTS, SCM_CREDENTIALS
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

// CmsgLen is cmsg_len for n bytes of data (CMSG_LEN).
func CmsgLen(n uint64) uint64 { return CmsghdrSize + n }

// CmsgSpace is the room a control message with n bytes of data takes,
// padding included (CMSG_SPACE).
func CmsgSpace(n uint64) uint64 { return CmsghdrSize + CmsgAlign(n) }
