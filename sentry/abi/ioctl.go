package abi

// ioctl request number encoding (include/uapi/asm-generic/ioctl.h): the
// direction in bits 30..31, the argument size in bits 16..29, the type in
// bits 8..15 and the number in bits 0..7.
const (
	IOC_NONE  = 0
	IOC_WRITE = 1
	IOC_READ  = 2

	IOC_NRBITS   = 8
	IOC_TYPEBITS = 8
	IOC_SIZEBITS = 14
	IOC_DIRBITS  = 2

	IOC_NRSHIFT   = 0
	IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS
	IOC_SIZESHIFT = IOC_TYPESHIFT + IOC_TYPEBITS
	IOC_DIRSHIFT  = IOC_SIZESHIFT + IOC_SIZEBITS
)

// IOC builds an ioctl request number, like the C macro _IOC.
func IOC(dir, typ, nr, size uint32) uint32 {
	return dir<<IOC_DIRSHIFT | typ<<IOC_TYPESHIFT | nr<<IOC_NRSHIFT | size<<IOC_SIZESHIFT
}

// IOCSize returns the argument size encoded in request number req.
func IOCSize(req uint32) uint32 { return req >> IOC_SIZESHIFT & (1<<IOC_SIZEBITS - 1) }

// IOCDir returns the direction encoded in req.
func IOCDir(req uint32) uint32 { return req >> IOC_DIRSHIFT & (1<<IOC_DIRBITS - 1) }

// Terminal and file ioctls of x86-64 (include/uapi/asm-generic/ioctls.h).
const (
	TCGETS          = 0x5401
	TCSETS          = 0x5402
	TCSETSW         = 0x5403
	TCSETSF         = 0x5404
	TCGETA          = 0x5405
	TCSETA          = 0x5406
	TCSETAW         = 0x5407
	TCSETAF         = 0x5408
	TCSBRK          = 0x5409
	TCXONC          = 0x540A
	TCFLSH          = 0x540B
	TIOCEXCL        = 0x540C
	TIOCNXCL        = 0x540D
	TIOCSCTTY       = 0x540E
	TIOCGPGRP       = 0x540F
	TIOCSPGRP       = 0x5410
	TIOCOUTQ        = 0x5411
	TIOCSTI         = 0x5412
	TIOCGWINSZ      = 0x5413
	TIOCSWINSZ      = 0x5414
	TIOCMGET        = 0x5415
	TIOCMBIS        = 0x5416
	TIOCMBIC        = 0x5417
	TIOCMSET        = 0x5418
	TIOCGSOFTCAR    = 0x5419
	TIOCSSOFTCAR    = 0x541A
	FIONREAD        = 0x541B
	TIOCINQ         = FIONREAD
	TIOCLINUX       = 0x541C
	TIOCCONS        = 0x541D
	TIOCGSERIAL     = 0x541E
	TIOCSSERIAL     = 0x541F
	TIOCPKT         = 0x5420
	FIONBIO         = 0x5421
	TIOCNOTTY       = 0x5422
	TIOCSETD        = 0x5423
	TIOCGETD        = 0x5424
	TCSBRKP         = 0x5425
	TIOCSBRK        = 0x5427
	TIOCCBRK        = 0x5428
	TIOCGSID        = 0x5429
	TIOCGRS485      = 0x542E
	TIOCSRS485      = 0x542F
	TIOCGPTN        = 0x80045430
	TIOCSPTLCK      = 0x40045431
	TIOCGDEV        = 0x80045432
	TIOCSIG         = 0x40045436
	TIOCVHANGUP     = 0x5437
	TIOCGPKT        = 0x80045438
	TIOCGPTLCK      = 0x80045439
	TIOCGEXCL       = 0x80045440
	TIOCGPTPEER     = 0x5441
	FIONCLEX        = 0x5450
	FIOCLEX         = 0x5451
	FIOASYNC        = 0x5452
	TIOCSERCONFIG   = 0x5453
	TIOCSERGWILD    = 0x5454
	TIOCSERSWILD    = 0x5455
	TIOCGLCKTRMIOS  = 0x5456
	TIOCSLCKTRMIOS  = 0x5457
	TIOCSERGSTRUCT  = 0x5458
	TIOCSERGETLSR   = 0x5459
	TIOCSERGETMULTI = 0x545A
	TIOCSERSETMULTI = 0x545B
	TIOCMIWAIT      = 0x545C
	TIOCGICOUNT     = 0x545D
	FIOQSIZE        = 0x5460

	// TIOCPKT control bytes.
	TIOCPKT_DATA       = 0
	TIOCPKT_FLUSHREAD  = 1
	TIOCPKT_FLUSHWRITE = 2
	TIOCPKT_STOP       = 4
	TIOCPKT_START      = 8
	TIOCPKT_NOSTOP     = 16
	TIOCPKT_DOSTOP     = 32
	TIOCPKT_IOCTL      = 64
)

// Terminal settings (struct termios fields; include/uapi/asm-generic/termbits*.h).
const (
	// c_cc indices.
	VINTR    = 0
	VQUIT    = 1
	VERASE   = 2
	VKILL    = 3
	VEOF     = 4
	VTIME    = 5
	VMIN     = 6
	VSWTC    = 7
	VSTART   = 8
	VSTOP    = 9
	VSUSP    = 10
	VEOL     = 11
	VREPRINT = 12
	VDISCARD = 13
	VWERASE  = 14
	VLNEXT   = 15
	VEOL2    = 16

	// c_iflag bits.
	IGNBRK  = 0x001
	BRKINT  = 0x002
	IGNPAR  = 0x004
	PARMRK  = 0x008
	INPCK   = 0x010
	ISTRIP  = 0x020
	INLCR   = 0x040
	IGNCR   = 0x080
	ICRNL   = 0x100
	IUCLC   = 0x0200
	IXON    = 0x0400
	IXANY   = 0x0800
	IXOFF   = 0x1000
	IMAXBEL = 0x2000
	IUTF8   = 0x4000

	// c_oflag bits.
	OPOST  = 0x01
	OLCUC  = 0x02
	ONLCR  = 0x04
	OCRNL  = 0x08
	ONOCR  = 0x10
	ONLRET = 0x20
	OFILL  = 0x40
	OFDEL  = 0x80

	// c_cflag bits.
	CBAUD  = 0x0000100f
	B0     = 0x00000000
	B9600  = 0x0000000d
	B38400 = 0x0000000f
	CSIZE  = 0x00000030
	CS5    = 0x00000000
	CS6    = 0x00000010
	CS7    = 0x00000020
	CS8    = 0x00000030
	CSTOPB = 0x00000040
	CREAD  = 0x00000080
	PARENB = 0x00000100
	PARODD = 0x00000200
	HUPCL  = 0x00000400
	CLOCAL = 0x00000800

	// c_lflag bits.
	ISIG    = 0x00001
	ICANON  = 0x00002
	XCASE   = 0x00004
	ECHO    = 0x00008
	ECHOE   = 0x00010
	ECHOK   = 0x00020
	ECHONL  = 0x00040
	NOFLSH  = 0x00080
	TOSTOP  = 0x00100
	ECHOCTL = 0x00200
	ECHOPRT = 0x00400
	ECHOKE  = 0x00800
	FLUSHO  = 0x01000
	PENDIN  = 0x04000
	IEXTEN  = 0x08000
	EXTPROC = 0x10000

	// tcflush(3) queues and tcflow(3) actions.
	TCIFLUSH  = 0
	TCOFLUSH  = 1
	TCIOFLUSH = 2
	TCOOFF    = 0
	TCOON     = 1
	TCIOFF    = 2
	TCION     = 3
)
