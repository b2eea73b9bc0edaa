package procfs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/sandbox"
	"moat.dev/moat/sentry/sandbox/sandboxtest"
	"moat.dev/moat/sentry/vfs"
)

// Every test runs real static programs in a real sandbox and checks what
// they read from /proc and /sys.

// field returns the value of "Key:\tvalue" in a status file.
func field(t *testing.T, status, key string) string {
	t.Helper()
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in\n%s", key, status)
	return ""
}

const catC = `
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
// cat prints a file whole, or "ERR <errno>" if it cannot be read.
static void cat(const char *p) {
	int fd = open(p, O_RDONLY);
	if (fd < 0) { printf("ERR %d\n", errno); return; }
	char buf[65536]; ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, n, stdout);
	if (n < 0) printf("ERR %d\n", errno);
	close(fd);
}
`

func TestSelfStatus(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "status", catC+`
#include <signal.h>
#include <stdlib.h>
int main(void) {
	sigset_t s; sigemptyset(&s); sigaddset(&s, SIGUSR1); sigprocmask(SIG_BLOCK, &s, 0);
	signal(SIGUSR2, SIG_IGN);
	char *p = malloc(1 << 20); memset(p, 1, 1 << 20);
	printf("touched %d %p\n", p[4096] + p[1000000], (void *)p);
	cat("/proc/self/status");
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/status"}, sandboxtest.Options{UID: 0})
	if r.ExitCode() != 0 {
		t.Fatalf("exit %d: %s %s", r.ExitCode(), r.Stdout, r.Stderr)
	}
	s := r.Stdout
	for k, want := range map[string]string{
		"Name": "status", "State": "R (running)", "Tgid": "1", "Pid": "1", "PPid": "0",
		"Uid": "0\t0\t0\t0", "Gid": "0\t0\t0\t0", "Threads": "1",
		"SigBlk": "0000000000000200", // SIGUSR1 is signal 10: bit 9
		"SigIgn": "0000000000000800", // SIGUSR2 is signal 12
	} {
		if got := field(t, s, k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	rss, err := strconv.Atoi(strings.TrimSuffix(field(t, s, "VmRSS"), " kB"))
	if err != nil || rss < 1024 {
		t.Errorf("VmRSS %q: want at least the 1024 kB the program touched", field(t, s, "VmRSS"))
	}
}

func TestSelfMapsAndExe(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "maps", catC+`
#include <stdlib.h>
#include <sys/mman.h>
int main(void) {
	char *p = malloc(200000); p[0] = 1;
	void *m = mmap(0, 8192, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
	printf("mmap %lx\n", (unsigned long)m);
	cat("/proc/self/maps");
	char exe[256]; ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n < 0) { perror("readlink"); return 1; }
	exe[n] = 0;
	printf("exe %s\n", exe);
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/maps"}, sandboxtest.Options{})
	if r.ExitCode() != 0 {
		t.Fatalf("exit %d: %s %s", r.ExitCode(), r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "exe /bin/maps\n") {
		t.Errorf("readlink /proc/self/exe: %s", r.Stdout)
	}
	// A maps line as Linux writes it: the name starts at column 74.
	line := regexp.MustCompile(`^([0-9a-f]{8,})-([0-9a-f]{8,}) ([r-][w-][x-][ps]) ([0-9a-f]{8}) ([0-9a-f]{2}):([0-9a-f]{2}) (\d+) *(.*)$`)
	var mmapAddr string
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if a, ok := strings.CutPrefix(l, "mmap "); ok {
			mmapAddr = a
			continue
		}
		if strings.HasPrefix(l, "exe ") {
			continue
		}
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("not a maps line: %q", l)
			continue
		}
		if m[8] != "" && strings.Index(l, m[8]) != 73 {
			t.Errorf("name not at column 74: %q", l)
		}
		switch {
		case m[8] == "/bin/maps" && m[3] == "r-xp":
			seen["text"] = true
		case m[8] == "[heap]" || m[8] == "[stack]" || m[8] == "[vdso]":
			seen[m[8]] = true
		case strings.TrimLeft(m[1], "0") == mmapAddr && m[3] == "r--p":
			seen["mmap"] = true
		}
	}
	for _, k := range []string{"text", "[heap]", "[stack]", "[vdso]", "mmap"} {
		if !seen[k] {
			t.Errorf("maps has no %s mapping:\n%s", k, r.Stdout)
		}
	}
}

func TestSelfFDAndCmdline(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	os.WriteFile(filepath.Join(root, "etc/data"), []byte("x"), 0o644)
	sandboxtest.BuildC(t, root, "fds", catC+`
#include <dirent.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
static void showlink(int fd) {
	char p[64], t[256]; snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, t, sizeof t - 1);
	if (n < 0) { printf("fd %d ERR %d\n", fd, errno); return; }
	t[n] = 0; printf("fd %d -> %s\n", fd, t);
}
int main(int argc, char **argv) {
	int f = open("/etc/data", O_RDONLY);
	int p[2]; pipe(p);
	int d = open("/tmp", O_RDONLY|O_DIRECTORY);
	showlink(f); showlink(p[0]); showlink(p[1]); showlink(d);
	int ep = epoll_create1(0), ev = eventfd(0, 0);
	showlink(ep); showlink(ev);
	close(ep); close(ev);
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e; int n = 0;
	while ((e = readdir(dir))) if (e->d_name[0] != '.') n++;
	closedir(dir);
	printf("entries %d\n", n);
	char info[64]; snprintf(info, sizeof info, "/proc/self/fdinfo/%d", p[1]);
	cat(info);
	unlink("/etc/data");
	showlink(f);
	printf("cmdline:");
	fflush(stdout);
	cat("/proc/self/cmdline");
	printf("\nenviron:");
	fflush(stdout);
	cat("/proc/self/environ");
	printf("\n");
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/fds", "one", "two words"}, sandboxtest.Options{Env: []string{"A=1", "B=two"}})
	if r.ExitCode() != 0 {
		t.Fatalf("exit %d: %s %s", r.ExitCode(), r.Stdout, r.Stderr)
	}
	out := r.Stdout
	for _, re := range []string{
		`(?m)^fd 3 -> /etc/data$`,
		`(?m)^fd 4 -> pipe:\[\d+\]$`,
		`(?m)^fd 6 -> /tmp$`,
		`(?m)^fd 7 -> anon_inode:\[eventpoll\]$`,
		`(?m)^fd 8 -> anon_inode:\[eventfd\]$`,
		// 0-2, the file, the pipe's two ends, /tmp and the directory being read.
		`(?m)^entries 8$`,
		`(?m)^pos:\t0$`,
		`(?m)^flags:\t0100001$`, // O_WRONLY, and O_LARGEFILE as Linux shows it
		`(?m)^fd 3 -> /etc/data \(deleted\)$`,
		"(?m)^cmdline:/bin/fds\x00one\x00two words\x00$",
		"(?m)^environ:A=1\x00B=two\x00$",
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %q:\n%q", re, out)
		}
	}
	m := regexp.MustCompile(`fd 4 -> (pipe:\[\d+\])\nfd 5 -> (pipe:\[\d+\])`).FindStringSubmatch(out)
	if m == nil || m[1] != m[2] {
		t.Errorf("both ends of a pipe should name one pipe: %q", out)
	}
}

func TestCPUsAndMemory(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "cpus", catC+`
#include <dirent.h>
int main(void) {
	cat("/proc/cpuinfo");
	printf("online="); fflush(stdout); cat("/sys/devices/system/cpu/online");
	printf("nprocs=%ld\n", sysconf(_SC_NPROCESSORS_ONLN));
	cat("/proc/meminfo");
	int fd = open("/sys/devices/system/cpu/online", O_WRONLY);
	printf("write /sys: %s\n", fd < 0 ? strerror(errno) : "opened");
	printf("mkdir /sys: %s\n", mkdir("/sys/fs/x", 0755) ? strerror(errno) : "made");
	DIR *d = opendir("/sys/fs/cgroup"); struct dirent *e; int n = 0;
	while (d && (e = readdir(d))) if (e->d_name[0] != '.') n++;
	printf("cgroup entries %d\n", n);
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/cpus"}, sandboxtest.Options{CPUs: 2, Memory: 256 << 20})
	if r.ExitCode() != 0 {
		t.Fatalf("exit %d: %s %s", r.ExitCode(), r.Stdout, r.Stderr)
	}
	if n := len(regexp.MustCompile(`(?m)^processor\t: \d+$`).FindAllString(r.Stdout, -1)); n != 2 {
		t.Errorf("%d processors in /proc/cpuinfo, want 2:\n%s", n, r.Stdout)
	}
	for _, want := range []string{"online=0-1\n", "nprocs=2\n", "MemTotal:         262144 kB\n",
		"write /sys: Read-only file system\n", "mkdir /sys: Read-only file system\n", "cgroup entries 0\n"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("no %q in:\n%s", want, r.Stdout)
		}
	}
}

func TestChildStatAndZombie(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "child", catC+`
#include <signal.h>
#include <sys/wait.h>
#include <sys/prctl.h>
int main(void) {
	int pfd[2]; pipe(pfd);
	pid_t c = fork();
	if (c == 0) {
		prctl(PR_SET_NAME, "kiddo");
		close(pfd[0]); write(pfd[1], "x", 1);
		for (;;) pause();
	}
	char b; read(pfd[0], &b, 1);
	char p[64], sbuf[512];
	snprintf(p, sizeof p, "/proc/%d/stat", c);
	// Wait until the child sleeps in pause (it may still be on its way).
	for (int i = 0; i < 1000; i++) {
		int fd = open(p, O_RDONLY); ssize_t n = read(fd, sbuf, sizeof sbuf - 1); close(fd);
		sbuf[n > 0 ? n : 0] = 0;
		char *s = strrchr(sbuf, ')');
		if (s && s[2] == 'S') break;
		usleep(1000);
	}
	cat(p);
	snprintf(p, sizeof p, "/proc/%d/comm", c); cat(p);
	snprintf(p, sizeof p, "/proc/%d/task/%d/stat", c, c); cat(p);
	kill(c, SIGSTOP);
	int st; waitpid(c, &st, WUNTRACED);
	snprintf(p, sizeof p, "/proc/%d/stat", c); cat(p);
	kill(c, SIGCONT);
	kill(c, SIGKILL);
	siginfo_t si; waitid(P_PID, c, &si, WEXITED|WNOWAIT);
	snprintf(p, sizeof p, "/proc/%d/stat", c); cat(p);
	waitpid(c, 0, 0);
	cat(p);
	printf("parent %d\n", getpid());
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/child"}, sandboxtest.Options{})
	if r.ExitCode() != 0 {
		t.Fatalf("exit %d: %s %s", r.ExitCode(), r.Stdout, r.Stderr)
	}
	lines := strings.Split(r.Stdout, "\n")
	if len(lines) < 7 {
		t.Fatalf("output:\n%s", r.Stdout)
	}
	f := strings.Fields(lines[0])
	if len(f) != 52 || f[1] != "(kiddo)" || f[2] != "S" || f[3] != "1" {
		t.Errorf("child stat: %d fields %q", len(f), lines[0])
	}
	if lines[1] != "kiddo" {
		t.Errorf("comm %q", lines[1])
	}
	if tf := strings.Fields(lines[2]); len(tf) != 52 || tf[0] != f[0] {
		t.Errorf("task stat %q", lines[2])
	}
	if st := strings.Fields(lines[3]); len(st) < 3 || st[2] != "T" {
		t.Errorf("stopped child's stat %q", lines[3])
	}
	z := strings.Fields(lines[4])
	if len(z) < 3 || z[0] != f[0] || z[2] != "Z" {
		t.Errorf("zombie stat %q", lines[4])
	}
	if lines[5] != "ERR 2" {
		t.Errorf("reaped child's stat: %q, want ENOENT", lines[5])
	}
}

func TestOtherUsersFiles(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "perm", catC+`
#include <dirent.h>
#include <sys/wait.h>
int main(void) {
	if (fork() == 0) {
		if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000)) { perror("setuid"); _exit(1); }
		printf("environ: "); fflush(stdout); cat("/proc/1/environ");
		DIR *d = opendir("/proc/1/fd");
		printf("fd dir: %s\n", d ? "opened" : strerror(errno));
		char t[64];
		printf("cwd link: %s\n", readlink("/proc/1/cwd", t, sizeof t) < 0 ? strerror(errno) : "read");
		int fd = open("/proc/1/status", O_RDONLY);
		printf("status: %s\n", fd >= 0 ? "opened" : strerror(errno));
		printf("own environ: "); fflush(stdout); cat("/proc/self/environ"); printf("\n");
		fflush(stdout);
		_exit(0);
	}
	wait(0);
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/perm"}, sandboxtest.Options{Env: []string{"SECRET=1"}})
	if r.ExitCode() != 0 {
		t.Fatalf("exit %d: %s %s", r.ExitCode(), r.Stdout, r.Stderr)
	}
	want := "environ: ERR 13\nfd dir: Permission denied\ncwd link: Permission denied\nstatus: opened\nown environ: SECRET=1\x00\n"
	if r.Stdout != want {
		t.Errorf("got %q, want %q", r.Stdout, want)
	}
}

func TestBusybox(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, true)
	r := sandboxtest.Run(t, root, []string{"/bin/sh", "-c", `sleep 10 & until [ "$(cat /proc/$!/comm)" = sleep ]; do :; done; ps; cat /proc/meminfo; ls -l /proc/self/fd/ </etc/passwd; cat /proc/mounts; kill %1`},
		sandboxtest.Options{Memory: 128 << 20})
	if r.ExitCode() != 0 {
		t.Fatalf("exit %d: %s %s", r.ExitCode(), r.Stdout, r.Stderr)
	}
	out := r.Stdout
	for _, re := range []string{
		`(?m)^PID\s+USER\s+COMMAND$`,
		`(?m)^\s+1 root\s+/bin/sh -c sleep 10 & until`,
		`(?m)^\s+\d+ root\s+sleep 10$`,
		`(?m)^\s+\d+ root\s+\{ps\} /bin/sh -c sleep 10 & until`,
		`(?m)^MemTotal:\s+131072 kB$`,
		`(?m)^MemFree:\s+\d+ kB$`,
		`(?m)^lr-x------\s+1 root\s+root\s+\d+ .* 0 -> /etc/passwd$`,
		`(?m)^l.w.------\s+1 root\s+root\s+\d+ .* 1 -> pipe:\[\d+\]$`,
		`(?m)^proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0$`,
		`(?m)^sysfs /sys sysfs ro,nosuid,nodev,noexec,relatime 0 0$`,
		`(?m)^tmpfs /dev/shm tmpfs rw,nosuid,nodev,noexec,relatime 0 0$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %q:\n%s", re, out)
		}
	}
}

// TestStatFormatMatchesLinux reads /proc/self/stat and status natively
// and in the sandbox with the same program and compares their shapes.
func TestStatFormatMatchesLinux(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	bin := sandboxtest.BuildC(t, root, "shape", catC+`
int main(void) { cat("/proc/self/stat"); cat("/proc/self/statm"); cat("/proc/self/status"); return 0; }`)
	native, err := exec.Command(filepath.Join(root, bin)).Output()
	if err != nil {
		t.Fatal(err)
	}
	r := sandboxtest.Run(t, root, []string{bin}, sandboxtest.Options{})
	nl, sl := strings.Split(string(native), "\n"), strings.Split(r.Stdout, "\n")
	if a, b := len(strings.Fields(nl[0])), len(strings.Fields(sl[0])); a != b {
		t.Errorf("stat has %d fields here, %d on Linux: %q", b, a, sl[0])
	}
	if a, b := len(strings.Fields(nl[1])), len(strings.Fields(sl[1])); a != b {
		t.Errorf("statm has %d fields here, %d on Linux: %q", b, a, sl[1])
	}
	keys := func(lines []string) map[string]bool {
		m := map[string]bool{}
		for _, l := range lines[2:] {
			if k, _, ok := strings.Cut(l, ":"); ok {
				m[k] = true
			}
		}
		return m
	}
	ours := keys(sl)
	for _, k := range []string{"Name", "Umask", "State", "Tgid", "Pid", "PPid", "TracerPid", "Uid", "Gid", "FDSize",
		"Groups", "VmSize", "VmRSS", "RssAnon", "VmData", "VmStk", "Threads", "SigQ", "SigPnd", "ShdPnd", "SigBlk",
		"SigIgn", "SigCgt", "CapInh", "CapPrm", "CapEff", "CapBnd", "NoNewPrivs", "Cpus_allowed_list"} {
		if !keys(nl)[k] {
			t.Fatalf("the host's status has no %s", k)
		}
		if !ours[k] {
			t.Errorf("status has no %s", k)
		}
	}
}

// TestMagicLinks follows /proc/self/fd/N, cwd and root as Linux does: to
// the open file itself, which may be a pipe or a file already deleted
// (on tmpfs: hostfs reopens files by name).
func TestMagicLinks(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "magic", catC+`
#include <stdlib.h>
int main(void) {
	int p[2]; pipe(p);
	write(p[1], "through the pipe\n", 17);
	close(p[1]);
	char path[64]; snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
	cat(path);
	int f = open("/dev/shm/gone", O_RDWR|O_CREAT, 0600);
	write(f, "deleted but open\n", 17);
	unlink("/dev/shm/gone");
	snprintf(path, sizeof path, "/proc/self/fd/%d", f);
	cat(path);
	int o = open("/dev/stdout", O_WRONLY);
	if (o < 0) { perror("open /dev/stdout"); return 1; }
	fflush(stdout);
	write(o, "via /dev/stdout\n", 16);
	chdir("/tmp");
	if (chdir("/proc/self/cwd") != 0) { perror("chdir"); return 1; }
	char cwd[64]; printf("cwd %s\n", getcwd(cwd, sizeof cwd));
	struct stat a, b; stat("/proc/self/root", &a); stat("/", &b);
	printf("root same %d\n", a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/magic"}, sandboxtest.Options{})
	want := "through the pipe\ndeleted but open\nvia /dev/stdout\ncwd /tmp\nroot same 1\n"
	if r.ExitCode() != 0 || r.Stdout != want {
		t.Fatalf("exit %d\ngot  %q\nwant %q\nstderr %s", r.ExitCode(), r.Stdout, want, r.Stderr)
	}
}

func TestThreads(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "threads", catC+`
#include <pthread.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
static pthread_barrier_t b;
static void *worker(void *arg) {
	prctl(PR_SET_NAME, "worker");
	char link[64]; ssize_t n = readlink("/proc/thread-self", link, sizeof link - 1);
	link[n > 0 ? n : 0] = 0;
	printf("thread-self %s tid %ld\n", link, (long)syscall(SYS_gettid));
	fflush(stdout);
	pthread_barrier_wait(&b);
	pthread_barrier_wait(&b);
	return 0;
}
int main(void) {
	pthread_barrier_init(&b, 0, 2);
	pthread_t th; pthread_create(&th, 0, worker, 0);
	pthread_barrier_wait(&b);
	DIR *d = opendir("/proc/self/task"); struct dirent *e; int n = 0;
	while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
	closedir(d);
	printf("tasks %d\n", n);
	char p[64];
	snprintf(p, sizeof p, "/proc/self/task/%d/comm", getpid()); cat(p);
	cat("/proc/self/status");
	fflush(stdout);
	pthread_barrier_wait(&b);
	pthread_join(th, 0);
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/threads"}, sandboxtest.Options{CPUs: 2})
	if r.ExitCode() != 0 {
		t.Fatalf("exit %d: %s %s", r.ExitCode(), r.Stdout, r.Stderr)
	}
	m := regexp.MustCompile(`thread-self 1/task/(\d+) tid (\d+)\n`).FindStringSubmatch(r.Stdout)
	if m == nil || m[1] != m[2] || m[1] == "1" {
		t.Errorf("thread-self of the second thread: %q", r.Stdout)
	}
	if !strings.Contains(r.Stdout, "tasks 2\nthreads\n") {
		t.Errorf("two tasks and the main thread's comm expected: %q", r.Stdout)
	}
	if got := field(t, r.Stdout, "Threads"); got != "2" {
		t.Errorf("Threads while both run: %s", got)
	}
}

// TestProcps runs Debian's procps (ps, free), dynamically linked against
// glibc and libproc2, which parse stat, status, statm, meminfo and
// uptime strictly.
func TestProcps(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, true)
	for _, tool := range []string{"ps", "free"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("procps is needed (apt-get install procps): %v", err)
		}
		copyWithLibs(t, root, p, "/bin/procps-"+tool)
	}
	r := sandboxtest.Run(t, root, []string{"/bin/sh", "-c",
		`sleep 10 & until [ "$(cat /proc/$!/comm)" = sleep ]; do :; done; /bin/procps-ps -ef; /bin/procps-ps aux; /bin/procps-free -m; kill %1`},
		sandboxtest.Options{Memory: 512 << 20})
	if r.ExitCode() != 0 {
		t.Fatalf("exit %d: %s %s", r.ExitCode(), r.Stdout, r.Stderr)
	}
	for _, re := range []string{
		`(?m)^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$`,
		`(?m)^root\s+1\s+0\s+\d+ \d\d:\d\d \?\s+00:00:\d\d /bin/sh -c sleep 10 &`,
		`(?m)^root\s+\d+\s+1\s+\d+ \d\d:\d\d \?\s+00:00:\d\d sleep 10$`,
		`(?m)^USER\s+PID %CPU %MEM\s+VSZ\s+RSS TTY\s+STAT START\s+TIME COMMAND$`,
		`(?m)^root\s+\d+\s+[\d.]+\s+[\d.]+\s+\d+\s+\d+ \?\s+S\s+\d\d:\d\d\s+0:00 sleep 10$`,
		`(?m)^Mem:\s+512\s+\d+\s+\d+\s+0\s+0\s+\d+$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.Stdout) {
			t.Errorf("output does not match %q:\n%s\nstderr: %s", re, r.Stdout, r.Stderr)
		}
	}
}

// copyWithLibs copies a dynamically linked host program into root at
// dst, with the shared libraries ldd lists, at their own paths.
func copyWithLibs(t *testing.T, root, src, dst string) {
	t.Helper()
	out, err := exec.Command("ldd", src).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", src, err)
	}
	files := map[string]string{src: dst}
	for _, f := range regexp.MustCompile(`(/\S+)`).FindAllString(string(out), -1) {
		files[f] = f
	}
	for from, to := range files {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, to)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestContainersSeeTheirOwnProcesses: the containers of a pod each see
// only their own processes in /proc, each in its own PID namespace,
// unless the pod shares one; the sentry sees them all.
func TestContainersSeeTheirOwnProcesses(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, true)
	for _, shared := range []bool{false, true} {
		sb, err := sandbox.New(sandbox.Config{RootFS: root})
		if err != nil {
			t.Fatal(err)
		}
		start := func(name string) *kernel.ThreadGroup {
			var ns *kernel.PIDNamespace
			if !shared {
				if ns, err = sb.Kernel.NewPIDNamespace(nil); err != nil {
					t.Fatal(err)
				}
			}
			g, err := sb.Start(kernel.ProcessSpec{Argv: []string{"/bin/sleep", "30"}, Cwd: "/",
				Creds: kernel.Creds{Caps: auth.AllCaps}, Container: name, PIDNamespace: ns})
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		a, b := start("a"), start("b")
		if !shared {
			// Each is the init of its namespace.
			for _, g := range []*kernel.ThreadGroup{a, b} {
				if id := g.PIDNamespace().IDOfThreadGroup(g); id != 1 {
					t.Errorf("container %s's first process is PID %d in its namespace, want 1", g.Container, id)
				}
			}
		}
		if root := sb.Kernel.RootPIDNamespace(); root.IDOfThreadGroup(a) == 0 || root.IDOfThreadGroup(b) == 0 {
			t.Errorf("the sandbox's namespace does not see every process")
		}
		// What a process of each container finds in /proc.
		sees := func(g *kernel.ThreadGroup, other *kernel.ThreadGroup) (listed, found bool) {
			ctx := g.Leader().Ctx()
			f, err := sb.VFS.Open(ctx, auth.Root(), vfs.PathOperation{Path: "/proc"}, vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
			if err != nil {
				t.Fatal(err)
			}
			defer f.DecRef(ctx)
			id := g.PIDNamespace().IDOfThreadGroup(other)
			if id == 0 {
				// Not numbered there: no entry but the reader's own.
				self := strconv.Itoa(int(g.PIDNamespace().IDOfThreadGroup(g)))
				f.Getdents(ctx, func(d vfs.Dirent) bool {
					if _, err := strconv.Atoi(d.Name); err == nil && d.Name != self {
						listed = true
					}
					return true
				})
				return listed, listed
			}
			want := strconv.Itoa(int(id))
			f.Getdents(ctx, func(d vfs.Dirent) bool {
				listed = listed || d.Name == want
				return true
			})
			_, err = sb.VFS.Stat(ctx, auth.Root(), vfs.PathOperation{Path: "/proc/" + want + "/status"})
			return listed, err == nil
		}
		for _, c := range []struct{ g, other *kernel.ThreadGroup }{{a, a}, {a, b}, {b, a}, {b, b}} {
			listed, found := sees(c.g, c.other)
			want := shared || c.g == c.other
			if listed != want || found != want {
				t.Errorf("shared %v: %s sees %s: listed %v, found %v; want %v", shared, c.g.Container, c.other.Container, listed, found, want)
			}
		}
		sb.Close()
	}
}
