package abi

// RlimitSize is the size of struct rlimit (and struct rlimit64).
const RlimitSize = 16

// Rlimit is struct rlimit.
type Rlimit struct {
	Cur uint64 // 0
	Max uint64 // 8
}

// Marshal writes r into b[:RlimitSize].
func (r *Rlimit) Marshal(b []byte) {
	b = b[:RlimitSize]
	le.PutUint64(b[0:], r.Cur)
	le.PutUint64(b[8:], r.Max)
}

// Unmarshal reads r from b[:RlimitSize].
func (r *Rlimit) Unmarshal(b []byte) {
	b = b[:RlimitSize]
	r.Cur = le.Uint64(b[0:])
	r.Max = le.Uint64(b[8:])
}

// RusageSize is the size of struct rusage on x86-64.
const RusageSize = 144

// Rusage is struct rusage (getrusage(2), wait4(2)).
type Rusage struct {
	Utime    Timeval // 0
	Stime    Timeval // 16
	Maxrss   int64   // 32, in KiB
	Ixrss    int64   // 40
	Idrss    int64   // 48
	Isrss    int64   // 56
	Minflt   int64   // 64
	Majflt   int64   // 72
	Nswap    int64   // 80
	Inblock  int64   // 88
	Oublock  int64   // 96
	Msgsnd   int64   // 104
	Msgrcv   int64   // 112
	Nsignals int64   // 120
	Nvcsw    int64   // 128
	Nivcsw   int64   // 136
}

func (r *Rusage) longs() []*int64 {
	return []*int64{&r.Maxrss, &r.Ixrss, &r.Idrss, &r.Isrss, &r.Minflt, &r.Majflt,
		&r.Nswap, &r.Inblock, &r.Oublock, &r.Msgsnd, &r.Msgrcv, &r.Nsignals, &r.Nvcsw, &r.Nivcsw}
}

// Marshal writes r into b[:RusageSize].
func (r *Rusage) Marshal(b []byte) {
	b = b[:RusageSize]
	r.Utime.Marshal(b[0:])
	r.Stime.Marshal(b[16:])
	for i, p := range r.longs() {
		le.PutUint64(b[32+8*i:], uint64(*p))
	}
}

// Unmarshal reads r from b[:RusageSize].
func (r *Rusage) Unmarshal(b []byte) {
	b = b[:RusageSize]
	r.Utime.Unmarshal(b[0:])
	r.Stime.Unmarshal(b[16:])
	for i, p := range r.longs() {
		*p = int64(le.Uint64(b[32+8*i:]))
	}
}

// UtsnameFieldSize is the size of each field of struct new_utsname, with its NUL.
const UtsnameFieldSize = 65

// UtsnameSize is the size of struct new_utsname (uname(2)).
const UtsnameSize = 6 * UtsnameFieldSize

// Utsname is struct new_utsname. Each field is a NUL-terminated string of
// at most 64 bytes; Marshal truncates longer ones.
type Utsname struct {
	Sysname    string // 0
	Nodename   string // 65
	Release    string // 130
	Version    string // 195
	Machine    string // 260
	Domainname string // 325
}

func (u *Utsname) fields() []*string {
	return []*string{&u.Sysname, &u.Nodename, &u.Release, &u.Version, &u.Machine, &u.Domainname}
}

// Marshal writes u into b[:UtsnameSize].
func (u *Utsname) Marshal(b []byte) {
	b = b[:UtsnameSize]
	clear(b)
	for i, f := range u.fields() {
		s := *f
		if len(s) > UtsnameFieldSize-1 {
			s = s[:UtsnameFieldSize-1]
		}
		copy(b[i*UtsnameFieldSize:], s)
	}
}

// Unmarshal reads u from b[:UtsnameSize].
func (u *Utsname) Unmarshal(b []byte) {
	b = b[:UtsnameSize]
	for i, f := range u.fields() {
		*f = cString(b[i*UtsnameFieldSize : (i+1)*UtsnameFieldSize])
	}
}

// cString returns b up to its first NUL.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// SysinfoSize is the size of struct sysinfo on x86-64.
const SysinfoSize = 112

// Sysinfo is struct sysinfo (sysinfo(2)).
type Sysinfo struct {
	Uptime    int64     // 0
	Loads     [3]uint64 // 8, fixed point with 16 fractional bits
	Totalram  uint64    // 32
	Freeram   uint64    // 40
	Sharedram uint64    // 48
	Bufferram uint64    // 56
	Totalswap uint64    // 64
	Freeswap  uint64    // 72
	Procs     uint16    // 80; 6 bytes of padding follow
	Totalhigh uint64    // 88
	Freehigh  uint64    // 96
	MemUnit   uint32    // 104; 4 bytes of padding follow
}

// Marshal writes s into b[:SysinfoSize].
func (s *Sysinfo) Marshal(b []byte) {
	b = b[:SysinfoSize]
	clear(b)
	le.PutUint64(b[0:], uint64(s.Uptime))
	for i, l := range s.Loads {
		le.PutUint64(b[8+8*i:], l)
	}
	le.PutUint64(b[32:], s.Totalram)
	le.PutUint64(b[40:], s.Freeram)
	le.PutUint64(b[48:], s.Sharedram)
	le.PutUint64(b[56:], s.Bufferram)
	le.PutUint64(b[64:], s.Totalswap)
	le.PutUint64(b[72:], s.Freeswap)
	le.PutUint16(b[80:], s.Procs)
	le.PutUint64(b[88:], s.Totalhigh)
	le.PutUint64(b[96:], s.Freehigh)
	le.PutUint32(b[104:], s.MemUnit)
}

// Unmarshal reads s from b[:SysinfoSize].
func (s *Sysinfo) Unmarshal(b []byte) {
	b = b[:SysinfoSize]
	s.Uptime = int64(le.Uint64(b[0:]))
	for i := range s.Loads {
		s.Loads[i] = le.Uint64(b[8+8*i:])
	}
	s.Totalram = le.Uint64(b[32:])
	s.Freeram = le.Uint64(b[40:])
	s.Sharedram = le.Uint64(b[48:])
	s.Bufferram = le.Uint64(b[56:])
	s.Totalswap = le.Uint64(b[64:])
	s.Freeswap = le.Uint64(b[72:])
	s.Procs = le.Uint16(b[80:])
	s.Totalhigh = le.Uint64(b[88:])
	s.Freehigh = le.Uint64(b[96:])
	s.MemUnit = le.Uint32(b[104:])
}
