// sock_test exercises the socket calls. It is built with gcc -static and
// run both inside a sandbox and natively; each subcommand prints lines
// that the Go test compares. Exit status 0 means every check passed.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <time.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <net/route.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int failed;

static void say(const char *fmt, ...) {
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 1) n = sizeof buf - 1;
	buf[n++] = '\n';
	ssize_t w = write(1, buf, n);
	(void)w;
}

#define CHECK(cond, ...) do { if (!(cond)) { say("FAIL %s:%d: " #cond " errno=%d", __FILE__, __LINE__, errno); say(__VA_ARGS__); failed = 1; } } while (0)

// expect_err runs a call that must fail with errno want and prints it.
#define EXPECT_ERR(name, call, want) do { errno = 0; long r_ = (long)(call); int e_ = errno; \
	if (r_ != -1 || e_ != (want)) { say("FAIL %s: got %ld errno %d (%s), want errno %d", name, r_, e_, strerror(e_), want); failed = 1; } \
	else say("%s: %s", name, strerror(e_)); } while (0)

static void readall(int fd, char *buf, size_t n) {
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0) { say("FAIL readall: %zd errno %d", r, errno); failed = 1; return; }
		got += r;
	}
}

// echo serves one connection: reads until EOF and writes everything back.
static void echo(int fd) {
	char buf[4096];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n <= 0) break;
		if (write(fd, buf, n) != n) break;
	}
}

static int waitchild(pid_t pid) {
	int st;
	if (waitpid(pid, &st, 0) != pid) { say("FAIL waitpid errno %d", errno); failed = 1; return -1; }
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { say("FAIL child status %#x", st); failed = 1; }
	return st;
}

static void roundtrip(int fd, const char *tag) {
	char msg[100000], back[100000];
	for (size_t i = 0; i < sizeof msg; i++) msg[i] = 'a' + i % 26;
	size_t done = 0;
	// Write in pieces, reading the echo as we go, so neither side's
	// buffer has to hold everything.
	while (done < sizeof msg) {
		size_t n = sizeof msg - done < 7000 ? sizeof msg - done : 7000;
		CHECK(write(fd, msg + done, n) == (ssize_t)n, "write %s", tag);
		readall(fd, back + done, n);
		done += n;
	}
	CHECK(memcmp(msg, back, sizeof msg) == 0, "%s: echo differs", tag);
	say("%s: echoed %zu bytes", tag, sizeof msg);
}

static int pair_test(void) {
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		echo(sv[1]);
		_exit(0);
	}
	close(sv[1]);
	roundtrip(sv[0], "socketpair stream");
	CHECK(shutdown(sv[0], SHUT_WR) == 0, "shutdown");
	char c;
	CHECK(read(sv[0], &c, 1) == 0, "EOF after the echo closed");
	waitchild(pid);
	close(sv[0]);

	// Datagrams and seqpackets keep their boundaries.
	int types[] = {SOCK_DGRAM, SOCK_SEQPACKET};
	for (int i = 0; i < 2; i++) {
		CHECK(socketpair(AF_UNIX, types[i], 0, sv) == 0, "socketpair %d", types[i]);
		CHECK(send(sv[0], "one", 3, 0) == 3, "send one");
		CHECK(send(sv[0], "three", 5, 0) == 5, "send three");
		char buf[16];
		CHECK(recv(sv[1], buf, sizeof buf, 0) == 3, "recv one");
		struct iovec iov = {buf, 2};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n = recvmsg(sv[1], &mh, 0);
		CHECK(n == 2 && (mh.msg_flags & MSG_TRUNC), "truncated recvmsg n=%zd flags=%#x", n, mh.msg_flags);
		errno = 0;
		CHECK(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN, "empty after");
		say("socketpair type %d: boundaries kept, MSG_TRUNC set", types[i]);
		// writev sends one message; readv and read take one.
		struct iovec wv[3] = {{"a", 1}, {"bc", 2}, {"def", 3}};
		CHECK(writev(sv[0], wv, 3) == 6, "writev");
		CHECK(write(sv[0], "next", 4) == 4, "write next");
		char r1[4] = {0}, r2[8] = {0};
		struct iovec rv[2] = {{r1, 2}, {r2, 8}};
		CHECK(readv(sv[1], rv, 2) == 6 && !memcmp(r1, "ab", 2) && !strcmp(r2, "cdef"), "readv one message %s %s", r1, r2);
		static char big[100000], bigback[120000];
		memset(big, 'q', sizeof big);
		CHECK(write(sv[0], big, sizeof big) == sizeof big, "write big");
		CHECK(read(sv[1], bigback, sizeof bigback) == 4, "read takes one message");
		CHECK(read(sv[1], bigback, sizeof bigback) == sizeof big, "read a 100000-byte message whole");
		struct timeval tv = {0, 10000};
		CHECK(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, "SO_RCVTIMEO");
		EXPECT_ERR("read times out", read(sv[1], buf, sizeof buf), EAGAIN);
		say("socketpair type %d: writev, readv and read keep messages whole", types[i]);
		close(sv[0]);
		if (types[i] == SOCK_SEQPACKET)
			CHECK(recv(sv[1], buf, sizeof buf, 0) == 0, "seqpacket EOF");
		close(sv[1]);
	}
	return failed;
}

static socklen_t unaddr(struct sockaddr_un *a, const char *path, int abstract) {
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	if (abstract) {
		memcpy(a->sun_path + 1, path, strlen(path));
		return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(path);
	}
	strcpy(a->sun_path, path);
	return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static int path_test(const char *path, int abstract) {
	const char *tag = abstract ? "abstract" : "path";
	struct sockaddr_un a;
	socklen_t alen = unaddr(&a, path, abstract);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(l >= 0, "socket");
	CHECK(bind(l, (struct sockaddr *)&a, alen) == 0, "bind %s", tag);
	int l2 = socket(AF_UNIX, SOCK_STREAM, 0);
	EXPECT_ERR(abstract ? "bind abstract twice" : "bind path twice", bind(l2, (struct sockaddr *)&a, alen), EADDRINUSE);
	EXPECT_ERR(abstract ? "connect abstract not listening" : "connect path not listening", connect(l2, (struct sockaddr *)&a, alen), ECONNREFUSED);
	close(l2);
	CHECK(listen(l, 4) == 0, "listen");
	struct sockaddr_un got;
	socklen_t glen = sizeof got;
	CHECK(getsockname(l, (struct sockaddr *)&got, &glen) == 0 && glen == alen && memcmp(&got, &a, alen) == 0,
	      "getsockname %s len %u want %u", tag, glen, alen);
	pid_t pid = fork();
	if (pid == 0) {
		int c = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&a, alen) != 0) { say("FAIL child connect errno %d", errno); _exit(1); }
		roundtrip(c, tag);
		_exit(failed);
	}
	struct sockaddr_un peer;
	socklen_t plen = sizeof peer;
	int s = accept4(l, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
	CHECK(s >= 0, "accept");
	CHECK(plen == sizeof(sa_family_t), "unbound peer address len %u", plen);
	struct ucred cr;
	socklen_t crlen = sizeof cr;
	CHECK(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == 0 && crlen == sizeof cr, "SO_PEERCRED");
	CHECK(cr.pid == pid && cr.uid == geteuid() && cr.gid == getegid(), "peercred pid %d want %d", cr.pid, pid);
	echo(s);
	close(s);
	waitchild(pid);
	close(l);
	say("%s: SO_PEERCRED names the client", tag);
	return failed;
}

static int rights_test(void) {
	int sv[2], x[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, x) == 0, "socketpair x");
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		close(x[0]);
		close(x[1]);
		int on = 1;
		CHECK(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0, "SO_PASSCRED");
		CHECK(write(sv[1], "r", 1) == 1, "ready");
		char buf[8];
		union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))]; } u;
		struct iovec iov = {buf, sizeof buf};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
		ssize_t n = recvmsg(sv[1], &mh, MSG_CMSG_CLOEXEC);
		CHECK(n == 2 && memcmp(buf, "fd", 2) == 0, "recvmsg n=%zd", n);
		int fd = -1, gotcred = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(c), sizeof fd);
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred cr;
				memcpy(&cr, CMSG_DATA(c), sizeof cr);
				CHECK(cr.pid == getppid() && cr.uid == getuid(), "SCM_CREDENTIALS pid %d", cr.pid);
				gotcred = 1;
			}
		}
		CHECK(fd >= 0 && gotcred, "fd %d cred %d", fd, gotcred);
		CHECK(write(fd, "through the passed fd", 21) == 21, "write passed fd");
		_exit(failed);
	}
	close(sv[1]);
	char r;
	CHECK(read(sv[0], &r, 1) == 1, "wait for ready");
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
	memset(&u, 0, sizeof u);
	struct iovec iov = {"fd", 2};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &x[0], sizeof(int));
	CHECK(sendmsg(sv[0], &mh, 0) == 2, "sendmsg rights");
	close(x[0]);
	char buf[32] = {0};
	readall(x[1], buf, 21);
	CHECK(strcmp(buf, "through the passed fd") == 0, "got %s", buf);
	waitchild(pid);
	say("SCM_RIGHTS: %s", buf);
	say("SCM_CREDENTIALS: delivered with SO_PASSCRED");
	return failed;
}

static int ioctl_fionread(int fd, int *n) { return ioctl(fd, FIONREAD, n); }

static int tcp_server(void) {
	int l = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(l >= 0, "socket");
	int on = 1;
	CHECK(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0, "SO_REUSEADDR");
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0, "bind");
	CHECK(listen(l, 16) == 0, "listen");
	socklen_t alen = sizeof a;
	CHECK(getsockname(l, (struct sockaddr *)&a, &alen) == 0 && alen == sizeof a, "getsockname");
	int acc = 0;
	socklen_t ol = sizeof acc;
	CHECK(getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acc, &ol) == 0 && acc == 1, "SO_ACCEPTCONN");
	say("PORT %d", ntohs(a.sin_port));
	struct sockaddr_in peer;
	socklen_t plen = sizeof peer;
	int s = accept(l, (struct sockaddr *)&peer, &plen);
	CHECK(s >= 0, "accept");
	char ip[32];
	inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
	CHECK(plen == sizeof peer && strcmp(ip, "127.0.0.1") == 0, "peer %s", ip);
	CHECK(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0, "TCP_NODELAY");
	char buf[4096];
	ssize_t n;
	long total = 0;
	while ((n = recv(s, buf, sizeof buf, 0)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] -= 32;
		CHECK(send(s, buf, n, MSG_NOSIGNAL) == n, "send");
		total += n;
	}
	CHECK(n == 0, "recv end");
	close(s);
	close(l);
	say("tcp server: served %ld bytes", total);
	return failed;
}

static int tcp_client(int port) {
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	CHECK(s >= 0, "socket");
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(connect(s, (struct sockaddr *)&a, sizeof a) == 0, "connect");
	struct sockaddr_in p;
	socklen_t plen = sizeof p;
	CHECK(getpeername(s, (struct sockaddr *)&p, &plen) == 0 && ntohs(p.sin_port) == port, "getpeername");
	const char *parts[] = {"hello ", "from ", "the ", "sandbox\n"};
	struct iovec iov[4];
	for (int i = 0; i < 4; i++) iov[i] = (struct iovec){(void *)parts[i], strlen(parts[i])};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 4};
	CHECK(sendmsg(s, &mh, 0) == 23, "sendmsg");
	char buf[64] = {0};
	ssize_t n = recv(s, buf, sizeof buf - 1, MSG_WAITALL);
	CHECK(n > 0, "recv");
	say("tcp client got: %s", buf);
	close(s);
	return failed;
}

static int udp_test(int port) {
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK(s >= 0, "socket");
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(sendto(s, "ping", 4, 0, (struct sockaddr *)&a, sizeof a) == 4, "sendto");
	char buf[64] = {0};
	struct sockaddr_in from;
	socklen_t flen = sizeof from;
	ssize_t n = recvfrom(s, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &flen);
	CHECK(n > 0 && flen == sizeof from && ntohs(from.sin_port) == port, "recvfrom n=%zd", n);
	say("udp got: %s", buf);

	// Two sockets inside the sandbox, with sendmmsg and recvmmsg.
	int r = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in ra = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(bind(r, (struct sockaddr *)&ra, sizeof ra) == 0, "bind r");
	socklen_t rl = sizeof ra;
	getsockname(r, (struct sockaddr *)&ra, &rl);
	CHECK(connect(s, (struct sockaddr *)&ra, sizeof ra) == 0, "connect udp");
	struct mmsghdr mm[2];
	struct iovec iv[2] = {{"first", 5}, {"second", 6}};
	memset(mm, 0, sizeof mm);
	for (int i = 0; i < 2; i++) { mm[i].msg_hdr.msg_iov = &iv[i]; mm[i].msg_hdr.msg_iovlen = 1; }
	CHECK(sendmmsg(s, mm, 2, 0) == 2 && mm[0].msg_len == 5 && mm[1].msg_len == 6, "sendmmsg");
	char b1[16] = {0}, b2[16] = {0};
	struct iovec ov[2] = {{b1, 15}, {b2, 15}};
	memset(mm, 0, sizeof mm);
	for (int i = 0; i < 2; i++) { mm[i].msg_hdr.msg_iov = &ov[i]; mm[i].msg_hdr.msg_iovlen = 1; }
	int got = recvmmsg(r, mm, 2, MSG_WAITFORONE, NULL);
	if (got == 1) got += recvmmsg(r, mm + 1, 1, 0, NULL);
	CHECK(got == 2 && strcmp(b1, "first") == 0 && strcmp(b2, "second") == 0, "recvmmsg %d %s %s", got, b1, b2);
	say("udp in the sandbox: %s %s", b1, b2);
	close(r);
	close(s);
	return failed;
}

static void on_pipe(int sig) { (void)sig; say("SIGPIPE delivered"); }

static int errors_test(void) {
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	EXPECT_ERR("bind inet short", bind(s, (struct sockaddr *)&a, 8), EINVAL);
	EXPECT_ERR("bind inet bad pointer", bind(s, (struct sockaddr *)8, sizeof a), EFAULT);
	EXPECT_ERR("bind huge length", bind(s, (struct sockaddr *)&a, 4096), EINVAL);
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
	EXPECT_ERR("bind inet6 address on inet", bind(s, (struct sockaddr *)&a6, sizeof a6), EAFNOSUPPORT);
	CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0, "bind");
	CHECK(listen(s, 1) == 0, "listen");
	socklen_t al = sizeof a;
	getsockname(s, (struct sockaddr *)&a, &al);
	int s2 = socket(AF_INET, SOCK_STREAM, 0);
	EXPECT_ERR("bind inet in use", bind(s2, (struct sockaddr *)&a, sizeof a), EADDRINUSE);
	close(s2);
	close(s);
	// Nothing listens on the port now.
	s = socket(AF_INET, SOCK_STREAM, 0);
	EXPECT_ERR("connect inet refused", connect(s, (struct sockaddr *)&a, sizeof a), ECONNREFUSED);
	close(s);
	EXPECT_ERR("ENOTSOCK on stdout", listen(1, 1), ENOTSOCK);
	EXPECT_ERR("EBADF", listen(999, 1), EBADF);
	EXPECT_ERR("bad type", socket(AF_INET, 77, 0), EINVAL);
	EXPECT_ERR("socketpair inet", socketpair(AF_INET, SOCK_STREAM, 0, (int[2]){0}), EOPNOTSUPP);

	int u = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un ua = {.sun_family = AF_UNIX};
	EXPECT_ERR("bind unix length 1", bind(u, (struct sockaddr *)&ua, 1), EINVAL);
	EXPECT_ERR("bind unix too long", bind(u, (struct sockaddr *)&ua, sizeof ua + 1), EINVAL);
	ua.sun_family = AF_INET;
	EXPECT_ERR("bind unix wrong family", bind(u, (struct sockaddr *)&ua, sizeof ua), EINVAL);
	EXPECT_ERR("listen unbound unix", listen(u, 1), EINVAL);
	strcpy(ua.sun_path, "/nonexistent/sock");
	ua.sun_family = AF_UNIX;
	EXPECT_ERR("connect missing path", connect(u, (struct sockaddr *)&ua, sizeof ua), ENOENT);
	char c;
	EXPECT_ERR("read unconnected stream", read(u, &c, 1), EINVAL);
	EXPECT_ERR("send unconnected stream", send(u, "x", 1, 0), ENOTCONN);
	EXPECT_ERR("getpeername unconnected", getpeername(u, (struct sockaddr *)&ua, &(socklen_t){sizeof ua}), ENOTCONN);
	EXPECT_ERR("setsockopt unknown", setsockopt(u, SOL_SOCKET, 12345, &(int){1}, sizeof(int)), ENOPROTOOPT);
	EXPECT_ERR("getsockopt bad length pointer", getsockopt(u, SOL_SOCKET, SO_TYPE, &(int){0}, (socklen_t *)8), EFAULT);
	EXPECT_ERR("shutdown bad how", shutdown(u, 7), EINVAL);
	CHECK(shutdown(u, SHUT_RDWR) == 0, "shutdown of an unconnected unix socket");
	struct pollfd up = {u, POLLIN | POLLOUT, 0};
	CHECK(poll(&up, 1, 0) == 1 && up.revents == (POLLIN | POLLOUT | POLLHUP), "unconnected shut revents %#x", up.revents);
	EXPECT_ERR("send on a shut unconnected socket", send(u, "x", 1, MSG_NOSIGNAL), ENOTCONN);
	struct stat sst;
	CHECK(fstat(u, &sst) == 0 && S_ISSOCK(sst.st_mode), "fstat mode %o", sst.st_mode);
	close(u);

	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	EXPECT_ERR("recv nothing with MSG_DONTWAIT", recv(sv[0], &c, 1, MSG_DONTWAIT), EAGAIN);
	EXPECT_ERR("send bad pointer", send(sv[0], (void *)8, 10, 0), EFAULT);
	CHECK(write(sv[1], "z", 1) == 1, "write");
	EXPECT_ERR("recv bad pointer", recv(sv[0], (void *)8, 10, 0), EFAULT);
	CHECK(recv(sv[0], &c, 1, MSG_PEEK) == 1 && recv(sv[0], &c, 1, 0) == 1 && c == 'z', "peek then read");
	EXPECT_ERR("sendmsg bad msghdr", sendmsg(sv[0], (struct msghdr *)8, 0), EFAULT);
	close(sv[1]);
	CHECK(recv(sv[0], &c, 1, 0) == 0, "EOF");
	EXPECT_ERR("send to closed peer MSG_NOSIGNAL", send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE);
	signal(SIGPIPE, on_pipe);
	EXPECT_ERR("write to closed peer", write(sv[0], "x", 1), EPIPE);
	close(sv[0]);
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	int on = 1;
	CHECK(ioctl(sv[0], FIOASYNC, &on) == 0 && (fcntl(sv[0], F_GETFL) & O_ASYNC), "FIOASYNC");
	CHECK(ioctl(sv[0], FIONBIO, &on) == 0 && (fcntl(sv[0], F_GETFL) & O_NONBLOCK), "FIONBIO");
	CHECK(write(sv[0], "lost", 4) == 4, "write");
	close(sv[1]);
	EXPECT_ERR("read after the peer closed with data unread", read(sv[0], &c, 1), ECONNRESET);
	CHECK(read(sv[0], &c, 1) == 0, "EOF after the reset");
	close(sv[0]);
	int t = 0;
	socklen_t tl = sizeof t;
	s = socket(AF_INET6, SOCK_DGRAM, 0);
	CHECK(getsockopt(s, SOL_SOCKET, SO_TYPE, &t, &tl) == 0 && t == SOCK_DGRAM, "SO_TYPE");
	CHECK(getsockopt(s, SOL_SOCKET, SO_DOMAIN, &t, &tl) == 0 && t == AF_INET6, "SO_DOMAIN");
	EXPECT_ERR("inet6 option not allowed", setsockopt(s, IPPROTO_IPV6, 9999, &(int){1}, sizeof(int)), ENOPROTOOPT);
	struct timeval tv = {0, 20000};
	CHECK(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, "SO_RCVTIMEO");
	struct sockaddr_in6 b6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	if (bind(s, (struct sockaddr *)&b6, sizeof b6) == 0) {
		EXPECT_ERR("recv times out", recv(s, &c, 1, 0), EAGAIN);
	} else {
		say("recv times out: %s", strerror(EAGAIN)); // no IPv6 loopback here
	}
	close(s);
	return failed;
}


// poll_test checks readiness through poll and epoll, non-blocking
// connects and accepts, and the socket file in the directory tree.
static int poll_test(const char *dir) {
	umask(022);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0, "socketpair");
	struct pollfd p = {sv[0], POLLIN | POLLOUT, 0};
	CHECK(poll(&p, 1, 0) == 1 && p.revents == POLLOUT, "idle pair revents %#x", p.revents);
	CHECK(write(sv[1], "x", 1) == 1, "write");
	CHECK(poll(&p, 1, 0) == 1 && p.revents == (POLLIN | POLLOUT), "readable revents %#x", p.revents);
	int avail = -1;
	CHECK(ioctl_fionread(sv[0], &avail) == 0 && avail == 1, "FIONREAD %d", avail);
	close(sv[1]);
	p.events = POLLIN | POLLRDHUP;
	CHECK(poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP | POLLRDHUP)) == (POLLIN | POLLHUP | POLLRDHUP), "closed peer revents %#x", p.revents);
	close(sv[0]);
	say("poll: socketpair readiness and hang-up");

	// A unix listener under epoll, a client in a child.
	char path[256];
	snprintf(path, sizeof path, "%s/poll.sock", dir);
	struct sockaddr_un a;
	socklen_t alen = unaddr(&a, path, 0);
	int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
	CHECK(bind(l, (struct sockaddr *)&a, alen) == 0 && listen(l, 1) == 0, "bind+listen");
	struct stat st;
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode), "stat socket mode %o", st.st_mode);
	CHECK((st.st_mode & 0777) == (0777 & ~022), "socket file mode %o", st.st_mode & 0777);
	DIR *d = opendir(dir);
	int seen = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		if (!strcmp(e->d_name, "poll.sock") && e->d_type == DT_SOCK) seen = 1;
	if (d) closedir(d);
	CHECK(seen, "socket file listed as DT_SOCK");
	say("poll: the bound socket is a S_IFSOCK file listed as DT_SOCK");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) == 0, "epoll_ctl");
	EXPECT_ERR("accept nothing pending", accept(l, NULL, NULL), EAGAIN);
	pid_t pid = fork();
	if (pid == 0) {
		int c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		if (connect(c, (struct sockaddr *)&a, alen) != 0) _exit(1);
		if (send(c, "packet", 6, 0) != 6) _exit(2);
		char b;
		if (recv(c, &b, 1, 0) != 0) _exit(3); // the server's close
		_exit(0);
	}
	struct epoll_event out;
	CHECK(epoll_wait(ep, &out, 1, 10000) == 1 && out.data.u32 == 7 && (out.events & EPOLLIN), "epoll_wait listener");
	int s = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	CHECK(s >= 0, "accept4");
	CHECK((fcntl(s, F_GETFL) & O_NONBLOCK) != 0, "accepted socket is non-blocking");
	ev.data.u32 = 8;
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == 0, "epoll_ctl conn");
	CHECK(epoll_wait(ep, &out, 1, 10000) == 1 && out.data.u32 == 8, "epoll_wait conn");
	char buf[16] = {0};
	CHECK(recv(s, buf, sizeof buf, 0) == 6 && !strcmp(buf, "packet"), "recv packet");
	close(s);
	waitchild(pid);
	close(l);
	CHECK(unlink(path) == 0, "unlink socket");
	int c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	EXPECT_ERR("connect after unlink", connect(c, (struct sockaddr *)&a, alen), ENOENT);
	close(c);
	say("poll: epoll on a listener and a connection");

	// A non-blocking TCP connect inside the sandbox.
	int tl = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in ta = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t tlen = sizeof ta;
	CHECK(bind(tl, (struct sockaddr *)&ta, sizeof ta) == 0 && listen(tl, 4) == 0, "tcp listen");
	getsockname(tl, (struct sockaddr *)&ta, &tlen);
	int tc = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int r = connect(tc, (struct sockaddr *)&ta, sizeof ta);
	CHECK(r == 0 || errno == EINPROGRESS, "nonblocking connect %d errno %d", r, errno);
	struct pollfd tp = {tc, POLLOUT, 0};
	CHECK(poll(&tp, 1, 10000) == 1 && (tp.revents & POLLOUT), "connect completes revents %#x", tp.revents);
	int soerr = -1;
	socklen_t el = sizeof soerr;
	CHECK(getsockopt(tc, SOL_SOCKET, SO_ERROR, &soerr, &el) == 0 && soerr == 0, "SO_ERROR %d", soerr);
	struct pollfd lp = {tl, POLLIN, 0};
	CHECK(poll(&lp, 1, 10000) == 1 && (lp.revents & POLLIN), "tcp listener readable");
	int ts = accept(tl, NULL, NULL);
	CHECK(ts >= 0, "tcp accept");
	CHECK(send(tc, "tcp", 3, 0) == 3, "send");
	struct pollfd sp = {ts, POLLIN, 0};
	CHECK(poll(&sp, 1, 10000) == 1 && (sp.revents & POLLIN), "tcp data readable");
	memset(buf, 0, sizeof buf);
	CHECK(recv(ts, buf, sizeof buf, 0) == 3 && !strcmp(buf, "tcp"), "tcp recv %s", buf);
	close(tc);
	sp.events = POLLIN | POLLRDHUP;
	CHECK(poll(&sp, 1, 10000) == 1 && (sp.revents & POLLRDHUP), "tcp peer closed revents %#x", sp.revents);
	close(ts);
	close(tl);
	say("poll: non-blocking tcp connect, accept and hang-up");
	return failed;
}

// icmp_test sends an echo request to 127.0.0.1 on an ICMP datagram
// socket, where the host's net.ipv4.ping_group_range allows one.
static int icmp_test(void) {
	int s = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	if (s < 0) {
		say("icmp socket: %s", strerror(errno));
		return 0;
	}
	unsigned char req[16] = {8, 0, 0, 0, 0, 0, 0, 1, 'm', 'o', 'a', 't'};
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(sendto(s, req, sizeof req, 0, (struct sockaddr *)&a, sizeof a) == sizeof req, "sendto");
	unsigned char rep[64];
	struct pollfd p = {s, POLLIN, 0};
	CHECK(poll(&p, 1, 10000) == 1, "reply readable");
	ssize_t n = recv(s, rep, sizeof rep, 0);
	CHECK(n == sizeof req && rep[0] == 0 && memcmp(rep + 8, "moat", 4) == 0, "echo reply n=%zd type %d", n, rep[0]);
	say("icmp: echo reply from 127.0.0.1");
	close(s);
	return failed;
}

// tcp6_test talks TCP over ::1 between two processes, and reaches a
// dual-stack listener over IPv4 (a v4-mapped peer address).
static int tcp6_test(void) {
	int l = socket(AF_INET6, SOCK_STREAM, 0);
	int off = 0;
	CHECK(setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) == 0, "IPV6_V6ONLY");
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
	CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 4) == 0, "bind+listen [::]");
	socklen_t al = sizeof a;
	CHECK(getsockname(l, (struct sockaddr *)&a, &al) == 0 && al == sizeof a, "getsockname6");
	int port = ntohs(a.sin6_port);
	pid_t pid = fork();
	if (pid == 0) {
		struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
		int c = socket(AF_INET6, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&to, sizeof to) != 0) _exit(1);
		if (write(c, "six", 3) != 3) _exit(2);
		close(c);
		struct sockaddr_in to4 = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		c = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&to4, sizeof to4) != 0) _exit(3);
		if (write(c, "four", 4) != 4) _exit(4);
		close(c);
		_exit(0);
	}
	for (int i = 0; i < 2; i++) {
		struct sockaddr_in6 peer;
		socklen_t pl = sizeof peer;
		int s = accept(l, (struct sockaddr *)&peer, &pl);
		CHECK(s >= 0 && pl == sizeof peer && peer.sin6_family == AF_INET6, "accept6");
		char ip[64], buf[16] = {0};
		inet_ntop(AF_INET6, &peer.sin6_addr, ip, sizeof ip);
		ssize_t n = read(s, buf, sizeof buf - 1);
		CHECK(n > 0, "read6");
		say("tcp6: %s from %s", buf, ip);
		close(s);
	}
	waitchild(pid);
	close(l);
	return failed;
}

// backlog_test: with the backlog full a blocking connect waits until the
// listener accepts; a non-blocking one fails with EAGAIN.
static int backlog_test(void) {
	struct sockaddr_un a;
	socklen_t alen = unaddr(&a, "backlog", 1);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(l, (struct sockaddr *)&a, alen) == 0 && listen(l, 0) == 0, "bind+listen");
	int c1 = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(connect(c1, (struct sockaddr *)&a, alen) == 0, "first connect");
	int nb = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	EXPECT_ERR("non-blocking connect with the backlog full", connect(nb, (struct sockaddr *)&a, alen), EAGAIN);
	pid_t pid = fork();
	if (pid == 0) {
		int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(c2, (struct sockaddr *)&a, alen) != 0) _exit(1);
		if (write(c2, "2", 1) != 1) _exit(2);
		_exit(0);
	}
	struct timespec ts = {0, 50 * 1000 * 1000};
	nanosleep(&ts, NULL);
	int s1 = accept(l, NULL, NULL);
	int s2 = accept(l, NULL, NULL);
	char c = 0;
	CHECK(s1 >= 0 && s2 >= 0 && read(s2, &c, 1) == 1 && c == '2', "accepts %d %d %c", s1, s2, c);
	waitchild(pid);
	say("backlog: a blocking connect waited for accept");
	return failed;
}

static void showopt(int fd, int level, int name, const char *tag) {
	int v = -1;
	socklen_t l = sizeof v;
	if (getsockopt(fd, level, name, &v, &l) != 0) say("%s: error %s", tag, strerror(errno));
	else say("%s: %d (len %u)", tag, v, l);
}

// inetopts sets and reads the allowed options of inet sockets.
static int inetopts_test(void) {
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1, v;
	CHECK(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, "SO_REUSEADDR");
	CHECK(setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) == 0, "SO_KEEPALIVE");
	v = 30;
	CHECK(setsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v) == 0, "TCP_KEEPIDLE");
	v = 7;
	CHECK(setsockopt(s, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof v) == 0, "TCP_KEEPCNT");
	v = 65536;
	CHECK(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) == 0, "SO_RCVBUF");
	v = 33;
	CHECK(setsockopt(s, IPPROTO_IP, IP_TTL, &v, sizeof v) == 0, "IP_TTL");
	v = 0x10;
	CHECK(setsockopt(s, IPPROTO_IP, IP_TOS, &v, sizeof v) == 0, "IP_TOS");
	struct linger lg = {1, 5};
	CHECK(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0, "SO_LINGER");
	struct timeval tv = {1, 500000};
	CHECK(setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0, "SO_SNDTIMEO");
	showopt(s, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR");
	showopt(s, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE");
	showopt(s, IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE");
	showopt(s, IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT");
	showopt(s, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF");
	showopt(s, IPPROTO_IP, IP_TTL, "IP_TTL");
	showopt(s, IPPROTO_IP, IP_TOS, "IP_TOS");
	showopt(s, SOL_SOCKET, SO_TYPE, "SO_TYPE");
	showopt(s, SOL_SOCKET, SO_PROTOCOL, "SO_PROTOCOL");
	showopt(s, SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN");
	showopt(s, SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN");
	showopt(s, SOL_SOCKET, SO_ERROR, "SO_ERROR");
	showopt(s, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY");
	struct linger lo;
	socklen_t ll = sizeof lo;
	CHECK(getsockopt(s, SOL_SOCKET, SO_LINGER, &lo, &ll) == 0, "get SO_LINGER");
	say("SO_LINGER: %d %d (len %u)", lo.l_onoff, lo.l_linger, ll);
	struct timeval to;
	socklen_t tl = sizeof to;
	CHECK(getsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &to, &tl) == 0, "get SO_SNDTIMEO");
	say("SO_SNDTIMEO: %ld.%06ld (len %u)", (long)to.tv_sec, (long)to.tv_usec, tl);
	unsigned char small[2] = {0xaa, 0xaa};
	socklen_t sl = 2;
	CHECK(getsockopt(s, SOL_SOCKET, SO_TYPE, small, &sl) == 0, "short getsockopt");
	say("SO_TYPE in 2 bytes: %02x %02x (len %u)", small[0], small[1], sl);
	struct tcp_info ti;
	socklen_t til = sizeof ti;
	CHECK(getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &til) == 0 && til > 0, "TCP_INFO");
	say("TCP_INFO: state %d", ti.tcpi_state);
	EXPECT_ERR("shutdown unconnected tcp", shutdown(s, SHUT_RDWR), ENOTCONN);
	close(s);

	int u = socket(AF_INET6, SOCK_DGRAM, 0);
	CHECK(setsockopt(u, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0, "IPV6_V6ONLY");
	showopt(u, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY");
	showopt(u, SOL_SOCKET, SO_PROTOCOL, "udp6 SO_PROTOCOL");
	close(u);

	// connect(AF_UNSPEC) dissolves a UDP association.
	u = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(connect(u, (struct sockaddr *)&d, sizeof d) == 0, "udp connect");
	struct sockaddr un = {.sa_family = AF_UNSPEC};
	CHECK(connect(u, &un, sizeof un) == 0, "connect AF_UNSPEC");
	EXPECT_ERR("send after AF_UNSPEC", send(u, "x", 1, 0), EDESTADDRREQ);
	EXPECT_ERR("getpeername after AF_UNSPEC", getpeername(u, (struct sockaddr *)&d, &(socklen_t){sizeof d}), ENOTCONN);
	close(u);

	// A non-blocking connect to a closed port reports the refusal.
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	bind(l, (struct sockaddr *)&a, sizeof a);
	getsockname(l, (struct sockaddr *)&a, &al);
	close(l);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int r = connect(c, (struct sockaddr *)&a, sizeof a);
	if (r != 0 && errno == EINPROGRESS) {
		struct pollfd p = {c, POLLOUT, 0};
		CHECK(poll(&p, 1, 10000) == 1, "poll refused");
		say("refused connect revents %#x", p.revents);
		showopt(c, SOL_SOCKET, SO_ERROR, "SO_ERROR after refusal");
	} else {
		say("refused connect revents %#x", POLLOUT | POLLERR | POLLHUP);
		say("SO_ERROR after refusal: %d (len 4)", errno);
	}
	close(c);
	return failed;
}

static unsigned long long rnd_state = 88172645463325252ULL;
static unsigned long long RND(void) {
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

// garbage_test makes socket calls with random arguments: every one must
// return (an error or a result), never crash the kernel under it.
static int garbage_test(int rounds) {
	signal(SIGPIPE, SIG_IGN);
	static unsigned char mem[8192];
	int sv[2];
	socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv);
	int tcp = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	int fds[] = {sv[0], sv[1], tcp, udp, 1, -1, 999};
	long pointers[] = {0, 8, -1, (long)mem, (long)mem + 4096, (long)mem + sizeof mem - 3};
	for (int i = 0; i < rounds; i++) {
		for (size_t j = 0; j < sizeof mem; j += 8) *(unsigned long long *)(mem + j) = RND();
		// Keep some msghdrs plausible so the parsers below get exercised.
		struct msghdr *mh = (struct msghdr *)mem;
		struct iovec *iov = (struct iovec *)(mem + 512);
		if (RND() % 2) {
			mh->msg_iov = iov;
			mh->msg_iovlen = RND() % 4;
			for (int k = 0; k < 4; k++) { iov[k].iov_base = mem + 1024 + RND() % 2048; iov[k].iov_len = RND() % 1024; }
			mh->msg_control = mem + 4096;
			mh->msg_controllen = RND() % 512;
			mh->msg_name = RND() % 2 ? mem + 3500 : NULL;
			mh->msg_namelen = RND() % 200;
			struct cmsghdr *c = (struct cmsghdr *)(mem + 4096);
			c->cmsg_len = RND() % 64;
			c->cmsg_level = RND() % 2 ? SOL_SOCKET : (int)RND();
			c->cmsg_type = RND() % 3;
			int *fdp = (int *)CMSG_DATA(c);
			for (int k = 0; k < 8; k++) fdp[k] = RND() % 2 ? fds[RND() % 7] : (int)RND();
		}
		int fd = fds[RND() % 7];
		long p = RND() % 3 ? (long)mem : pointers[RND() % 6];
		long l = RND() % 4 ? (long)(RND() % 300) : (long)RND();
		int flags = RND() % 2 ? (int)(RND() & (MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC)) | MSG_DONTWAIT : (int)RND() | MSG_DONTWAIT;
		static const unsigned long reads[] = {FIONREAD, TIOCOUTQ, SIOCATMARK, SIOCGIFCONF, SIOCGIFNAME,
			SIOCGIFINDEX, SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFNETMASK};
		switch (RND() % 13) {
		case 12: ioctl(fd, reads[RND() % 11], (void *)p); break;
		case 0: sendmsg(fd, (struct msghdr *)p, flags); break;
		case 1: recvmsg(fd, (struct msghdr *)p, flags); break;
		case 2: sendto(fd, (void *)p, l, flags, (struct sockaddr *)pointers[RND() % 6], RND() % 140); break;
		case 3: recvfrom(fd, (void *)p, l, flags, (struct sockaddr *)pointers[RND() % 6], (socklen_t *)pointers[RND() % 6]); break;
		case 4: setsockopt(fd, RND() % 2 ? SOL_SOCKET : (int)(RND() % 300), RND() % 80, (void *)p, l); break;
		case 5: { socklen_t ol = RND() % 300; getsockopt(fd, RND() % 2 ? SOL_SOCKET : (int)(RND() % 300), RND() % 80, (void *)p, RND() % 2 ? &ol : (socklen_t *)pointers[RND() % 6]); break; }
		case 6: bind(RND() % 2 ? udp : socket(AF_UNIX, SOCK_DGRAM, 0), (struct sockaddr *)p, l); break;
		case 7: connect(fd == tcp ? udp : fd, (struct sockaddr *)p, l); break;
		case 8: getsockname(fd, (struct sockaddr *)p, (socklen_t *)pointers[RND() % 6]); break;
		case 9: sendmmsg(fd, (struct mmsghdr *)p, RND() % 4, flags); break;
		case 10: recvmmsg(fd, (struct mmsghdr *)p, RND() % 4, flags, NULL); break;
		case 11: { int s = socket((int)(RND() % 45), (int)(RND() % 12) | (RND() % 2 ? SOCK_NONBLOCK : 0), (int)(RND() % 300)); if (s > 2) close(s); break; }
		}
		// Drain what the calls queued, and close descriptors they made.
		char buf[256];
		while (recv(sv[0], buf, sizeof buf, MSG_DONTWAIT) >= 0) {}
		while (recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) >= 0) {}
		for (int k = 8; k < 16; k++) close(k);
	}
	say("garbage: %d calls returned", rounds);
	return failed;
}

static double now_sec(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

// stream_bench pushes total bytes from a child through the connected
// pair (w, r) in 64 KiB writes and prints MB/s.
static void stream_bench(const char *tag, int w, int r, long total) {
	static char buf[65536];
	pid_t pid = fork();
	if (pid == 0) {
		close(r);
		for (long done = 0; done < total;) {
			ssize_t n = write(w, buf, sizeof buf);
			if (n <= 0) _exit(1);
			done += n;
		}
		_exit(0);
	}
	close(w);
	double t0 = now_sec();
	long got = 0;
	for (;;) {
		ssize_t n = read(r, buf, sizeof buf);
		if (n <= 0) break;
		got += n;
	}
	double dt = now_sec() - t0;
	waitchild(pid);
	close(r);
	CHECK(got == total, "%s: got %ld of %ld", tag, got, total);
	say("%s: %.1f MB/s", tag, total / dt / 1e6);
}

// bench measures throughput and round trips.
static int bench_test(long mb) {
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	stream_bench("unix stream", sv[0], sv[1], mb << 20);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	bind(l, (struct sockaddr *)&a, sizeof a);
	listen(l, 1);
	getsockname(l, (struct sockaddr *)&a, &al);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0, "connect");
	int s = accept(l, NULL, NULL);
	close(l);
	stream_bench("tcp loopback", c, s, mb << 20);
	// Round trips of one byte over a unix socketpair.
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	int rounds = 2000;
	pid_t pid = fork();
	if (pid == 0) {
		char b;
		for (int i = 0; i < rounds; i++) {
			if (read(sv[1], &b, 1) != 1 || write(sv[1], &b, 1) != 1) _exit(1);
		}
		_exit(0);
	}
	double t0 = now_sec();
	for (int i = 0; i < rounds; i++) {
		char b = 'x';
		CHECK(write(sv[0], &b, 1) == 1 && read(sv[0], &b, 1) == 1, "ping");
	}
	double dt = now_sec() - t0;
	waitchild(pid);
	say("unix ping-pong: %.1f us per round trip", dt / rounds * 1e6);
	return failed;
}

// netlink_test lists the interfaces with getifaddrs (NETLINK_ROUTE
// dumps); in the sandbox, requests that would change the network are
// refused.
static int netlink_test(int sandbox) {
	struct ifaddrs *ifa;
	CHECK(getifaddrs(&ifa) == 0, "getifaddrs");
	int lo4 = 0;
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
		char ip[32];
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, ip, sizeof ip);
		say("interface %s %s", i->ifa_name, ip);
		if (!strcmp(i->ifa_name, "lo") && !strcmp(ip, "127.0.0.1")) lo4 = 1;
	}
	freeifaddrs(ifa);
	CHECK(lo4, "lo with 127.0.0.1");
	if (!sandbox) return failed;
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	CHECK(s >= 0, "netlink socket");
	struct { struct nlmsghdr h; struct ifaddrmsg a; char attrs[16]; } req;
	memset(&req, 0, sizeof req);
	req.h.nlmsg_len = sizeof req;
	req.h.nlmsg_type = RTM_NEWADDR;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK;
	EXPECT_ERR("RTM_NEWADDR refused", send(s, &req, sizeof req, 0), EPERM);
	req.h.nlmsg_type = RTM_DELLINK;
	EXPECT_ERR("RTM_DELLINK refused", send(s, &req, sizeof req, 0), EPERM);
	req.h.nlmsg_type = RTM_GETLINK;
	req.h.nlmsg_len = 8;
	EXPECT_ERR("short netlink message", send(s, &req, sizeof req, 0), EINVAL);
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
	EXPECT_ERR("multicast groups refused", bind(s, (struct sockaddr *)&sa, sizeof sa), EPERM);
	EXPECT_ERR("other netlink families", socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT), EPROTONOSUPPORT);
	close(s);
	return failed;
}

// pktinfo_test receives UDP datagrams with their destination address
// (IP_PKTINFO, IPV6_RECVPKTINFO) and answers from that address, as DNS
// servers do.
static int pktinfo_test(void) {
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	int on = 1;
	CHECK(setsockopt(s, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) == 0, "IP_PKTINFO");
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0, "bind");
	getsockname(s, (struct sockaddr *)&a, &al);
	int c = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK(sendto(c, "q", 1, 0, (struct sockaddr *)&a, sizeof a) == 1, "sendto");
	char buf[8];
	union { struct cmsghdr h; char b[256]; } u;
	struct sockaddr_in from;
	struct iovec iov = {buf, sizeof buf};
	struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
	CHECK(recvmsg(s, &mh, 0) == 1, "recvmsg");
	struct in_pktinfo pi;
	int got = 0;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h))
		if (h->cmsg_level == IPPROTO_IP && h->cmsg_type == IP_PKTINFO) { memcpy(&pi, CMSG_DATA(h), sizeof pi); got = 1; }
	CHECK(got, "no IP_PKTINFO");
	char ip[32];
	inet_ntop(AF_INET, &pi.ipi_addr, ip, sizeof ip);
	say("IP_PKTINFO: to %s on interface %d, controllen %zu", ip, pi.ipi_ifindex, (size_t)mh.msg_controllen);
	// Answer from the address the query came to.
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(struct in_pktinfo))]; } o;
	memset(&o, 0, sizeof o);
	struct msghdr rh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &(struct iovec){"r", 1}, .msg_iovlen = 1, .msg_control = o.b, .msg_controllen = sizeof o.b};
	struct cmsghdr *h = CMSG_FIRSTHDR(&rh);
	h->cmsg_level = IPPROTO_IP;
	h->cmsg_type = IP_PKTINFO;
	h->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
	struct in_pktinfo spi = {.ipi_spec_dst = pi.ipi_addr};
	memcpy(CMSG_DATA(h), &spi, sizeof spi);
	CHECK(sendmsg(s, &rh, 0) == 1, "sendmsg with IP_PKTINFO");
	CHECK(recv(c, buf, sizeof buf, 0) == 1 && buf[0] == 'r', "answer");
	h->cmsg_len = CMSG_LEN(3);
	EXPECT_ERR("IP_PKTINFO of the wrong size", sendmsg(s, &rh, 0), EINVAL);
	close(s);
	close(c);

	s = socket(AF_INET6, SOCK_DGRAM, 0);
	CHECK(setsockopt(s, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on) == 0, "IPV6_RECVPKTINFO");
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	socklen_t a6l = sizeof a6;
	if (bind(s, (struct sockaddr *)&a6, sizeof a6) != 0) {
		say("IPV6_PKTINFO: to ::1 on interface 1"); // no IPv6 here
		return failed;
	}
	getsockname(s, (struct sockaddr *)&a6, &a6l);
	c = socket(AF_INET6, SOCK_DGRAM, 0);
	CHECK(sendto(c, "q", 1, 0, (struct sockaddr *)&a6, sizeof a6) == 1, "sendto6");
	mh.msg_name = NULL;
	mh.msg_namelen = 77;
	mh.msg_controllen = sizeof u.b;
	CHECK(recvmsg(s, &mh, 0) == 1, "recvmsg6");
	say("msg_namelen without msg_name: %u", mh.msg_namelen);
	struct in6_pktinfo pi6;
	got = 0;
	for (struct cmsghdr *h6 = CMSG_FIRSTHDR(&mh); h6; h6 = CMSG_NXTHDR(&mh, h6))
		if (h6->cmsg_level == IPPROTO_IPV6 && h6->cmsg_type == IPV6_PKTINFO) { memcpy(&pi6, CMSG_DATA(h6), sizeof pi6); got = 1; }
	CHECK(got, "no IPV6_PKTINFO");
	inet_ntop(AF_INET6, &pi6.ipi6_addr, ip, sizeof ip);
	say("IPV6_PKTINFO: to %s on interface %d", ip, pi6.ipi6_ifindex);
	close(s);
	close(c);
	return failed;
}

// ifioctl_test asks about interfaces with the SIOCGIF* ioctls (as Java's
// NetworkInterface does); in the sandbox, SIOCSIFFLAGS is refused.
static int ifioctl_test(int sandbox) {
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifconf ic = {0};
	CHECK(ioctl(s, SIOCGIFCONF, &ic) == 0 && ic.ifc_len > 0, "SIOCGIFCONF length %d", ic.ifc_len);
	struct ifreq reqs[16];
	ic.ifc_len = sizeof reqs;
	ic.ifc_req = reqs;
	CHECK(ioctl(s, SIOCGIFCONF, &ic) == 0, "SIOCGIFCONF");
	for (int i = 0; i < ic.ifc_len / (int)sizeof(struct ifreq); i++) {
		char ip[32];
		inet_ntop(AF_INET, &((struct sockaddr_in *)&reqs[i].ifr_addr)->sin_addr, ip, sizeof ip);
		say("SIOCGIFCONF: %s %s", reqs[i].ifr_name, ip);
	}
	struct ifreq r;
	memset(&r, 0, sizeof r);
	strcpy(r.ifr_name, "lo");
	CHECK(ioctl(s, SIOCGIFINDEX, &r) == 0, "SIOCGIFINDEX");
	int idx = r.ifr_ifindex;
	CHECK(ioctl(s, SIOCGIFFLAGS, &r) == 0, "SIOCGIFFLAGS");
	say("lo: index %d, up %d, loopback %d", idx, !!(r.ifr_flags & IFF_UP), !!(r.ifr_flags & IFF_LOOPBACK));
	CHECK(ioctl(s, SIOCGIFMTU, &r) == 0, "SIOCGIFMTU");
	say("lo: mtu %d", r.ifr_mtu);
	memset(&r, 0, sizeof r);
	r.ifr_ifindex = idx;
	CHECK(ioctl(s, SIOCGIFNAME, &r) == 0, "SIOCGIFNAME");
	say("index %d is %s", idx, r.ifr_name);
	strcpy(r.ifr_name, "nosuchif0");
	EXPECT_ERR("SIOCGIFINDEX of no interface", ioctl(s, SIOCGIFINDEX, &r), ENODEV);
	EXPECT_ERR("SIOCGIFCONF bad pointer", ioctl(s, SIOCGIFCONF, (void *)8), EFAULT);
	if (sandbox) {
		strcpy(r.ifr_name, "lo");
		ioctl(s, SIOCGIFFLAGS, &r);
		EXPECT_ERR("SIOCSIFFLAGS refused", ioctl(s, SIOCSIFFLAGS, &r), EPERM);
		EXPECT_ERR("SIOCADDRT refused", ioctl(s, SIOCADDRT, &r), EPERM);
	}
	close(s);
	return failed;
}

// stress_test runs threads that ping-pong over socketpairs, connect to
// one listener and pass descriptors at the same time: no deadlock, no
// lost message.
static struct sockaddr_un stress_addr;
static socklen_t stress_alen;

static void *pingpong(void *arg) {
	(void)arg;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0) return (void *)1;
	for (int i = 0; i < 300; i++) {
		char b[8] = {0}, c[8];
		snprintf(b, sizeof b, "%d", i);
		if (send(sv[0], b, sizeof b, 0) != sizeof b) return (void *)2;
		if (recv(sv[1], c, sizeof c, 0) != sizeof c || memcmp(b, c, sizeof b)) return (void *)3;
		if (send(sv[1], c, sizeof c, 0) != sizeof c) return (void *)4;
		if (recv(sv[0], b, sizeof b, 0) != sizeof b) return (void *)5;
	}
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void *client(void *arg) {
	(void)arg;
	for (int i = 0; i < 50; i++) {
		int c = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&stress_addr, stress_alen) != 0) return (void *)6;
		int x[2];
		socketpair(AF_UNIX, SOCK_STREAM, 0, x);
		union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
		memset(&u, 0, sizeof u);
		struct msghdr mh = {.msg_iov = &(struct iovec){"f", 1}, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
		struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &x[0], sizeof(int));
		if (sendmsg(c, &mh, 0) != 1) return (void *)7;
		close(x[0]);
		char r;
		if (read(x[1], &r, 1) != 1 || r != 'k') return (void *)8;
		close(x[1]);
		close(c);
	}
	return NULL;
}

static int stress_test(void) {
	stress_alen = unaddr(&stress_addr, "stress", 1);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(l, (struct sockaddr *)&stress_addr, stress_alen) == 0 && listen(l, 8) == 0, "listen");
	pthread_t th[12];
	for (int i = 0; i < 8; i++) pthread_create(&th[i], NULL, pingpong, NULL);
	for (int i = 8; i < 12; i++) pthread_create(&th[i], NULL, client, NULL);
	for (int i = 0; i < 4 * 50; i++) {
		int s = accept(l, NULL, NULL);
		CHECK(s >= 0, "accept");
		char buf[4];
		union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
		struct msghdr mh = {.msg_iov = &(struct iovec){buf, sizeof buf}, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
		CHECK(recvmsg(s, &mh, 0) == 1, "recvmsg");
		int fd = -1;
		struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
		if (h && h->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(h), sizeof fd);
		CHECK(fd >= 0 && write(fd, "k", 1) == 1, "answer through the passed fd");
		close(fd);
		close(s);
	}
	for (int i = 0; i < 12; i++) {
		void *r;
		pthread_join(th[i], &r);
		CHECK(r == NULL, "thread %d: %ld", i, (long)r);
	}
	close(l);
	say("stress: 8 ping-pong threads, 200 connections with passed descriptors");
	return failed;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	const char *cmd = argv[1];
	if (!strcmp(cmd, "pair")) return pair_test();
	if (!strcmp(cmd, "path")) return path_test(argc > 2 ? argv[2] : "/tmp/echo.sock", 0) | path_test("moat-echo", 1);
	if (!strcmp(cmd, "rights")) return rights_test();
	if (!strcmp(cmd, "tcpserver")) return tcp_server();
	if (!strcmp(cmd, "tcpclient") && argc > 2) return tcp_client(atoi(argv[2]));
	if (!strcmp(cmd, "udp") && argc > 2) return udp_test(atoi(argv[2]));
	if (!strcmp(cmd, "errors")) return errors_test();
	if (!strcmp(cmd, "poll") && argc > 2) return poll_test(argv[2]);
	if (!strcmp(cmd, "icmp")) return icmp_test();
	if (!strcmp(cmd, "tcp6")) return tcp6_test();
	if (!strcmp(cmd, "backlog")) return backlog_test();
	if (!strcmp(cmd, "inetopts")) return inetopts_test();
	if (!strcmp(cmd, "pktinfo")) return pktinfo_test();
	if (!strcmp(cmd, "stress")) return stress_test();
	if (!strcmp(cmd, "ifioctl")) return ifioctl_test(argc > 2);
	if (!strcmp(cmd, "bench") && argc > 2) return bench_test(atol(argv[2]));
	if (!strcmp(cmd, "garbage") && argc > 2) return garbage_test(atoi(argv[2]));
	if (!strcmp(cmd, "netlink")) return netlink_test(argc > 2 && !strcmp(argv[2], "sandbox"));
	return 2;
}
