package abi

// PollFDSize is the size of struct pollfd.
const PollFDSize = 8

// PollFD is struct pollfd (poll(2), ppoll(2)).
type PollFD struct {
	FD      int32 // 0
	Events  int16 // 4
	Revents int16 // 6
}

// Marshal writes p into b[:PollFDSize].
func (p *PollFD) Marshal(b []byte) {
	b = b[:PollFDSize]
	le.PutUint32(b[0:], uint32(p.FD))
	le.PutUint16(b[4:], uint16(p.Events))
	le.PutUint16(b[6:], uint16(p.Revents))
}

// Unmarshal reads p from b[:PollFDSize].
func (p *PollFD) Unmarshal(b []byte) {
	b = b[:PollFDSize]
	p.FD = int32(le.Uint32(b[0:]))
	p.Events = int16(le.Uint16(b[4:]))
	p.Revents = int16(le.Uint16(b[6:]))
}

// EpollEventSize is the size of struct epoll_event on x86-64, where the
// kernel declares it packed: the 64-bit data follows the events word
// without padding.
const EpollEventSize = 12

// EpollEvent is struct epoll_event.
type EpollEvent struct {
	Events uint32 // 0
	Data   uint64 // 4
}

// Marshal writes e into b[:EpollEventSize].
func (e *EpollEvent) Marshal(b []byte) {
	b = b[:EpollEventSize]
	le.PutUint32(b[0:], e.Events)
	le.PutUint64(b[4:], e.Data)
}

// Unmarshal reads e from b[:EpollEventSize].
func (e *EpollEvent) Unmarshal(b []byte) {
	b = b[:EpollEventSize]
	e.Events = le.Uint32(b[0:])
	e.Data = le.Uint64(b[4:])
}

// CloneArgs sizes: clone3(2) accepts any size from CloneArgsSizeVer0 up, and
// larger ones when the bytes past what the kernel knows are zero.
const (
	CloneArgsSizeVer0 = 64 // up to tls
	CloneArgsSizeVer1 = 80 // adds set_tid, set_tid_size
	CloneArgsSizeVer2 = 88 // adds cgroup
	CloneArgsSize     = CloneArgsSizeVer2
)

// CloneArgs is struct clone_args (include/uapi/linux/sched.h).
type CloneArgs struct {
	Flags      uint64 // 0
	PidFD      uint64 // 8, address of an int
	ChildTID   uint64 // 16, address of a pid_t
	ParentTID  uint64 // 24, address of a pid_t
	ExitSignal uint64 // 32
	Stack      uint64 // 40, lowest address of the stack
	StackSize  uint64 // 48
	TLS        uint64 // 56
	SetTID     uint64 // 64, address of a pid_t array
	SetTIDSize uint64 // 72
	Cgroup     uint64 // 80
}

func (c *CloneArgs) words() []*uint64 {
	return []*uint64{&c.Flags, &c.PidFD, &c.ChildTID, &c.ParentTID, &c.ExitSignal,
		&c.Stack, &c.StackSize, &c.TLS, &c.SetTID, &c.SetTIDSize, &c.Cgroup}
}

// Marshal writes c into b[:CloneArgsSize].
func (c *CloneArgs) Marshal(b []byte) {
	b = b[:CloneArgsSize]
	for i, p := range c.words() {
		le.PutUint64(b[8*i:], *p)
	}
}

// Unmarshal reads c from b, which holds the first len(b) bytes of the
// structure as the caller passed them (at least CloneArgsSizeVer0); fields
// beyond len(b) read as zero and bytes beyond CloneArgsSize are ignored.
func (c *CloneArgs) Unmarshal(b []byte) {
	_ = b[:CloneArgsSizeVer0]
	for i, p := range c.words() {
		if 8*i+8 <= len(b) {
			*p = le.Uint64(b[8*i:])
		} else {
			*p = 0
		}
	}
}

// RobustListHeadSize is the size of struct robust_list_head.
const RobustListHeadSize = 24

// RobustListHead is struct robust_list_head (set_robust_list(2)).
type RobustListHead struct {
	List          uint64 // 0, address of the first struct robust_list
	FutexOffset   int64  // 8, from a list entry to its futex word
	ListOpPending uint64 // 16
}

// Marshal writes h into b[:RobustListHeadSize].
func (h *RobustListHead) Marshal(b []byte) {
	b = b[:RobustListHeadSize]
	le.PutUint64(b[0:], h.List)
	le.PutUint64(b[8:], uint64(h.FutexOffset))
	le.PutUint64(b[16:], h.ListOpPending)
}

// Unmarshal reads h from b[:RobustListHeadSize].
func (h *RobustListHead) Unmarshal(b []byte) {
	b = b[:RobustListHeadSize]
	h.List = le.Uint64(b[0:])
	h.FutexOffset = int64(le.Uint64(b[8:]))
	h.ListOpPending = le.Uint64(b[16:])
}

// NCCS is the number of control characters in the kernel's struct termios.
const NCCS = 19

// TermiosSize is the size of the kernel's struct termios (TCGETS), which is
// smaller than the C library's.
const TermiosSize = 36

// Termios is the kernel's struct termios (include/uapi/asm-generic/termbits.h).
type Termios struct {
	Iflag uint32     // 0
	Oflag uint32     // 4
	Cflag uint32     // 8
	Lflag uint32     // 12
	Line  uint8      // 16
	CC    [NCCS]byte // 17
}

// Marshal writes t into b[:TermiosSize].
func (t *Termios) Marshal(b []byte) {
	b = b[:TermiosSize]
	le.PutUint32(b[0:], t.Iflag)
	le.PutUint32(b[4:], t.Oflag)
	le.PutUint32(b[8:], t.Cflag)
	le.PutUint32(b[12:], t.Lflag)
	b[16] = t.Line
	copy(b[17:], t.CC[:])
}

// Unmarshal reads t from b[:TermiosSize].
func (t *Termios) Unmarshal(b []byte) {
	b = b[:TermiosSize]
	t.Iflag = le.Uint32(b[0:])
	t.Oflag = le.Uint32(b[4:])
	t.Cflag = le.Uint32(b[8:])
	t.Lflag = le.Uint32(b[12:])
	t.Line = b[16]
	copy(t.CC[:], b[17:])
}

// WinsizeSize is the size of struct winsize.
const WinsizeSize = 8

// Winsize is struct winsize (TIOCGWINSZ, TIOCSWINSZ).
type Winsize struct {
	Row    uint16 // 0
	Col    uint16 // 2
	Xpixel uint16 // 4
	Ypixel uint16 // 6
}

// Marshal writes w into b[:WinsizeSize].
func (w *Winsize) Marshal(b []byte) {
	b = b[:WinsizeSize]
	le.PutUint16(b[0:], w.Row)
	le.PutUint16(b[2:], w.Col)
	le.PutUint16(b[4:], w.Xpixel)
	le.PutUint16(b[6:], w.Ypixel)
}

// Unmarshal reads w from b[:WinsizeSize].
func (w *Winsize) Unmarshal(b []byte) {
	b = b[:WinsizeSize]
	w.Row = le.Uint16(b[0:])
	w.Col = le.Uint16(b[2:])
	w.Xpixel = le.Uint16(b[4:])
	w.Ypixel = le.Uint16(b[6:])
}

// CapUserHeaderSize is the size of struct __user_cap_header_struct.
const CapUserHeaderSize = 8

// CapUserHeader is capget(2)/capset(2)'s header.
type CapUserHeader struct {
	Version uint32 // 0
	PID     int32  // 4
}

// Marshal writes h into b[:CapUserHeaderSize].
func (h *CapUserHeader) Marshal(b []byte) {
	b = b[:CapUserHeaderSize]
	le.PutUint32(b[0:], h.Version)
	le.PutUint32(b[4:], uint32(h.PID))
}

// Unmarshal reads h from b[:CapUserHeaderSize].
func (h *CapUserHeader) Unmarshal(b []byte) {
	b = b[:CapUserHeaderSize]
	h.Version = le.Uint32(b[0:])
	h.PID = int32(le.Uint32(b[4:]))
}

// CapUserDataSize is the size of one struct __user_cap_data_struct; versions
// 2 and 3 of the interface pass an array of two (capabilities 0..31, 32..63).
const CapUserDataSize = 12

// CapUserData is one struct __user_cap_data_struct.
type CapUserData struct {
	Effective   uint32 // 0
	Permitted   uint32 // 4
	Inheritable uint32 // 8
}

// Marshal writes d into b[:CapUserDataSize].
func (d *CapUserData) Marshal(b []byte) {
	b = b[:CapUserDataSize]
	le.PutUint32(b[0:], d.Effective)
	le.PutUint32(b[4:], d.Permitted)
	le.PutUint32(b[8:], d.Inheritable)
}

// Unmarshal reads d from b[:CapUserDataSize].
func (d *CapUserData) Unmarshal(b []byte) {
	b = b[:CapUserDataSize]
	d.Effective = le.Uint32(b[0:])
	d.Permitted = le.Uint32(b[4:])
	d.Inheritable = le.Uint32(b[8:])
}

// DefaultTermios returns the settings a new terminal starts with
// (tty_std_termios of drivers/tty/tty_io.c): canonical mode with echo,
// signals from ^C ^\ ^Z, CR to NL on input and NL to CRNL on output.
// A pseudo-terminal's slave starts with these, its Cflag without HUPCL.
func DefaultTermios() Termios {
	return Termios{
		Iflag: ICRNL | IXON,
		Oflag: OPOST | ONLCR,
		Cflag: B38400 | CS8 | CREAD | HUPCL,
		Lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
		CC: [NCCS]byte{
			VINTR: 'C' & 0x1f, VQUIT: '\\' & 0x1f, VERASE: 0x7f, VKILL: 'U' & 0x1f,
			VEOF: 'D' & 0x1f, VTIME: 0, VMIN: 1, VSWTC: 0, VSTART: 'Q' & 0x1f,
			VSTOP: 'S' & 0x1f, VSUSP: 'Z' & 0x1f, VEOL: 0, VREPRINT: 'R' & 0x1f,
			VDISCARD: 'O' & 0x1f, VWERASE: 'W' & 0x1f, VLNEXT: 'V' & 0x1f, VEOL2: 0,
		},
	}
}
