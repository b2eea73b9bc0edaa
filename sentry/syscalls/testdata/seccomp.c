/* seccomp(2) and prctl(PR_SET_SECCOMP): filter checks, every action,
 * stacking precedence, inheritance by fork and execve, strict mode,
 * TSYNC, the instruction limit and /proc/self/status. Each case runs in a
 * child, since filters cannot be removed. */
#include "check.h"
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>

#define NR_OFF offsetof(struct seccomp_data, nr)
#define ARG_OFF(i) (offsetof(struct seccomp_data, args) + 8 * (i))

static long sc(unsigned op, unsigned flags, void *args) { return syscall(SYS_seccomp, op, flags, args); }

static long install(struct sock_filter *f, unsigned short n, unsigned flags) {
	struct sock_fprog p = {.len = n, .filter = f};
	return sc(SECCOMP_SET_MODE_FILTER, flags, &p);
}

/* nr_returns installs: system call nr gets ret, others are allowed. */
static long nr_returns(int nr, unsigned ret, unsigned flags) {
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, ret),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	return install(f, 4, flags);
}

/* child runs fn in a child process and returns its wait status; the
 * child's failures come back as its exit code. */
static int child(void (*fn)(void)) {
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		failures = 0;
		fn();
		fflush(stdout);
		_exit(failures);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	if (WIFEXITED(st))
		failures += WEXITSTATUS(st);
	return st;
}

static void expect_killed(const char *what, int st, int sig) {
	if (!WIFSIGNALED(st) || WTERMSIG(st) != sig)
		FAIL("%s: status %#x, want death by signal %d", what, st, sig);
}

static void expect_exit0(const char *what, int st) {
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAIL("%s: status %#x, want exit 0", what, st);
}

static void nnp(void) { EXPECT_OK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)); }

static void status_line(const char *key, char *out, size_t n) {
	out[0] = 0;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return;
	char line[256];
	size_t kl = strlen(key);
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, key, kl) == 0) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, n, "%s", line);
		}
	}
	fclose(f);
}

static void t_invalid(void) {
	nnp();
	struct sock_filter ok[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
	struct sock_filter unaligned[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 2), BPF_STMT(BPF_RET | BPF_K, 0)};
	struct sock_filter outside[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64), BPF_STMT(BPF_RET | BPF_K, 0)};
	struct sock_filter byte[] = {BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0), BPF_STMT(BPF_RET | BPF_K, 0)};
	struct sock_filter jump[] = {BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1), BPF_STMT(BPF_RET | BPF_K, 0)};
	struct sock_filter noret[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0)};
	struct sock_filter mem[] = {BPF_STMT(BPF_LD | BPF_MEM, 2), BPF_STMT(BPF_RET | BPF_K, 0)};
	struct sock_filter div0[] = {BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0), BPF_STMT(BPF_RET | BPF_K, 0)};
	EXPECT_ERR(install(ok, 0, 0), EINVAL);
	EXPECT_ERR(install(ok, 4097, 0), EINVAL);
	EXPECT_ERR(install(unaligned, 2, 0), EINVAL);
	EXPECT_ERR(install(outside, 2, 0), EINVAL);
	EXPECT_ERR(install(byte, 2, 0), EINVAL);
	EXPECT_ERR(install(jump, 2, 0), EINVAL);
	EXPECT_ERR(install(noret, 1, 0), EINVAL);
	EXPECT_ERR(install(mem, 2, 0), EINVAL);
	EXPECT_ERR(install(div0, 2, 0), EINVAL);
	EXPECT_ERR(install(ok, 1, 1u << 20), EINVAL);
	EXPECT_ERR(install(BAD_PTR, 1, 0), EFAULT);
	EXPECT_ERR(sc(SECCOMP_SET_MODE_FILTER, 0, BAD_PTR), EFAULT);
	EXPECT_ERR(sc(SECCOMP_SET_MODE_STRICT, 1, NULL), EINVAL);
	EXPECT_ERR(sc(SECCOMP_SET_MODE_STRICT, 0, ok), EINVAL);
	EXPECT_ERR(sc(77, 0, NULL), EINVAL);
	unsigned a = SECCOMP_RET_ALLOW;
	EXPECT_EQ(sc(SECCOMP_GET_ACTION_AVAIL, 0, &a), 0);
	a = SECCOMP_RET_KILL_PROCESS;
	EXPECT_EQ(sc(SECCOMP_GET_ACTION_AVAIL, 0, &a), 0);
	a = 0x12340000;
	EXPECT_ERR(sc(SECCOMP_GET_ACTION_AVAIL, 0, &a), EOPNOTSUPP);
	EXPECT_ERR(sc(SECCOMP_GET_ACTION_AVAIL, 0, BAD_PTR), EFAULT);
	EXPECT_ERR(prctl(PR_SET_SECCOMP, 9, 0, 0, 0), EINVAL);
	EXPECT_EQ(prctl(PR_GET_SECCOMP, 0, 0, 0, 0), 0);
	char line[128];
	status_line("Seccomp:", line, sizeof line);
	EXPECT_STR(line, "Seccomp:\t0");
}

static void t_eacces(void) {
	/* Without no_new_privs and without CAP_SYS_ADMIN. */
	EXPECT_OK(setresuid(65534, 65534, 65534));
	EXPECT_EQ(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0);
	EXPECT_ERR(nr_returns(SYS_getpid, SECCOMP_RET_ERRNO | 1, 0), EACCES);
	nnp();
	EXPECT_OK(nr_returns(SYS_getpid, SECCOMP_RET_ERRNO | 1, 0));
	EXPECT_ERR(syscall(SYS_getpid), 1);
}

static void t_errno(void) {
	nnp();
	EXPECT_OK(nr_returns(SYS_getpid, SECCOMP_RET_ERRNO | 99, 0));
	EXPECT_ERR(syscall(SYS_getpid), 99);
	EXPECT_EQ(prctl(PR_GET_SECCOMP, 0, 0, 0, 0), 2);
	char line[128];
	status_line("Seccomp:", line, sizeof line);
	EXPECT_STR(line, "Seccomp:\t2");
	status_line("Seccomp_filters:", line, sizeof line);
	EXPECT_STR(line, "Seccomp_filters:\t1");
	/* Capped at MAX_ERRNO; ERRNO 0 makes the call return 0. */
	EXPECT_OK(nr_returns(SYS_getppid, SECCOMP_RET_ERRNO | 5000, 0));
	EXPECT_ERR(syscall(SYS_getppid), 4095);
	EXPECT_OK(nr_returns(SYS_getuid, SECCOMP_RET_ERRNO | 0, 0));
	EXPECT_EQ(syscall(SYS_getuid), 0);
	status_line("Seccomp_filters:", line, sizeof line);
	EXPECT_STR(line, "Seccomp_filters:\t3");
	/* Filters stay once installed: strict mode cannot replace them. */
	EXPECT_ERR(prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0), EINVAL);
}

static void t_args(void) {
	nnp();
	/* kill(pid, 0) fails with EDOM when arg 1 (the signal) is 0 and the
	 * high word of arg 0 is 0. */
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_kill, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_OFF(1)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_OFF(0) + 4),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EDOM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	EXPECT_OK(install(f, 8, 0));
	EXPECT_ERR(kill(getpid(), 0), EDOM);
	EXPECT_OK(kill(getpid(), SIGCHLD));
	/* The filter sees all 64 bits; kill takes an int. */
	EXPECT_OK(syscall(SYS_kill, (long)getpid() | (1L << 32), 0));
	/* The architecture is x86-64. */
	struct sock_filter arch[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	EXPECT_OK(install(arch, 4, 0));
	EXPECT_OK(getpid());
}

static void t_stacking(void) {
	nnp();
	/* The most restrictive action wins; among equal ones, the newest. */
	EXPECT_OK(nr_returns(SYS_getpid, SECCOMP_RET_ERRNO | 3, 0));
	EXPECT_OK(nr_returns(SYS_getpid, SECCOMP_RET_ALLOW, 0));
	EXPECT_ERR(syscall(SYS_getpid), 3);
	EXPECT_OK(nr_returns(SYS_getpid, SECCOMP_RET_ERRNO | 4, 0));
	EXPECT_ERR(syscall(SYS_getpid), 4);
	EXPECT_OK(nr_returns(SYS_getpid, SECCOMP_RET_TRACE | 5, 0));
	EXPECT_ERR(syscall(SYS_getpid), 4);
	/* TRACE with no tracer: ENOSYS. LOG: allowed. */
	EXPECT_OK(nr_returns(SYS_getppid, SECCOMP_RET_TRACE, 0));
	EXPECT_ERR(syscall(SYS_getppid), ENOSYS);
	EXPECT_OK(nr_returns(SYS_getuid, SECCOMP_RET_LOG, SECCOMP_FILTER_FLAG_LOG));
	EXPECT_OK(syscall(SYS_getuid));
}

static volatile int trap_nr, trap_code, trap_errno;
static volatile unsigned trap_arch;
static volatile void *trap_addr;

static void on_sigsys(int sig, siginfo_t *si, void *uc) {
	(void)sig;
	(void)uc;
	trap_nr = si->si_syscall;
	trap_code = si->si_code;
	trap_errno = si->si_errno;
	trap_arch = si->si_arch;
	trap_addr = si->si_call_addr;
}

static void t_trap(void) {
	nnp();
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	sigaction(SIGSYS, &sa, NULL);
	EXPECT_OK(nr_returns(SYS_getpid, SECCOMP_RET_TRAP | 42, 0));
	/* The call is skipped with its registers as they were: RAX keeps
	 * the system call number. */
	EXPECT_EQ(syscall(SYS_getpid), SYS_getpid);
	EXPECT_EQ(trap_nr, SYS_getpid);
	EXPECT_EQ(trap_code, 1); /* SYS_SECCOMP */
	EXPECT_EQ(trap_errno, 42);
	EXPECT_EQ(trap_arch, AUDIT_ARCH_X86_64);
	EXPECT_TRUE(trap_addr != NULL);
}

static void t_trap_default(void) {
	nnp();
	nr_returns(SYS_getpid, SECCOMP_RET_TRAP, 0);
	syscall(SYS_getpid);
	printf("FAIL: survived a TRAP without a handler\n");
}

static void t_trap_blocked(void) {
	nnp();
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGSYS);
	sigprocmask(SIG_BLOCK, &s, NULL);
	nr_returns(SYS_getpid, SECCOMP_RET_TRAP, 0);
	syscall(SYS_getpid);
	printf("FAIL: survived a TRAP with SIGSYS blocked\n");
}

static void t_kill_process(void) {
	nnp();
	nr_returns(SYS_getpid, SECCOMP_RET_KILL_PROCESS, 0);
	syscall(SYS_getpid);
	printf("FAIL: survived KILL_PROCESS\n");
}

static void t_kill_thread_alone(void) {
	nnp();
	nr_returns(SYS_getpid, SECCOMP_RET_KILL_THREAD, 0);
	syscall(SYS_getpid);
	printf("FAIL: survived KILL_THREAD\n");
}

static void *killed_thread(void *arg) {
	(void)arg;
	syscall(SYS_getppid, 777);
	printf("FAIL: the thread survived KILL_THREAD\n");
	return NULL;
}

static void t_kill_thread(void) {
	nnp();
	/* getppid(777) kills the calling thread only. */
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_OFF(0)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 777, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_THREAD),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	EXPECT_OK(install(f, 6, 0));
	pthread_t th;
	EXPECT_EQ(pthread_create(&th, NULL, killed_thread, NULL), 0);
	EXPECT_EQ(pthread_join(th, NULL), 0);
	EXPECT_OK(getppid());
}

static void t_inherit_grandchild(void) {
	EXPECT_ERR(syscall(SYS_getpid), 7);
	EXPECT_EQ(prctl(PR_GET_SECCOMP, 0, 0, 0, 0), 2);
}

static const char *self;

static void t_inherit(void) {
	nnp();
	EXPECT_OK(nr_returns(SYS_getpid, SECCOMP_RET_ERRNO | 7, 0));
	expect_exit0("fork", child(t_inherit_grandchild));
	fflush(stdout);
	execl(self, self, ".", "after-exec", (char *)NULL);
	FAIL("execl %s: %s", self, strerror(errno));
}

static void t_strict(void) {
	EXPECT_OK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0));
	/* write and exit only. */
	write(1, "strict mode writes\n", 19);
	syscall(SYS_exit, 0);
}

static void t_strict_killed(void) {
	EXPECT_OK(sc(SECCOMP_SET_MODE_STRICT, 0, NULL));
	syscall(SYS_getpid);
	write(1, "FAIL: survived strict mode\n", 27);
	syscall(SYS_exit, 0);
}

static int tsync_pipe[2];

static void *waiting_thread(void *arg) {
	char c;
	if (arg) {
		/* A filter of this thread's own: TSYNC cannot replace it. */
		nr_returns(SYS_getuid, SECCOMP_RET_ERRNO | 2, 0);
	}
	read(tsync_pipe[0], &c, 1);
	return (void *)(long)syscall(SYS_getpid);
}

static void t_tsync(void) {
	nnp();
	pipe(tsync_pipe);
	pthread_t th;
	pthread_create(&th, NULL, waiting_thread, NULL);
	EXPECT_EQ(nr_returns(SYS_getpid, SECCOMP_RET_ERRNO | 5, SECCOMP_FILTER_FLAG_TSYNC), 0);
	write(tsync_pipe[1], "x", 1);
	void *rv;
	pthread_join(th, &rv);
	EXPECT_EQ((long)rv, -1);
}

static volatile pid_t other_tid;

static void *diverging_thread(void *arg) {
	(void)arg;
	other_tid = gettid();
	return waiting_thread((void *)1);
}

static void t_tsync_fails(void) {
	nnp();
	pipe(tsync_pipe);
	pthread_t th;
	pthread_create(&th, NULL, diverging_thread, NULL);
	while (other_tid == 0)
		usleep(1000);
	usleep(50000);
	EXPECT_EQ(nr_returns(SYS_getpid, SECCOMP_RET_ERRNO | 5, SECCOMP_FILTER_FLAG_TSYNC), other_tid);
	EXPECT_ERR(nr_returns(SYS_getpid, SECCOMP_RET_ERRNO | 5, SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH), ESRCH);
	write(tsync_pipe[1], "x", 1);
	pthread_join(th, NULL);
}

static void t_limit(void) {
	nnp();
	static struct sock_filter big[4096];
	for (int i = 0; i < 4095; i++)
		big[i] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_IMM, i);
	big[4095] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	int n = 0;
	while (install(big, 4096, 0) == 0)
		n++;
	EXPECT_EQ(errno, ENOMEM);
	EXPECT_EQ(n, 7);
	EXPECT_OK(getpid());
}

int main(int argc, char **argv) {
	self = argv[0];
	if (argc > 2 && strcmp(argv[2], "after-exec") == 0) {
		enter(argc, argv);
		EXPECT_ERR(syscall(SYS_getpid), 7);
		EXPECT_EQ(prctl(PR_GET_SECCOMP, 0, 0, 0, 0), 2);
		fflush(stdout);
		_exit(failures);
	}
	enter(argc, argv);
	expect_exit0("invalid", child(t_invalid));
	expect_exit0("eacces", child(t_eacces));
	expect_exit0("errno", child(t_errno));
	expect_exit0("args", child(t_args));
	expect_exit0("stacking", child(t_stacking));
	expect_exit0("trap", child(t_trap));
	expect_killed("trap without a handler", child(t_trap_default), SIGSYS);
	expect_killed("trap blocked", child(t_trap_blocked), SIGSYS);
	expect_killed("kill process", child(t_kill_process), SIGSYS);
	expect_killed("kill thread, single", child(t_kill_thread_alone), SIGSYS);
	expect_exit0("kill thread", child(t_kill_thread));
	expect_exit0("inherit", child(t_inherit));
	expect_exit0("strict", child(t_strict));
	expect_killed("strict killed", child(t_strict_killed), SIGKILL);
	expect_exit0("tsync", child(t_tsync));
	expect_exit0("tsync fails", child(t_tsync_fails));
	expect_exit0("limit", child(t_limit));
	return done();
}
