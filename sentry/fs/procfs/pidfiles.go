package procfs

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/mm"
	"moat.dev/moat/sentry/platform"
	"moat.dev/moat/sentry/vfs"
)

// clockTicks is USER_HZ, the unit of the times in stat files (AT_CLKTCK).
const clockTicks = 100

func ticks(d time.Duration) uint64 { return uint64(d / (time.Second / clockTicks)) }

// maxArgs bounds what cmdline and environ read from a process's memory.
const maxArgs = 1 << 20

// readRange reads [start, end) of m, stopping at the first unreadable
// byte (a process may unmap its own arguments).
func readRange(ctx context.Context, m *mm.MM, start, end uint64) []byte {
	if end <= start {
		return nil
	}
	n := min(end-start, maxArgs)
	buf := make([]byte, n)
	got, _ := m.CopyIn(ctx, start, buf)
	return buf[:got]
}

// cmdline is /proc/[pid]/cmdline: the argument strings, each ending in
// a NUL, as the process's memory holds them now.
func (p *proc) cmdline(ctx context.Context) ([]byte, error) {
	var b []byte
	p.withMM(func(m *mm.MM) { b = readRange(ctx, m, m.ArgStart, m.ArgEnd) })
	return b, nil
}

// environ is /proc/[pid]/environ.
func (p *proc) environ(ctx context.Context) ([]byte, error) {
	var b []byte
	p.withMM(func(m *mm.MM) { b = readRange(ctx, m, m.EnvStart, m.EnvEnd) })
	return b, nil
}

// auxv is /proc/[pid]/auxv.
func (p *proc) auxv(context.Context) ([]byte, error) {
	var b []byte
	p.withMM(func(m *mm.MM) { b = append([]byte(nil), m.Auxv...) })
	return b, nil
}

// name is the comm of the thread or process.
func (p *proc) name() string {
	if t := p.task(); t != nil && p.t != nil {
		return t.Name()
	}
	return p.g.Info().Name
}

// comm is /proc/[pid]/comm.
func (p *proc) comm(context.Context) ([]byte, error) { return []byte(p.name() + "\n"), nil }

// setComm renames the thread (or main thread); only threads of the same
// process may, as on Linux.
func (p *proc) setComm(ctx context.Context, b []byte) error {
	if caller := kernel.TaskFromContext(ctx); caller != nil && caller.ThreadGroup() != p.g {
		return unix.EINVAL
	}
	t := p.task()
	if t == nil {
		return unix.ESRCH
	}
	t.SetName(strings.TrimSuffix(string(b), "\n"))
	return nil
}

// exe is /proc/[pid]/exe.
func (p *proc) exe(context.Context) (string, error) {
	var exe string
	if !p.withMM(func(m *mm.MM) { exe = m.Exe }) || exe == "" {
		return "", unix.ENOENT
	}
	return exe, nil
}

// cwd and root are /proc/[pid]/cwd and root.
func (p *proc) cwd(ctx context.Context) (string, error)  { return p.fsPath(ctx, false) }
func (p *proc) root(ctx context.Context) (string, error) { return p.fsPath(ctx, true) }

func (p *proc) fsPath(ctx context.Context, wantRoot bool) (string, error) {
	caller := kernel.TaskFromContext(ctx)
	t := p.task()
	if t == nil {
		return "", unix.ENOENT
	}
	root, cwd, ok := t.ProcFS()
	if !ok {
		return "", unix.ENOENT
	}
	defer root.DecRef(ctx)
	defer cwd.DecRef(ctx)
	vd := cwd
	if wantRoot {
		vd = root
	}
	// The path is shown as the reader sees it, from the reader's root.
	var from vfs.VirtualDentry
	if caller != nil {
		if r, c, ok := caller.ProcFS(); ok {
			defer r.DecRef(ctx)
			defer c.DecRef(ctx)
			from = r
		}
	}
	path, _ := p.fs.k.VFS.PathOf(from, vd)
	return path, nil
}

// limits is /proc/[pid]/limits.
func (p *proc) limits(context.Context) ([]byte, error) {
	rows := []struct {
		name  string
		res   int
		units string
	}{
		{"Max cpu time", abi.RLIMIT_CPU, "seconds"},
		{"Max file size", abi.RLIMIT_FSIZE, "bytes"},
		{"Max data size", abi.RLIMIT_DATA, "bytes"},
		{"Max stack size", abi.RLIMIT_STACK, "bytes"},
		{"Max core file size", abi.RLIMIT_CORE, "bytes"},
		{"Max resident set", abi.RLIMIT_RSS, "bytes"},
		{"Max processes", abi.RLIMIT_NPROC, "processes"},
		{"Max open files", abi.RLIMIT_NOFILE, "files"},
		{"Max locked memory", abi.RLIMIT_MEMLOCK, "bytes"},
		{"Max address space", abi.RLIMIT_AS, "bytes"},
		{"Max file locks", abi.RLIMIT_LOCKS, "locks"},
		{"Max pending signals", abi.RLIMIT_SIGPENDING, "signals"},
		{"Max msgqueue size", abi.RLIMIT_MSGQUEUE, "bytes"},
		{"Max nice priority", abi.RLIMIT_NICE, ""},
		{"Max realtime priority", abi.RLIMIT_RTPRIO, ""},
		{"Max realtime timeout", abi.RLIMIT_RTTIME, "us"},
	}
	val := func(v uint64) string {
		if v == ^uint64(0) {
			return "unlimited"
		}
		return strconv.FormatUint(v, 10)
	}
	b := fmt.Appendf(nil, "%-25s %-20s %-20s %-10s\n", "Limit", "Soft Limit", "Hard Limit", "Units")
	for _, r := range rows {
		l := p.g.Rlimit(r.res)
		b = fmt.Appendf(b, "%-25s %-20s %-20s %-10s\n", r.name, val(l.Cur), val(l.Max), r.units)
	}
	return b, nil
}

// oomScoreAdj is /proc/[pid]/oom_score_adj.
func (p *proc) oomScoreAdj(context.Context) ([]byte, error) {
	return []byte(strconv.Itoa(int(p.g.OOMScoreAdj())) + "\n"), nil
}

// setOOMScoreAdj takes a value in [-1000, 1000]; lowering it needs
// CAP_SYS_RESOURCE, as on Linux.
func (p *proc) setOOMScoreAdj(ctx context.Context, b []byte) error {
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || v < -1000 || v > 1000 {
		return unix.EINVAL
	}
	if caller := kernel.TaskFromContext(ctx); caller != nil && int32(v) < p.g.OOMScoreAdj() {
		if caller.Creds().Caps&auth.CapSetOf(auth.CapSysResource) == 0 {
			return unix.EACCES
		}
	}
	if !p.live() {
		return unix.ESRCH
	}
	p.g.SetOOMScoreAdj(int32(v))
	return nil
}

// memInfo is what the stat, statm and status files say about memory.
type memInfo struct {
	size, data, stack, text uint64 // bytes mapped
	anon, file              uint64 // pages resident
	startCode, endCode      uint64
	startStack              uint64
	startBrk                uint64
	argStart, argEnd        uint64
	envStart, envEnd        uint64
}

func (p *proc) memInfo() (mi memInfo, ok bool) {
	ok = p.withMM(func(m *mm.MM) {
		mi.anon, mi.file = m.ResidentPages()
		mi.startBrk, _ = m.BrkRange()
		mi.argStart, mi.argEnd, mi.envStart, mi.envEnd = m.ArgStart, m.ArgEnd, m.EnvStart, m.EnvEnd
		for _, v := range m.VMAs() {
			n := v.End - v.Start
			mi.size += n
			switch {
			case v.GrowsDown || v.Name == "[stack]":
				mi.stack += n
				mi.startStack = mm.StackTop
			case v.File != nil && v.Prot&platform.PermExec != 0:
				if v.File.Name() == m.Exe {
					mi.text += n
					if mi.startCode == 0 {
						mi.startCode = v.Start
					}
					mi.endCode = v.End
				}
			case !v.Shared && v.Prot&platform.PermWrite != 0:
				mi.data += n
			}
		}
	})
	return mi, ok
}

// stat is /proc/[pid]/stat (and task/[tid]/stat).
func (p *proc) stat(ctx context.Context) ([]byte, error) {
	ns := p.fs.viewer(ctx)
	pi := p.g.InfoIn(ns)
	state, name := pi.State, pi.Name
	cpu := pi.CPUTime
	pending, blocked := pi.SharedPending, abi.SignalSet(0)
	threads := pi.Threads
	if t := p.task(); t != nil {
		ti := t.Info()
		if p.t != nil {
			state, name, cpu = ti.State, ti.Name, ti.CPUTime
		}
		pending |= ti.SigPending
		blocked = ti.SigMask
	}
	if caller := kernel.TaskFromContext(ctx); caller != nil && (caller == p.t || p.t == nil && caller.ThreadGroup() == p.g) {
		state = 'R' // the reader is running: it is reading
	}
	if pi.Zombie {
		state, threads = 'Z', 1
	}
	mi, _ := p.memInfo()
	rss := mi.anon + mi.file
	start := ticks(pi.Start.Sub(p.fs.k.BootTime()))
	exitSig := int(pi.ExitSignal)
	// Fields 3 onwards as proc(5) numbers them; utime holds all the
	// time run, as the sentry does not split user from system time.
	f := []any{
		fmt.Sprintf("%c", state), pi.PPID, pi.PGID, pi.SID, 0, -1, // 3-8: state … tpgid
		4194304, 0, 0, 0, 0, // 9-13: flags, faults
		ticks(cpu), 0, ticks(pi.ChildCPU), 0, // 14-17: utime, stime, cutime, cstime
		20, 0, threads, 0, start, // 18-22: priority, nice, threads, itrealvalue, starttime
		mi.size, rss, ^uint64(0), // 23-25: vsize, rss, rsslim
		mi.startCode, mi.endCode, mi.startStack, 0, 0, // 26-30
		uint64(pending), uint64(blocked), uint64(pi.Ignored), uint64(pi.Caught), // 31-34
		0, 0, 0, exitSig, 0, 0, 0, 0, 0, 0, // 35-44: wchan … cguest_time
		0, 0, mi.startBrk, mi.argStart, mi.argEnd, mi.envStart, mi.envEnd, 0, // 45-52
	}
	b := fmt.Appendf(nil, "%d (%s)", p.id(ns), name)
	for _, v := range f {
		b = fmt.Append(b, " ", v)
	}
	b = append(b, '\n')
	return b, nil
}

// id is the PID, or the TID for a thread's directory, as ns numbers it.
func (p *proc) id(ns *kernel.PIDNamespace) int32 {
	if p.t != nil {
		return ns.IDOfTask(p.t)
	}
	return ns.IDOfThreadGroup(p.g)
}

// statm is /proc/[pid]/statm, in pages.
func (p *proc) statm(context.Context) ([]byte, error) {
	mi, _ := p.memInfo()
	pg := uint64(mm.PageSize)
	return fmt.Appendf(nil, "%d %d %d %d 0 %d 0\n", mi.size/pg, mi.anon+mi.file, mi.file, mi.text/pg, (mi.data+mi.stack)/pg), nil
}

// status is /proc/[pid]/status.
func (p *proc) status(ctx context.Context) ([]byte, error) {
	ns := p.fs.viewer(ctx)
	pi := p.g.InfoIn(ns)
	var b bytes.Buffer
	t := p.task()
	name, state := pi.Name, pi.State
	var ti kernel.TaskInfo
	if t != nil {
		ti = t.InfoIn(ns)
		if p.t != nil {
			name, state = ti.Name, ti.State
		}
	}
	if caller := kernel.TaskFromContext(ctx); caller != nil && (caller == p.t || p.t == nil && caller.ThreadGroup() == p.g) {
		state = 'R'
	}
	if pi.Zombie || t == nil {
		state = 'Z'
	}
	c := pi.Creds
	if t != nil {
		c = ti.Creds
	}
	fmt.Fprintf(&b, "Name:\t%s\n", name)
	if t != nil {
		fmt.Fprintf(&b, "Umask:\t%04o\n", t.FS().Umask())
	}
	fmt.Fprintf(&b, "State:\t%c (%s)\n", state, stateName(state))
	fmt.Fprintf(&b, "Tgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\nTracerPid:\t0\n", pi.PID, p.id(ns), pi.PPID)
	fmt.Fprintf(&b, "Uid:\t%d\t%d\t%d\t%d\n", c.RUID, c.EUID, c.SUID, c.FSUID)
	fmt.Fprintf(&b, "Gid:\t%d\t%d\t%d\t%d\n", c.RGID, c.EGID, c.SGID, c.FSGID)
	fdSize := 64
	if t != nil {
		for _, fd := range t.FDs().FDs() {
			for int(fd) >= fdSize {
				fdSize *= 2
			}
		}
	}
	fmt.Fprintf(&b, "FDSize:\t%d\nGroups:\t", fdSize)
	for _, g := range c.Groups {
		fmt.Fprintf(&b, "%d ", g)
	}
	nsPIDs := pi.NSPIDs
	if p.t != nil {
		nsPIDs = ti.NSTIDs
	}
	fmt.Fprintf(&b, "\nNStgid:\t%s\nNSpid:\t%s\nNSpgid:\t%s\nNSsid:\t%s\n", idList(pi.NSPIDs), idList(nsPIDs), idList(pi.NSPGIDs), idList(pi.NSSIDs))
	if mi, ok := p.memInfo(); ok && t != nil {
		kb := func(n uint64) uint64 { return n >> 10 }
		pg := uint64(mm.PageSize)
		rss := (mi.anon + mi.file) * pg
		fmt.Fprintf(&b, "VmPeak:\t%8d kB\nVmSize:\t%8d kB\nVmLck:\t%8d kB\nVmPin:\t%8d kB\n", kb(mi.size), kb(mi.size), 0, 0)
		fmt.Fprintf(&b, "VmHWM:\t%8d kB\nVmRSS:\t%8d kB\n", kb(rss), kb(rss))
		fmt.Fprintf(&b, "RssAnon:\t%8d kB\nRssFile:\t%8d kB\nRssShmem:\t%8d kB\n", kb(mi.anon*pg), kb(mi.file*pg), 0)
		fmt.Fprintf(&b, "VmData:\t%8d kB\nVmStk:\t%8d kB\nVmExe:\t%8d kB\nVmLib:\t%8d kB\nVmPTE:\t%8d kB\nVmSwap:\t%8d kB\n",
			kb(mi.data), kb(mi.stack), kb(mi.text), 0, 0, 0)
	}
	threads := pi.Threads
	if pi.Zombie {
		threads = 1
	}
	sigPnd := ti.SigPending
	fmt.Fprintf(&b, "Threads:\t%d\n", threads)
	fmt.Fprintf(&b, "SigQ:\t0/%d\n", p.g.Rlimit(abi.RLIMIT_SIGPENDING).Cur)
	fmt.Fprintf(&b, "SigPnd:\t%016x\nShdPnd:\t%016x\nSigBlk:\t%016x\nSigIgn:\t%016x\nSigCgt:\t%016x\n",
		uint64(sigPnd), uint64(pi.SharedPending), uint64(ti.SigMask), uint64(pi.Ignored), uint64(pi.Caught))
	fmt.Fprintf(&b, "CapInh:\t%016x\nCapPrm:\t%016x\nCapEff:\t%016x\nCapBnd:\t%016x\nCapAmb:\t%016x\n",
		uint64(c.Inheritable), uint64(c.Permitted), uint64(c.Caps), uint64(c.Bounding), uint64(c.Ambient))
	nnp := 0
	if c.NoNewPrivs {
		nnp = 1
	}
	scMode, scFilters := 0, 0
	if t != nil {
		scMode, scFilters = t.Seccomp()
	}
	fmt.Fprintf(&b, "NoNewPrivs:\t%d\nSeccomp:\t%d\nSeccomp_filters:\t%d\n", nnp, scMode, scFilters)
	n := p.fs.k.CPUs()
	fmt.Fprintf(&b, "Cpus_allowed:\t%x\nCpus_allowed_list:\t%s\n", uint64(1)<<n-1, cpuList(n))
	fmt.Fprintf(&b, "Mems_allowed:\t1\nMems_allowed_list:\t0\n")
	fmt.Fprintf(&b, "voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n")
	return b.Bytes(), nil
}

// idList joins IDs with tabs, as the NS* lines of status show them.
func idList(ids []int32) string {
	var b []byte
	for i, id := range ids {
		if i > 0 {
			b = append(b, '\t')
		}
		b = strconv.AppendInt(b, int64(id), 10)
	}
	return string(b)
}

func stateName(s byte) string {
	switch s {
	case 'R':
		return "running"
	case 'Z':
		return "zombie"
	case 'D':
		return "disk sleep"
	case 'T':
		return "stopped"
	}
	return "sleeping"
}

// cpuList renders n CPUs as Linux's cpu lists do: "0", "0-3".
func cpuList(n int) string {
	if n <= 1 {
		return "0"
	}
	return "0-" + strconv.Itoa(n-1)
}

// vmaLine renders the maps line of a mapping, padded as Linux pads it.
func vmaLine(ctx context.Context, v *mm.VMA) string {
	perm := []byte("---p")
	if v.Prot&platform.PermRead != 0 {
		perm[0] = 'r'
	}
	if v.Prot&platform.PermWrite != 0 {
		perm[1] = 'w'
	}
	if v.Prot&platform.PermExec != 0 {
		perm[2] = 'x'
	}
	if v.Shared {
		perm[3] = 's'
	}
	var dev, ino uint64
	name := v.Name
	if v.File != nil {
		name = v.File.Name()
		if s, ok := v.File.(interface {
			Stat(context.Context) (vfs.Stat, error)
		}); ok {
			if st, err := s.Stat(ctx); err == nil {
				dev, ino = st.Dev, st.Ino
			}
		}
	}
	line := fmt.Sprintf("%08x-%08x %s %08x %02x:%02x %d ", v.Start, v.End, perm, v.Off, unix.Major(dev), unix.Minor(dev), ino)
	if name != "" {
		if len(line) < 73 {
			line += strings.Repeat(" ", 73-len(line))
		}
		line += name
	}
	return line + "\n"
}

// maps is /proc/[pid]/maps.
func (p *proc) maps(ctx context.Context) ([]byte, error) {
	var b []byte
	p.withMM(func(m *mm.MM) {
		for _, v := range m.VMAs() {
			b = append(b, vmaLine(ctx, &v)...)
		}
	})
	return b, nil
}

// smaps is /proc/[pid]/smaps: the maps lines with each mapping's sizes.
func (p *proc) smaps(ctx context.Context) ([]byte, error) {
	var b []byte
	p.withMM(func(m *mm.MM) {
		for _, v := range m.VMAs() {
			b = append(b, vmaLine(ctx, &v)...)
			size := (v.End - v.Start) >> 10
			rss := m.ResidentIn(v.Start, v.End) * mm.PageSize >> 10
			anon := rss
			if v.File != nil {
				anon = 0
			}
			for _, f := range []struct {
				name string
				v    uint64
			}{
				{"Size:", size}, {"KernelPageSize:", 4}, {"MMUPageSize:", 4}, {"Rss:", rss}, {"Pss:", rss},
				{"Shared_Clean:", 0}, {"Shared_Dirty:", 0}, {"Private_Clean:", 0}, {"Private_Dirty:", rss},
				{"Referenced:", rss}, {"Anonymous:", anon}, {"LazyFree:", 0}, {"AnonHugePages:", 0},
				{"ShmemPmdMapped:", 0}, {"FilePmdMapped:", 0}, {"Shared_Hugetlb:", 0}, {"Private_Hugetlb:", 0},
				{"Swap:", 0}, {"SwapPss:", 0}, {"Locked:", 0},
			} {
				b = fmt.Appendf(b, "%-16s%8d kB\n", f.name, f.v)
			}
			b = fmt.Appendf(b, "THPeligible:    0\nVmFlags: %s\n", vmFlags(&v))
		}
	})
	return b, nil
}

// vmFlags renders the VmFlags line of smaps.
func vmFlags(v *mm.VMA) string {
	var f []string
	if v.Prot&platform.PermRead != 0 {
		f = append(f, "rd")
	}
	if v.Prot&platform.PermWrite != 0 {
		f = append(f, "wr")
	}
	if v.Prot&platform.PermExec != 0 {
		f = append(f, "ex")
	}
	if v.Shared {
		f = append(f, "sh")
	}
	f = append(f, "mr", "mw", "me")
	if v.Shared {
		f = append(f, "ms")
	}
	if v.GrowsDown {
		f = append(f, "gd")
	}
	return strings.Join(f, " ") + " "
}
