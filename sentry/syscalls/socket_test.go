package syscalls_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/fs/hostio"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/sandbox"
	"moat.dev/moat/sentry/sandbox/sandboxtest"
	"moat.dev/moat/sentry/vfs"
)

// sockNeedKVM skips the test when /dev/kvm or gcc is missing, unless
// MOAT_REQUIRE_KVM says they must be there.
func sockNeedKVM(t testing.TB) {
	t.Helper()
	var missing []string
	if _, err := os.Stat("/dev/kvm"); err != nil {
		missing = append(missing, "/dev/kvm")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		missing = append(missing, "gcc")
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("MOAT_REQUIRE_KVM") != "" {
		t.Fatalf("missing %v (MOAT_REQUIRE_KVM is set)", missing)
	}
	t.Skipf("missing %v; set MOAT_REQUIRE_KVM=1 to fail instead", missing)
}

var (
	sockBuildOnce sync.Once
	sockBuildDir  string
	sockBuildErr  error
)

// sockTestBinary builds testdata/sock_test.c once, statically.
func sockTestBinary(t testing.TB) string {
	t.Helper()
	sockBuildOnce.Do(func() {
		sockBuildDir, sockBuildErr = os.MkdirTemp("", "moat-sock-test")
		if sockBuildErr != nil {
			return
		}
		out, err := exec.Command("gcc", "-static", "-O1", "-Wall", "-o", filepath.Join(sockBuildDir, "sock_test"),
			"testdata/sock_test.c", "-lpthread").CombinedOutput()
		if err != nil {
			sockBuildErr = &sockBuildError{err: err, out: string(out)}
		}
	})
	if sockBuildErr != nil {
		t.Fatalf("gcc -static testdata/sock_test.c: %v", sockBuildErr)
	}
	return filepath.Join(sockBuildDir, "sock_test")
}

type sockBuildError struct {
	err error
	out string
}

func (e *sockBuildError) Error() string { return e.err.Error() + ": " + e.out }

// sockRun is one sock_test process in a fresh sandbox.
type sockRun struct {
	t      testing.TB
	lines  chan string
	done   chan struct{}
	status kernel.WaitStatus
	err    error
	output strings.Builder
	mu     sync.Mutex
}

// start runs sock_test with args in a new sandbox whose root holds the
// binary and an empty /tmp; its standard output is read line by line.
func startSock(t testing.TB, args ...string) *sockRun {
	t.Helper()
	sockNeedKVM(t)
	return startProgram(t, sockTestBinary(t), args...)
}

// startProgram runs the static program bin as /sock_test in a new
// sandbox.
func startProgram(t testing.TB, bin string, args ...string) *sockRun {
	t.Helper()
	root := t.TempDir()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "sock_test"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(sandbox.Config{CPUs: 2, Memory: 256 << 20, RootFS: root})
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	ctx := context.Background()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	wfd, err := unix.Dup(int(pw.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	pw.Close()
	out, err := hostio.New(ctx, sb.VFS, wfd, unix.O_WRONLY)
	if err != nil {
		t.Fatalf("hostio.New: %v", err)
	}
	r := &sockRun{t: t, lines: make(chan string, 100), done: make(chan struct{})}
	argv := append([]string{"/sock_test"}, args...)
	_, err = sb.Start(kernel.ProcessSpec{
		Argv: argv, Envv: []string{"PATH=/"}, Path: "/sock_test", Cwd: "/", Umask: 0o022,
		Creds: kernel.Creds{Caps: 1<<41 - 1},
		Stdio: [3]*vfs.File{nil, out, out}, Init: true,
	})
	out.DecRef(ctx)
	if err != nil {
		sb.Close()
		t.Fatalf("start %v: %v", argv, err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			r.mu.Lock()
			r.output.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			select {
			case r.lines <- sc.Text():
			default:
			}
		}
		close(r.lines)
	}()
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		r.status, r.err = sb.Kernel.WaitInit(wctx)
		sb.Close()
		close(r.done)
	}()
	t.Cleanup(func() {
		<-r.done
		pr.Close()
	})
	return r
}

// line waits for the next output line starting with prefix.
func (r *sockRun) line(prefix string) string {
	r.t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case l, ok := <-r.lines:
			if !ok {
				r.t.Fatalf("output ended before a line %q; output:\n%s", prefix, r.out())
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			r.t.Fatalf("no line %q within a minute; output:\n%s", prefix, r.out())
		}
	}
}

func (r *sockRun) out() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.output.String()
}

// wait waits for the process and fails the test unless it exited 0.
func (r *sockRun) wait() string {
	r.t.Helper()
	<-r.done
	for range r.lines {
	}
	if r.err != nil {
		r.t.Fatalf("wait: %v; output:\n%s", r.err, r.out())
	}
	if r.status.ExitCode() != 0 || strings.Contains(r.out(), "FAIL") {
		r.t.Fatalf("sock_test exited with status %#x; output:\n%s", uint32(r.status), r.out())
	}
	return r.out()
}

// native runs sock_test on the host, for comparison.
func nativeSock(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(sockTestBinary(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("native sock_test %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestUnixSockets runs the unix socket programs in a sandbox and natively
// and wants the same output: socketpair echo, message boundaries, bound
// paths and abstract names, SO_PEERCRED, SCM_RIGHTS and SCM_CREDENTIALS.
func TestUnixSockets(t *testing.T) {
	for _, tc := range [][]string{{"pair"}, {"rights"}, {"path", "/tmp/echo.sock"}, {"backlog"}, {"stress"}} {
		t.Run(tc[0], func(t *testing.T) {
			got := startSock(t, tc...).wait()
			nativeArgs := tc
			if tc[0] == "path" {
				nativeArgs = []string{"path", filepath.Join(t.TempDir(), "echo.sock")}
			}
			want := nativeSock(t, nativeArgs...)
			if got != want {
				t.Errorf("sandbox output differs from native.\nsandbox:\n%s\nnative:\n%s", got, want)
			}
		})
	}
}

// TestSocketErrors checks the errors of bad calls against Linux's.
func TestSocketErrors(t *testing.T) {
	got := startSock(t, "errors").wait()
	want := nativeSock(t, "errors")
	if got != want {
		t.Errorf("sandbox output differs from native.\nsandbox:\n%s\nnative:\n%s", got, want)
	}
}

// TestNetlinkRoute lists the interfaces with getifaddrs in the sandbox
// (read-only NETLINK_ROUTE on a host netlink socket) and natively: the
// same interfaces and addresses, the sandbox shares the network
// namespace. Requests that would change the network are refused.
func TestNetlinkRoute(t *testing.T) {
	got := startSock(t, "netlink", "sandbox").wait()
	want := nativeSock(t, "netlink")
	for _, l := range strings.Split(strings.TrimSpace(want), "\n") {
		if !strings.Contains(got, l+"\n") {
			t.Errorf("sandbox lacks %q\nsandbox:\n%s\nnative:\n%s", l, got, want)
		}
	}
	for _, l := range []string{"RTM_NEWADDR refused", "RTM_DELLINK refused", "multicast groups refused"} {
		if !strings.Contains(got, l) {
			t.Errorf("sandbox output lacks %q:\n%s", l, got)
		}
	}
}

// TestTCPServerInSandbox connects from the test to a server in the
// sandbox: the sandbox shares the test's network namespace.
func TestTCPServerInSandbox(t *testing.T) {
	r := startSock(t, "tcpserver")
	port, err := strconv.Atoi(strings.TrimPrefix(r.line("PORT "), "PORT "))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("dial the sandbox's server on port %d: %v", port, err)
	}
	defer c.Close()
	msg := strings.Repeat("moat sockets ", 20000)
	go func() {
		io.WriteString(c, msg)
		c.(*net.TCPConn).CloseWrite()
	}()
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read from the sandbox: %v", err)
	}
	if string(back) != strings.ToUpper(msg) {
		t.Errorf("got %d bytes back, want %d upper-cased", len(back), len(msg))
	}
	out := r.wait()
	if !strings.Contains(out, "tcp server: served "+strconv.Itoa(len(msg))+" bytes") {
		t.Errorf("server output:\n%s", out)
	}
}

// TestTCPClientInSandbox has a client in the sandbox talk to a server of
// the test.
func TestTCPClientInSandbox(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			got <- err.Error()
			return
		}
		got <- line
		io.WriteString(c, "hello from the host")
	}()
	port := l.Addr().(*net.TCPAddr).Port
	out := startSock(t, "tcpclient", strconv.Itoa(port)).wait()
	if line := <-got; line != "hello from the sandbox\n" {
		t.Errorf("server read %q", line)
	}
	if !strings.Contains(out, "tcp client got: hello from the host") {
		t.Errorf("client output:\n%s", out)
	}
}

// TestUDP sends a datagram to the test and back, then between two
// sockets inside the sandbox with sendmmsg and recvmmsg.
func TestUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 64)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo([]byte("pong:"+string(buf[:n])), from)
	}()
	out := startSock(t, "udp", strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)).wait()
	for _, want := range []string{"udp got: pong:ping", "udp in the sandbox: first second"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestSocketReadiness checks poll and epoll on unix and TCP sockets,
// non-blocking connect and accept, and the bound socket's file (stat,
// readdir, unlink), against a native run.
func TestSocketReadiness(t *testing.T) {
	got := startSock(t, "poll", "/tmp").wait()
	want := nativeSock(t, "poll", t.TempDir())
	if got != want {
		t.Errorf("sandbox output differs from native.\nsandbox:\n%s\nnative:\n%s", got, want)
	}
}

// TestTCP6 talks TCP over ::1 inside the sandbox and reaches a
// dual-stack listener over IPv4, compared with a native run.
func TestTCP6(t *testing.T) {
	if _, err := os.Stat("/proc/net/if_inet6"); err != nil && os.Getenv("MOAT_REQUIRE_KVM") == "" {
		t.Skip("no IPv6 on this host (/proc/net/if_inet6)")
	}
	got := startSock(t, "tcp6").wait()
	want := nativeSock(t, "tcp6")
	if got != want {
		t.Errorf("sandbox output differs from native.\nsandbox:\n%s\nnative:\n%s", got, want)
	}
}

// TestInetOptions sets and reads the allowlisted options of host
// sockets, compared with a native run.
func TestInetOptions(t *testing.T) {
	got := startSock(t, "inetopts").wait()
	want := nativeSock(t, "inetopts")
	if got != want {
		t.Errorf("sandbox output differs from native.\nsandbox:\n%s\nnative:\n%s", got, want)
	}
}

// TestPacketInfo receives UDP datagrams with IP_PKTINFO and
// IPV6_PKTINFO and answers from the address they came to, compared with a
// native run.
func TestPacketInfo(t *testing.T) {
	got := startSock(t, "pktinfo").wait()
	want := nativeSock(t, "pktinfo")
	if got != want {
		t.Errorf("sandbox output differs from native.\nsandbox:\n%s\nnative:\n%s", got, want)
	}
}

// TestInterfaceIoctls asks about interfaces with SIOCGIFCONF and the
// other SIOCGIF* ioctls, compared with a native run; the calls that would
// change an interface or a route are refused in the sandbox.
func TestInterfaceIoctls(t *testing.T) {
	got := startSock(t, "ifioctl", "sandbox").wait()
	want := nativeSock(t, "ifioctl")
	want += "SIOCSIFFLAGS refused: Operation not permitted\nSIOCADDRT refused: Operation not permitted\n"
	if got != want {
		t.Errorf("sandbox output differs from native.\nsandbox:\n%s\nnative:\n%s", got, want)
	}
}

// TestICMPDatagram opens an ICMP echo socket in the sandbox and natively:
// the host's net.ipv4.ping_group_range decides for both, and where it
// allows them an echo request to 127.0.0.1 gets its reply.
func TestICMPDatagram(t *testing.T) {
	got := startSock(t, "icmp").wait()
	want := nativeSock(t, "icmp")
	if got != want {
		t.Errorf("sandbox output differs from native.\nsandbox:\n%s\nnative:\n%s", got, want)
	}
}

// goNetBinary builds testdata/gonet, a static Go program.
func goNetBinary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "gonet")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = "testdata/gonet"
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GO111MODULE=off", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build testdata/gonet: %v\n%s", err, b)
	}
	return out
}

// TestGoNetInSandbox runs Go's own net/http (its netpoller uses epoll,
// non-blocking sockets and accept4) in the sandbox, as a server reached
// from the test and as a client of a server of the test.
func TestGoNetInSandbox(t *testing.T) {
	sockNeedKVM(t)
	bin := goNetBinary(t)
	srv := startProgram(t, bin, "serve")
	port := strings.TrimPrefix(srv.line("PORT "), "PORT ")
	base := "http://127.0.0.1:" + port
	for _, p := range []string{"/a", "/b", "/c"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatalf("GET %s from the sandbox: %v", p, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "served " + p + " from the sandbox\n"; string(b) != want {
			t.Errorf("GET %s: %q, want %q", p, b, want)
		}
	}
	if resp, err := http.Get(base + "/quit"); err == nil {
		resp.Body.Close()
	}
	srv.wait()

	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the host\n")
	}))
	defer hs.Close()
	out := startProgram(t, bin, "get", hs.URL).wait()
	if out != "status 200 body hello from the host\n" {
		t.Errorf("client in the sandbox: %q", out)
	}
	if out := startProgram(t, bin, "ifaces").wait(); !strings.Contains(out, "interface lo\n") {
		t.Errorf("net.Interfaces in the sandbox:\n%s", out)
	}
}

// freePort returns a loopback TCP port that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestBusyboxNetworking runs busybox's httpd (it forks into the
// background), wget and nc in one sandbox: servers and clients of the
// sandbox talking over host sockets. The listening nc reads a pipe that
// stays open: with /dev/null (a background job's stdin) it may see its
// own end of input first and quit before it reads what the client sent,
// on Linux as well.
func TestBusyboxNetworking(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, true)
	port, ncPort := freePort(t), freePort(t)
	script := fmt.Sprintf(`echo served by busybox > /tmp/index.html
httpd -p 127.0.0.1:%d -h /tmp || exit 1
wget -q -O - http://127.0.0.1:%d/index.html || exit 2
sleep 30 | nc -l -p %d > /tmp/nc.out &
until echo through nc | nc 127.0.0.1 %d; do sleep 0.1; done
until [ -s /tmp/nc.out ]; do sleep 0.1; done
cat /tmp/nc.out`, port, port, ncPort, ncPort)
	r := sandboxtest.Run(t, root, []string{"/bin/sh", "-c", script}, sandboxtest.Options{CPUs: 2})
	if r.ExitCode() != 0 || r.Stdout != "served by busybox\nthrough nc\n" {
		t.Errorf("exit %d\nstdout: %q\nstderr: %s\nlog: %s", r.ExitCode(), r.Stdout, r.Stderr, r.Log)
	}
}

// TestSocketGarbage makes 5000 socket calls with random arguments
// (pointers, lengths, msghdrs, control messages, options, families): each
// must return to the program as an errno or a result.
func TestSocketGarbage(t *testing.T) {
	out := startSock(t, "garbage", "5000").wait()
	if !strings.Contains(out, "garbage: 5000 calls returned") {
		t.Errorf("output:\n%s", out)
	}
}

// BenchmarkSocketThroughput reports the sandbox's unix and TCP loopback
// stream throughput (64 KiB writes, 64 MiB) and unix round-trip time.
func BenchmarkSocketThroughput(b *testing.B) {
	for range b.N {
		r := startSock(b, "bench", "64")
		out := r.wait()
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			name, val, ok := strings.Cut(l, ": ")
			if !ok {
				continue
			}
			f, unit, _ := strings.Cut(val, " ")
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				continue
			}
			b.ReportMetric(v, strings.ReplaceAll(name, " ", "-")+"-"+strings.ReplaceAll(unit, " ", "-"))
		}
	}
}
