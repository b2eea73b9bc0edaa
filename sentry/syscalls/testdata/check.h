/* Checks shared by the test programs. Each program runs in the directory
 * given as argv[1], prints a line for every failed check and ends with
 * "DONE failures=N". The Go test runs it natively and in a sandbox and
 * compares the outputs, so the expectations are proven against Linux. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

#define BAD_PTR ((void *)1)

#define FAIL(...) do { printf("FAIL %d: ", __LINE__); printf(__VA_ARGS__); printf("\n"); failures++; } while (0)

/* EXPECT_OK: expr must not return a negative value. */
#define EXPECT_OK(expr) do { errno = 0; long _r = (long)(expr); \
	if (_r < 0) FAIL("%s = %ld errno=%d (%s)", #expr, _r, errno, strerror(errno)); } while (0)

/* EXPECT_ERR: expr must fail with errno e. */
#define EXPECT_ERR(expr, e) do { errno = 0; long _r = (long)(expr); \
	if (_r != -1 || errno != (e)) FAIL("%s = %ld errno=%d (%s), want errno %d (%s)", #expr, _r, errno, strerror(errno), (e), strerror(e)); } while (0)

#define EXPECT_EQ(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) FAIL("%s = %lld, want %lld (errno=%d)", #a, _a, _b, errno); } while (0)

#define EXPECT_STR(a, b) do { const char *_a = (a), *_b = (b); \
	if (strcmp(_a, _b) != 0) FAIL("%s = \"%s\", want \"%s\"", #a, _a, _b); } while (0)

#define EXPECT_TRUE(c) do { if (!(c)) FAIL("%s is false (errno=%d)", #c, errno); } while (0)

static void enter(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2 || chdir(argv[1]) != 0) {
		printf("FAIL: cannot enter the work directory\n");
		exit(2);
	}
}

static __attribute__((unused)) int done(void) {
	printf("DONE failures=%d\n", failures);
	fflush(stdout);
	return failures != 0;
}
