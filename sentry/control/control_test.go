package control_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/control"
	"moat.dev/moat/sentry/seccomp"
)

const sentryEnv = "MOAT_CONTROL_TEST_SENTRY"

// TestMain lets the test binary be the sentry process: Launch runs it
// again with sentryEnv set and the configuration as its last argument.
func TestMain(m *testing.M) {
	if os.Getenv(sentryEnv) == "1" {
		os.Exit(control.RunSentry(os.Args[len(os.Args)-1], os.Stderr))
	}
	if v := os.Getenv(seccompEnv); v != "" {
		seccompProbe(v)
	}
	os.Exit(m.Run())
}

const seccompEnv = "MOAT_CONTROL_TEST_SECCOMP"

// seccompProbe installs the sentry's filter, makes a few calls of its
// list, then the call last names, which must kill it.
func seccompProbe(last string) {
	if err := control.InstallSeccomp(); err != nil {
		fmt.Println("install:", err)
		os.Exit(1)
	}
	fd, err := unix.Open("/proc/self/status", unix.O_RDONLY, 0)
	fmt.Println("open:", err)
	b := make([]byte, 64)
	_, err = unix.Read(fd, b)
	fmt.Println("read:", err, unix.Close(fd))
	fmt.Println("getpid ok:", unix.Getpid() > 0)
	fmt.Println("tgkill self:", unix.Tgkill(unix.Getpid(), unix.Gettid(), 0), unix.Kill(unix.Getpid(), 0))
	_, err = unix.IoctlGetInt(fd, unix.TIOCINQ)
	fmt.Println("FIONREAD:", err)
	m, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	fmt.Println("mmap:", err, unix.Mprotect(m, unix.PROT_READ))
	for _, s := range [][3]int{{unix.AF_INET, unix.SOCK_STREAM, 0}, {unix.AF_INET6, unix.SOCK_DGRAM, 0}, {unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE}} {
		fd, err := unix.Socket(s[0], s[1], s[2])
		fmt.Println("socket:", err, unix.Close(fd))
	}
	switch last {
	case "unshare":
		unix.Unshare(unix.CLONE_NEWNS)
	case "mount":
		unix.Mount("none", "/mnt", "tmpfs", 0, "")
	case "tgkill":
		// Another process: only the sentry's own threads are allowed.
		unix.Tgkill(1, 1, 0)
	case "kill":
		unix.Kill(1, 0)
	case "mmap-exec":
		unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	case "mprotect-exec":
		b, _ := unix.Mmap(-1, 0, 4096, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		unix.Mprotect(b, unix.PROT_READ|unix.PROT_EXEC)
	case "packet-socket":
		unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	case "netlink-audit":
		unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_AUDIT)
	case "tiocsti":
		// Pushing input into a terminal is no ioctl the sentry makes.
		c := byte('x')
		unix.Syscall(unix.SYS_IOCTL, 0, unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
	}
	fmt.Println("survived", last)
	os.Exit(0)
}

// TestSeccompFilter: the sentry's filter lets its own calls through and
// kills it with SIGSYS for a call outside its list.
func TestSeccompFilter(t *testing.T) {
	for _, last := range []string{"unshare", "mount", "tgkill", "kill", "tiocsti", "mmap-exec", "mprotect-exec", "packet-socket", "netlink-audit"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), seccompEnv+"="+last, control.SeccompModeEnv+"=")
		out, err := cmd.CombinedOutput()
		want := "open: <nil>\nread: <nil> <nil>\ngetpid ok: true\ntgkill self: <nil> <nil>\nFIONREAD: bad file descriptor\nmmap: <nil> <nil>\n" + strings.Repeat("socket: <nil> <nil>\n", 3)
		if string(out) != want {
			t.Errorf("%s: under the filter:\n%s\nwant:\n%s", last, out, want)
		}
		if !control.SeccompKilled(err) {
			t.Errorf("%s: the probe ended with %v, want death by SIGSYS", last, err)
		}
	}
}

func needKVM(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/kvm"); err != nil {
		if os.Getenv("MOAT_REQUIRE_KVM") == "1" {
			t.Fatalf("/dev/kvm is missing and MOAT_REQUIRE_KVM=1: %v", err)
		}
		t.Skipf("no /dev/kvm: %v", err)
	}
}

func busyboxRoot(t *testing.T) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		if os.Getenv("MOAT_REQUIRE_KVM") == "1" {
			t.Fatalf("busybox-static (/bin/busybox) is missing: %v", err)
		}
		t.Skipf("busybox-static (/bin/busybox) is missing: %v", err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"echo", "sleep", "sh", "false", "cat"} {
		os.Symlink("busybox", filepath.Join(dir, "bin", n))
	}
	return dir
}

func launch(t *testing.T) *control.Client {
	t.Helper()
	needKVM(t)
	t.Setenv(sentryEnv, "1")
	c, err := control.Launch([]string{os.Args[0]}, control.Config{CPUs: 1, Memory: 256 << 20, Hostname: "pod", Confine: true}, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill(); <-c.Exited() })
	return c
}

type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Logf("sentry: %s", bytes.TrimRight(b, "\n"))
	return len(b), nil
}

// run starts argv in container id with a pipe as stdout and returns the
// output and exit status.
func run(t *testing.T, c *control.Client, id, exec string, argv ...string) (string, int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := c.Start(control.StartArgs{ID: id, ExecID: exec, Argv: argv, Env: []string{"PATH=/bin"}, Caps: 0}, [3]*os.File{nil, w, w}); err != nil {
		w.Close()
		t.Fatalf("start %v: %v", argv, err)
	}
	w.Close()
	out, _ := io.ReadAll(r)
	st, err := c.Wait(id, exec)
	if err != nil {
		t.Fatalf("wait %v: %v", argv, err)
	}
	return string(out), st.ExitStatus
}

// addContainer attaches a container as the shim does.
func addContainer(c *control.Client, id, root string, mounts []control.Mount) error {
	a, dirs, err := control.PrepareContainer(id, root, false, mounts)
	if err != nil {
		return err
	}
	defer func() {
		for _, d := range dirs {
			d.Close()
		}
	}()
	return c.AddContainer(a, dirs)
}

func TestPodLifecycle(t *testing.T) {
	c := launch(t)
	root := busyboxRoot(t)
	if _, err := c.Start(control.StartArgs{ID: "pod", PodInit: true}, [3]*os.File{}); err != nil {
		t.Fatalf("pod init: %v", err)
	}
	// The sentry is shut in an empty root of its own, under its filter.
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/root/", c.Pid())); err != nil || len(ents) != 0 {
		t.Errorf("the sentry's root holds %v (%v), want nothing", ents, err)
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.Pid())); err != nil || !strings.Contains(string(st), "Seccomp:\t2\n") {
		t.Errorf("the sentry runs without its seccomp filter (%v):\n%s", err, st)
	}
	host := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(host, []byte("127.0.0.1 localhost\n"), 0o644)
	vol := t.TempDir()
	for _, id := range []string{"a", "b"} {
		err := addContainer(c, id, busyboxRoot(t), []control.Mount{
			{Destination: "/etc/hosts", Type: "bind", Source: host, Options: []string{"rbind", "ro"}},
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rw"}},
			{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs"},
		})
		if err != nil {
			t.Fatalf("add container %s: %v", id, err)
		}
	}
	if err := addContainer(c, "a", root, nil); !control.IsExists(err) {
		t.Errorf("adding container a twice: got %v, want an exists error", err)
	}
	if err := addContainer(c, "../x", root, nil); err == nil {
		t.Errorf("a container id with a slash was accepted")
	}

	// Each container's init runs until the end (an exec needs a running
	// container: its PID namespace ends with its init).
	for _, id := range []string{"a", "b"} {
		if _, err := c.Start(control.StartArgs{ID: id, Argv: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}}, [3]*os.File{}); err != nil {
			t.Fatal(err)
		}
	}
	out, code := run(t, c, "a", "hello", "echo", "hello from moat")
	if out != "hello from moat\n" || code != 0 {
		t.Errorf("echo: got %q, exit %d", out, code)
	}
	// Files and volumes of the OCI spec: /etc/hosts, a directory both
	// containers share with the host, a tmpfs of their own.
	if out, code := run(t, c, "a", "hosts", "cat", "/etc/hosts"); out != "127.0.0.1 localhost\n" || code != 0 {
		t.Errorf("cat /etc/hosts: %q, exit %d", out, code)
	}
	if out, code := run(t, c, "a", "w", "sh", "-c", "echo shared > /vol/f && echo mine > /scratch/g"); code != 0 {
		t.Errorf("write to the volume: %q, exit %d", out, code)
	}
	if out, code := run(t, c, "b", "r", "sh", "-c", "cat /vol/f; cat /scratch/g 2>/dev/null || echo no-g"); out != "shared\nno-g\n" || code != 0 {
		t.Errorf("the other container reads %q (exit %d), want the volume's file and not the tmpfs'", out, code)
	}
	if b, err := os.ReadFile(filepath.Join(vol, "f")); err != nil || string(b) != "shared\n" {
		t.Errorf("host side of the volume: %q, %v", b, err)
	}
	if out, code = run(t, c, "b", "f", "false"); code != 1 {
		t.Errorf("false: exit %d (output %q), want 1", code, out)
	}

	// A long-running process: an exec beside it, then SIGTERM.
	if _, err := c.Start(control.StartArgs{ID: "a", ExecID: "sleeper", Argv: []string{"sleep", "100"}, Env: []string{"PATH=/bin"}}, [3]*os.File{}); err != nil {
		t.Fatal(err)
	}
	if pids, err := c.Pids("a"); err != nil || len(pids) != 2 {
		t.Errorf("pids of a: %v, %v; want two", pids, err)
	}
	if out, code := run(t, c, "a", "exec1", "echo", "exec"); out != "exec\n" || code != 0 {
		t.Errorf("exec echo: %q, exit %d", out, code)
	}
	st, err := c.Stats("a")
	if err != nil {
		t.Fatal(err)
	}
	if st.Pids != 2 || st.MemoryBytes == 0 || st.SandboxMemoryLimit != 256<<20 || st.SandboxMemoryBytes == 0 {
		t.Errorf("stats of a: %+v", st)
	}
	if err := c.Signal("a", "sleeper", int(unix.SIGTERM), false); err != nil {
		t.Fatal(err)
	}
	ws, err := c.Wait("a", "sleeper")
	if err != nil || ws.ExitStatus != 128+int(unix.SIGTERM) || ws.OOM {
		t.Errorf("sleep after SIGTERM: %+v, %v; want exit 143", ws, err)
	}
	if err := c.Signal("a", "sleeper", int(unix.SIGKILL), false); !control.IsFinished(err) {
		t.Errorf("signal to an ended process: %v, want finished", err)
	}
	if err := c.Signal("a", "nope", int(unix.SIGKILL), false); !control.IsNotFound(err) {
		t.Errorf("signal to an unknown process: %v, want not found", err)
	}
	if err := c.Signal("a", "", 99, false); err == nil {
		t.Errorf("signal 99 accepted")
	}
	up, err := c.Update(control.UpdateArgs{CPUs: 2, Memory: 512 << 20})
	if err != nil || up.CPUs != 2 || up.Memory != 512<<20 {
		t.Errorf("update: %+v, %v", up, err)
	}
	if _, err := c.Start(control.StartArgs{ID: "a", ExecID: "x", Argv: []string{"nonexistent"}, Env: []string{"PATH=/bin"}}, [3]*os.File{}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("start of a missing program: %v", err)
	}
	if err := c.RemoveContainer("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(control.StartArgs{ID: "b", ExecID: "y", Argv: []string{"echo"}}, [3]*os.File{}); !control.IsNotFound(err) {
		t.Errorf("start in a removed container: %v", err)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if c.ExitError() != nil {
		t.Errorf("sentry exit: %v", c.ExitError())
	}
}

// A sentry that dies ends every wait with ErrSentryGone, never a hang.
func TestSentryCrash(t *testing.T) {
	c := launch(t)
	root := busyboxRoot(t)
	if err := addContainer(c, "a", root, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(control.StartArgs{ID: "a", Argv: []string{"sleep", "100"}, Env: []string{"PATH=/bin"}}, [3]*os.File{}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Wait("a", ""); errc <- err }()
	time.Sleep(100 * time.Millisecond)
	c.Kill()
	err := <-errc
	if !errors.Is(err, control.ErrSentryGone) {
		t.Errorf("wait after the sentry died: %v, want ErrSentryGone", err)
	}
	<-c.Exited()
	if c.ExitError() == nil {
		t.Errorf("a killed sentry reports a clean exit")
	}
}

// An OOM kill is reported for the container whose process it hit, not for
// a process of another container killed by SIGKILL meanwhile.
func TestOOM(t *testing.T) {
	c := launch(t)
	for _, id := range []string{"hog", "other"} {
		if err := addContainer(c, id, busyboxRoot(t), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Update(control.UpdateArgs{Memory: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(control.StartArgs{ID: "other", Argv: []string{"sleep", "100"}, Env: []string{"PATH=/bin"}}, [3]*os.File{}); err != nil {
		t.Fatal(err)
	}
	out, code := run(t, c, "hog", "", "sh", "-c", "a=aaaaaaaaaaaaaaaa; while true; do a=$a$a; done")
	if code != 137 {
		t.Errorf("memory hog: exit %d (output %q), want 137", code, out)
	}
	if ws, err := c.Wait("hog", ""); err != nil || !ws.OOM {
		t.Errorf("memory hog: %+v, %v; want an OOM kill", ws, err)
	}
	if err := c.Signal("other", "", int(unix.SIGKILL), false); err != nil {
		t.Fatal(err)
	}
	if ws, err := c.Wait("other", ""); err != nil || ws.OOM || ws.ExitStatus != 137 {
		t.Errorf("the other container, killed: %+v, %v; want 137 without OOM", ws, err)
	}
	st, err := c.Stats("hog")
	if err != nil || st.OOMKills != 1 {
		t.Errorf("stats after the OOM kill: %+v, %v", st, err)
	}
}

// A read-only root refuses writes; the bind-mounted files that cannot be
// written there leave the image's own.
func TestReadOnlyRoot(t *testing.T) {
	c := launch(t)
	root := busyboxRoot(t)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("image\n"), 0o644)
	host := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(host, []byte("pod\n"), 0o644)
	a, dirs, err := control.PrepareContainer("ro", root, true, []control.Mount{
		{Destination: "/etc/hosts", Type: "bind", Source: host, Options: []string{"rbind", "ro"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/proc", Type: "proc", Source: "proc"},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = c.AddContainer(a, dirs)
	for _, d := range dirs {
		d.Close()
	}
	if err != nil {
		t.Fatalf("add a read-only container: %v", err)
	}
	out, code := run(t, c, "ro", "", "sh", "-c", "cat /etc/hosts; echo x > /tmp/ok && echo tmp-ok; { echo y > /f; } 2>/dev/null || echo root-ro")
	if out != "image\ntmp-ok\nroot-ro\n" || code != 0 {
		t.Errorf("read-only root: %q, exit %d", out, code)
	}
	if _, err := os.Stat(filepath.Join(root, "f")); err == nil {
		t.Errorf("a write reached the read-only root on the host")
	}
}

// A container's seccomp profile holds for its first process and its
// execs; a profile the sentry cannot enforce is refused.
func TestSeccompProfile(t *testing.T) {
	c := launch(t)
	if err := addContainer(c, "sc", busyboxRoot(t), []control.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}}); err != nil {
		t.Fatal(err)
	}
	eacces := uint32(unix.EACCES)
	profile := &seccomp.Profile{
		DefaultAction: "SCMP_ACT_ALLOW",
		Architectures: []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"},
		Syscalls: []seccomp.Rule{
			{Names: []string{"chmod", "fchmodat", "fchmodat2", "not_a_syscall"}, Action: "SCMP_ACT_ERRNO", ErrnoRet: &eacces},
			// kill(pid, SIGUSR2) is refused; other signals are not.
			{Names: []string{"kill"}, Action: "SCMP_ACT_ERRNO", Args: []seccomp.Arg{{Index: 1, Value: uint64(unix.SIGUSR2), Op: "SCMP_CMP_EQ"}}},
		},
	}
	start := func(exec string, p *seccomp.Profile, argv ...string) (string, int) {
		t.Helper()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		_, err = c.Start(control.StartArgs{ID: "sc", ExecID: exec, Argv: argv, Env: []string{"PATH=/bin"}, Seccomp: p}, [3]*os.File{nil, w, w})
		w.Close()
		if err != nil {
			t.Fatalf("start %v: %v", argv, err)
		}
		out, _ := io.ReadAll(r)
		st, err := c.Wait("sc", exec)
		if err != nil {
			t.Fatal(err)
		}
		return string(out), st.ExitStatus
	}
	// The container's init runs throughout: its PID namespace ends
	// with it.
	if _, err := c.Start(control.StartArgs{ID: "sc", Argv: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}}, [3]*os.File{}); err != nil {
		t.Fatal(err)
	}
	out, code := start("profiled", profile, "sh", "-c", "busybox grep Seccomp /proc/self/status; busybox chmod 400 /bin; kill -USR2 $$; kill -0 $$ && echo signal-0-ok")
	want := "Seccomp:\t2\nSeccomp_filters:\t1\nchmod: /bin: Permission denied\nsh: can't kill pid"
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "signal-0-ok") {
		t.Errorf("under the profile: %q (exit %d), want %q... and signal-0-ok", out, code, want)
	}
	if out, _ := start("unconfined", nil, "busybox", "grep", "Seccomp:", "/proc/self/status"); out != "Seccomp:\t0\n" {
		t.Errorf("without a profile: %q", out)
	}
	bad := &seccomp.Profile{DefaultAction: "SCMP_ACT_NOTIFY"}
	if _, err := c.Start(control.StartArgs{ID: "sc", ExecID: "bad", Argv: []string{"echo"}, Seccomp: bad}, [3]*os.File{}); err == nil || !strings.Contains(err.Error(), "SCMP_ACT_NOTIFY") {
		t.Errorf("a profile with SCMP_ACT_NOTIFY: %v, want a refusal naming it", err)
	}
}
