package abi

import "encoding/binary"

var le = binary.LittleEndian

// StatSize is the size of struct stat on x86-64.
const StatSize = 144

// Stat is struct stat as stat(2), fstat(2), lstat(2) and newfstatat(2) fill
// it on x86-64 (arch/x86/include/uapi/asm/stat.h).
type Stat struct {
	Dev     uint64   // offset 0
	Ino     uint64   // 8
	Nlink   uint64   // 16
	Mode    uint32   // 24
	UID     uint32   // 28
	GID     uint32   // 32; 4 bytes of padding follow
	Rdev    uint64   // 40
	Size    int64    // 48
	Blksize int64    // 56
	Blocks  int64    // 64
	Atime   Timespec // 72
	Mtime   Timespec // 88
	Ctime   Timespec // 104; 24 unused bytes follow
}

// Marshal writes s into b[:StatSize].
func (s *Stat) Marshal(b []byte) {
	b = b[:StatSize]
	clear(b)
	le.PutUint64(b[0:], s.Dev)
	le.PutUint64(b[8:], s.Ino)
	le.PutUint64(b[16:], s.Nlink)
	le.PutUint32(b[24:], s.Mode)
	le.PutUint32(b[28:], s.UID)
	le.PutUint32(b[32:], s.GID)
	le.PutUint64(b[40:], s.Rdev)
	le.PutUint64(b[48:], uint64(s.Size))
	le.PutUint64(b[56:], uint64(s.Blksize))
	le.PutUint64(b[64:], uint64(s.Blocks))
	s.Atime.Marshal(b[72:])
	s.Mtime.Marshal(b[88:])
	s.Ctime.Marshal(b[104:])
}

// Unmarshal reads s from b[:StatSize].
func (s *Stat) Unmarshal(b []byte) {
	b = b[:StatSize]
	s.Dev = le.Uint64(b[0:])
	s.Ino = le.Uint64(b[8:])
	s.Nlink = le.Uint64(b[16:])
	s.Mode = le.Uint32(b[24:])
	s.UID = le.Uint32(b[28:])
	s.GID = le.Uint32(b[32:])
	s.Rdev = le.Uint64(b[40:])
	s.Size = int64(le.Uint64(b[48:]))
	s.Blksize = int64(le.Uint64(b[56:]))
	s.Blocks = int64(le.Uint64(b[64:]))
	s.Atime.Unmarshal(b[72:])
	s.Mtime.Unmarshal(b[88:])
	s.Ctime.Unmarshal(b[104:])
}

// StatxSize is the size of struct statx.
const StatxSize = 256

// StatxTimestamp is struct statx_timestamp (16 bytes).
type StatxTimestamp struct {
	Sec  int64  // 0
	Nsec uint32 // 8; 4 reserved bytes follow
}

// Statx is struct statx (include/uapi/linux/stat.h).
type Statx struct {
	Mask           uint32         // 0
	Blksize        uint32         // 4
	Attributes     uint64         // 8
	Nlink          uint32         // 16
	UID            uint32         // 20
	GID            uint32         // 24
	Mode           uint16         // 28; 2 bytes of padding follow
	Ino            uint64         // 32
	Size           uint64         // 40
	Blocks         uint64         // 48
	AttributesMask uint64         // 56
	Atime          StatxTimestamp // 64
	Btime          StatxTimestamp // 80
	Ctime          StatxTimestamp // 96
	Mtime          StatxTimestamp // 112
	RdevMajor      uint32         // 128
	RdevMinor      uint32         // 132
	DevMajor       uint32         // 136
	DevMinor       uint32         // 140
	MntID          uint64         // 144
	DioMemAlign    uint32         // 152
	DioOffsetAlign uint32         // 156; spare bytes up to 256 follow
}

func (t *StatxTimestamp) marshal(b []byte) {
	le.PutUint64(b[0:], uint64(t.Sec))
	le.PutUint32(b[8:], t.Nsec)
	le.PutUint32(b[12:], 0)
}

func (t *StatxTimestamp) unmarshal(b []byte) {
	t.Sec = int64(le.Uint64(b[0:]))
	t.Nsec = le.Uint32(b[8:])
}

// Marshal writes s into b[:StatxSize].
func (s *Statx) Marshal(b []byte) {
	b = b[:StatxSize]
	clear(b)
	le.PutUint32(b[0:], s.Mask)
	le.PutUint32(b[4:], s.Blksize)
	le.PutUint64(b[8:], s.Attributes)
	le.PutUint32(b[16:], s.Nlink)
	le.PutUint32(b[20:], s.UID)
	le.PutUint32(b[24:], s.GID)
	le.PutUint16(b[28:], s.Mode)
	le.PutUint64(b[32:], s.Ino)
	le.PutUint64(b[40:], s.Size)
	le.PutUint64(b[48:], s.Blocks)
	le.PutUint64(b[56:], s.AttributesMask)
	s.Atime.marshal(b[64:])
	s.Btime.marshal(b[80:])
	s.Ctime.marshal(b[96:])
	s.Mtime.marshal(b[112:])
	le.PutUint32(b[128:], s.RdevMajor)
	le.PutUint32(b[132:], s.RdevMinor)
	le.PutUint32(b[136:], s.DevMajor)
	le.PutUint32(b[140:], s.DevMinor)
	le.PutUint64(b[144:], s.MntID)
	le.PutUint32(b[152:], s.DioMemAlign)
	le.PutUint32(b[156:], s.DioOffsetAlign)
}

// Unmarshal reads s from b[:StatxSize].
func (s *Statx) Unmarshal(b []byte) {
	b = b[:StatxSize]
	s.Mask = le.Uint32(b[0:])
	s.Blksize = le.Uint32(b[4:])
	s.Attributes = le.Uint64(b[8:])
	s.Nlink = le.Uint32(b[16:])
	s.UID = le.Uint32(b[20:])
	s.GID = le.Uint32(b[24:])
	s.Mode = le.Uint16(b[28:])
	s.Ino = le.Uint64(b[32:])
	s.Size = le.Uint64(b[40:])
	s.Blocks = le.Uint64(b[48:])
	s.AttributesMask = le.Uint64(b[56:])
	s.Atime.unmarshal(b[64:])
	s.Btime.unmarshal(b[80:])
	s.Ctime.unmarshal(b[96:])
	s.Mtime.unmarshal(b[112:])
	s.RdevMajor = le.Uint32(b[128:])
	s.RdevMinor = le.Uint32(b[132:])
	s.DevMajor = le.Uint32(b[136:])
	s.DevMinor = le.Uint32(b[140:])
	s.MntID = le.Uint64(b[144:])
	s.DioMemAlign = le.Uint32(b[152:])
	s.DioOffsetAlign = le.Uint32(b[156:])
}

// Dirent64HeaderSize is the size of linux_dirent64 before d_name:
// d_ino (8), d_off (8), d_reclen (2), d_type (1).
const Dirent64HeaderSize = 19

// Dirent64 is one struct linux_dirent64 as getdents64(2) returns it. Name
// is at most NAME_MAX bytes and holds no NUL.
type Dirent64 struct {
	Ino  uint64
	Off  int64 // offset of the next entry, as lseek(2) and telldir(3) see it
	Type uint8 // DT_*
	Name string
}

// Dirent64RecLen returns d_reclen of an entry whose name is nameLen bytes:
// the header, the name, its NUL, rounded up to 8 bytes.
func Dirent64RecLen(nameLen int) int {
	return (Dirent64HeaderSize + nameLen + 1 + 7) &^ 7
}

// Size returns d_reclen for d.
func (d *Dirent64) Size() int { return Dirent64RecLen(len(d.Name)) }

// Marshal writes d into b[:d.Size()], the padding after the name zeroed.
func (d *Dirent64) Marshal(b []byte) {
	n := d.Size()
	b = b[:n]
	le.PutUint64(b[0:], d.Ino)
	le.PutUint64(b[8:], uint64(d.Off))
	le.PutUint16(b[16:], uint16(n))
	b[18] = d.Type
	copy(b[19:], d.Name)
	clear(b[19+len(d.Name):])
}

// Append appends d to buf and returns the extended buffer.
func (d *Dirent64) Append(buf []byte) []byte {
	n := len(buf)
	buf = append(buf, make([]byte, d.Size())...)
	d.Marshal(buf[n:])
	return buf
}

// UnmarshalDirent64 reads the entry at the start of b and returns it with
// its record length. ok is false when b does not start with a whole entry.
func UnmarshalDirent64(b []byte) (d Dirent64, reclen int, ok bool) {
	if len(b) < Dirent64HeaderSize+1 {
		return d, 0, false
	}
	reclen = int(le.Uint16(b[16:]))
	if reclen < Dirent64HeaderSize+1 || reclen > len(b) {
		return d, 0, false
	}
	d.Ino = le.Uint64(b[0:])
	d.Off = int64(le.Uint64(b[8:]))
	d.Type = b[18]
	name := b[19:reclen]
	for i, c := range name {
		if c == 0 {
			name = name[:i]
			break
		}
	}
	d.Name = string(name)
	return d, reclen, true
}

// OpenHowSize is the size of struct open_how, openat2(2)'s argument.
const OpenHowSize = 24

// OpenHow is struct open_how (include/uapi/linux/openat2.h).
type OpenHow struct {
	Flags   uint64 // 0
	Mode    uint64 // 8
	Resolve uint64 // 16
}

// Marshal writes h into b[:OpenHowSize].
func (h *OpenHow) Marshal(b []byte) {
	b = b[:OpenHowSize]
	le.PutUint64(b[0:], h.Flags)
	le.PutUint64(b[8:], h.Mode)
	le.PutUint64(b[16:], h.Resolve)
}

// Unmarshal reads h from b[:OpenHowSize].
func (h *OpenHow) Unmarshal(b []byte) {
	b = b[:OpenHowSize]
	h.Flags = le.Uint64(b[0:])
	h.Mode = le.Uint64(b[8:])
	h.Resolve = le.Uint64(b[16:])
}

// FlockSize is the size of struct flock on x86-64.
const FlockSize = 32

// Flock is struct flock, fcntl(2)'s lock description.
type Flock struct {
	Type   int16 // 0
	Whence int16 // 2; 4 bytes of padding follow
	Start  int64 // 8
	Len    int64 // 16
	PID    int32 // 24; 4 bytes of padding follow
}

// Marshal writes f into b[:FlockSize].
func (f *Flock) Marshal(b []byte) {
	b = b[:FlockSize]
	clear(b)
	le.PutUint16(b[0:], uint16(f.Type))
	le.PutUint16(b[2:], uint16(f.Whence))
	le.PutUint64(b[8:], uint64(f.Start))
	le.PutUint64(b[16:], uint64(f.Len))
	le.PutUint32(b[24:], uint32(f.PID))
}

// Unmarshal reads f from b[:FlockSize].
func (f *Flock) Unmarshal(b []byte) {
	b = b[:FlockSize]
	f.Type = int16(le.Uint16(b[0:]))
	f.Whence = int16(le.Uint16(b[2:]))
	f.Start = int64(le.Uint64(b[8:]))
	f.Len = int64(le.Uint64(b[16:]))
	f.PID = int32(le.Uint32(b[24:]))
}

// IovecSize is the size of struct iovec.
const IovecSize = 16

// Iovec is struct iovec, one buffer of readv(2)/writev(2).
type Iovec struct {
	Base uint64 // 0
	Len  uint64 // 8
}

// Marshal writes v into b[:IovecSize].
func (v *Iovec) Marshal(b []byte) {
	b = b[:IovecSize]
	le.PutUint64(b[0:], v.Base)
	le.PutUint64(b[8:], v.Len)
}

// Unmarshal reads v from b[:IovecSize].
func (v *Iovec) Unmarshal(b []byte) {
	b = b[:IovecSize]
	v.Base = le.Uint64(b[0:])
	v.Len = le.Uint64(b[8:])
}

// StatfsSize is the size of struct statfs on x86-64.
const StatfsSize = 120

// Statfs is struct statfs (statfs(2), fstatfs(2); include/uapi/asm-generic/statfs.h).
type Statfs struct {
	Type    int64    // 0: filesystem magic, TMPFS_MAGIC...
	Bsize   int64    // 8
	Blocks  uint64   // 16
	Bfree   uint64   // 24
	Bavail  uint64   // 32
	Files   uint64   // 40
	Ffree   uint64   // 48
	Fsid    [2]int32 // 56
	Namelen int64    // 64
	Frsize  int64    // 72
	Flags   int64    // 80: ST_* mount flags; 32 spare bytes follow
}

// Marshal writes s into b[:StatfsSize].
func (s *Statfs) Marshal(b []byte) {
	b = b[:StatfsSize]
	clear(b)
	le.PutUint64(b[0:], uint64(s.Type))
	le.PutUint64(b[8:], uint64(s.Bsize))
	le.PutUint64(b[16:], s.Blocks)
	le.PutUint64(b[24:], s.Bfree)
	le.PutUint64(b[32:], s.Bavail)
	le.PutUint64(b[40:], s.Files)
	le.PutUint64(b[48:], s.Ffree)
	le.PutUint32(b[56:], uint32(s.Fsid[0]))
	le.PutUint32(b[60:], uint32(s.Fsid[1]))
	le.PutUint64(b[64:], uint64(s.Namelen))
	le.PutUint64(b[72:], uint64(s.Frsize))
	le.PutUint64(b[80:], uint64(s.Flags))
}

// Unmarshal reads s from b[:StatfsSize].
func (s *Statfs) Unmarshal(b []byte) {
	b = b[:StatfsSize]
	s.Type = int64(le.Uint64(b[0:]))
	s.Bsize = int64(le.Uint64(b[8:]))
	s.Blocks = le.Uint64(b[16:])
	s.Bfree = le.Uint64(b[24:])
	s.Bavail = le.Uint64(b[32:])
	s.Files = le.Uint64(b[40:])
	s.Ffree = le.Uint64(b[48:])
	s.Fsid[0] = int32(le.Uint32(b[56:]))
	s.Fsid[1] = int32(le.Uint32(b[60:]))
	s.Namelen = int64(le.Uint64(b[64:]))
	s.Frsize = int64(le.Uint64(b[72:]))
	s.Flags = int64(le.Uint64(b[80:]))
}

// statfs f_flags (ST_*) and the magic numbers of the filesystems the sentry
// serves (include/uapi/linux/magic.h).
const (
	ST_RDONLY      = 0x0001
	ST_NOSUID      = 0x0002
	ST_NODEV       = 0x0004
	ST_NOEXEC      = 0x0008
	ST_SYNCHRONOUS = 0x0010
	ST_VALID       = 0x0020
	ST_MANDLOCK    = 0x0040
	ST_NOATIME     = 0x0400
	ST_NODIRATIME  = 0x0800
	ST_RELATIME    = 0x1000

	TMPFS_MAGIC           = 0x01021994
	PROC_SUPER_MAGIC      = 0x9fa0
	SYSFS_MAGIC           = 0x62656572
	DEVPTS_SUPER_MAGIC    = 0x1cd1
	PIPEFS_MAGIC          = 0x50495045
	SOCKFS_MAGIC          = 0x534F434B
	OVERLAYFS_SUPER_MAGIC = 0x794c7630
	EXT4_SUPER_MAGIC      = 0xEF53
	CGROUP2_SUPER_MAGIC   = 0x63677270
	ANON_INODE_FS_MAGIC   = 0x09041934
)
