/* Random arguments to the file system calls: every call must return
 * (an errno is fine); the sentry must neither crash nor hang. A 5 ms
 * interval timer interrupts calls that block. It exits 0 once all N
 * calls have returned. Usage: fuzz DIR SEED N */
#include "check.h"
#include <sys/mman.h>
#include <sys/time.h>

static const long calls[] = {
	SYS_open, SYS_openat, SYS_creat, SYS_openat2, SYS_close_range, SYS_stat, SYS_lstat,
	SYS_newfstatat, SYS_statx, SYS_getdents64, SYS_getdents, SYS_mkdir, SYS_mkdirat, SYS_mknod,
	SYS_mknodat, SYS_unlink, SYS_unlinkat, SYS_rmdir, SYS_rename, SYS_renameat, SYS_renameat2,
	SYS_link, SYS_linkat, SYS_symlink, SYS_symlinkat, SYS_readlink, SYS_readlinkat, SYS_chmod,
	SYS_fchmod, SYS_fchmodat, SYS_chown, SYS_fchown, SYS_lchown, SYS_fchownat, SYS_access,
	SYS_faccessat, SYS_faccessat2, SYS_utime, SYS_utimes, SYS_utimensat, SYS_futimesat,
	SYS_truncate, SYS_ftruncate, SYS_fallocate, SYS_fsync, SYS_fdatasync, SYS_syncfs,
	SYS_fcntl, SYS_flock, SYS_dup, SYS_dup2, SYS_dup3, SYS_pipe, SYS_pipe2, SYS_chdir,
	SYS_fchdir, SYS_getcwd, SYS_umask, SYS_statfs, SYS_fstatfs, SYS_sendfile,
	SYS_copy_file_range, SYS_splice, SYS_tee, SYS_poll, SYS_ppoll, SYS_select, SYS_pselect6,
	SYS_epoll_create, SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_wait, SYS_epoll_pwait,
	SYS_epoll_pwait2, SYS_eventfd, SYS_eventfd2, SYS_timerfd_create, SYS_timerfd_settime,
	SYS_timerfd_gettime, SYS_read, SYS_write, SYS_lseek, SYS_pread64, SYS_close, SYS_fstat,
	SYS_sync_file_range, SYS_ioctl,
};

static uint64_t state;
static uint64_t rnd(void) {
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

static char *buf; /* 64 KiB of writable memory, refilled now and then */
static const char *names[] = {"a", "b", "d", "d/x", "..", ".", "/", "/tmp", "f", "a/b", "lnk", "", "fifo"};

static void refill(void) {
	for (int i = 0; i < 65536; i += 8) {
		uint64_t v = rnd();
		switch (v & 3) {
		case 0: v = 0; break;
		case 1: v &= 0xff; break;
		default: break;
		}
		memcpy(buf + i, &v, 8);
		buf[i + 1] &= ~0x20; /* never block SIGALRM through a sigmask */
	}
	/* Some path strings. */
	for (int i = 0; i < 16; i++) {
		const char *n = names[rnd() % (sizeof names / sizeof *names)];
		strcpy(buf + i * 64, n);
	}
}

static uint64_t arg(void) {
	switch (rnd() % 12) {
	case 0: return rnd() % 16;                           /* small: fds, flags */
	case 1: return (uint64_t)(int64_t)-(rnd() % 200);    /* negative: AT_FDCWD, -1 */
	case 2: return 1ULL << (rnd() % 64);                 /* one bit */
	case 3: return rnd();                                /* anything */
	case 4: return 0;
	case 5: return (uint64_t)(buf + (rnd() % 16) * 64);  /* a path */
	case 6: return (uint64_t)(buf + (rnd() % 8192) * 8); /* aligned pointer in buf */
	case 7: return 1;                                    /* bad pointer */
	case 8: return 0xffff800000000000ULL;                /* kernel address */
	case 9: return (uint64_t)(buf + 65536 - (rnd() % 16)); /* runs off the end */
	case 10: return rnd() % 4096;
	default: return rnd() % 0x100000;
	}
}

static void tick(int sig) { (void)sig; }

int main(int argc, char **argv) {
	enter(argc, argv);
	if (argc < 4) return 2;
	state = strtoull(argv[2], NULL, 0) | 1;
	long n = strtol(argv[3], NULL, 0);
	/* buf is followed by an unmapped page. */
	char *m = mmap(NULL, 65536 + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(m + 65536, 4096);
	buf = m;
	mkdir("d", 0755);
	close(open("a", O_CREAT | O_RDWR, 0644));
	symlink("a", "lnk");
	mkfifo("fifo", 0644);
	struct sigaction sa = {.sa_handler = tick};
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct itimerval it = {{0, 5000}, {0, 5000}};
	setitimer(ITIMER_REAL, &it, NULL);
	/* Random writes go nowhere. */
	int null = open("/dev/null", O_RDWR);
	for (int fd = 0; fd < 3; fd++)
		dup2(null, fd);
	long ok = 0;
	for (long i = 0; i < n; i++) {
		if (i % 64 == 0) refill();
		long nr = calls[rnd() % (sizeof calls / sizeof *calls)];
		uint64_t a[6];
		for (int j = 0; j < 6; j++) a[j] = arg();
		if (nr == SYS_umask) a[0] &= 0777;
		long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		if (r >= 0) ok++;
	}
	it = (struct itimerval){0};
	setitimer(ITIMER_REAL, &it, NULL);
	(void)ok;
	return 0; /* every call returned */
}
