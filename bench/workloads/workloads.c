/*
 * The workloads behind moat's figures, one static program for all of
 * them so that the same binary runs natively, under runc, under runsc and
 * under moat. Each times itself with CLOCK_MONOTONIC (the vDSO, which in
 * moat's sandbox also answers without a syscall) and prints one line:
 *
 *	MODE N NS ns/op
 *
 * Usage: workloads getppid|forkexec|pipe|mmap N
 *        workloads sleep SECONDS   (prints "ready" first, then sleeps)
 *        workloads true            (exits 0 at once)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "workloads: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void getppid_loop(long n)
{
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid); /* glibc does not cache it, but be sure */
}

/* fork, exec this same program as "true", wait. argv[0] must be its path. */
static void forkexec_loop(long n, const char *self)
{
	for (long i = 0; i < n; i++) {
		pid_t p = fork();
		if (p < 0)
			die("fork");
		if (p == 0) {
			execl(self, "workloads", "true", (char *)0);
			_exit(127);
		}
		int st;
		if (waitpid(p, &st, 0) != p)
			die("waitpid");
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "workloads: child exec %s: status %#x\n", self, st);
			exit(1);
		}
	}
}

/* One byte there and back between two processes over two pipes. */
static void pipe_loop(long n)
{
	int ab[2], ba[2];
	char c = 'x';
	if (pipe(ab) < 0 || pipe(ba) < 0)
		die("pipe");
	pid_t p = fork();
	if (p < 0)
		die("fork");
	if (p == 0) {
		for (long i = 0; i < n; i++) {
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	for (long i = 0; i < n; i++) {
		if (write(ab[1], &c, 1) != 1)
			die("write");
		if (read(ba[0], &c, 1) != 1)
			die("read");
	}
	int st;
	if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("pipe child");
}

static void mmap_loop(long n)
{
	for (long i = 0; i < n; i++) {
		char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			die("mmap");
		*(volatile char *)m = 1;
		if (munmap(m, 4096) < 0)
			die("munmap");
	}
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "true") == 0)
		return 0;
	if (argc != 3) {
		fprintf(stderr, "usage: workloads getppid|forkexec|pipe|mmap N | sleep SECONDS | true\n");
		return 2;
	}
	const char *mode = argv[1];
	char *end;
	long n = strtol(argv[2], &end, 10);
	if (*end != 0 || n < 1) {
		fprintf(stderr, "workloads: bad count %s\n", argv[2]);
		return 2;
	}
	if (strcmp(mode, "sleep") == 0) {
		printf("ready\n");
		fflush(stdout);
		sleep(n);
		return 0;
	}
	double t0 = now();
	if (strcmp(mode, "getppid") == 0)
		getppid_loop(n);
	else if (strcmp(mode, "forkexec") == 0)
		forkexec_loop(n, argv[0]);
	else if (strcmp(mode, "pipe") == 0)
		pipe_loop(n);
	else if (strcmp(mode, "mmap") == 0)
		mmap_loop(n);
	else {
		fprintf(stderr, "workloads: unknown mode %s\n", mode);
		return 2;
	}
	double t1 = now();
	printf("%s %ld %.0f ns/op\n", mode, n, (t1 - t0) / n);
	return 0;
}
