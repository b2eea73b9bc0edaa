package sandbox_test

import (
	"strings"
	"testing"

	"moat.dev/moat/sentry/sandbox/sandboxtest"
)

// The kernel core on real static programs: processes, threads, signals,
// memory, the vDSO. File, socket and /proc families have tests of their
// own.

func TestExitStatusAndArgs(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "args", `
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
	for (int i = 0; i < argc; i++) printf("%s|", argv[i]);
	printf(" %s pid=%d ppid=%d\n", getenv("GREETING"), getpid(), getppid());
	return 42;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/args", "one", "two words"}, sandboxtest.Options{Env: []string{"GREETING=hi"}})
	if r.ExitCode() != 42 || r.Stdout != "/bin/args|one|two words| hi pid=1 ppid=0\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.ExitCode(), r.Stdout, r.Stderr)
	}
}

func TestForkExecWait(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "child", `
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) { printf("child %s pid=%d ppid=%d\n", argv[1], getpid(), getppid()); return 7; }`)
	sandboxtest.BuildC(t, root, "parent", `
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
#include <signal.h>
int main(void) {
	int total = 0;
	for (int i = 0; i < 5; i++) {
		fflush(stdout);
		pid_t p = fork();
		if (p < 0) { perror("fork"); return 1; }
		if (p == 0) {
			char arg[8]; snprintf(arg, sizeof arg, "%d", i);
			execl("/bin/child", "child", arg, (char *)0);
			perror("execl"); _exit(99);
		}
		int st;
		if (waitpid(p, &st, 0) != p) { perror("waitpid"); return 1; }
		if (!WIFEXITED(st)) { printf("child %d not exited: %#x\n", p, st); return 1; }
		total += WEXITSTATUS(st);
	}
	/* vfork + _exit, a child killed by a signal, waitpid on nothing. */
	pid_t v = vfork();
	if (v == 0) _exit(3);
	int st; waitpid(v, &st, 0);
	printf("vfork child status %d\n", WEXITSTATUS(st));
	pid_t k = fork();
	if (k == 0) { pause(); _exit(0); }
	kill(k, SIGTERM);
	waitpid(k, &st, 0);
	printf("killed: signaled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));
	printf("no child: %d\n", waitpid(-1, &st, WNOHANG));
	printf("total %d\n", total);
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/parent"}, sandboxtest.Options{})
	want := "child 0 pid=2 ppid=1\nchild 1 pid=3 ppid=1\nchild 2 pid=4 ppid=1\nchild 3 pid=5 ppid=1\nchild 4 pid=6 ppid=1\nvfork child status 3\nkilled: signaled=1 sig=15\nno child: -1\ntotal 35\n"
	if r.ExitCode() != 0 || r.Stdout != want {
		t.Fatalf("exit %d\nstdout %q\nwant   %q\nstderr %q\nlog %s", r.ExitCode(), r.Stdout, want, r.Stderr, r.Log)
	}
}

func TestThreads(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "threads", `
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long counter, ready;
static __thread long tls = 5;
static void *work(void *arg) {
	long id = (long)arg;
	tls += id;
	for (int i = 0; i < 10000; i++) { pthread_mutex_lock(&mu); counter++; pthread_mutex_unlock(&mu); }
	pthread_mutex_lock(&mu); ready++; pthread_cond_broadcast(&cv); pthread_mutex_unlock(&mu);
	return (void *)(tls * 10 + (syscall(SYS_gettid) != getpid()));
}
int main(void) {
	pthread_t th[4];
	for (long i = 0; i < 4; i++) pthread_create(&th[i], 0, work, (void *)i);
	pthread_mutex_lock(&mu); while (ready < 4) pthread_cond_wait(&cv, &mu); pthread_mutex_unlock(&mu);
	long sum = 0;
	for (int i = 0; i < 4; i++) { void *r; pthread_join(th[i], &r); sum += (long)r; }
	printf("counter=%ld sum=%ld tls=%ld\n", counter, sum, tls);
	return 0;
}`)
	for _, cpus := range []int{1, 2} {
		r := sandboxtest.Run(t, root, []string{"/bin/threads"}, sandboxtest.Options{CPUs: cpus})
		// tls per thread: 5+id → (5+id)*10+1 summed = 50+60+70+80 + 4 = 264
		if r.ExitCode() != 0 || r.Stdout != "counter=40000 sum=264 tls=5\n" {
			t.Fatalf("cpus %d: exit %d stdout %q stderr %q log %s", cpus, r.ExitCode(), r.Stdout, r.Stderr, r.Log)
		}
	}
}

func TestSignals(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "signals", `
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <setjmp.h>
#include <unistd.h>
#include <time.h>
static volatile int got, segv_code;
static volatile void *segv_addr;
static sigjmp_buf jb;
static void on_usr1(int sig, siginfo_t *si, void *uc) { got = sig * 1000 + (si->si_pid == getpid()); }
static void on_segv(int sig, siginfo_t *si, void *uc) { segv_code = si->si_code; segv_addr = si->si_addr; siglongjmp(jb, 1); }
static void on_alrm(int sig) { got = -1; }
int main(void) {
	struct sigaction sa; memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_usr1; sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &sa, 0);
	kill(getpid(), SIGUSR1);
	printf("usr1 %d\n", got);
	/* Blocked signals wait; unblocking delivers. */
	sigset_t set; sigemptyset(&set); sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, 0);
	got = 0; raise(SIGUSR1);
	sigset_t pend; sigpending(&pend);
	printf("pending %d got %d\n", sigismember(&pend, SIGUSR1), got);
	sigprocmask(SIG_UNBLOCK, &set, 0);
	printf("after unblock %d\n", got);
	/* A fault becomes SIGSEGV with the address, and the handler's FP
	   and registers survive siglongjmp. */
	sa.sa_sigaction = on_segv; sigaction(SIGSEGV, &sa, 0);
	volatile double d = 1.5;
	if (sigsetjmp(jb, 1) == 0) { *(volatile int *)16 = 1; }
	printf("segv code %d addr %p d %.1f\n", segv_code, segv_addr, d * 2);
	/* nanosleep interrupted by a handler without SA_RESTART: EINTR. */
	struct sigaction al; memset(&al, 0, sizeof al); al.sa_handler = on_alrm;
	sigaction(SIGALRM, &al, 0);
	sigset_t ss; sigemptyset(&ss); sigaddset(&ss, SIGALRM);
	if (fork() == 0) { usleep(50000); kill(getppid(), SIGALRM); _exit(0); }
	struct timespec ts = {5, 0};
	int r = nanosleep(&ts, &ts);
	printf("nanosleep %d got %d\n", r, got);
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/signals"}, sandboxtest.Options{})
	want := "usr1 10001\npending 1 got 0\nafter unblock 10001\nsegv code 1 addr 0x10 d 3.0\nnanosleep -1 got -1\n"
	if r.ExitCode() != 0 || r.Stdout != want {
		t.Fatalf("exit %d\nstdout %q\nwant   %q\nstderr %q\nlog %s", r.ExitCode(), r.Stdout, want, r.Stderr, r.Log)
	}
}

func TestFatalSignalsAndMemoryLimit(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "crash", `
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
static int crash(const char *how) {
	if (!strcmp(how, "segv")) *(volatile int *)0 = 1;
	if (!strcmp(how, "abort")) abort();
	if (!strcmp(how, "ud2")) __asm__ volatile("ud2");
	if (!strcmp(how, "div")) { unsigned a = 1, z = 0; __asm__ volatile("xor %%edx, %%edx; divl %1" : "+a"(a) : "r"(z) : "edx"); return a; }
	return 0;
}
int main(int argc, char **argv) {
	if (argc > 2) {
		/* As a child of init, the way Linux delivers fatal signals to
		   a process that is not a namespace's init. */
		pid_t p = fork();
		if (p == 0) return crash(argv[1]);
		int st; waitpid(p, &st, 0);
		return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
	}
	if (strcmp(argv[1], "hog")) return crash(argv[1]);
	if (!strcmp(argv[1], "hog")) {
		for (long n = 0;; n++) { char *p = malloc(1 << 20); if (!p) { printf("malloc failed after %ld MiB\n", n); return 3; } memset(p, 1, 1 << 20); }
	}
	return 0;
}`)
	for _, c := range []struct {
		arg  string
		code int
	}{{"segv", 128 + 11}, {"abort", 128 + 6}, {"ud2", 128 + 4}, {"div", 128 + 8}} {
		r := sandboxtest.Run(t, root, []string{"/bin/crash", c.arg, "child"}, sandboxtest.Options{})
		if r.ExitCode() != c.code {
			t.Errorf("%s: exit %d, want %d (stderr %q)", c.arg, r.ExitCode(), c.code, r.Stderr)
		}
	}
	// As pid 1 a fault still kills; abort's SIGABRT is ignored by the
	// namespace's init, as on Linux, and glibc's fallback faults.
	for _, arg := range []string{"segv", "abort"} {
		if r := sandboxtest.Run(t, root, []string{"/bin/crash", arg}, sandboxtest.Options{}); r.ExitCode() != 128+11 {
			t.Errorf("%s as init: exit %d, want %d", arg, r.ExitCode(), 128+11)
		}
	}
	// The memory hog is stopped inside the sandbox: killed (OOM) or
	// refused memory, never the host.
	r := sandboxtest.Run(t, root, []string{"/bin/crash", "hog"}, sandboxtest.Options{Memory: 64 << 20})
	if r.ExitCode() != 128+9 && r.ExitCode() != 3 {
		t.Fatalf("hog: exit %d stdout %q log %s", r.ExitCode(), r.Stdout, r.Log)
	}
	if r.ExitCode() == 128+9 && !strings.Contains(r.Log, "out of memory") {
		t.Errorf("OOM kill not logged: %s", r.Log)
	}
}

func TestVDSOClock(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "clock", `
#include <stdio.h>
#include <time.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
	struct timespec a, b, s;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 100000; i++) clock_gettime(CLOCK_MONOTONIC, &b);
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &s);
	long long an = a.tv_sec * 1000000000LL + a.tv_nsec, bn = b.tv_sec * 1000000000LL + b.tv_nsec, sn = s.tv_sec * 1000000000LL + s.tv_nsec;
	struct timespec r; clock_gettime(CLOCK_REALTIME, &r);
	printf("vdso=%d monotonic=%d syscall_after=%d realtime_sane=%d\n", getauxval(AT_SYSINFO_EHDR) != 0, bn >= an, sn >= bn, r.tv_sec > 1700000000);
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/clock"}, sandboxtest.Options{})
	if r.Stdout != "vdso=1 monotonic=1 syscall_after=1 realtime_sane=1\n" {
		t.Fatalf("%q %q", r.Stdout, r.Log)
	}
	// 100000 reads must not have been guest exits: that would log
	// nothing, but take seconds; the strace of a short run shows no
	// clock_gettime syscall at all.
	r = sandboxtest.Run(t, root, []string{"/bin/clock"}, sandboxtest.Options{Strace: true})
	if n := strings.Count(r.Log, "clock_gettime("); n != 1 {
		t.Fatalf("%d clock_gettime syscalls, want the 1 explicit one", n)
	}
}

func TestTimers(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "timers", `
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <sys/wait.h>
static volatile int ticks;
static void on_alrm(int sig) { ticks++; }
int main(void) {
	struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_alrm; sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, 0);
	struct itimerval it = {{0, 20000}, {0, 20000}}, old;
	setitimer(ITIMER_REAL, &it, 0);
	while (ticks < 3) pause();
	getitimer(ITIMER_REAL, &old);
	it.it_value.tv_usec = 0; it.it_interval.tv_usec = 0;
	setitimer(ITIMER_REAL, &it, 0);
	unsigned prev = alarm(100);
	unsigned left = alarm(0);
	struct rusage ru; getrusage(RUSAGE_SELF, &ru);
	printf("ticks>=3 %d interval %ld prev %u left %u maxrss>0 %d\n", ticks >= 3, (long)old.it_interval.tv_usec, prev, left, ru.ru_maxrss > 0);
	/* An alarm with no handler kills. */
	sa.sa_handler = SIG_DFL; sigaction(SIGALRM, &sa, 0);
	if (fork() == 0) { alarm(1); pause(); _exit(0); }
	int st; wait(&st);
	printf("killed by %d\n", WTERMSIG(st));
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/timers"}, sandboxtest.Options{})
	if want := "ticks>=3 1 interval 20000 prev 0 left 100 maxrss>0 1\nkilled by 14\n"; r.Stdout != want {
		t.Fatalf("stdout %q want %q stderr %q log %s", r.Stdout, want, r.Stderr, r.Log)
	}
}

func TestJobControl(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "jobs", `
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>
#include <time.h>
int main(void) {
	int p[2]; pipe(p);
	pid_t c = fork();
	if (c == 0) {
		close(p[0]);
		for (int i = 0;; i++) { char b = 'x'; write(p[1], &b, 1); usleep(2000); }
	}
	close(p[1]);
	char b; read(p[0], &b, 1);
	kill(c, SIGSTOP);
	int st;
	pid_t w = waitpid(c, &st, WUNTRACED);
	printf("stopped %d sig %d\n", w == c && WIFSTOPPED(st), WSTOPSIG(st));
	/* Nothing arrives while it is stopped. */
	struct timespec ts = {0, 50000000}; nanosleep(&ts, 0);
	int n = 0; char buf[256];
	kill(c, SIGCONT);
	w = waitpid(c, &st, WCONTINUED);
	printf("continued %d\n", w == c && WIFCONTINUED(st));
	n = read(p[0], buf, 1);
	printf("reads again %d\n", n == 1);
	kill(c, SIGKILL);
	waitpid(c, &st, 0);
	printf("killed %d\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/jobs"}, sandboxtest.Options{})
	if want := "stopped 1 sig 19\ncontinued 1\nreads again 1\nkilled 1\n"; r.Stdout != want {
		t.Fatalf("stdout %q want %q stderr %q log %s", r.Stdout, want, r.Stderr, r.Log)
	}
}

func TestPOSIXTimers(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "ptimer", `
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static volatile int fired, val;
static void on(int sig, siginfo_t *si, void *uc) { fired++; val = si->si_value.sival_int; }
int main(void) {
	struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_sigaction = on; sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGRTMIN, &sa, 0);
	struct sigevent ev; memset(&ev, 0, sizeof ev);
	ev.sigev_notify = SIGEV_SIGNAL; ev.sigev_signo = SIGRTMIN; ev.sigev_value.sival_int = 77;
	timer_t id;
	if (timer_create(CLOCK_MONOTONIC, &ev, &id)) { perror("timer_create"); return 1; }
	struct itimerspec its = {{0, 10000000}, {0, 10000000}};
	timer_settime(id, 0, &its, 0);
	while (fired < 3) pause();
	struct itimerspec cur; timer_gettime(id, &cur);
	timer_delete(id);
	printf("fired>=3 %d value %d interval %ld bad id %d\n", fired >= 3, val, cur.it_interval.tv_nsec, timer_delete(id));
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/ptimer"}, sandboxtest.Options{})
	if want := "fired>=3 1 value 77 interval 10000000 bad id -1\n"; r.Stdout != want {
		t.Fatalf("stdout %q want %q stderr %q", r.Stdout, want, r.Stderr)
	}
}

func TestMemfd(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "memfd", `
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sys/wait.h>
int main(void) {
	int fd = memfd_create("buf", MFD_CLOEXEC);
	if (fd < 0) { perror("memfd_create"); return 1; }
	if (ftruncate(fd, 8192)) { perror("ftruncate"); return 1; }
	char *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) { perror("mmap"); return 1; }
	strcpy(p + 4096, "shared page");
	if (fork() == 0) { strcpy(p, "from child"); _exit(0); }
	wait(0);
	char buf[16] = {0};
	pread(fd, buf, 11, 4096);
	printf("%s | %s | %s\n", p, p + 4096, buf);
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/memfd"}, sandboxtest.Options{})
	if want := "from child | shared page | shared page\n"; r.Stdout != want {
		t.Fatalf("stdout %q want %q stderr %q log %s", r.Stdout, want, r.Stderr, r.Log)
	}
}

func TestForkBombIsContained(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "bomb", `
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <signal.h>
int main(void) {
	int n = 0;
	for (;;) {
		pid_t p = fork();
		if (p == 0) { pause(); _exit(0); }
		if (p < 0) { printf("fork failed after %d children: %s\n", n, errno == EAGAIN ? "EAGAIN" : "other"); break; }
		n++;
	}
	kill(0, SIGKILL);
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/bomb"}, sandboxtest.Options{Pids: 64})
	if r.Stdout != "fork failed after 63 children: EAGAIN\n" {
		t.Fatalf("stdout %q stderr %q", r.Stdout, r.Stderr)
	}
}
