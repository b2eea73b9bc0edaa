package abi

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

type marshaler interface {
	Marshal([]byte)
	Unmarshal([]byte)
}

// layout ties a Go type to its C type and each Go field (a path through
// nested structs) to the C member it encodes.
type layout struct {
	ctype  string
	size   int
	newv   func() marshaler
	fields map[string]string // Go field path -> C member designator
}

// prefixLayouts cover only the start of their C type: the ymm state
// follows the xsave header (FPStateHeaderSize is checked against
// offsetof(struct _xstate, ymmh)).
var prefixLayouts = map[string]bool{"struct _xstate": true}

var layouts = []layout{
	{"struct stat", StatSize, func() marshaler { return new(Stat) }, map[string]string{
		"Dev": "st_dev", "Ino": "st_ino", "Nlink": "st_nlink", "Mode": "st_mode", "UID": "st_uid",
		"GID": "st_gid", "Rdev": "st_rdev", "Size": "st_size", "Blksize": "st_blksize",
		"Blocks": "st_blocks", "Atime.Sec": "st_atime", "Atime.Nsec": "st_atime_nsec",
		"Mtime.Sec": "st_mtime", "Mtime.Nsec": "st_mtime_nsec", "Ctime.Sec": "st_ctime",
		"Ctime.Nsec": "st_ctime_nsec",
	}},
	{"struct statx", StatxSize, func() marshaler { return new(Statx) }, map[string]string{
		"Mask": "stx_mask", "Blksize": "stx_blksize", "Attributes": "stx_attributes",
		"Nlink": "stx_nlink", "UID": "stx_uid", "GID": "stx_gid", "Mode": "stx_mode",
		"Ino": "stx_ino", "Size": "stx_size", "Blocks": "stx_blocks",
		"AttributesMask": "stx_attributes_mask",
		"Atime.Sec":      "stx_atime.tv_sec", "Atime.Nsec": "stx_atime.tv_nsec",
		"Btime.Sec": "stx_btime.tv_sec", "Btime.Nsec": "stx_btime.tv_nsec",
		"Ctime.Sec": "stx_ctime.tv_sec", "Ctime.Nsec": "stx_ctime.tv_nsec",
		"Mtime.Sec": "stx_mtime.tv_sec", "Mtime.Nsec": "stx_mtime.tv_nsec",
		"RdevMajor": "stx_rdev_major", "RdevMinor": "stx_rdev_minor",
		"DevMajor": "stx_dev_major", "DevMinor": "stx_dev_minor", "MntID": "stx_mnt_id",
		"DioMemAlign": "stx_dio_mem_align", "DioOffsetAlign": "stx_dio_offset_align",
	}},
	{"struct open_how", OpenHowSize, func() marshaler { return new(OpenHow) }, map[string]string{
		"Flags": "flags", "Mode": "mode", "Resolve": "resolve",
	}},
	{"struct flock", FlockSize, func() marshaler { return new(Flock) }, map[string]string{
		"Type": "l_type", "Whence": "l_whence", "Start": "l_start", "Len": "l_len", "PID": "l_pid",
	}},
	{"struct iovec", IovecSize, func() marshaler { return new(Iovec) }, map[string]string{
		"Base": "iov_base", "Len": "iov_len",
	}},
	{"struct __kernel_timespec", TimespecSize, func() marshaler { return new(Timespec) }, map[string]string{
		"Sec": "tv_sec", "Nsec": "tv_nsec",
	}},
	{"struct __kernel_old_timeval", TimevalSize, func() marshaler { return new(Timeval) }, map[string]string{
		"Sec": "tv_sec", "Usec": "tv_usec",
	}},
	{"struct itimerval", ItimervalSize, func() marshaler { return new(Itimerval) }, map[string]string{
		"Interval.Sec": "it_interval.tv_sec", "Interval.Usec": "it_interval.tv_usec",
		"Value.Sec": "it_value.tv_sec", "Value.Usec": "it_value.tv_usec",
	}},
	{"struct itimerspec", ItimerspecSize, func() marshaler { return new(Itimerspec) }, map[string]string{
		"Interval.Sec": "it_interval.tv_sec", "Interval.Nsec": "it_interval.tv_nsec",
		"Value.Sec": "it_value.tv_sec", "Value.Nsec": "it_value.tv_nsec",
	}},
	{"struct tms", TmsSize, func() marshaler { return new(Tms) }, map[string]string{
		"Utime": "tms_utime", "Stime": "tms_stime", "Cutime": "tms_cutime", "Cstime": "tms_cstime",
	}},
	{"struct rlimit", RlimitSize, func() marshaler { return new(Rlimit) }, map[string]string{
		"Cur": "rlim_cur", "Max": "rlim_max",
	}},
	{"struct rusage", RusageSize, func() marshaler { return new(Rusage) }, map[string]string{
		"Utime.Sec": "ru_utime.tv_sec", "Utime.Usec": "ru_utime.tv_usec",
		"Stime.Sec": "ru_stime.tv_sec", "Stime.Usec": "ru_stime.tv_usec",
		"Maxrss": "ru_maxrss", "Ixrss": "ru_ixrss", "Idrss": "ru_idrss", "Isrss": "ru_isrss",
		"Minflt": "ru_minflt", "Majflt": "ru_majflt", "Nswap": "ru_nswap",
		"Inblock": "ru_inblock", "Oublock": "ru_oublock", "Msgsnd": "ru_msgsnd",
		"Msgrcv": "ru_msgrcv", "Nsignals": "ru_nsignals", "Nvcsw": "ru_nvcsw", "Nivcsw": "ru_nivcsw",
	}},
	{"struct new_utsname", UtsnameSize, func() marshaler { return new(Utsname) }, map[string]string{
		"Sysname": "sysname", "Nodename": "nodename", "Release": "release",
		"Version": "version", "Machine": "machine", "Domainname": "domainname",
	}},
	{"struct sysinfo", SysinfoSize, func() marshaler { return new(Sysinfo) }, map[string]string{
		"Uptime": "uptime", "Loads": "loads", "Totalram": "totalram", "Freeram": "freeram",
		"Sharedram": "sharedram", "Bufferram": "bufferram", "Totalswap": "totalswap",
		"Freeswap": "freeswap", "Procs": "procs", "Totalhigh": "totalhigh",
		"Freehigh": "freehigh", "MemUnit": "mem_unit",
	}},
	{"struct pollfd", PollFDSize, func() marshaler { return new(PollFD) }, map[string]string{
		"FD": "fd", "Events": "events", "Revents": "revents",
	}},
	{"struct epoll_event", EpollEventSize, func() marshaler { return new(EpollEvent) }, map[string]string{
		"Events": "events", "Data": "data",
	}},
	{"struct clone_args", CloneArgsSize, func() marshaler { return new(CloneArgs) }, map[string]string{
		"Flags": "flags", "PidFD": "pidfd", "ChildTID": "child_tid", "ParentTID": "parent_tid",
		"ExitSignal": "exit_signal", "Stack": "stack", "StackSize": "stack_size", "TLS": "tls",
		"SetTID": "set_tid", "SetTIDSize": "set_tid_size", "Cgroup": "cgroup",
	}},
	{"struct robust_list_head", RobustListHeadSize, func() marshaler { return new(RobustListHead) }, map[string]string{
		"List": "list", "FutexOffset": "futex_offset", "ListOpPending": "list_op_pending",
	}},
	{"struct termios", TermiosSize, func() marshaler { return new(Termios) }, map[string]string{
		"Iflag": "c_iflag", "Oflag": "c_oflag", "Cflag": "c_cflag", "Lflag": "c_lflag",
		"Line": "c_line", "CC": "c_cc",
	}},
	{"struct winsize", WinsizeSize, func() marshaler { return new(Winsize) }, map[string]string{
		"Row": "ws_row", "Col": "ws_col", "Xpixel": "ws_xpixel", "Ypixel": "ws_ypixel",
	}},
	{"struct __user_cap_header_struct", CapUserHeaderSize, func() marshaler { return new(CapUserHeader) }, map[string]string{
		"Version": "version", "PID": "pid",
	}},
	{"struct __user_cap_data_struct", CapUserDataSize, func() marshaler { return new(CapUserData) }, map[string]string{
		"Effective": "effective", "Permitted": "permitted", "Inheritable": "inheritable",
	}},
	{"struct sigaction", SigactionSize, func() marshaler { return new(Sigaction) }, map[string]string{
		"Handler": "sa_handler", "Flags": "sa_flags", "Restorer": "sa_restorer", "Mask": "sa_mask",
	}},
	{"stack_t", SignalStackSize, func() marshaler { return new(SignalStack) }, map[string]string{
		"Sp": "ss_sp", "Flags": "ss_flags", "Size": "ss_size",
	}},
	{"struct sigcontext", SigContextSize, func() marshaler { return new(SigContext) }, sigcontextFields("")},
	{"struct ucontext", UContextSize, func() marshaler { return new(UContext) }, ucontextFields("")},
	{"struct rt_sigframe", RtSigframeSize, func() marshaler { return new(RtSigframe) }, merge(
		map[string]string{"Pretcode": "pretcode", "Info": "info"},
		prefixed("UContext.", ucontextFields("uc."))),
	},
	{"struct statfs", StatfsSize, func() marshaler { return new(Statfs) }, map[string]string{
		"Type": "f_type", "Bsize": "f_bsize", "Blocks": "f_blocks", "Bfree": "f_bfree",
		"Bavail": "f_bavail", "Files": "f_files", "Ffree": "f_ffree", "Fsid": "f_fsid",
		"Namelen": "f_namelen", "Frsize": "f_frsize", "Flags": "f_flags",
	}},
	{"struct timezone", TimezoneSize, func() marshaler { return new(Timezone) }, map[string]string{
		"Minuteswest": "tz_minuteswest", "Dsttime": "tz_dsttime",
	}},
	{"sigevent_t", SigeventSize, func() marshaler { return new(Sigevent) }, map[string]string{
		"Value": "sigev_value", "Signo": "sigev_signo", "Notify": "sigev_notify",
		"ThreadID": "sigev_notify_thread_id",
	}},
	{"struct sockaddr_in", SockaddrInet4Size, func() marshaler { return new(SockaddrInet4) }, map[string]string{
		"Family": "sin_family", "Port": "sin_port", "Addr": "sin_addr",
	}},
	{"struct sockaddr_in6", SockaddrInet6Size, func() marshaler { return new(SockaddrInet6) }, map[string]string{
		"Family": "sin6_family", "Port": "sin6_port", "Flowinfo": "sin6_flowinfo",
		"Addr": "sin6_addr", "ScopeID": "sin6_scope_id",
	}},
	{"struct sockaddr_un", SockaddrUnixSize, func() marshaler { return new(SockaddrUnix) }, map[string]string{
		"Family": "sun_family", "Path": "sun_path",
	}},
	{"struct linger", LingerSize, func() marshaler { return new(Linger) }, map[string]string{
		"Onoff": "l_onoff", "Linger": "l_linger",
	}},
	{"struct ucred", UcredSize, func() marshaler { return new(Ucred) }, map[string]string{
		"PID": "pid", "UID": "uid", "GID": "gid",
	}},
	{"struct msghdr", MsghdrSize, func() marshaler { return new(Msghdr) }, msghdrFields("")},
	{"struct mmsghdr", MmsghdrSize, func() marshaler { return new(Mmsghdr) }, merge(
		prefixed("Hdr.", msghdrFields("msg_hdr.")), map[string]string{"Len": "msg_len"})},
	{"struct cmsghdr", CmsghdrSize, func() marshaler { return new(Cmsghdr) }, map[string]string{
		"Len": "cmsg_len", "Level": "cmsg_level", "Type": "cmsg_type",
	}},
	{"struct _xstate", FPStateHeaderSize, func() marshaler { return new(FPState) }, map[string]string{
		"Cwd": "fpstate.cwd", "Swd": "fpstate.swd", "Twd": "fpstate.twd", "Fop": "fpstate.fop",
		"Rip": "fpstate.rip", "Rdp": "fpstate.rdp", "Mxcsr": "fpstate.mxcsr",
		"MxcsrMask": "fpstate.mxcsr_mask", "St": "fpstate.st_space", "Xmm": "fpstate.xmm_space",
		"Sw.Magic1": "fpstate.sw_reserved.magic1", "Sw.ExtendedSize": "fpstate.sw_reserved.extended_size",
		"Sw.XFeatures": "fpstate.sw_reserved.xfeatures", "Sw.XStateSize": "fpstate.sw_reserved.xstate_size",
		"XFeatures": "xstate_hdr.xfeatures", "XCompBV": "xstate_hdr.reserved1[0]",
	}},
}

// libcLayouts are checked against the C library's headers: the UAPI
// headers do not define them.
var libcLayouts = map[string]bool{
	"struct linger": true, "struct ucred": true, "struct msghdr": true,
	"struct mmsghdr": true, "struct cmsghdr": true,
}

func msghdrFields(p string) map[string]string {
	m := map[string]string{}
	for g, c := range map[string]string{"Name": "msg_name", "Namelen": "msg_namelen", "Iov": "msg_iov",
		"Iovlen": "msg_iovlen", "Control": "msg_control", "Controllen": "msg_controllen", "Flags": "msg_flags"} {
		m[g] = p + c
	}
	return m
}

func sigcontextFields(p string) map[string]string {
	m := map[string]string{}
	for _, r := range []string{"R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15", "Rdi", "Rsi",
		"Rbp", "Rbx", "Rdx", "Rax", "Rcx", "Rsp", "Rip", "Eflags", "Cs", "Gs", "Fs", "Ss", "Err",
		"Trapno", "Oldmask", "Cr2", "FPState"} {
		m[r] = p + strings.ToLower(r)
	}
	return m
}

func ucontextFields(p string) map[string]string {
	return merge(map[string]string{
		"Flags": p + "uc_flags", "Link": p + "uc_link", "Sigmask": p + "uc_sigmask",
		"Stack.Sp": p + "uc_stack.ss_sp", "Stack.Flags": p + "uc_stack.ss_flags", "Stack.Size": p + "uc_stack.ss_size",
	}, prefixed("MContext.", sigcontextFields(p+"uc_mcontext.")))
}

func prefixed(p string, m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[p+k] = v
	}
	return out
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// leaves returns the paths of the fields of a struct value that are not
// structs themselves.
func leaves(v reflect.Value, prefix string) []string {
	var out []string
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			out = append(out, leaves(v.Field(i), prefix+f.Name+".")...)
			continue
		}
		out = append(out, prefix+f.Name)
	}
	return out
}

func fieldByPath(v reflect.Value, path string) reflect.Value {
	for _, p := range strings.Split(path, ".") {
		v = v.FieldByName(p)
	}
	return v
}

// fill sets a field to a value whose every encoded byte is nonzero (all ones
// for numbers, 64 'x' for strings) when ones is true, or to random bits.
func fill(v reflect.Value, ones bool, r *rand.Rand) {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if ones {
			v.SetInt(-1)
		} else {
			v.SetInt(int64(r.Uint64()))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if ones {
			v.SetUint(^uint64(0))
		} else {
			v.SetUint(r.Uint64())
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			fill(v.Index(i), ones, r)
		}
	case reflect.String:
		n := 64
		if !ones {
			n = r.Intn(65)
		}
		b := make([]byte, n)
		for i := range b {
			if ones {
				b[i] = 'x'
			} else {
				b[i] = byte('a' + r.Intn(26))
			}
		}
		v.SetString(string(b))
	default:
		panic("fill: " + v.Kind().String())
	}
}

// TestLayoutsMatchHeaders checks each layout against its C type: the size,
// and for each field that Marshal writes exactly the bytes offsetof and
// sizeof give for the C member. It also checks that every field of every
// Go type is mapped, so a field cannot go untested.
func TestLayoutsMatchHeaders(t *testing.T) {
	var ksrc, lsrc strings.Builder
	ksrc.WriteString(kernelHeaders)
	lsrc.WriteString(libcHeaders)
	for _, src := range []*strings.Builder{&ksrc, &lsrc} {
		src.WriteString("int main(void) {\n")
	}
	for i, l := range layouts {
		src := &ksrc
		if libcLayouts[l.ctype] {
			src = &lsrc
		}
		fmt.Fprintf(src, "\tprintf(\"%d size - %%zu %%zu\\n\", sizeof(%s), sizeof(%s));\n", i, l.ctype, l.ctype)
		for _, c := range l.fields {
			fmt.Fprintf(src, "\tprintf(\"%d field %s %%zu %%zu\\n\", offsetof(%s, %s), fieldsize(%s, %s));\n", i, c, l.ctype, c, l.ctype, c)
		}
	}
	for _, src := range []*strings.Builder{&ksrc, &lsrc} {
		src.WriteString("\treturn 0;\n}\n")
	}
	type span struct{ off, size int }
	c := map[string]span{}
	for _, line := range append(runC(t, ksrc.String()), runC(t, lsrc.String())...) {
		var i, off, size int
		var kind, member string
		if _, err := fmt.Sscanf(line, "%d %s %s %d %d", &i, &kind, &member, &off, &size); err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		c[fmt.Sprint(i, " ", member)] = span{off, size}
	}
	for i, l := range layouts {
		t.Run(l.ctype, func(t *testing.T) {
			cs := c[fmt.Sprint(i, " -")]
			if cs.off != l.size && !(prefixLayouts[l.ctype] && cs.off > l.size) {
				t.Errorf("size %d, C says %d", l.size, cs.off)
			}
			v := reflect.ValueOf(l.newv()).Elem()
			if v.Kind() == reflect.Struct {
				for _, p := range leaves(v, "") {
					if _, ok := l.fields[p]; !ok {
						t.Errorf("field %s is not mapped to a C member", p)
					}
				}
			}
			for p, member := range l.fields {
				m := l.newv()
				f := fieldByPath(reflect.ValueOf(m).Elem(), p)
				if !f.IsValid() {
					t.Errorf("no Go field %s", p)
					continue
				}
				fill(f, true, nil)
				buf := make([]byte, l.size+8)
				m.Marshal(buf)
				if bytes.Count(buf[l.size:], []byte{0}) != 8 {
					t.Errorf("%s: Marshal wrote past the size", p)
				}
				lo, hi := bytes.IndexFunc(buf, func(r rune) bool { return r != 0 }), 0
				for j := range buf {
					if buf[j] != 0 {
						hi = j + 1
					}
				}
				want := c[fmt.Sprint(i, " ", member)]
				if f.Kind() == reflect.String {
					want.size-- // the NUL
				}
				if lo != want.off || hi-lo != want.size {
					t.Errorf("%s: Marshal writes [%d,%d), C %s is [%d,%d)", p, lo, hi, member, want.off, want.off+want.size)
				}
			}
		})
	}
}

// TestLayoutsRoundTrip marshals random values and unmarshals them back.
func TestLayoutsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, l := range layouts {
		for n := 0; n < 50; n++ {
			in := l.newv()
			v := reflect.ValueOf(in).Elem()
			if v.Kind() == reflect.Struct {
				for _, p := range leaves(v, "") {
					fill(fieldByPath(v, p), false, r)
				}
			} else {
				fill(v, false, r)
			}
			buf := make([]byte, l.size)
			in.Marshal(buf)
			out := l.newv()
			out.Unmarshal(buf)
			if !reflect.DeepEqual(in, out) {
				t.Fatalf("%s: round trip\n in %+v\nout %+v", l.ctype, in, out)
			}
			buf2 := make([]byte, l.size)
			out.Marshal(buf2)
			if !bytes.Equal(buf, buf2) {
				t.Fatalf("%s: second Marshal differs", l.ctype)
			}
		}
	}
}

// TestSignalInfoMatchesHeaders checks each accessor of SignalInfo against
// the C member of siginfo_t it stands for.
func TestSignalInfoMatchesHeaders(t *testing.T) {
	cases := []struct {
		member string
		set    func(*SignalInfo)
		get    func(*SignalInfo) uint64
	}{
		{"si_signo", func(s *SignalInfo) { s.SetSigno(-1) }, func(s *SignalInfo) uint64 { return uint64(s.Signo()) }},
		{"si_errno", func(s *SignalInfo) { s.SetErrno(-1) }, func(s *SignalInfo) uint64 { return uint64(s.Errno()) }},
		{"si_code", func(s *SignalInfo) { s.SetCode(-1) }, func(s *SignalInfo) uint64 { return uint64(s.Code()) }},
		{"si_pid", func(s *SignalInfo) { s.SetPID(-1) }, func(s *SignalInfo) uint64 { return uint64(s.PID()) }},
		{"si_uid", func(s *SignalInfo) { s.SetUID(^uint32(0)) }, func(s *SignalInfo) uint64 { return uint64(int32(s.UID())) }},
		{"si_tid", func(s *SignalInfo) { s.SetTimerID(-1) }, func(s *SignalInfo) uint64 { return uint64(s.TimerID()) }},
		{"si_overrun", func(s *SignalInfo) { s.SetOverrun(-1) }, func(s *SignalInfo) uint64 { return uint64(s.Overrun()) }},
		{"si_value", func(s *SignalInfo) { s.SetValue(^uint64(0)) }, func(s *SignalInfo) uint64 { return s.Value() }},
		{"si_status", func(s *SignalInfo) { s.SetStatus(-1) }, func(s *SignalInfo) uint64 { return uint64(s.Status()) }},
		{"si_utime", func(s *SignalInfo) { s.SetUtime(-1) }, func(s *SignalInfo) uint64 { return uint64(s.Utime()) }},
		{"si_stime", func(s *SignalInfo) { s.SetStime(-1) }, func(s *SignalInfo) uint64 { return uint64(s.Stime()) }},
		{"si_addr", func(s *SignalInfo) { s.SetAddr(^uint64(0)) }, func(s *SignalInfo) uint64 { return s.Addr() }},
		{"si_addr_lsb", func(s *SignalInfo) { s.SetAddrLSB(-1) }, func(s *SignalInfo) uint64 { return uint64(s.AddrLSB()) }},
		{"si_pkey", func(s *SignalInfo) { s.SetPkey(^uint32(0)) }, func(s *SignalInfo) uint64 { return uint64(int32(s.Pkey())) }},
		{"si_band", func(s *SignalInfo) { s.SetBand(-1) }, func(s *SignalInfo) uint64 { return uint64(s.Band()) }},
		{"si_fd", func(s *SignalInfo) { s.SetFD(-1) }, func(s *SignalInfo) uint64 { return uint64(s.FD()) }},
		{"si_call_addr", func(s *SignalInfo) { s.SetCallAddr(^uint64(0)) }, func(s *SignalInfo) uint64 { return s.CallAddr() }},
		{"si_syscall", func(s *SignalInfo) { s.SetSyscall(-1) }, func(s *SignalInfo) uint64 { return uint64(s.Syscall()) }},
		{"si_arch", func(s *SignalInfo) { s.SetArch(^uint32(0)) }, func(s *SignalInfo) uint64 { return uint64(int32(s.Arch())) }},
	}
	var src strings.Builder
	src.WriteString(kernelHeaders)
	src.WriteString("int main(void) {\n")
	for _, c := range cases {
		fmt.Fprintf(&src, "\tprintf(\"%s %%zu %%zu\\n\", offsetof(siginfo_t, %s), fieldsize(siginfo_t, %s));\n", c.member, c.member, c.member)
	}
	src.WriteString("\treturn 0;\n}\n")
	lines := runC(t, src.String())
	for i, c := range cases {
		var member string
		var off, size int
		if _, err := fmt.Sscanf(lines[i], "%s %d %d", &member, &off, &size); err != nil || member != c.member {
			t.Fatalf("parse %q: %v", lines[i], err)
		}
		var s SignalInfo
		c.set(&s)
		lo, hi := -1, 0
		for j, b := range s {
			if b != 0 {
				if lo < 0 {
					lo = j
				}
				hi = j + 1
			}
		}
		if lo != off || hi-lo != size {
			t.Errorf("%s: accessor covers [%d,%d), C says [%d,%d)", c.member, lo, hi, off, off+size)
		}
		if c.get(&s) != ^uint64(0) {
			t.Errorf("%s: getter returns %#x after setting all ones", c.member, c.get(&s))
		}
	}
	var s SignalInfo
	s.SetSigno(SIGSEGV)
	s.SetCode(SEGV_MAPERR)
	s.SetAddr(0xdeadbeef)
	var b [SignalInfoSize]byte
	s.Marshal(b[:])
	var s2 SignalInfo
	s2.Unmarshal(b[:])
	if s2.Signo() != SIGSEGV || s2.Code() != SEGV_MAPERR || s2.Addr() != 0xdeadbeef {
		t.Errorf("round trip: %v %d %#x", s2.Signo(), s2.Code(), s2.Addr())
	}
}

// TestDirent64MatchesKernel lists a directory with the host's getdents64
// and decodes the entries, checking names, types and record lengths.
func TestDirent64MatchesKernel(t *testing.T) {
	dir := t.TempDir()
	names := map[string]uint8{".": DT_DIR, "..": DT_DIR, "sub": DT_DIR, "link": DT_LNK}
	for n := 1; n <= 40; n++ {
		name := strings.Repeat("f", n)
		names[name] = DT_REG
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 64<<10)
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var rebuilt []byte
	for b := buf[:n]; len(b) > 0; {
		d, reclen, ok := UnmarshalDirent64(b)
		if !ok {
			t.Fatalf("bad entry at %d", n-len(b))
		}
		if reclen != d.Size() {
			t.Errorf("%q: kernel reclen %d, Dirent64RecLen %d", d.Name, reclen, d.Size())
		}
		if typ, ok := names[d.Name]; !ok || typ != d.Type {
			t.Errorf("%q: type %d", d.Name, d.Type)
		}
		seen[d.Name] = true
		rebuilt = d.Append(rebuilt)
		if !bytes.Equal(rebuilt[len(rebuilt)-reclen:], b[:reclen]) {
			// The kernel leaves padding bytes after the NUL unspecified;
			// compare up to the NUL.
			hdr := Dirent64HeaderSize + len(d.Name) + 1
			if !bytes.Equal(rebuilt[len(rebuilt)-reclen:][:hdr], b[:hdr]) {
				t.Errorf("%q: Marshal differs from the kernel's entry", d.Name)
			}
		}
		b = b[reclen:]
	}
	if len(seen) != len(names) {
		t.Errorf("saw %d entries, want %d", len(seen), len(names))
	}
	for _, bad := range [][]byte{nil, make([]byte, 19), {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0}} {
		if _, _, ok := UnmarshalDirent64(bad); ok {
			t.Errorf("UnmarshalDirent64(%v) accepted", bad)
		}
	}
}

func TestCloneArgsShort(t *testing.T) {
	in := CloneArgs{Flags: 1, PidFD: 2, ChildTID: 3, ParentTID: 4, ExitSignal: 5, Stack: 6, StackSize: 7, TLS: 8, SetTID: 9, SetTIDSize: 10, Cgroup: 11}
	b := make([]byte, CloneArgsSize)
	in.Marshal(b)
	var out CloneArgs
	out.Cgroup = 99
	out.Unmarshal(b[:CloneArgsSizeVer0])
	if out.TLS != 8 || out.SetTID != 0 || out.Cgroup != 0 {
		t.Errorf("VER0: %+v", out)
	}
	out.Unmarshal(b[:CloneArgsSizeVer1])
	if out.SetTIDSize != 10 || out.Cgroup != 0 {
		t.Errorf("VER1: %+v", out)
	}
}

func TestUtsnameTruncates(t *testing.T) {
	u := Utsname{Sysname: "Linux", Release: strings.Repeat("r", 100)}
	b := make([]byte, UtsnameSize)
	u.Marshal(b)
	var v Utsname
	v.Unmarshal(b)
	if v.Sysname != "Linux" || v.Release != strings.Repeat("r", 64) || b[UtsnameFieldSize*3-1] != 0 {
		t.Errorf("got %+v", v)
	}
}

func TestTimeConversions(t *testing.T) {
	if ts := NsecToTimespec(-1); ts != (Timespec{-1, 999999999}) {
		t.Errorf("NsecToTimespec(-1) = %+v", ts)
	}
	if ts := NsecToTimespec(1500000000); ts != (Timespec{1, 500000000}) || ts.Duration() != 1500e6 {
		t.Errorf("NsecToTimespec(1.5s) = %+v", ts)
	}
	if (Timespec{Sec: 1 << 62}).Duration() != 1<<63-1 || (Timespec{Sec: -1 << 62}).Duration() != -1<<63 {
		t.Error("Duration does not saturate")
	}
	if !(Timespec{0, 999999999}).Valid() || (Timespec{0, 1e9}).Valid() || (Timespec{-1, 0}).Valid() {
		t.Error("Timespec.Valid")
	}
	if tv := DurationToTimeval(1500e6); tv != (Timeval{1, 500000}) || tv.Duration() != 1500e6 || !tv.Valid() || (Timeval{0, 1e6}).Valid() {
		t.Errorf("DurationToTimeval = %+v", tv)
	}
	ss := SignalStack{Sp: 0x1000, Size: 0x1000}
	if ss.Contains(0x1000) || !ss.Contains(0x1001) || !ss.Contains(0x2000) || ss.Contains(0x2001) {
		t.Error("SignalStack.Contains")
	}
}

// TestCmsgMacros compares CmsgLen, CmsgSpace and CmsgAlign with the C
// library's CMSG_LEN, CMSG_SPACE and CMSG_ALIGN.
func TestCmsgMacros(t *testing.T) {
	src := libcHeaders + `int main(void) {
	for (unsigned long n = 0; n < 70; n++)
		printf("%lu %zu %zu %zu\n", n, (size_t)CMSG_LEN(n), (size_t)CMSG_SPACE(n), (size_t)CMSG_ALIGN(n));
	return 0;
}
`
	for _, line := range runC(t, src) {
		var n, l, sp, al uint64
		if _, err := fmt.Sscanf(line, "%d %d %d %d", &n, &l, &sp, &al); err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		if CmsgLen(n) != l || CmsgSpace(n) != sp || CmsgAlign(n) != al {
			t.Errorf("n=%d: CmsgLen %d CmsgSpace %d CmsgAlign %d; C says %d %d %d", n, CmsgLen(n), CmsgSpace(n), CmsgAlign(n), l, sp, al)
		}
	}
}

// TestSockaddrByteOrder checks that ports and flow labels are big-endian,
// from addresses the C library's htons/htonl and inet_pton filled in.
func TestSockaddrByteOrder(t *testing.T) {
	src := libcHeaders + `#include <arpa/inet.h>
static void dump(const void *p, size_t n) {
	for (size_t i = 0; i < n; i++) printf("%02x", ((const unsigned char *)p)[i]);
	printf("\n");
}
int main(void) {
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons(0x1234);
	inet_pton(AF_INET, "10.1.2.3", &a.sin_addr);
	dump(&a, sizeof a);
	struct sockaddr_in6 b;
	memset(&b, 0, sizeof b);
	b.sin6_family = AF_INET6;
	b.sin6_port = htons(8080);
	b.sin6_flowinfo = htonl(0xabcde);
	b.sin6_scope_id = 7;
	inet_pton(AF_INET6, "fe80::1", &b.sin6_addr);
	dump(&b, sizeof b);
	return 0;
}
`
	src = strings.Replace(src, "#include <stdio.h>", "#include <stdio.h>\n#include <string.h>", 1)
	lines := runC(t, src)
	raw4, _ := hex.DecodeString(lines[0])
	raw6, _ := hex.DecodeString(lines[1])
	var a SockaddrInet4
	a.Unmarshal(raw4)
	if a.Family != AF_INET || a.Port != 0x1234 || a.Addr != [4]byte{10, 1, 2, 3} {
		t.Errorf("sockaddr_in %+v", a)
	}
	var b SockaddrInet6
	b.Unmarshal(raw6)
	if b.Family != AF_INET6 || b.Port != 8080 || b.Flowinfo != 0xabcde || b.ScopeID != 7 || b.Addr[0] != 0xfe || b.Addr[1] != 0x80 || b.Addr[15] != 1 {
		t.Errorf("sockaddr_in6 %+v", b)
	}
	for _, c := range []struct {
		m   marshaler
		raw []byte
	}{{&a, raw4}, {&b, raw6}} {
		out := make([]byte, len(c.raw))
		c.m.Marshal(out)
		if !bytes.Equal(out, c.raw) {
			t.Errorf("%T: Marshal %x, C %x", c.m, out, c.raw)
		}
	}
}
