/* Pipes and FIFOs: pipe2 flags, end of file, EPIPE and SIGPIPE, capacity,
 * FIFO open rules (waiting, ENXIO, interrupted), interrupted reads,
 * transfers between processes, splice, sendfile, copy_file_range. */
#include "check.h"
#include <sys/sendfile.h>
#include <sys/ioctl.h>
#include <sys/time.h>

static volatile int got_signal;
static void on_signal(int sig) { got_signal = sig; }

static void handle(int sig, int flags) {
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = flags};
	sigaction(sig, &sa, NULL);
}

static void arm_timer(int ms) {
	struct itimerval it = {.it_value = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000}};
	setitimer(ITIMER_REAL, &it, NULL);
}

static void test_pipe(void) {
	int p[2];
	char buf[100];
	EXPECT_ERR(pipe2(p, 0x1), EINVAL);
	EXPECT_ERR(syscall(SYS_pipe2, BAD_PTR, 0), EFAULT);
	EXPECT_ERR(syscall(SYS_pipe, BAD_PTR), EFAULT);
	EXPECT_OK(pipe2(p, O_CLOEXEC | O_NONBLOCK));
	EXPECT_EQ(fcntl(p[0], F_GETFD), FD_CLOEXEC);
	EXPECT_EQ(fcntl(p[1], F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_WRONLY | O_NONBLOCK);
	EXPECT_EQ(fcntl(p[0], F_GETFL) & O_ACCMODE, O_RDONLY);
	EXPECT_ERR(read(p[0], buf, 1), EAGAIN);
	struct stat st;
	EXPECT_OK(fstat(p[0], &st));
	EXPECT_TRUE(S_ISFIFO(st.st_mode));
	EXPECT_ERR(lseek(p[0], 0, SEEK_SET), ESPIPE);
	EXPECT_ERR(pread(p[0], buf, 1, 0), ESPIPE);
	EXPECT_ERR(write(p[0], "x", 1), EBADF);
	EXPECT_ERR(read(p[1], buf, 1), EBADF);
	/* Fill it: 64 KiB, then EAGAIN. */
	static char page[4096];
	memset(page, 'x', sizeof page);
	long total = 0, n;
	while ((n = write(p[1], page, sizeof page)) > 0)
		total += n;
	EXPECT_EQ(errno, EAGAIN);
	EXPECT_EQ(total, 65536);
	int avail = 0;
	EXPECT_OK(ioctl(p[0], FIONREAD, &avail));
	EXPECT_EQ(avail, 65536);
	while ((n = read(p[0], buf, sizeof buf)) > 0)
		total -= n;
	EXPECT_EQ(total, 0);
	/* No writer: end of file. */
	close(p[1]);
	EXPECT_EQ(read(p[0], buf, sizeof buf), 0);
	close(p[0]);

	/* No reader: EPIPE, and SIGPIPE. */
	EXPECT_OK(pipe(p));
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	EXPECT_ERR(write(p[1], "x", 1), EPIPE);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		write(p[1], "x", 1);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE);
	handle(SIGPIPE, 0);
	got_signal = 0;
	EXPECT_ERR(write(p[1], "x", 1), EPIPE);
	EXPECT_EQ(got_signal, SIGPIPE);
	signal(SIGPIPE, SIG_DFL);
	close(p[1]);
}

static void test_transfer(void) {
	/* 4 MiB from a child through a pipe, checked byte by byte. */
	int p[2];
	EXPECT_OK(pipe(p));
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		char b[3000];
		for (int i = 0; i < 4 << 20;) {
			int n = sizeof b;
			if (n > (4 << 20) - i) n = (4 << 20) - i;
			for (int j = 0; j < n; j++) b[j] = (char)((i + j) * 7);
			if (write(p[1], b, n) != n) _exit(1);
			i += n;
		}
		_exit(0);
	}
	close(p[1]);
	char b[10000];
	long got = 0, bad = 0, n;
	while ((n = read(p[0], b, sizeof b)) > 0) {
		for (long j = 0; j < n; j++)
			if (b[j] != (char)((got + j) * 7)) bad++;
		got += n;
	}
	EXPECT_EQ(got, 4 << 20);
	EXPECT_EQ(bad, 0);
	int status;
	waitpid(pid, &status, 0);
	EXPECT_EQ(status, 0);
	close(p[0]);

	/* Writes of at most PIPE_BUF bytes from several writers never
	 * interleave. */
	EXPECT_OK(pipe(p));
	for (int w = 0; w < 3; w++) {
		if (fork() == 0) {
			char rec[512];
			memset(rec, 'a' + w, sizeof rec);
			for (int i = 0; i < 200; i++)
				if (write(p[1], rec, sizeof rec) != sizeof rec) _exit(1);
			_exit(0);
		}
	}
	close(p[1]);
	char rec[512];
	int recs = 0, torn = 0;
	for (;;) {
		long have = 0;
		while (have < (long)sizeof rec && (n = read(p[0], rec + have, sizeof rec - have)) > 0)
			have += n;
		if (have == 0) break;
		for (int j = 1; j < (int)sizeof rec; j++)
			if (rec[j] != rec[0]) { torn++; break; }
		recs++;
	}
	EXPECT_EQ(recs, 600);
	EXPECT_EQ(torn, 0);
	while (wait(NULL) > 0) {}
	close(p[0]);
}

static void test_interrupt(void) {
	int p[2];
	char c;
	EXPECT_OK(pipe(p));
	/* Without SA_RESTART a blocked read fails with EINTR. */
	handle(SIGALRM, 0);
	got_signal = 0;
	arm_timer(50);
	EXPECT_ERR(read(p[0], &c, 1), EINTR);
	EXPECT_EQ(got_signal, SIGALRM);
	/* With SA_RESTART it goes on and gets the data. */
	handle(SIGALRM, SA_RESTART);
	pid_t pid = fork();
	if (pid == 0) {
		usleep(300000);
		write(p[1], "z", 1);
		_exit(0);
	}
	got_signal = 0;
	arm_timer(50);
	EXPECT_EQ(read(p[0], &c, 1), 1);
	EXPECT_EQ(c, 'z');
	EXPECT_EQ(got_signal, SIGALRM);
	waitpid(pid, NULL, 0);
	close(p[0]);
	close(p[1]);
}

static void test_fifo(void) {
	char buf[16];
	EXPECT_OK(mkfifo("fifo", 0644));
	EXPECT_ERR(open("fifo", O_WRONLY | O_NONBLOCK), ENXIO);
	int r;
	EXPECT_OK(r = open("fifo", O_RDONLY | O_NONBLOCK));
	int w;
	EXPECT_OK(w = open("fifo", O_WRONLY | O_NONBLOCK));
	EXPECT_EQ(write(w, "hey", 3), 3);
	EXPECT_EQ(read(r, buf, sizeof buf), 3);
	close(w);
	EXPECT_EQ(read(r, buf, sizeof buf), 0);
	close(r);
	/* O_RDWR never waits. */
	int rw;
	EXPECT_OK(rw = open("fifo", O_RDWR));
	EXPECT_EQ(write(rw, "ab", 2), 2);
	EXPECT_EQ(read(rw, buf, sizeof buf), 2);
	close(rw);
	/* A blocking open waits for the other end. */
	pid_t pid = fork();
	if (pid == 0) {
		usleep(50000);
		int fd = open("fifo", O_WRONLY);
		if (fd < 0) _exit(1);
		write(fd, "from child", 10);
		_exit(0);
	}
	EXPECT_OK(r = open("fifo", O_RDONLY));
	long n, total = 0;
	while ((n = read(r, buf, sizeof buf)) > 0)
		total += n;
	EXPECT_EQ(total, 10);
	close(r);
	int status;
	waitpid(pid, &status, 0);
	EXPECT_EQ(status, 0);
	/* A signal ends a waiting open. */
	handle(SIGALRM, 0);
	arm_timer(50);
	EXPECT_ERR(open("fifo", O_WRONLY), EINTR);
	arm_timer(50);
	EXPECT_ERR(open("fifo", O_RDONLY), EINTR);
}

static void test_splice(void) {
	int p[2];
	char buf[64] = {0};
	EXPECT_OK(pipe(p));
	int f = open("src", O_RDWR | O_CREAT | O_TRUNC, 0644);
	EXPECT_EQ(write(f, "0123456789", 10), 10);
	loff_t off = 2;
	EXPECT_EQ(splice(f, &off, p[1], NULL, 5, 0), 5);
	EXPECT_EQ(off, 7);
	EXPECT_EQ(read(p[0], buf, sizeof buf), 5);
	EXPECT_STR(buf, "23456");
	EXPECT_EQ(write(p[1], "spliced", 7), 7);
	int g = open("dst", O_RDWR | O_CREAT | O_TRUNC, 0644);
	EXPECT_EQ(splice(p[0], NULL, g, NULL, 100, 0), 7);
	EXPECT_EQ(lseek(g, 0, SEEK_CUR), 7);
	EXPECT_ERR(splice(f, NULL, g, NULL, 5, 0), EINVAL);
	EXPECT_ERR(splice(p[0], &off, g, NULL, 5, 0), ESPIPE);
	EXPECT_ERR(splice(f, NULL, p[1], NULL, 5, 0x100), EINVAL);
	EXPECT_ERR(splice(9999, NULL, p[1], NULL, 5, 0), EBADF);
	EXPECT_ERR(tee(f, p[1], 5, 0), EINVAL);
	/* tee copies between pipes without consuming. */
	int q[2];
	EXPECT_OK(pipe(q));
	EXPECT_EQ(write(p[1], "teedata", 7), 7);
	EXPECT_EQ(tee(p[0], q[1], 3, 0), 3);
	memset(buf, 0, sizeof buf);
	EXPECT_EQ(read(q[0], buf, sizeof buf), 3);
	EXPECT_STR(buf, "tee");
	EXPECT_ERR(tee(p[0], p[1], 3, 0), EINVAL);
	EXPECT_ERR(tee(q[0], p[1], 3, SPLICE_F_NONBLOCK), EAGAIN);
	memset(buf, 0, sizeof buf);
	EXPECT_EQ(read(p[0], buf, sizeof buf), 7);
	EXPECT_STR(buf, "teedata");
	close(q[1]);
	EXPECT_EQ(tee(q[0], p[1], 3, 0), 0);
	close(q[0]);

	/* sendfile with and without an offset. */
	off = 3;
	EXPECT_EQ(sendfile(p[1], f, &off, 4), 4);
	EXPECT_EQ(off, 7);
	memset(buf, 0, sizeof buf);
	EXPECT_EQ(read(p[0], buf, sizeof buf), 4);
	EXPECT_STR(buf, "3456");
	lseek(f, 8, SEEK_SET);
	EXPECT_EQ(sendfile(p[1], f, NULL, 100), 2);
	EXPECT_EQ(lseek(f, 0, SEEK_CUR), 10);
	memset(buf, 0, sizeof buf);
	EXPECT_EQ(read(p[0], buf, sizeof buf), 2);
	EXPECT_STR(buf, "89");
	EXPECT_ERR(sendfile(p[1], 9999, NULL, 1), EBADF);
	int ro = open("src", O_RDONLY);
	EXPECT_ERR(sendfile(ro, f, NULL, 1), EBADF);
	close(ro);

	/* copy_file_range */
	loff_t in = 0, out = 0;
	int h = open("copy", O_RDWR | O_CREAT | O_TRUNC, 0644);
	EXPECT_EQ(copy_file_range(f, &in, h, &out, 10, 0), 10);
	EXPECT_EQ(in, 10);
	EXPECT_EQ(out, 10);
	EXPECT_EQ(pread(h, buf, 10, 0), 10);
	EXPECT_TRUE(memcmp(buf, "0123456789", 10) == 0);
	EXPECT_ERR(copy_file_range(f, &in, h, &out, 10, 1), EINVAL);
	EXPECT_ERR(copy_file_range(f, NULL, p[1], NULL, 10, 0), EINVAL);
	in = 0;
	out = 5;
	EXPECT_ERR(copy_file_range(f, &in, f, &out, 8, 0), EINVAL);
	close(h);
	close(g);
	close(f);
	close(p[0]);
	close(p[1]);
}

int main(int argc, char **argv) {
	enter(argc, argv);
	test_pipe();
	test_transfer();
	test_interrupt();
	test_fifo();
	test_splice();
	return done();
}
