package shim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"golang.org/x/sys/unix"

	"moat.dev/moat/cri"
	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/control"
	"moat.dev/moat/sentry/seccomp"
)

func TestPodResources(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	ctr := func(quota int64, period uint64, mem int64) limits {
		r := &specs.LinuxResources{CPU: &specs.LinuxCPU{}, Memory: &specs.LinuxMemory{}}
		if quota != 0 {
			r.CPU.Quota, r.CPU.Period = i64(quota), u64(period)
		}
		if mem != 0 {
			r.Memory.Limit = i64(mem)
		}
		return limitsOf(r)
	}
	for _, tc := range []struct {
		name       string
		sandbox    *cri.Info
		containers []limits
		host, max  int
		vcpus      int
		memory     uint64
	}{
		{"pod limit 1.5 CPUs", &cri.Info{CPUQuota: 150000, CPUPeriod: 100000, MemoryLimit: 1 << 30}, nil, 8, 2, 2, 1 << 30},
		{"pod limit beats containers", &cri.Info{CPUQuota: 400000, CPUPeriod: 100000}, []limits{ctr(100000, 100000, 0)}, 8, 2, 4, 0},
		{"no limit: host CPUs capped", &cri.Info{}, nil, 8, 2, 2, 0},
		{"no limit, no cap", &cri.Info{}, nil, 8, 0, 8, 0},
		{"no limit: cpuset", &cri.Info{CPUSet: "0-2"}, nil, 8, 0, 3, 0},
		{"containers' limits add up", &cri.Info{}, []limits{ctr(50000, 100000, 64<<20), ctr(100000, 100000, 64<<20)}, 8, 2, 2, 128 << 20},
		{"one container without a limit: none", &cri.Info{}, []limits{ctr(50000, 100000, 64<<20), ctr(0, 0, 0)}, 8, 4, 4, 0},
		{"not CRI", nil, []limits{ctr(100000, 100000, 0)}, 8, 2, 1, 0},
		{"never below 1", &cri.Info{CPUQuota: 1000, CPUPeriod: 100000}, nil, 8, 2, 1, 0},
	} {
		v, m := podResources(tc.sandbox, tc.containers, tc.host, tc.max)
		if v != tc.vcpus || m != tc.memory {
			t.Errorf("%s: got %d vCPUs, %d bytes; want %d, %d", tc.name, v, m, tc.vcpus, tc.memory)
		}
	}
}

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions([]byte("max_vcpus = 4\nlog_level = \"debug\"\nstrace = true\n"))
	if err != nil || o != (Options{MaxVCPUs: 4, LogLevel: "debug", Strace: true}) {
		t.Errorf("ParseOptions = %+v, %v", o, err)
	}
	for _, bad := range []string{"max_vcpus = -1", "log_level = \"loud\"", "vcpus = 2", "max_vcpus = \"two\""} {
		if _, err := ParseOptions([]byte(bad)); err == nil {
			t.Errorf("ParseOptions(%q) accepted", bad)
		}
	}
	if o, err := ParseOptions(nil); err != nil || o != DefaultOptions() {
		t.Errorf("empty options: %+v, %v", o, err)
	}
}

// The handler's options reach Create as containerd.runtime.v1.Options
// naming the TOML file.
func TestOptionsFromAny(t *testing.T) {
	p := filepath.Join(t.TempDir(), "moat.toml")
	os.WriteFile(p, []byte("max_vcpus = 3\n"), 0o644)
	a, err := typeurl.MarshalAnyToProto(&runtimeoptions.Options{ConfigPath: p})
	if err != nil {
		t.Fatal(err)
	}
	o, err := optionsFromAny(a)
	if err != nil || o.MaxVCPUs != 3 || o.LogLevel != "info" {
		t.Errorf("options from %s: %+v, %v", p, o, err)
	}
	a, _ = typeurl.MarshalAnyToProto(&runtimeoptions.Options{ConfigBody: []byte("strace = true")})
	if o, err := optionsFromAny(a); err != nil || !o.Strace {
		t.Errorf("options from a config body: %+v, %v", o, err)
	}
	// Without ConfigPath containerd sends the options table as the body.
	a, _ = typeurl.MarshalAnyToProto(&runtimeoptions.Options{ConfigBody: []byte("ConfigPath = ''\nmax_vcpus = 2\n")})
	if o, err := optionsFromAny(a); err != nil || o.MaxVCPUs != 2 || o.ConfigPath != "" {
		t.Errorf("options from the handler's table: %+v, %v", o, err)
	}
	a, _ = typeurl.MarshalAnyToProto(&runtimeoptions.Options{ConfigPath: p + ".missing"})
	if _, err := optionsFromAny(a); err == nil || !strings.Contains(err.Error(), ".missing") {
		t.Errorf("a missing options file: %v", err)
	}
	if o, err := optionsFromAny(nil); err != nil || o != DefaultOptions() {
		t.Errorf("no options: %+v, %v", o, err)
	}
}

func TestStartArgs(t *testing.T) {
	um := uint32(0o027)
	p := &specs.Process{
		Args: []string{"sh", "-c", "true"}, Env: []string{"PATH=/bin"}, Cwd: "/work",
		User: specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{10}, Umask: &um},
		Capabilities: &specs.LinuxCapabilities{Effective: []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"},
			Permitted: []string{"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"}, Bounding: []string{"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_SYS_ADMIN"},
			Inheritable: []string{"CAP_KILL"}, Ambient: []string{"CAP_KILL"}},
		NoNewPrivileges: true,
	}
	a, err := startArgs("c", "e", p)
	if err != nil {
		t.Fatal(err)
	}
	want := control.StartArgs{ID: "c", ExecID: "e", Argv: p.Args, Env: p.Env, Cwd: "/work", UID: 1000, GID: 100,
		Groups: []uint32{10}, Caps: 1<<5 | 1<<10, NoNewPrivs: true, Umask: 0o027}
	if a.Caps != want.Caps || a.UID != want.UID || a.Umask != want.Umask || a.Cwd != want.Cwd || !a.NoNewPrivs || len(a.Groups) != 1 {
		t.Errorf("startArgs = %+v, want %+v", a, want)
	}
	if !a.CapSets || a.Permitted != 1<<5|1<<10|1<<0 || a.Bounding != 1<<5|1<<10|1<<0|1<<21 || a.Inheritable != 1<<5 || a.Ambient != 1<<5 {
		t.Errorf("capability sets: %+v", a)
	}
	p.Capabilities.Effective = []string{"CAP_FLY"}
	if _, err := startArgs("c", "", p); err == nil || !strings.Contains(err.Error(), "CAP_FLY") {
		t.Errorf("unknown capability: %v", err)
	}
	if _, err := startArgs("c", "", &specs.Process{}); err == nil {
		t.Errorf("a process without args was accepted")
	}
	if _, err := startArgs("c", "", nil); err == nil {
		t.Errorf("a missing process was accepted")
	}
}

func TestGroupOf(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	os.WriteFile(p, []byte(`{"annotations":{"io.kubernetes.cri.sandbox-id":"pod1"}}`), 0o644)
	if g, err := groupOf(p, "c1"); err != nil || g != "pod1" {
		t.Errorf("groupOf CRI container = %q, %v; want pod1", g, err)
	}
	os.WriteFile(p, []byte(`{}`), 0o644)
	if g, err := groupOf(p, "c1"); err != nil || g != "c1" {
		t.Errorf("groupOf a lone container = %q, %v; want c1", g, err)
	}
	os.WriteFile(p, []byte(`{`), 0o644)
	if _, err := groupOf(p, "c1"); err == nil {
		t.Errorf("a broken spec was accepted")
	}
}

func TestSandboxIDOK(t *testing.T) {
	for id, ok := range map[string]bool{"abc": true, "a.b-c_d": true, "": false, "../x": false, "a/b": false, ".a": false, strings.Repeat("a", 129): false} {
		if sandboxIDOK(id) != ok {
			t.Errorf("sandboxIDOK(%q) = %v", id, !ok)
		}
	}
}

func TestLogWriter(t *testing.T) {
	l, hook := test.NewNullLogger()
	w := &logWriter{entry: logrus.NewEntry(l)}
	w.Write([]byte("first line\nsecond "))
	w.Write([]byte("part\n"))
	if len(hook.Entries) != 2 || hook.Entries[0].Message != "first line" || hook.Entries[1].Message != "second part" {
		t.Errorf("log entries %+v", hook.Entries)
	}
	_ = log.L
}

func TestMetrics(t *testing.T) {
	m := metrics(control.StatsReply{CPUNanos: 5_000_000, UserNanos: 3_000_000, SystemNanos: 2_000_000, MemoryBytes: 4096, SandboxMemoryLimit: 1 << 20, Pids: 2, OOMKills: 1})
	if m.CPU.UsageUsec != 5000 || m.CPU.UserUsec != 3000 || m.CPU.SystemUsec != 2000 || m.Memory.Usage != 4096 || m.Memory.UsageLimit != 1<<20 || m.Pids.Current != 2 || m.MemoryEvents.OomKill != 1 {
		t.Errorf("metrics = %+v", m)
	}
	if _, err := metricsAny(control.StatsReply{}); err != nil {
		t.Error(err)
	}
}

func TestSeccompProfile(t *testing.T) {
	if p, err := seccompProfile(&specs.Linux{}); p != nil || err != nil {
		t.Errorf("no linux.seccomp: %+v, %v; want nil, nil", p, err)
	}
	e := uint(38)
	l := &specs.Linux{Seccomp: &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno, DefaultErrnoRet: &e,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Flags:         []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_LOG"},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "clone"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x7e020000, ValueTwo: 0, Op: specs.OpMaskedEqual}}}},
	}}
	p, err := seccompProfile(l)
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != "SCMP_ACT_ERRNO" || *p.DefaultErrnoRet != 38 || !p.Log() || len(p.Syscalls) != 1 ||
		p.Syscalls[0].Args[0] != (seccomp.Arg{Index: 0, Value: 0x7e020000, Op: "SCMP_CMP_MASKED_EQ"}) {
		t.Errorf("converted profile: %+v", p)
	}
	l.Seccomp.ListenerPath = "/run/listener.sock"
	if _, err := seccompProfile(l); err == nil || !strings.Contains(err.Error(), "listenerPath") {
		t.Errorf("a listener path: %v, want a refusal", err)
	}
	l.Seccomp.ListenerPath = ""
	l.Seccomp.DefaultAction = "SCMP_ACT_BOGUS"
	if _, err := seccompProfile(l); err == nil || !strings.Contains(err.Error(), "SCMP_ACT_BOGUS") {
		t.Errorf("an unknown action: %v, want a refusal naming it", err)
	}
}

// containerd's RuntimeDefault profile compiles, and allows and refuses as
// it means to. testdata/runtime-default-seccomp.json is what containerd
// v2.4.2's contrib/seccomp.DefaultProfile gives for a container with the
// default capabilities.
func TestSeccompRuntimeDefault(t *testing.T) {
	b, err := os.ReadFile("testdata/runtime-default-seccomp.json")
	if err != nil {
		t.Fatal(err)
	}
	var ls specs.LinuxSeccomp
	if err := json.Unmarshal(b, &ls); err != nil {
		t.Fatal(err)
	}
	p, err := seccompProfile(&specs.Linux{Seccomp: &ls})
	if err != nil {
		t.Fatal(err)
	}
	c, err := seccomp.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("RuntimeDefault: %d rules, %d BPF instructions, names unknown to the sentry: %v", len(p.Syscalls), c.Program.Len(), c.Ignored)
	eperm := uint32(abi.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	for _, tc := range []struct {
		nr   uint64
		args [6]uint64
		want uint32
	}{
		{abi.SYS_READ, [6]uint64{}, abi.SECCOMP_RET_ALLOW},
		{abi.SYS_EXECVE, [6]uint64{}, abi.SECCOMP_RET_ALLOW},
		{abi.SYS_CLONE, [6]uint64{uint64(unix.SIGCHLD)}, abi.SECCOMP_RET_ALLOW},
		{abi.SYS_CLONE, [6]uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, eperm},
		{abi.SYS_SETHOSTNAME, [6]uint64{}, eperm},
		{abi.SYS_MOUNT, [6]uint64{}, eperm},
		{abi.SYS_REBOOT, [6]uint64{}, eperm},
		{abi.SYS_PERSONALITY, [6]uint64{0}, abi.SECCOMP_RET_ALLOW},
		{abi.SYS_PERSONALITY, [6]uint64{0x123}, eperm},
	} {
		d := &seccomp.Data{Nr: int32(tc.nr), Arch: abi.AUDIT_ARCH_X86_64, Args: tc.args}
		if got := c.Program.Run(d); got != tc.want {
			t.Errorf("%s%v: %#x, want %#x", abi.SyscallName(tc.nr), tc.args, got, tc.want)
		}
	}
}
