/* Readiness: poll, ppoll, select, pselect6, epoll (level, edge, one-shot,
 * exclusive, nested, closed files), eventfd, and the signal masks of the
 * p* calls. */
#include "check.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>

static volatile int got_signal;
static void on_signal(int sig) { got_signal = sig; }

static void handle(int sig) {
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(sig, &sa, NULL);
}

static void arm_timer(int ms) {
	struct itimerval it = {.it_value = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000}};
	setitimer(ITIMER_REAL, &it, NULL);
}

/* later writes one byte to fd from a child after ms milliseconds. */
static pid_t later(int fd, int ms) {
	pid_t pid = fork();
	if (pid == 0) {
		usleep(ms * 1000);
		write(fd, "L", 1);
		_exit(0);
	}
	return pid;
}

static void test_poll(void) {
	int p[2];
	char c;
	EXPECT_OK(pipe(p));
	struct pollfd fds[4] = {
		{.fd = p[0], .events = POLLIN},
		{.fd = p[1], .events = POLLOUT},
		{.fd = -1, .events = POLLIN, .revents = 77},
		{.fd = 9999, .events = POLLIN},
	};
	EXPECT_EQ(poll(fds, 4, 0), 2);
	EXPECT_EQ(fds[0].revents, 0);
	EXPECT_EQ(fds[1].revents, POLLOUT);
	EXPECT_EQ(fds[2].revents, 0);
	EXPECT_EQ(fds[3].revents, POLLNVAL);
	EXPECT_EQ(poll(fds, 1, 10), 0);
	EXPECT_EQ(write(p[1], "x", 1), 1);
	EXPECT_EQ(poll(fds, 1, -1), 1);
	EXPECT_EQ(fds[0].revents, POLLIN);
	read(p[0], &c, 1);
	/* A blocked poll wakes when data arrives. */
	pid_t pid = later(p[1], 50);
	EXPECT_EQ(poll(fds, 1, -1), 1);
	EXPECT_EQ(fds[0].revents, POLLIN);
	waitpid(pid, NULL, 0);
	read(p[0], &c, 1);
	/* Hang-up once the writer is gone. */
	close(p[1]);
	EXPECT_EQ(poll(fds, 1, 0), 1);
	EXPECT_EQ(fds[0].revents, POLLHUP);
	close(p[0]);
	EXPECT_ERR(syscall(SYS_poll, BAD_PTR, 1, 0), EFAULT);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	EXPECT_ERR(poll(fds, rl.rlim_cur + 1, 0), EINVAL);

	/* A signal ends a poll with EINTR. */
	EXPECT_OK(pipe(p));
	handle(SIGALRM);
	got_signal = 0;
	arm_timer(50);
	EXPECT_ERR(poll(fds, 1, -1), EINTR);
	EXPECT_EQ(got_signal, SIGALRM);

	/* ppoll: timeout checks and the temporary signal mask. */
	struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000};
	fds[0] = (struct pollfd){.fd = p[0], .events = POLLIN};
	EXPECT_EQ(ppoll(fds, 1, &ts, NULL), 0);
	ts.tv_nsec = 2000000000;
	EXPECT_ERR(ppoll(fds, 1, &ts, NULL), EINVAL);
	sigset_t block, wait_mask, now;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);
	handle(SIGUSR1);
	EXPECT_ERR(syscall(SYS_ppoll, fds, 1, NULL, &block, 4), EINVAL);
	/* SIGUSR1 stays blocked outside ppoll and gets in during it. */
	kill(getpid(), SIGUSR1);
	EXPECT_EQ(got_signal, SIGALRM);
	sigemptyset(&wait_mask);
	got_signal = 0;
	EXPECT_ERR(ppoll(fds, 1, NULL, &wait_mask), EINTR);
	EXPECT_EQ(got_signal, SIGUSR1);
	sigprocmask(SIG_BLOCK, NULL, &now);
	EXPECT_TRUE(sigismember(&now, SIGUSR1));
	/* When ppoll returns events, the old mask is back before any
	 * pending signal could be taken. */
	write(p[1], "y", 1);
	kill(getpid(), SIGUSR1);
	got_signal = 0;
	sigset_t full;
	sigfillset(&full);
	EXPECT_EQ(ppoll(fds, 1, NULL, &full), 1);
	EXPECT_EQ(got_signal, 0);
	sigpending(&now);
	EXPECT_TRUE(sigismember(&now, SIGUSR1));
	read(p[0], &c, 1);
	EXPECT_ERR(ppoll(fds, 1, NULL, &wait_mask), EINTR);
	EXPECT_EQ(got_signal, SIGUSR1);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	close(p[0]);
	close(p[1]);
}

static void test_select(void) {
	int p[2];
	char c;
	EXPECT_OK(pipe(p));
	fd_set r, w;
	FD_ZERO(&r);
	FD_ZERO(&w);
	FD_SET(p[0], &r);
	FD_SET(p[1], &w);
	struct timeval tv = {0, 0};
	EXPECT_EQ(select(p[1] + 1, &r, &w, NULL, &tv), 1);
	EXPECT_TRUE(!FD_ISSET(p[0], &r));
	EXPECT_TRUE(FD_ISSET(p[1], &w));
	FD_SET(p[0], &r);
	pid_t pid = later(p[1], 50);
	tv.tv_sec = 10;
	EXPECT_EQ(select(p[0] + 1, &r, NULL, NULL, &tv), 1);
	EXPECT_TRUE(FD_ISSET(p[0], &r));
	EXPECT_TRUE(tv.tv_sec < 10);
	waitpid(pid, NULL, 0);
	read(p[0], &c, 1);
	tv = (struct timeval){0, 1000};
	FD_SET(p[0], &r);
	EXPECT_EQ(select(p[0] + 1, &r, NULL, NULL, &tv), 0);
	EXPECT_TRUE(!FD_ISSET(p[0], &r));
	fd_set bad;
	FD_ZERO(&bad);
	FD_SET(200, &bad);
	EXPECT_ERR(select(201, &bad, NULL, NULL, &tv), EBADF);
	EXPECT_ERR(select(-1, NULL, NULL, NULL, &tv), EINVAL);
	tv = (struct timeval){-1, 0};
	EXPECT_ERR(select(0, NULL, NULL, NULL, &tv), EINVAL);
	tv = (struct timeval){0, -1};
	EXPECT_ERR(select(0, NULL, NULL, NULL, &tv), EINVAL);
	/* Microseconds beyond a second are carried, not refused. */
	tv = (struct timeval){0, 1000001};
	FD_ZERO(&w);
	FD_SET(p[1], &w);
	EXPECT_EQ(select(p[1] + 1, NULL, &w, NULL, &tv), 1);
	EXPECT_ERR(select(p[0] + 1, BAD_PTR, NULL, NULL, NULL), EFAULT);
	/* A sleep with no descriptors. */
	tv = (struct timeval){0, 20000};
	EXPECT_EQ(select(0, NULL, NULL, NULL, &tv), 0);
	/* Hang-up counts as readable. */
	close(p[1]);
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	EXPECT_EQ(select(p[0] + 1, &r, NULL, NULL, NULL), 1);

	/* pselect with a mask that lets SIGUSR1 in. */
	sigset_t block, open_mask, now;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);
	handle(SIGUSR1);
	kill(getpid(), SIGUSR1);
	int q[2];
	pipe(q);
	FD_ZERO(&r);
	FD_SET(q[0], &r);
	sigemptyset(&open_mask);
	got_signal = 0;
	EXPECT_ERR(pselect(q[0] + 1, &r, NULL, NULL, NULL, &open_mask), EINTR);
	EXPECT_EQ(got_signal, SIGUSR1);
	sigprocmask(SIG_BLOCK, NULL, &now);
	EXPECT_TRUE(sigismember(&now, SIGUSR1));
	struct timespec ts = {0, 1000};
	FD_SET(q[0], &r);
	EXPECT_EQ(pselect(q[0] + 1, &r, NULL, NULL, &ts, &open_mask), 0);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	close(q[0]);
	close(q[1]);
	close(p[0]);
}

static int ep_wait(int ep, int ms, uint32_t *events, uint64_t *data) {
	struct epoll_event ev[8];
	int n = epoll_wait(ep, ev, 8, ms);
	if (n > 0) {
		if (events) *events = ev[0].events;
		if (data) *data = ev[0].data.u64;
	}
	return n;
}

static void test_epoll(void) {
	int p[2];
	char c;
	EXPECT_ERR(epoll_create1(0x1), EINVAL);
	EXPECT_ERR(epoll_create(0), EINVAL);
	int ep;
	EXPECT_OK(ep = epoll_create1(EPOLL_CLOEXEC));
	EXPECT_EQ(fcntl(ep, F_GETFD), FD_CLOEXEC);
	EXPECT_OK(pipe(p));
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42};
	EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
	EXPECT_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), EEXIST);
	EXPECT_ERR(epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev), ENOENT);
	EXPECT_ERR(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL), ENOENT);
	EXPECT_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev), EINVAL);
	EXPECT_ERR(epoll_ctl(p[0], EPOLL_CTL_ADD, p[1], &ev), EINVAL);
	EXPECT_ERR(epoll_ctl(ep, 99, p[1], &ev), EINVAL);
	EXPECT_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, 9999, &ev), EBADF);
	EXPECT_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], BAD_PTR), EFAULT);
	int reg = open("regular", O_RDWR | O_CREAT, 0644);
	EXPECT_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, reg, &ev), EPERM);
	close(reg);
	struct epoll_event out[4];
	EXPECT_ERR(epoll_wait(ep, out, 0, 0), EINVAL);
	EXPECT_ERR(epoll_wait(p[0], out, 4, 0), EINVAL);
	EXPECT_ERR(epoll_wait(9999, out, 4, 0), EBADF);

	/* Level-triggered: reported while data remains. */
	uint32_t events;
	uint64_t data;
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 0);
	write(p[1], "a", 1);
	EXPECT_EQ(ep_wait(ep, 0, &events, &data), 1);
	EXPECT_EQ(events, EPOLLIN);
	EXPECT_EQ(data, 42);
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 1);
	read(p[0], &c, 1);
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 0);
	/* A blocked wait wakes up. */
	pid_t pid = later(p[1], 50);
	EXPECT_EQ(ep_wait(ep, -1, &events, NULL), 1);
	waitpid(pid, NULL, 0);
	read(p[0], &c, 1);

	/* Edge-triggered: once per change. */
	ev.events = EPOLLIN | EPOLLET;
	EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
	write(p[1], "b", 1);
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 1);
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 0);
	write(p[1], "c", 1);
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 1);
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 0);
	read(p[0], &c, 1);
	read(p[0], &c, 1);

	/* One-shot: disabled after one event until re-armed by MOD. */
	ev.events = EPOLLIN | EPOLLONESHOT;
	EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
	write(p[1], "d", 1);
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 1);
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 0);
	write(p[1], "e", 1);
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 0);
	EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 1);
	read(p[0], &c, 1);
	read(p[0], &c, 1);
	EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));

	/* The write end: EPOLLOUT, then EPOLLERR when the reader goes. */
	ev.events = EPOLLOUT;
	ev.data.u64 = 7;
	EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev));
	EXPECT_EQ(ep_wait(ep, 0, &events, &data), 1);
	EXPECT_EQ(events, EPOLLOUT);
	EXPECT_EQ(data, 7);
	close(p[0]);
	EXPECT_EQ(ep_wait(ep, 0, &events, NULL), 1);
	EXPECT_EQ(events, EPOLLOUT | EPOLLERR);
	EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL));
	close(p[1]);

	/* Hang-up of the read end, reported without asking. */
	EXPECT_OK(pipe(p));
	ev.events = EPOLLIN;
	EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
	close(p[1]);
	EXPECT_EQ(ep_wait(ep, 0, &events, NULL), 1);
	EXPECT_EQ(events, EPOLLHUP);
	/* Closing the only descriptor of a file removes its interest. */
	close(p[0]);
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 0);

	/* A duplicate keeps the file open: the interest stays. */
	EXPECT_OK(pipe(p));
	EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
	int d = dup(p[0]);
	close(p[0]);
	write(p[1], "f", 1);
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 1);
	close(d);
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 0);
	close(p[1]);

	/* EPOLLEXCLUSIVE is accepted on ADD only. */
	EXPECT_OK(pipe(p));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
	EXPECT_ERR(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev), EINVAL);
	write(p[1], "g", 1);
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 1);
	EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT;
	EXPECT_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), EINVAL);

	/* Nested epolls, and no loops. */
	int outer = epoll_create1(0);
	ev.events = EPOLLIN;
	EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
	EXPECT_OK(epoll_ctl(outer, EPOLL_CTL_ADD, ep, &ev));
	EXPECT_EQ(ep_wait(outer, 0, &events, NULL), 1);
	EXPECT_EQ(events, EPOLLIN);
	EXPECT_ERR(epoll_ctl(ep, EPOLL_CTL_ADD, outer, &ev), ELOOP);
	struct pollfd pf = {.fd = ep, .events = POLLIN};
	EXPECT_EQ(poll(&pf, 1, 0), 1);
	read(p[0], &c, 1);
	EXPECT_EQ(ep_wait(outer, 0, NULL, NULL), 0);
	EXPECT_EQ(poll(&pf, 1, 0), 0);
	close(outer);

	/* epoll_pwait: the mask lets a blocked signal interrupt. */
	sigset_t block, none, now;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, NULL);
	handle(SIGUSR2);
	kill(getpid(), SIGUSR2);
	sigemptyset(&none);
	got_signal = 0;
	EXPECT_ERR(epoll_pwait(ep, out, 4, -1, &none), EINTR);
	EXPECT_EQ(got_signal, SIGUSR2);
	sigprocmask(SIG_BLOCK, NULL, &now);
	EXPECT_TRUE(sigismember(&now, SIGUSR2));
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	/* A plain signal interrupts epoll_wait too. */
	handle(SIGALRM);
	arm_timer(50);
	EXPECT_ERR(epoll_wait(ep, out, 4, -1), EINTR);
	/* epoll_pwait2 takes a timespec. */
	struct timespec ts = {0, 1000};
	EXPECT_EQ(syscall(SYS_epoll_pwait2, ep, out, 4, &ts, NULL, 8), 0);
	ts.tv_nsec = -1;
	EXPECT_ERR(syscall(SYS_epoll_pwait2, ep, out, 4, &ts, NULL, 8), EINVAL);
	close(p[0]);
	close(p[1]);
	close(ep);
}

static void test_eventfd(void) {
	uint64_t v;
	int e;
	EXPECT_ERR(eventfd(0, 0x1000), EINVAL);
	EXPECT_OK(e = eventfd(3, EFD_NONBLOCK | EFD_CLOEXEC));
	EXPECT_EQ(fcntl(e, F_GETFD), FD_CLOEXEC);
	EXPECT_EQ(read(e, &v, 8), 8);
	EXPECT_EQ(v, 3);
	EXPECT_ERR(read(e, &v, 8), EAGAIN);
	EXPECT_ERR(read(e, &v, 4), EINVAL);
	v = 5;
	EXPECT_EQ(write(e, &v, 8), 8);
	v = 6;
	EXPECT_EQ(write(e, &v, 8), 8);
	EXPECT_EQ(read(e, &v, 8), 8);
	EXPECT_EQ(v, 11);
	v = UINT64_MAX;
	EXPECT_ERR(write(e, &v, 8), EINVAL);
	EXPECT_ERR(write(e, &v, 3), EINVAL);
	v = UINT64_MAX - 1;
	EXPECT_EQ(write(e, &v, 8), 8);
	v = 1;
	EXPECT_ERR(write(e, &v, 8), EAGAIN);
	struct pollfd pf = {.fd = e, .events = POLLIN | POLLOUT};
	EXPECT_EQ(poll(&pf, 1, 0), 1);
	EXPECT_EQ(pf.revents, POLLIN);
	EXPECT_EQ(read(e, &v, 8), 8);
	EXPECT_EQ(poll(&pf, 1, 0), 1);
	EXPECT_EQ(pf.revents, POLLOUT);
	struct stat st;
	EXPECT_OK(fstat(e, &st));
	EXPECT_EQ(st.st_mode & 0777, 0600);
	close(e);

	/* Semaphore mode hands out one at a time. */
	EXPECT_OK(e = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK));
	EXPECT_EQ(read(e, &v, 8), 8);
	EXPECT_EQ(v, 1);
	EXPECT_EQ(read(e, &v, 8), 8);
	EXPECT_EQ(v, 1);
	EXPECT_ERR(read(e, &v, 8), EAGAIN);
	close(e);

	/* A blocking read waits for a writer; epoll sees eventfds. */
	EXPECT_OK(e = eventfd(0, 0));
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = e};
	EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev));
	pid_t pid = fork();
	if (pid == 0) {
		usleep(50000);
		uint64_t one = 9;
		write(e, &one, 8);
		_exit(0);
	}
	EXPECT_EQ(read(e, &v, 8), 8);
	EXPECT_EQ(v, 9);
	waitpid(pid, NULL, 0);
	v = 1;
	write(e, &v, 8);
	EXPECT_EQ(ep_wait(ep, 0, NULL, NULL), 1);
	close(ep);
	close(e);
}

static void test_timerfd(void) {
	uint64_t n;
	int tf;
	EXPECT_ERR(timerfd_create(12345, 0), EINVAL);
	EXPECT_ERR(timerfd_create(CLOCK_MONOTONIC, 0x1), EINVAL);
	EXPECT_OK(tf = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
	EXPECT_EQ(fcntl(tf, F_GETFD), FD_CLOEXEC);
	EXPECT_ERR(read(tf, &n, 8), EAGAIN);
	struct itimerspec its = {.it_value = {.tv_sec = 10}}, old;
	EXPECT_OK(timerfd_settime(tf, 0, &its, NULL));
	EXPECT_OK(timerfd_gettime(tf, &old));
	EXPECT_TRUE(old.it_value.tv_sec <= 10 && (old.it_value.tv_sec > 0 || old.it_value.tv_nsec > 0));
	EXPECT_EQ(old.it_interval.tv_sec, 0);
	EXPECT_ERR(read(tf, &n, 8), EAGAIN);
	struct pollfd pf = {.fd = tf, .events = POLLIN};
	EXPECT_EQ(poll(&pf, 1, 0), 0);
	/* Disarm, and get the old setting back. */
	struct itimerspec zero = {0};
	EXPECT_OK(timerfd_settime(tf, 0, &zero, &old));
	EXPECT_TRUE(old.it_value.tv_sec <= 10 && old.it_value.tv_sec >= 1);
	EXPECT_OK(timerfd_gettime(tf, &old));
	EXPECT_EQ(old.it_value.tv_sec + old.it_value.tv_nsec, 0);
	/* Errors. */
	EXPECT_ERR(timerfd_settime(tf, 0x4, &its, NULL), EINVAL);
	its.it_value.tv_nsec = 1000000000;
	EXPECT_ERR(timerfd_settime(tf, 0, &its, NULL), EINVAL);
	EXPECT_ERR(syscall(SYS_timerfd_settime, tf, 0, BAD_PTR, NULL), EFAULT);
	int p[2];
	pipe(p);
	EXPECT_ERR(timerfd_settime(p[0], 0, &zero, NULL), EINVAL);
	EXPECT_ERR(timerfd_gettime(p[0], &old), EINVAL);
	EXPECT_ERR(timerfd_gettime(9999, &old), EBADF);
	close(p[0]);
	close(p[1]);
	/* One shot: poll wakes when it expires, read says once. */
	its = (struct itimerspec){.it_value = {.tv_nsec = 30000000}};
	EXPECT_OK(timerfd_settime(tf, 0, &its, NULL));
	EXPECT_EQ(poll(&pf, 1, -1), 1);
	EXPECT_ERR(read(tf, &n, 4), EINVAL);
	EXPECT_EQ(read(tf, &n, 8), 8);
	EXPECT_EQ(n, 1);
	EXPECT_ERR(read(tf, &n, 8), EAGAIN);
	close(tf);

	/* Blocking reads; an absolute time; a period. */
	EXPECT_OK(tf = timerfd_create(CLOCK_MONOTONIC, 0));
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	its = (struct itimerspec){.it_value = now};
	its.it_value.tv_nsec += 20000000;
	if (its.it_value.tv_nsec >= 1000000000) {
		its.it_value.tv_sec++;
		its.it_value.tv_nsec -= 1000000000;
	}
	EXPECT_OK(timerfd_settime(tf, TFD_TIMER_ABSTIME, &its, NULL));
	EXPECT_EQ(read(tf, &n, 8), 8);
	EXPECT_EQ(n, 1);
	its = (struct itimerspec){.it_value = {.tv_nsec = 10000000}, .it_interval = {.tv_nsec = 10000000}};
	EXPECT_OK(timerfd_settime(tf, 0, &its, NULL));
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(read(tf, &n, 8), 8);
		EXPECT_TRUE(n >= 1);
	}
	EXPECT_OK(timerfd_gettime(tf, &old));
	EXPECT_EQ(old.it_interval.tv_nsec, 10000000);
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN};
	EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, tf, &ev));
	EXPECT_EQ(ep_wait(ep, -1, NULL, NULL), 1);
	close(ep);
	/* A blocked read is interrupted by a signal. */
	EXPECT_OK(timerfd_settime(tf, 0, &zero, NULL));
	handle(SIGALRM);
	arm_timer(30);
	EXPECT_ERR(read(tf, &n, 8), EINTR);
	close(tf);
	/* Root holds CAP_WAKE_ALARM. */
	EXPECT_OK(tf = timerfd_create(CLOCK_BOOTTIME_ALARM, 0));
	close(tf);
}

int main(int argc, char **argv) {
	enter(argc, argv);
	test_poll();
	test_select();
	test_epoll();
	test_eventfd();
	test_timerfd();
	return done();
}
