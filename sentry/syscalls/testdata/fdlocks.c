/* Descriptors and locks: dup, fcntl, close_range, RLIMIT_NOFILE,
 * record locks (POSIX and OFD) and flock, with blocking and interrupted
 * waits. */
#include "check.h"
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/time.h>

static void on_alarm(int sig) { (void)sig; }

/* arm_timer sends SIGALRM in ms milliseconds to interrupt a wait. */
static void arm_timer(int ms) {
	struct sigaction sa = {.sa_handler = on_alarm};
	sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART */
	struct itimerval it = {.it_value = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000}};
	setitimer(ITIMER_REAL, &it, NULL);
}

static void test_dup(void) {
	int fd = open("f", O_RDWR | O_CREAT, 0644);
	EXPECT_OK(fd);
	int d;
	EXPECT_OK(d = dup(fd));
	EXPECT_EQ(d, fd + 1);
	EXPECT_ERR(dup(9999), EBADF);
	EXPECT_ERR(dup(-1), EBADF);
	EXPECT_EQ(dup2(fd, fd), fd);
	EXPECT_ERR(dup2(9999, 9999), EBADF);
	EXPECT_EQ(dup2(fd, 50), 50);
	EXPECT_EQ(fcntl(50, F_GETFD), 0);
	EXPECT_ERR(dup2(fd, -1), EBADF);
	EXPECT_ERR(dup2(fd, 1 << 30), EBADF);
	EXPECT_ERR(dup3(fd, fd, 0), EINVAL);
	EXPECT_ERR(dup3(fd, 51, 0x1), EINVAL);
	EXPECT_EQ(dup3(fd, 51, O_CLOEXEC), 51);
	EXPECT_EQ(fcntl(51, F_GETFD), FD_CLOEXEC);
	/* The offset is shared between duplicates. */
	EXPECT_EQ(write(fd, "abc", 3), 3);
	EXPECT_EQ(lseek(50, 0, SEEK_CUR), 3);

	EXPECT_EQ(fcntl(fd, F_DUPFD, 100), 100);
	EXPECT_EQ(fcntl(fd, F_DUPFD, 100), 101);
	EXPECT_EQ(fcntl(fd, F_GETFD), 0);
	EXPECT_EQ(fcntl(fd, F_DUPFD_CLOEXEC, 0), d + 1);
	EXPECT_EQ(fcntl(d + 1, F_GETFD), FD_CLOEXEC);
	EXPECT_ERR(fcntl(fd, F_DUPFD, 1 << 30), EINVAL);
	EXPECT_ERR(fcntl(fd, F_DUPFD, -1), EINVAL);
	EXPECT_OK(fcntl(fd, F_SETFD, FD_CLOEXEC));
	EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
	EXPECT_OK(fcntl(fd, F_SETFD, 0));
	EXPECT_EQ(fcntl(fd, F_GETFD), 0);

	EXPECT_EQ(fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND | O_NONBLOCK), O_RDWR);
	EXPECT_OK(fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK | O_RDONLY));
	EXPECT_EQ(fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND | O_NONBLOCK), O_RDWR | O_APPEND | O_NONBLOCK);
	/* Status flags belong to the open file: the duplicate sees them. */
	EXPECT_EQ(fcntl(50, F_GETFL) & O_APPEND, O_APPEND);
	EXPECT_OK(fcntl(fd, F_SETFL, 0));
	EXPECT_ERR(fcntl(fd, 99999), EINVAL);
	EXPECT_ERR(fcntl(9999, F_GETFD), EBADF);
	EXPECT_OK(fcntl(fd, F_SETOWN, getpid()));
	EXPECT_EQ(fcntl(fd, F_GETOWN), getpid());

	/* close_range */
	EXPECT_OK(syscall(SYS_close_range, 100, 101, 0));
	EXPECT_ERR(fcntl(100, F_GETFD), EBADF);
	EXPECT_ERR(fcntl(101, F_GETFD), EBADF);
	EXPECT_OK(syscall(SYS_close_range, 50, 50, 4 /* CLOSE_RANGE_CLOEXEC */));
	EXPECT_EQ(fcntl(50, F_GETFD), FD_CLOEXEC);
	EXPECT_ERR(syscall(SYS_close_range, 10, 5, 0), EINVAL);
	EXPECT_ERR(syscall(SYS_close_range, 5, 10, 0x100), EINVAL);
	close(50);
	close(51);
	close(d + 1);
	close(d);
	close(fd);
}

static void test_rlimit(void) {
	struct rlimit old, rl;
	getrlimit(RLIMIT_NOFILE, &old);
	rl = old;
	rl.rlim_cur = 16;
	EXPECT_OK(setrlimit(RLIMIT_NOFILE, &rl));
	int fds[32], n = 0, fd;
	while (n < 32 && (fd = open("f", O_RDONLY)) >= 0)
		fds[n++] = fd;
	EXPECT_EQ(errno, EMFILE);
	EXPECT_EQ(fds[n - 1], 15);
	EXPECT_ERR(dup(0), EMFILE);
	EXPECT_ERR(fcntl(0, F_DUPFD, 0), EMFILE);
	EXPECT_ERR(fcntl(0, F_DUPFD, 16), EINVAL);
	EXPECT_ERR(dup2(0, 16), EBADF);
	int p[2];
	close(fds[--n]);
	EXPECT_ERR(pipe(p), EMFILE);
	EXPECT_OK(fd = dup(0));
	close(fd);
	while (n > 0)
		close(fds[--n]);
	EXPECT_OK(setrlimit(RLIMIT_NOFILE, &old));
}

static int lockit(int fd, int cmd, short type, off_t start, off_t len) {
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
	return fcntl(fd, cmd, &fl);
}

/* child runs fn in a new process and returns its exit status. */
static int child(int (*fn)(void *), void *arg) {
	pid_t pid = fork();
	if (pid == 0) _exit(fn(arg));
	int status = -1;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

static int try_lock(void *arg) {
	int fd = open("locked", O_RDWR);
	int r = lockit(fd, F_SETLK, F_WRLCK, 0, 10);
	if (r == 0) return 0;
	if (errno != EAGAIN) return 2;
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1};
	if (fcntl(fd, F_GETLK, &fl) != 0) return 3;
	if (fl.l_type != F_WRLCK || fl.l_pid != *(pid_t *)arg || fl.l_start != 0 || fl.l_len != 10) return 4;
	/* A range nobody holds is free. */
	if (lockit(fd, F_SETLK, F_WRLCK, 20, 5) != 0) return 5;
	return 1;
}

static int wait_lock_interrupted(void *arg) {
	(void)arg;
	int fd = open("locked", O_RDWR);
	arm_timer(100);
	int r = lockit(fd, F_SETLKW, F_WRLCK, 0, 10);
	return r == -1 && errno == EINTR ? 0 : 1;
}

static int wait_lock(void *arg) {
	int *p = arg;
	int fd = open("locked", O_RDWR);
	write(p[1], "w", 1); /* about to wait */
	if (lockit(fd, F_SETLKW, F_WRLCK, 0, 10) != 0) return 1;
	return 0;
}

static void test_record_locks(void) {
	pid_t me = getpid();
	int fd = open("locked", O_RDWR | O_CREAT, 0644);
	EXPECT_OK(lockit(fd, F_SETLK, F_WRLCK, 0, 10));
	EXPECT_EQ(child(try_lock, &me), 1);
	EXPECT_EQ(child(wait_lock_interrupted, NULL), 0);
	/* A lock of our own never conflicts. */
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
	EXPECT_OK(fcntl(fd, F_GETLK, &fl));
	EXPECT_EQ(fl.l_type, F_UNLCK);

	/* Closing any descriptor of the file drops the process's locks. */
	int other = open("locked", O_RDONLY);
	close(other);
	EXPECT_EQ(child(try_lock, &me), 0);

	/* F_SETLKW waits for the holder to unlock. */
	EXPECT_OK(lockit(fd, F_SETLK, F_WRLCK, 0, 10));
	int p[2];
	pipe(p);
	pid_t pid = fork();
	if (pid == 0) _exit(wait_lock(p));
	char c;
	EXPECT_EQ(read(p[0], &c, 1), 1);
	usleep(20000);
	EXPECT_OK(lockit(fd, F_SETLK, F_UNLCK, 0, 0));
	int status;
	EXPECT_EQ(waitpid(pid, &status, 0), pid);
	EXPECT_EQ(status, 0);
	close(p[0]);
	close(p[1]);

	/* Errors. */
	int ro = open("locked", O_RDONLY);
	EXPECT_ERR(lockit(ro, F_SETLK, F_WRLCK, 0, 1), EBADF);
	EXPECT_OK(lockit(ro, F_SETLK, F_RDLCK, 0, 1));
	EXPECT_ERR(lockit(fd, F_SETLK, 99, 0, 1), EINVAL);
	struct flock bad = {.l_type = F_RDLCK, .l_whence = 7};
	EXPECT_ERR(fcntl(fd, F_SETLK, &bad), EINVAL);
	EXPECT_ERR(fcntl(fd, F_SETLK, BAD_PTR), EFAULT);
	EXPECT_ERR(lockit(fd, F_SETLK, F_RDLCK, -5, 1), EINVAL);
	close(ro);

	/* OFD locks belong to the open file, not the process. */
	int a = open("ofd", O_RDWR | O_CREAT, 0644), b = open("ofd", O_RDWR);
	EXPECT_OK(lockit(a, F_OFD_SETLK, F_WRLCK, 0, 100));
	EXPECT_ERR(lockit(b, F_OFD_SETLK, F_WRLCK, 50, 10), EAGAIN);
	struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	EXPECT_OK(fcntl(b, F_OFD_GETLK, &q));
	EXPECT_EQ(q.l_type, F_WRLCK);
	EXPECT_EQ(q.l_pid, -1);
	struct flock withpid = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_pid = 1};
	EXPECT_ERR(fcntl(b, F_OFD_SETLK, &withpid), EINVAL);
	close(a);
	EXPECT_OK(lockit(b, F_OFD_SETLK, F_WRLCK, 50, 10));
	close(b);
	close(fd);
}

static int flock_nb(void *arg) {
	(void)arg;
	int fd = open("flocked", O_RDONLY);
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) return 0;
	return errno == EWOULDBLOCK ? 1 : 2;
}

static int flock_interrupted(void *arg) {
	(void)arg;
	int fd = open("flocked", O_RDONLY);
	arm_timer(100);
	return flock(fd, LOCK_EX) == -1 && errno == EINTR ? 0 : 1;
}

static void test_flock(void) {
	int a = open("flocked", O_RDWR | O_CREAT, 0644), b = open("flocked", O_RDONLY);
	EXPECT_OK(flock(a, LOCK_EX));
	EXPECT_ERR(flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
	EXPECT_ERR(flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
	EXPECT_EQ(child(flock_nb, NULL), 1);
	EXPECT_EQ(child(flock_interrupted, NULL), 0);
	EXPECT_OK(flock(a, LOCK_SH));
	EXPECT_OK(flock(b, LOCK_SH | LOCK_NB));
	EXPECT_OK(flock(a, LOCK_UN));
	EXPECT_OK(flock(b, LOCK_UN));
	EXPECT_EQ(child(flock_nb, NULL), 0);
	EXPECT_ERR(flock(a, 0), EINVAL);
	EXPECT_ERR(flock(a, LOCK_SH | LOCK_EX), EINVAL);
	EXPECT_ERR(flock(9999, LOCK_SH), EBADF);
	/* A blocking flock waits for the holder. */
	EXPECT_OK(flock(a, LOCK_EX));
	int p[2];
	pipe(p);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("flocked", O_RDONLY);
		write(p[1], "w", 1);
		_exit(flock(fd, LOCK_EX) == 0 ? 0 : 1);
	}
	char c;
	EXPECT_EQ(read(p[0], &c, 1), 1);
	usleep(20000);
	EXPECT_OK(flock(a, LOCK_UN));
	int status;
	EXPECT_EQ(waitpid(pid, &status, 0), pid);
	EXPECT_EQ(status, 0);
	/* A flock lock goes with the last descriptor of its open file. */
	EXPECT_OK(flock(a, LOCK_EX));
	int dupa = dup(a);
	close(a);
	EXPECT_EQ(child(flock_nb, NULL), 1);
	close(dupa);
	EXPECT_EQ(child(flock_nb, NULL), 0);
	close(b);
	close(p[0]);
	close(p[1]);
}

static void test_pipe_size(void) {
	int p[2];
	EXPECT_OK(pipe(p));
	EXPECT_EQ(fcntl(p[0], F_GETPIPE_SZ), 65536);
	EXPECT_EQ(fcntl(p[1], F_SETPIPE_SZ, 4096), 4096);
	EXPECT_EQ(fcntl(p[0], F_GETPIPE_SZ), 4096);
	EXPECT_EQ(fcntl(p[1], F_SETPIPE_SZ, 5000), 8192);
	int fd = open("f", O_RDONLY);
	EXPECT_ERR(fcntl(fd, F_GETPIPE_SZ), EBADF);
	close(fd);
	close(p[0]);
	close(p[1]);
}

int main(int argc, char **argv) {
	enter(argc, argv);
	test_dup();
	test_rlimit();
	test_record_locks();
	test_flock();
	test_pipe_size();
	return done();
}
