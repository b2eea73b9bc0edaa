package procfs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/kernel"
)

// addSystemFiles adds the files of /proc that describe the whole
// sandbox.
func (fs *Filesystem) addSystemFiles(root *staticDir) {
	add := func(name string, mode uint32, gen func(context.Context) ([]byte, error)) *file {
		f := fs.newFile("/"+name, mode, gen)
		root.add(name, f)
		return f
	}
	add("cmdline", 0o444, text("BOOT_IMAGE=moat console=ttyS0\n"))
	add("cpuinfo", 0o444, fs.cpuinfo)
	add("filesystems", 0o444, text("nodev\tsysfs\nnodev\ttmpfs\nnodev\tbdev\nnodev\tproc\nnodev\tdevtmpfs\nnodev\tdevpts\nnodev\tpipefs\nnodev\tsockfs\nnodev\tanon_inodefs\nnodev\tmqueue\n"))
	add("loadavg", 0o444, fs.loadavg)
	add("meminfo", 0o444, fs.meminfo)
	root.add("mounts", fs.newLink("/mounts", func(context.Context) (string, error) { return "self/mounts", nil }))
	add("stat", 0o444, fs.stat)
	add("swaps", 0o444, text("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"))
	add("uptime", 0o444, fs.uptime)
	add("version", 0o444, text(fmt.Sprintf("Linux version %s (moat@moat) (go) %s\n", kernel.OSRelease, kernel.OSVersion)))

	sys := fs.newStaticDir("/sys", root.ino)
	root.add("sys", sys)
	dir := func(parent *staticDir, name string) *staticDir {
		d := fs.newStaticDir(parent.path+"/"+name, parent.ino)
		parent.add(name, d)
		return d
	}
	val := func(d *staticDir, name, v string) *file {
		f := fs.newFile(d.path+"/"+name, 0o444, text(v+"\n"))
		d.add(name, f)
		return f
	}
	kdir := dir(sys, "kernel")
	val(kdir, "ostype", "Linux")
	val(kdir, "osrelease", kernel.OSRelease)
	val(kdir, "version", kernel.OSVersion)
	val(kdir, "pid_max", "4194304")
	val(kdir, "threads-max", "63536")
	val(kdir, "ngroups_max", "65536")
	val(kdir, "cap_last_cap", strconv.Itoa(int(auth.CapLastCap)))
	val(kdir, "overflowuid", "65534")
	val(kdir, "overflowgid", "65534")
	val(kdir, "randomize_va_space", "0")
	random := dir(kdir, "random")
	bootID := newUUID()
	val(random, "boot_id", bootID)
	random.add("uuid", fs.newFile("/sys/kernel/random/uuid", 0o444, func(context.Context) ([]byte, error) { return []byte(newUUID() + "\n"), nil }))
	val(random, "entropy_avail", "256")
	val(random, "poolsize", "256")
	vm := dir(sys, "vm")
	val(vm, "overcommit_memory", "0")
	val(vm, "overcommit_ratio", "50")
	val(vm, "max_map_count", "65530")
	val(vm, "swappiness", "60")
	fsd := dir(sys, "fs")
	val(fsd, "file-max", "9223372036854775807")
	val(fsd, "nr_open", "1048576")
	val(fsd, "pipe-max-size", "1048576")
	inotify := dir(fsd, "inotify")
	val(inotify, "max_user_watches", "8192")
	val(inotify, "max_user_instances", "128")
	val(inotify, "max_queued_events", "16384")
	fs.addSysctlFiles(root, sys, dir)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// hostCPU is what the host's /proc/cpuinfo says of its first CPU, read
// once while the sentry can still see it, so guests see the real model
// and flags.
var hostCPU = sync.OnceValue(func() [][2]string {
	out := [][2]string{
		{"vendor_id", "GenuineIntel"}, {"cpu family", "6"}, {"model", "85"},
		{"model name", "Virtual CPU"}, {"stepping", "7"}, {"cpu MHz", "2000.000"},
		{"cache size", "16384 KB"}, {"fpu", "yes"}, {"fpu_exception", "yes"},
		{"cpuid level", "13"}, {"wp", "yes"},
		{"flags", "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology cpuid pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch fsgsbase bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap clflushopt clwb avx512cd avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves arat"},
		{"bugs", ""}, {"bogomips", "4000.00"}, {"clflush size", "64"},
		{"cache_alignment", "64"}, {"address sizes", "46 bits physical, 48 bits virtual"},
		{"power management", ""},
	}
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return out
	}
	skip := map[string]bool{"processor": true, "physical id": true, "siblings": true, "core id": true,
		"cpu cores": true, "apicid": true, "initial apicid": true, "microcode": true}
	var host [][2]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(host) > 0 {
				break
			}
			continue
		}
		key, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = strings.TrimRight(key, " \t")
		if !skip[key] {
			host = append(host, [2]string{key, strings.TrimSpace(v)})
		}
	}
	if len(host) < 5 {
		return out
	}
	return host
})

// cpuinfo is /proc/cpuinfo: one entry per vCPU of the sandbox.
func (fs *Filesystem) cpuinfo(context.Context) ([]byte, error) {
	n := fs.k.CPUs()
	host := hostCPU()
	var b bytes.Buffer
	line := func(k, v string) {
		tabs := "\t"
		if len(k) < 8 {
			tabs = "\t\t"
		}
		if v == "" {
			fmt.Fprintf(&b, "%s%s:\n", k, tabs)
			return
		}
		fmt.Fprintf(&b, "%s%s: %s\n", k, tabs, v)
	}
	for i := 0; i < n; i++ {
		line("processor", strconv.Itoa(i))
		for _, kv := range host {
			line(kv[0], kv[1])
			switch kv[0] {
			case "cache size":
				line("physical id", "0")
				line("siblings", strconv.Itoa(n))
				line("core id", strconv.Itoa(i))
				line("cpu cores", strconv.Itoa(n))
				line("apicid", strconv.Itoa(i))
				line("initial apicid", strconv.Itoa(i))
			}
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// memTotal is the sandbox's memory: its limit, or the host's RAM when it
// has none.
func (fs *Filesystem) memTotal() (total, used uint64) {
	used, _, limit := fs.k.Frames.Usage()
	if limit != 0 {
		return limit, used
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		return uint64(si.Totalram) * uint64(si.Unit), used
	}
	return 1 << 30, used
}

// meminfo is /proc/meminfo, from the sandbox's limit and use.
func (fs *Filesystem) meminfo(context.Context) ([]byte, error) {
	total, used := fs.memTotal()
	free := uint64(0)
	if total > used {
		free = total - used
	}
	kb := func(n uint64) uint64 { return n >> 10 }
	var b bytes.Buffer
	row := func(name string, v uint64) { fmt.Fprintf(&b, "%-16s%8d kB\n", name+":", v) }
	row("MemTotal", kb(total))
	row("MemFree", kb(free))
	row("MemAvailable", kb(free))
	row("Buffers", 0)
	row("Cached", 0)
	row("SwapCached", 0)
	row("Active", kb(used))
	row("Inactive", 0)
	row("Active(anon)", kb(used))
	row("Inactive(anon)", 0)
	row("Active(file)", 0)
	row("Inactive(file)", 0)
	row("Unevictable", 0)
	row("Mlocked", 0)
	row("SwapTotal", 0)
	row("SwapFree", 0)
	row("Dirty", 0)
	row("Writeback", 0)
	row("AnonPages", kb(used))
	row("Mapped", 0)
	row("Shmem", 0)
	row("KReclaimable", 0)
	row("Slab", 0)
	row("SReclaimable", 0)
	row("SUnreclaim", 0)
	row("KernelStack", 0)
	row("PageTables", 0)
	row("NFS_Unstable", 0)
	row("Bounce", 0)
	row("WritebackTmp", 0)
	row("CommitLimit", kb(total))
	row("Committed_AS", kb(used))
	row("VmallocTotal", 34359738367)
	row("VmallocUsed", 0)
	row("VmallocChunk", 0)
	row("Percpu", 0)
	row("HardwareCorrupted", 0)
	row("AnonHugePages", 0)
	row("ShmemHugePages", 0)
	row("ShmemPmdMapped", 0)
	fmt.Fprintf(&b, "HugePages_Total:   %5d\nHugePages_Free:    %5d\nHugePages_Rsvd:    %5d\nHugePages_Surp:    %5d\n", 0, 0, 0, 0)
	row("Hugepagesize", 2048)
	row("Hugetlb", 0)
	row("DirectMap4k", kb(total))
	return b.Bytes(), nil
}

// uptime is /proc/uptime: seconds since the sandbox started, and the
// seconds its CPUs spent idle.
func (fs *Filesystem) uptime(context.Context) ([]byte, error) {
	up := time.Since(fs.k.BootTime())
	idle := up*time.Duration(fs.k.CPUs()) - fs.k.Stats().CPUTime
	if idle < 0 {
		idle = 0
	}
	return fmt.Appendf(nil, "%.2f %.2f\n", up.Seconds(), idle.Seconds()), nil
}

// loadavg is /proc/loadavg: the 1, 5 and 15 minute averages of the
// threads running user code, decayed exponentially as Linux's are. The
// sentry keeps no sampler: each read folds in the time since the last
// one at the count running now.
func (fs *Filesystem) loadavg(context.Context) ([]byte, error) {
	s := fs.k.Stats()
	l := fs.load.update(time.Now(), float64(s.Running))
	return fmt.Appendf(nil, "%.2f %.2f %.2f %d/%d %d\n", l[0], l[1], l[2], max(s.Running, 1), s.Threads, s.LastPID), nil
}

// loadAvg holds the decaying load averages.
type loadAvg struct {
	mu   sync.Mutex
	last time.Time
	avg  [3]float64
}

// update decays the averages over the time since the last update towards
// n and returns them.
func (l *loadAvg) update(now time.Time, n float64) [3]float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		dt := now.Sub(l.last).Seconds()
		for i, period := range []float64{60, 300, 900} {
			e := math.Exp(-dt / period)
			l.avg[i] = l.avg[i]*e + n*(1-e)
		}
	}
	l.last = now
	return l.avg
}

// stat is /proc/stat: CPU time in USER_HZ ticks, split evenly over the
// vCPUs, and the process counters.
func (fs *Filesystem) stat(context.Context) ([]byte, error) {
	s := fs.k.Stats()
	n := fs.k.CPUs()
	up := time.Since(fs.k.BootTime())
	user := ticks(s.CPUTime)
	idleAll := ticks(up) * uint64(n)
	if idleAll > user {
		idleAll -= user
	} else {
		idleAll = 0
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "cpu  %d 0 0 %d 0 0 0 0 0 0\n", user, idleAll)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "cpu%d %d 0 0 %d 0 0 0 0 0 0\n", i, user/uint64(n), idleAll/uint64(n))
	}
	fmt.Fprintf(&b, "intr 0\nctxt 0\nbtime %d\nprocesses %d\nprocs_running %d\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
		fs.k.BootTime().Unix(), s.LastPID, max(s.Running, 1))
	return b.Bytes(), nil
}
