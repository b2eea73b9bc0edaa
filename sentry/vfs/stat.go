package vfs

import (
	"time"

	"golang.org/x/sys/unix"
)

// Stat is a file's metadata, with everything stat(2) and statx(2) report.
type Stat struct {
	Dev     uint64
	Ino     uint64
	Mode    uint32 // type and permission bits
	Nlink   uint64
	UID     uint32
	GID     uint32
	Rdev    uint64
	Size    int64
	Blksize int64
	Blocks  int64 // 512-byte blocks allocated
	Atime   unix.Timespec
	Mtime   unix.Timespec
	Ctime   unix.Timespec
	Btime   unix.Timespec
}

// Type returns the S_IFMT bits of the mode.
func (s *Stat) Type() uint32 { return s.Mode & unix.S_IFMT }

// IsDir says whether the file is a directory.
func (s *Stat) IsDir() bool { return s.Type() == unix.S_IFDIR }

// Which fields a SetStat changes.
const (
	SetMode  uint32 = 1 << iota
	SetUID          // also clears set-user-ID (and set-group-ID on group-executable files) of non-directories
	SetGID          //
	SetSize         //
	SetAtime        //
	SetMtime        //
	SetCtime        // ctime to Ctime (only by the VFS on behalf of the filesystem)
)

// SetStat is a metadata change.
type SetStat struct {
	Mask  uint32
	Mode  uint32 // permission bits (07777), never the type
	UID   uint32
	GID   uint32
	Size  int64
	Atime unix.Timespec
	Mtime unix.Timespec
	Ctime unix.Timespec
}

// Statfs is what statfs(2) reports.
type Statfs struct {
	Type    int64 // filesystem magic, e.g. unix.TMPFS_MAGIC
	Bsize   int64
	Blocks  uint64
	Bfree   uint64
	Bavail  uint64
	Files   uint64
	Ffree   uint64
	NameLen int64
	Frsize  int64
	Flags   int64 // ST_* flags; the VFS adds those of the mount
}

// Now returns the current time as a Timespec.
func Now() unix.Timespec {
	return unix.NsecToTimespec(time.Now().UnixNano())
}
