package abi

// open(2) flags of x86-64 (include/uapi/asm-generic/fcntl.h). These are the
// kernel's values: O_LARGEFILE is 0100000 here although the C library
// defines it as 0 on 64-bit systems.
const (
	O_ACCMODE   = 00000003
	O_RDONLY    = 00000000
	O_WRONLY    = 00000001
	O_RDWR      = 00000002
	O_CREAT     = 00000100
	O_EXCL      = 00000200
	O_NOCTTY    = 00000400
	O_TRUNC     = 00001000
	O_APPEND    = 00002000
	O_NONBLOCK  = 00004000
	O_NDELAY    = O_NONBLOCK
	O_DSYNC     = 00010000
	FASYNC      = 00020000
	O_DIRECT    = 00040000
	O_LARGEFILE = 00100000
	O_DIRECTORY = 00200000
	O_NOFOLLOW  = 00400000
	O_NOATIME   = 01000000
	O_CLOEXEC   = 02000000
	O_SYNC      = 04000000 | O_DSYNC
	O_PATH      = 010000000
	O_TMPFILE   = 020000000 | O_DIRECTORY
)

// fcntl(2) commands.
const (
	F_DUPFD         = 0
	F_GETFD         = 1
	F_SETFD         = 2
	F_GETFL         = 3
	F_SETFL         = 4
	F_GETLK         = 5
	F_SETLK         = 6
	F_SETLKW        = 7
	F_SETOWN        = 8
	F_GETOWN        = 9
	F_SETSIG        = 10
	F_GETSIG        = 11
	F_SETOWN_EX     = 15
	F_GETOWN_EX     = 16
	F_GETOWNER_UIDS = 17
	F_OFD_GETLK     = 36
	F_OFD_SETLK     = 37
	F_OFD_SETLKW    = 38
	F_SETLEASE      = 1024
	F_GETLEASE      = 1025
	F_NOTIFY        = 1026
	F_DUPFD_CLOEXEC = 1030
	F_SETPIPE_SZ    = 1031
	F_GETPIPE_SZ    = 1032
	F_ADD_SEALS     = 1033
	F_GET_SEALS     = 1034
	F_GET_RW_HINT   = 1035
	F_SET_RW_HINT   = 1036
)

// File descriptor flags (F_GETFD/F_SETFD), lock types, and seals.
const (
	FD_CLOEXEC = 1

	F_RDLCK = 0
	F_WRLCK = 1
	F_UNLCK = 2

	F_SEAL_SEAL         = 0x0001
	F_SEAL_SHRINK       = 0x0002
	F_SEAL_GROW         = 0x0004
	F_SEAL_WRITE        = 0x0008
	F_SEAL_FUTURE_WRITE = 0x0010
	F_SEAL_EXEC         = 0x0020
)

// flock(2) operations.
const (
	LOCK_SH = 1
	LOCK_EX = 2
	LOCK_NB = 4
	LOCK_UN = 8
)

// The *at(2) family's directory and flags (include/uapi/linux/fcntl.h).
const (
	AT_FDCWD            = -100
	AT_SYMLINK_NOFOLLOW = 0x100
	AT_EACCESS          = 0x200
	AT_REMOVEDIR        = 0x200
	AT_SYMLINK_FOLLOW   = 0x400
	AT_NO_AUTOMOUNT     = 0x800
	AT_EMPTY_PATH       = 0x1000

	AT_STATX_SYNC_TYPE    = 0x6000
	AT_STATX_SYNC_AS_STAT = 0x0000
	AT_STATX_FORCE_SYNC   = 0x2000
	AT_STATX_DONT_SYNC    = 0x4000

	AT_RECURSIVE = 0x8000
)

// renameat2(2) flags.
const (
	RENAME_NOREPLACE = 1
	RENAME_EXCHANGE  = 2
	RENAME_WHITEOUT  = 4
)

// openat2(2) resolve flags (struct open_how's resolve).
const (
	RESOLVE_NO_XDEV       = 0x01
	RESOLVE_NO_MAGICLINKS = 0x02
	RESOLVE_NO_SYMLINKS   = 0x04
	RESOLVE_BENEATH       = 0x08
	RESOLVE_IN_ROOT       = 0x10
	RESOLVE_CACHED        = 0x20
)

// access(2) modes.
const (
	F_OK = 0
	X_OK = 1
	W_OK = 2
	R_OK = 4
)

// lseek(2) whence.
const (
	SEEK_SET  = 0
	SEEK_CUR  = 1
	SEEK_END  = 2
	SEEK_DATA = 3
	SEEK_HOLE = 4
)

// File mode bits (st_mode).
const (
	S_IFMT   = 0170000
	S_IFSOCK = 0140000
	S_IFLNK  = 0120000
	S_IFREG  = 0100000
	S_IFBLK  = 0060000
	S_IFDIR  = 0040000
	S_IFCHR  = 0020000
	S_IFIFO  = 0010000
	S_ISUID  = 0004000
	S_ISGID  = 0002000
	S_ISVTX  = 0001000

	S_IRWXU = 00700
	S_IRUSR = 00400
	S_IWUSR = 00200
	S_IXUSR = 00100
	S_IRWXG = 00070
	S_IRGRP = 00040
	S_IWGRP = 00020
	S_IXGRP = 00010
	S_IRWXO = 00007
	S_IROTH = 00004
	S_IWOTH = 00002
	S_IXOTH = 00001
)

// Directory entry types (linux_dirent64's d_type): the file type bits of
// st_mode shifted right by 12.
const (
	DT_UNKNOWN = 0
	DT_FIFO    = 1
	DT_CHR     = 2
	DT_DIR     = 4
	DT_BLK     = 6
	DT_REG     = 8
	DT_LNK     = 10
	DT_SOCK    = 12
	DT_WHT     = 14
)

// DirentType returns the d_type for a file of mode mode.
func DirentType(mode uint32) uint8 { return uint8((mode & S_IFMT) >> 12) }

// statx(2) mask bits (stx_mask) and attributes.
const (
	STATX_TYPE        = 0x00000001
	STATX_MODE        = 0x00000002
	STATX_NLINK       = 0x00000004
	STATX_UID         = 0x00000008
	STATX_GID         = 0x00000010
	STATX_ATIME       = 0x00000020
	STATX_MTIME       = 0x00000040
	STATX_CTIME       = 0x00000080
	STATX_INO         = 0x00000100
	STATX_SIZE        = 0x00000200
	STATX_BLOCKS      = 0x00000400
	STATX_BASIC_STATS = 0x000007ff
	STATX_BTIME       = 0x00000800
	STATX_MNT_ID      = 0x00001000
	STATX_DIOALIGN    = 0x00002000
	STATX__RESERVED   = 0x80000000

	STATX_ATTR_COMPRESSED = 0x00000004
	STATX_ATTR_IMMUTABLE  = 0x00000010
	STATX_ATTR_APPEND     = 0x00000020
	STATX_ATTR_NODUMP     = 0x00000040
	STATX_ATTR_ENCRYPTED  = 0x00000800
	STATX_ATTR_AUTOMOUNT  = 0x00001000
	STATX_ATTR_MOUNT_ROOT = 0x00002000
	STATX_ATTR_VERITY     = 0x00100000
	STATX_ATTR_DAX        = 0x00200000
)

// PATH_MAX is the longest path, with its NUL, the kernel accepts; NAME_MAX
// the longest file name.
const (
	PATH_MAX = 4096
	NAME_MAX = 255
)

// Limits of pipes.
const (
	PIPE_BUF = 4096
)
