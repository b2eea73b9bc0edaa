package procfs

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/kernel"
)

// Sysctls is what /proc/sys shows of one sandbox, shared by every procfs
// of it (each container mounts its own /proc):
//
//   - the IPC and UTS sysctls, which Linux keeps per IPC and UTS
//     namespace and a sandbox keeps itself (kernel.shm_rmid_forced,
//     kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*; kernel.hostname
//     and kernel.domainname are the kernel's UTS names);
//   - /proc/sys/net and /proc/net, read from the host network namespace
//     the sentry runs in (the pod's): directories opened while the sentry
//     could still see the host's /proc (OpenHostNet), read-only to the
//     guest.
type Sysctls struct {
	mu   sync.Mutex
	vals map[string]string
	// netSys and net are O_PATH descriptors of the host's /proc/sys/net
	// and /proc/self/net, or nil.
	netSys, net *os.File
}

// sandboxSysctls are the sysctls a sandbox keeps itself, with Linux's
// defaults; kernel.hostname and kernel.domainname are the kernel's.
var sandboxSysctls = map[string]string{
	"kernel.shm_rmid_forced":    "0",
	"kernel.msgmax":             "8192",
	"kernel.msgmnb":             "16384",
	"kernel.msgmni":             "32000",
	"kernel.sem":                "32000\t1024000000\t500\t32000",
	"kernel.shmall":             "18446744073692774399",
	"kernel.shmmax":             "18446744073692774399",
	"kernel.shmmni":             "4096",
	"fs.mqueue.msg_max":         "10",
	"fs.mqueue.msgsize_max":     "8192",
	"fs.mqueue.queues_max":      "256",
	"fs.mqueue.msg_default":     "10",
	"fs.mqueue.msgsize_default": "8192",
	"kernel.hostname":           "",
	"kernel.domainname":         "",
}

// IsSandboxSysctl says whether name (dotted, as in an OCI spec) is one a
// sandbox keeps itself.
func IsSandboxSysctl(name string) bool {
	_, ok := sandboxSysctls[name]
	return ok
}

// CheckSandboxSysctl validates a value for one of the sandbox's own
// sysctls and returns it as /proc/sys shows it.
func CheckSandboxSysctl(name, value string) (string, error) {
	if !IsSandboxSysctl(name) {
		return "", fmt.Errorf("sysctl %q is not one a sandbox keeps", name)
	}
	v := strings.TrimSuffix(value, "\n")
	if strings.ContainsAny(v, "\n\x00") {
		return "", fmt.Errorf("sysctl %s: value %q has a newline or NUL", name, value)
	}
	uintIn := func(lo, hi uint64) (string, error) {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil || n < lo || n > hi {
			return "", fmt.Errorf("sysctl %s: value %q is not an integer in [%d, %d]", name, value, lo, hi)
		}
		return strconv.FormatUint(n, 10), nil
	}
	switch name {
	case "kernel.hostname", "kernel.domainname":
		if len(v) > 64 {
			return "", fmt.Errorf("sysctl %s: value %q is longer than 64 bytes", name, value)
		}
		return v, nil
	case "kernel.shm_rmid_forced":
		return uintIn(0, 1)
	case "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.shmmni":
		return uintIn(0, 1<<31-1)
	case "kernel.shmall", "kernel.shmmax":
		return uintIn(0, 1<<64-1)
	case "kernel.sem":
		f := strings.Fields(v)
		if len(f) != 4 {
			return "", fmt.Errorf("sysctl %s: value %q is not four integers", name, value)
		}
		for _, s := range f {
			if n, err := strconv.ParseInt(s, 10, 32); err != nil || n < 0 {
				return "", fmt.Errorf("sysctl %s: value %q is not four integers", name, value)
			}
		}
		return strings.Join(f, "\t"), nil
	case "fs.mqueue.msg_max", "fs.mqueue.msg_default":
		return uintIn(1, 65536)
	case "fs.mqueue.msgsize_max", "fs.mqueue.msgsize_default":
		return uintIn(128, 16<<20)
	case "fs.mqueue.queues_max":
		return uintIn(0, 1<<31-1)
	}
	return "", fmt.Errorf("sysctl %q has no check", name)
}

// NewSysctls returns a sandbox's sysctls at Linux's defaults, without the
// host network's.
func NewSysctls() *Sysctls {
	s := &Sysctls{vals: map[string]string{}}
	for k, v := range sandboxSysctls {
		if v != "" {
			s.vals[k] = v
		}
	}
	return s
}

// OpenHostNet opens the host's /proc/sys/net and /proc/self/net (of the
// network namespace the caller runs in) for the guest's /proc/sys/net
// and /proc/net. It must run before the sentry gives up its view of the
// host's /proc.
func (s *Sysctls) OpenHostNet() error {
	netSys, err := os.OpenFile("/proc/sys/net", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the host's /proc/sys/net: %w", err)
	}
	net, err := os.OpenFile("/proc/self/net", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		netSys.Close()
		return fmt.Errorf("open the host's /proc/self/net: %w", err)
	}
	s.mu.Lock()
	s.netSys, s.net = netSys, net
	s.mu.Unlock()
	return nil
}

// Close releases the host directories.
func (s *Sysctls) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range []*os.File{s.netSys, s.net} {
		if f != nil {
			f.Close()
		}
	}
	s.netSys, s.net = nil, nil
}

// Set sets one of the sandbox's own sysctls (kernel.hostname and
// kernel.domainname go to k), after CheckSandboxSysctl.
func (s *Sysctls) Set(k *kernel.Kernel, name, value string) error {
	v, err := CheckSandboxSysctl(name, value)
	if err != nil {
		return err
	}
	switch name {
	case "kernel.hostname":
		k.SetHostname(v)
	case "kernel.domainname":
		k.SetDomainname(v)
	default:
		s.mu.Lock()
		s.vals[name] = v
		s.mu.Unlock()
	}
	return nil
}

// Get returns one of the sandbox's own sysctls.
func (s *Sysctls) Get(k *kernel.Kernel, name string) string {
	switch name {
	case "kernel.hostname":
		return k.Hostname()
	case "kernel.domainname":
		return k.Domainname()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vals[name]
}

// readHost reads one file under a host directory the sentry holds:
// single path components, no symbolic links.
func readHost(dir *os.File, rel string) ([]byte, error) {
	if dir == nil {
		return nil, unix.ENOENT
	}
	for _, c := range strings.Split(rel, "/") {
		if c == "" || c == "." || c == ".." {
			return nil, unix.ENOENT
		}
	}
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(int(dir.Fd()), rel, &how)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4<<20))
}

// NetSysctl reads a sysctl of the host network namespace the sentry runs
// in, by its path under /proc/sys/net ("ipv4/ip_unprivileged_port_start").
func (s *Sysctls) NetSysctl(rel string) (string, error) {
	s.mu.Lock()
	dir := s.netSys
	s.mu.Unlock()
	b, err := readHost(dir, rel)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// netSysctls are the files of /proc/sys/net the guest sees, read from the
// host network namespace.
var netSysctls = map[string][]string{
	"core": {"somaxconn", "rmem_default", "rmem_max", "wmem_default", "wmem_max", "netdev_max_backlog", "optmem_max"},
	"ipv4": {"ip_local_port_range", "ip_local_reserved_ports", "ip_unprivileged_port_start", "ping_group_range",
		"ip_forward", "ip_default_ttl", "ip_nonlocal_bind", "tcp_keepalive_time", "tcp_keepalive_intvl",
		"tcp_keepalive_probes", "tcp_fin_timeout", "tcp_syncookies", "tcp_tw_reuse", "tcp_rmem", "tcp_wmem",
		"tcp_max_syn_backlog", "tcp_congestion_control", "tcp_available_congestion_control", "tcp_timestamps",
		"tcp_sack", "tcp_window_scaling", "tcp_fastopen", "tcp_mtu_probing", "tcp_syn_retries", "tcp_synack_retries",
		"tcp_retries2", "udp_rmem_min", "udp_wmem_min"},
	"ipv6": {"bindv6only"},
}

// netFiles are the files of /proc/net the guest sees, read from the host
// network namespace. unix is the sandbox's own (its AF_UNIX sockets are
// the sentry's, not the host's): a header only.
var netFiles = []string{"tcp", "tcp6", "udp", "udp6", "raw", "raw6", "dev", "if_inet6", "route",
	"ipv6_route", "snmp", "snmp6", "netstat", "sockstat", "sockstat6", "arp", "igmp", "igmp6", "dev_mcast"}

// addSysctlFiles adds the sandbox's own sysctls under /proc/sys (sys),
// /proc/sys/net and /proc/net (root) from the host network namespace.
func (fs *Filesystem) addSysctlFiles(root, sys *staticDir, sub func(*staticDir, string) *staticDir) {
	st := fs.sysctls
	k := fs.k
	byDir := map[string]*staticDir{}
	dirOf := func(p string) *staticDir {
		if d, ok := byDir[p]; ok {
			return d
		}
		d := sys
		for _, c := range strings.Split(p, "/") {
			if n, ok := d.children[c]; ok {
				d = n.(*staticDir)
				continue
			}
			d = sub(d, c)
		}
		byDir[p] = d
		return d
	}
	names := make([]string, 0, len(sandboxSysctls))
	for name := range sandboxSysctls {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		i := strings.LastIndexByte(name, '.')
		d := dirOf(strings.ReplaceAll(name[:i], ".", "/"))
		leaf := name[i+1:]
		if _, ok := d.children[leaf]; ok {
			continue
		}
		name := name
		f := fs.newFile(d.path+"/"+leaf, 0o644, func(context.Context) ([]byte, error) {
			return []byte(st.Get(k, name) + "\n"), nil
		})
		f.write = func(ctx context.Context, p []byte) error {
			if t := kernel.TaskFromContext(ctx); t != nil && t.Creds().Caps&auth.CapSetOf(auth.CapSysAdmin) == 0 {
				return unix.EPERM
			}
			if err := st.Set(k, name, string(p)); err != nil {
				return unix.EINVAL
			}
			return nil
		}
		d.add(leaf, f)
	}
	for _, sub := range []string{"core", "ipv4", "ipv6"} {
		d := dirOf("net/" + sub)
		for _, leaf := range netSysctls[sub] {
			if _, ok := d.children[leaf]; ok {
				continue
			}
			rel := sub + "/" + leaf
			d.add(leaf, fs.newFile(d.path+"/"+leaf, 0o444, func(context.Context) ([]byte, error) {
				st.mu.Lock()
				dir := st.netSys
				st.mu.Unlock()
				return readHost(dir, rel)
			}))
		}
	}
	net := fs.newStaticDir("/net", root.ino)
	root.add("net", net)
	fs.netDir = net
	for _, leaf := range netFiles {
		leaf := leaf
		net.add(leaf, fs.newFile("/net/"+leaf, 0o444, func(context.Context) ([]byte, error) {
			st.mu.Lock()
			dir := st.net
			st.mu.Unlock()
			b, err := readHost(dir, leaf)
			if err == unix.ENOENT {
				return nil, nil
			}
			return b, err
		}))
	}
	net.add("unix", fs.newFile("/net/unix", 0o444, text("Num       RefCount Protocol Flags    Type St Inode Path\n")))
}
