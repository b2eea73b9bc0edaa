/* Files and directories: open, stat, getdents, names, metadata. */
#include "check.h"
#include <dirent.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <utime.h>

static int write_file(const char *p, const char *s) {
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) return -1;
	int n = write(fd, s, strlen(s));
	close(fd);
	return n;
}

static const char *read_file(const char *p) {
	static char buf[256];
	int fd = open(p, O_RDONLY);
	if (fd < 0) return "<open failed>";
	int n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n < 0 ? 0 : n] = 0;
	return buf;
}

static void test_open(void) {
	int fd;
	EXPECT_OK(fd = open("a", O_RDWR | O_CREAT | O_EXCL, 0600));
	EXPECT_EQ(write(fd, "hello world", 11), 11);
	EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 11);
	char buf[32] = {0};
	EXPECT_EQ(pread(fd, buf, 5, 6), 5);
	EXPECT_STR(buf, "world");
	EXPECT_ERR(open("a", O_RDWR | O_CREAT | O_EXCL, 0600), EEXIST);
	EXPECT_ERR(open("missing", O_RDONLY), ENOENT);
	EXPECT_ERR(open("a/x", O_RDONLY), ENOTDIR);
	EXPECT_ERR(open("a", O_RDONLY | O_DIRECTORY), ENOTDIR);
	EXPECT_ERR(open(".", O_WRONLY), EISDIR);
	EXPECT_ERR(open("newdir/", O_CREAT | O_WRONLY, 0600), EISDIR);
	EXPECT_ERR(syscall(SYS_open, BAD_PTR, O_RDONLY), EFAULT);
	EXPECT_ERR(syscall(SYS_openat, 9999, "a", O_RDONLY), EBADF);
	EXPECT_ERR(openat(fd, "x", O_RDONLY), ENOTDIR);
	EXPECT_ERR(open("", O_RDONLY), ENOENT);
	char longname[300];
	memset(longname, 'n', 299);
	longname[299] = 0;
	EXPECT_ERR(open(longname, O_RDONLY | O_CREAT, 0600), ENAMETOOLONG);
	EXPECT_OK(close(fd));
	EXPECT_ERR(close(fd), EBADF);

	/* creat truncates. */
	EXPECT_OK(fd = creat("a", 0600));
	struct stat st;
	EXPECT_OK(fstat(fd, &st));
	EXPECT_EQ(st.st_size, 0);
	close(fd);

	/* O_APPEND writes at the end whatever the offset. */
	EXPECT_EQ(write_file("ap", "12345"), 5);
	EXPECT_OK(fd = open("ap", O_WRONLY | O_APPEND));
	EXPECT_EQ(write(fd, "67", 2), 2);
	EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 7);
	close(fd);
	EXPECT_STR(read_file("ap"), "1234567");

	/* O_PATH: no I/O, but fstat works. */
	EXPECT_OK(fd = open("ap", O_PATH));
	EXPECT_ERR(read(fd, buf, 1), EBADF);
	EXPECT_OK(fstat(fd, &st));
	EXPECT_EQ(st.st_size, 7);
	EXPECT_EQ(fcntl(fd, F_GETFL) & O_PATH, O_PATH);
	close(fd);

	/* Symbolic links: loops and O_NOFOLLOW. */
	EXPECT_OK(symlink("loop2", "loop1"));
	EXPECT_OK(symlink("loop1", "loop2"));
	EXPECT_ERR(open("loop1", O_RDONLY), ELOOP);
	EXPECT_OK(symlink("ap", "lnk"));
	EXPECT_ERR(open("lnk", O_RDONLY | O_NOFOLLOW), ELOOP);
	EXPECT_STR(read_file("lnk"), "1234567");
	EXPECT_OK(fd = open("lnk", O_PATH | O_NOFOLLOW));
	EXPECT_EQ(readlinkat(fd, "", buf, sizeof buf), 2);
	close(fd);
	EXPECT_ERR(symlink("x", "lnk"), EEXIST);
	EXPECT_ERR(symlink("", "emptylink"), ENOENT);
}

static void test_openat2(void) {
	struct open_how how = {.flags = O_RDONLY};
	int dfd;
	EXPECT_OK(mkdir("jail", 0755));
	EXPECT_EQ(write_file("jail/inside", "in"), 2);
	EXPECT_OK(dfd = open("jail", O_RDONLY | O_DIRECTORY));
	how.resolve = RESOLVE_IN_ROOT;
	int fd;
	EXPECT_OK(fd = syscall(SYS_openat2, dfd, "/inside", &how, sizeof how));
	close(fd);
	EXPECT_OK(fd = syscall(SYS_openat2, dfd, "../../../inside", &how, sizeof how));
	close(fd);
	EXPECT_ERR(syscall(SYS_openat2, dfd, "inside", &how, 8), EINVAL);
	how.resolve = 1 << 20;
	EXPECT_ERR(syscall(SYS_openat2, dfd, "inside", &how, sizeof how), EINVAL);
	how.resolve = 0;
	how.flags = 1ULL << 40;
	EXPECT_ERR(syscall(SYS_openat2, dfd, "inside", &how, sizeof how), EINVAL);
	how.flags = O_RDONLY;
	how.mode = 0644;
	EXPECT_ERR(syscall(SYS_openat2, dfd, "inside", &how, sizeof how), EINVAL);
	how.mode = 0;
	char big[64] = {0};
	memcpy(big, &how, sizeof how);
	EXPECT_OK(fd = syscall(SYS_openat2, dfd, "inside", big, sizeof big));
	close(fd);
	big[40] = 1;
	EXPECT_ERR(syscall(SYS_openat2, dfd, "inside", big, sizeof big), E2BIG);
	EXPECT_ERR(syscall(SYS_openat2, dfd, "inside", BAD_PTR, sizeof how), EFAULT);
	close(dfd);
}

static void test_stat(void) {
	struct stat st, lst;
	EXPECT_OK(stat("lnk", &st));
	EXPECT_OK(lstat("lnk", &lst));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_TRUE(S_ISLNK(lst.st_mode));
	EXPECT_EQ(lst.st_size, 2);
	EXPECT_ERR(stat("missing", &st), ENOENT);
	EXPECT_ERR(stat("ap/", &st), ENOTDIR);
	EXPECT_ERR(syscall(SYS_stat, "ap", BAD_PTR), EFAULT);
	EXPECT_ERR(syscall(SYS_stat, BAD_PTR, &st), EFAULT);
	EXPECT_ERR(fstatat(AT_FDCWD, "ap", &st, 0x40000), EINVAL);
	int fd = open("ap", O_RDONLY);
	EXPECT_OK(fstatat(fd, "", &st, AT_EMPTY_PATH));
	EXPECT_EQ(st.st_size, 7);
	EXPECT_ERR(fstatat(fd, "", &st, 0), ENOENT);
	EXPECT_ERR(fstat(9999, &st), EBADF);
	close(fd);

	struct statx sx;
	EXPECT_OK(statx(AT_FDCWD, "ap", 0, STATX_BASIC_STATS, &sx));
	EXPECT_EQ(sx.stx_size, 7);
	EXPECT_EQ(sx.stx_mask & STATX_BASIC_STATS, STATX_BASIC_STATS);
	EXPECT_TRUE(S_ISREG(sx.stx_mode));
	EXPECT_OK(statx(AT_FDCWD, "lnk", AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx));
	EXPECT_TRUE(S_ISLNK(sx.stx_mode));
	EXPECT_ERR(statx(AT_FDCWD, "ap", 0x80000000, STATX_BASIC_STATS, &sx), EINVAL);
	EXPECT_ERR(statx(AT_FDCWD, "ap", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx), EINVAL);
	EXPECT_ERR(statx(AT_FDCWD, "ap", 0, 0x80000000U, &sx), EINVAL);
	EXPECT_ERR(statx(AT_FDCWD, "ap", 0, STATX_BASIC_STATS, BAD_PTR), EFAULT);

	struct statfs sfs;
	EXPECT_OK(statfs(".", &sfs));
	EXPECT_TRUE(sfs.f_bsize > 0);
	EXPECT_ERR(fstatfs(9999, &sfs), EBADF);
	EXPECT_ERR(statfs("missing", &sfs), ENOENT);
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static void test_getdents(void) {
	EXPECT_OK(mkdir("many", 0755));
	char p[64];
	for (int i = 0; i < 40; i++) {
		snprintf(p, sizeof p, "many/file-with-a-longish-name-%02d", i);
		EXPECT_EQ(write_file(p, "x"), 1);
	}
	EXPECT_OK(mkdir("many/sub", 0755));
	int fd = open("many", O_RDONLY | O_DIRECTORY);
	EXPECT_OK(fd);
	char buf[200];
	int entries = 0, dirs = 0, regs = 0, calls = 0;
	long n;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
		calls++;
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (void *)(buf + off);
			entries++;
			if (d->d_type == DT_DIR) dirs++;
			if (d->d_type == DT_REG) regs++;
			off += d->d_reclen;
		}
	}
	EXPECT_EQ(n, 0);
	EXPECT_EQ(entries, 43);
	EXPECT_EQ(dirs, 3);
	EXPECT_EQ(regs, 40);
	EXPECT_TRUE(calls > 5);
	/* Rewind and read again. */
	EXPECT_EQ(lseek(fd, 0, SEEK_SET), 0);
	EXPECT_TRUE(syscall(SYS_getdents64, fd, buf, sizeof buf) > 0);
	EXPECT_ERR(syscall(SYS_getdents64, fd, buf, 4), EINVAL);
	EXPECT_ERR(syscall(SYS_getdents64, fd, BAD_PTR, sizeof buf), EFAULT);
	close(fd);
	EXPECT_ERR(syscall(SYS_getdents64, 9999, buf, sizeof buf), EBADF);
	fd = open("ap", O_RDONLY);
	EXPECT_ERR(syscall(SYS_getdents64, fd, buf, sizeof buf), ENOTDIR);
	close(fd);

	/* The old getdents, through readdir's cousin. */
	fd = open("many", O_RDONLY | O_DIRECTORY);
	entries = 0;
	while ((n = syscall(SYS_getdents, fd, buf, sizeof buf)) > 0) {
		for (long off = 0; off < n;) {
			unsigned short reclen = *(unsigned short *)(buf + off + 16);
			unsigned char type = buf[off + reclen - 1];
			if (strcmp(buf + off + 18, "sub") == 0) EXPECT_EQ(type, DT_DIR);
			entries++;
			off += reclen;
		}
	}
	EXPECT_EQ(entries, 43);
	close(fd);

	DIR *d = opendir("many");
	int seen = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, "file-with-a-longish-name-17") == 0) seen++;
	closedir(d);
	EXPECT_EQ(seen, 1);
}

static void test_names(void) {
	struct stat st;
	EXPECT_OK(mkdir("d", 0755));
	EXPECT_ERR(mkdir("d", 0755), EEXIST);
	EXPECT_ERR(mkdir("no/such/dir", 0755), ENOENT);
	EXPECT_ERR(mkdir("ap/sub", 0755), ENOTDIR);
	EXPECT_EQ(write_file("d/f", "f"), 1);
	EXPECT_ERR(rmdir("d"), ENOTEMPTY);
	EXPECT_ERR(rmdir("ap"), ENOTDIR);
	EXPECT_ERR(rmdir("d/."), EINVAL);
	EXPECT_ERR(unlink("d"), EISDIR);
	EXPECT_ERR(unlink("missing"), ENOENT);
	EXPECT_ERR(unlinkat(AT_FDCWD, "d/f", 0x1), EINVAL);
	EXPECT_OK(mkdir("e", 0755));
	EXPECT_OK(unlinkat(AT_FDCWD, "e", AT_REMOVEDIR));
	EXPECT_ERR(stat("e", &st), ENOENT);

	/* rename */
	EXPECT_OK(mkdir("r", 0755));
	EXPECT_EQ(write_file("r/one", "1"), 1);
	EXPECT_EQ(write_file("r/two", "2"), 1);
	EXPECT_OK(mkdir("r/dir", 0755));
	EXPECT_ERR(rename("r/one", "r/dir"), EISDIR);
	EXPECT_ERR(rename("r/dir", "r/one"), ENOTDIR);
	EXPECT_ERR(rename("r/dir", "r/dir/inner"), EINVAL);
	EXPECT_ERR(rename("r/missing", "r/x"), ENOENT);
	EXPECT_ERR(renameat2(AT_FDCWD, "r/one", AT_FDCWD, "r/two", RENAME_NOREPLACE), EEXIST);
	EXPECT_OK(renameat2(AT_FDCWD, "r/one", AT_FDCWD, "r/two", RENAME_EXCHANGE));
	EXPECT_STR(read_file("r/one"), "2");
	EXPECT_STR(read_file("r/two"), "1");
	EXPECT_ERR(renameat2(AT_FDCWD, "r/one", AT_FDCWD, "r/two", RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
	EXPECT_ERR(renameat2(AT_FDCWD, "r/one", AT_FDCWD, "r/two", 0x100), EINVAL);
	EXPECT_OK(rename("r/one", "r/two"));
	EXPECT_STR(read_file("r/two"), "2");
	EXPECT_ERR(stat("r/one", &st), ENOENT);
	EXPECT_OK(rename("r/dir", "r/dir2"));
	EXPECT_OK(stat("r/dir2", &st));

	/* link */
	EXPECT_OK(link("r/two", "r/hard"));
	EXPECT_OK(stat("r/two", &st));
	EXPECT_EQ(st.st_nlink, 2);
	EXPECT_ERR(link("r/two", "r/hard"), EEXIST);
	EXPECT_ERR(link("r/dir2", "r/dirlink"), EPERM);
	EXPECT_ERR(link("r/missing", "r/x"), ENOENT);
	EXPECT_ERR(linkat(AT_FDCWD, "r/two", AT_FDCWD, "r/x", 0x2), EINVAL);
	EXPECT_OK(unlink("r/two"));
	EXPECT_STR(read_file("r/hard"), "2");

	/* readlink */
	char buf[64];
	EXPECT_EQ(readlink("lnk", buf, sizeof buf), 2);
	EXPECT_EQ(readlink("lnk", buf, 1), 1);
	EXPECT_ERR(readlink("ap", buf, sizeof buf), EINVAL);
	EXPECT_ERR(readlink("lnk", buf, 0), EINVAL);
	EXPECT_ERR(readlink("missing", buf, sizeof buf), ENOENT);
	EXPECT_ERR(syscall(SYS_readlink, "lnk", BAD_PTR, 10), EFAULT);

	/* mknod: FIFOs and regular files. */
	EXPECT_OK(mknod("fifo", S_IFIFO | 0600, 0));
	EXPECT_OK(stat("fifo", &st));
	EXPECT_TRUE(S_ISFIFO(st.st_mode));
	EXPECT_OK(mknod("plain", S_IFREG | 0600, 0));
	EXPECT_OK(stat("plain", &st));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_ERR(mknod("fifo", S_IFIFO | 0600, 0), EEXIST);
	EXPECT_ERR(mknod("bad", 0170000 | 0600, 0), EINVAL);
	EXPECT_OK(mkfifoat(AT_FDCWD, "fifo2", 0600));
}

static void test_metadata(void) {
	struct stat st;
	mode_t old = umask(022);
	umask(old);
	EXPECT_EQ(umask(027), old);
	int fd = open("masked", O_CREAT | O_WRONLY, 0777);
	close(fd);
	EXPECT_OK(stat("masked", &st));
	EXPECT_EQ(st.st_mode & 0777, 0750);
	EXPECT_OK(mkdir("maskeddir", 0777));
	EXPECT_OK(stat("maskeddir", &st));
	EXPECT_EQ(st.st_mode & 0777, 0750);
	umask(022);

	EXPECT_OK(chmod("masked", 0604));
	EXPECT_OK(stat("masked", &st));
	EXPECT_EQ(st.st_mode & 07777, 0604);
	fd = open("masked", O_RDONLY);
	EXPECT_OK(fchmod(fd, 0640));
	EXPECT_OK(fstat(fd, &st));
	EXPECT_EQ(st.st_mode & 07777, 0640);
	EXPECT_OK(fchown(fd, 1234, 5678));
	EXPECT_OK(fstat(fd, &st));
	EXPECT_EQ(st.st_uid, 1234);
	EXPECT_EQ(st.st_gid, 5678);
	close(fd);
	EXPECT_OK(chown("masked", -1, 42));
	EXPECT_OK(stat("masked", &st));
	EXPECT_EQ(st.st_uid, 1234);
	EXPECT_EQ(st.st_gid, 42);
	EXPECT_OK(lchown("lnk", 7, 7));
	EXPECT_OK(lstat("lnk", &st));
	EXPECT_EQ(st.st_uid, 7);
	EXPECT_ERR(fchownat(AT_FDCWD, "masked", 0, 0, 0x4), EINVAL);
	EXPECT_ERR(fchmodat(AT_FDCWD, "missing", 0644, 0), ENOENT);
	EXPECT_ERR(fchmod(9999, 0644), EBADF);

	EXPECT_OK(access("masked", F_OK));
	EXPECT_OK(access("masked", R_OK | W_OK));
	EXPECT_ERR(access("missing", F_OK), ENOENT);
	EXPECT_ERR(access("masked", 0x10), EINVAL);
	EXPECT_ERR(syscall(SYS_faccessat2, AT_FDCWD, "masked", F_OK, 0x1), EINVAL);
	EXPECT_OK(syscall(SYS_faccessat2, AT_FDCWD, "masked", R_OK, AT_EACCESS));
	EXPECT_ERR(access("masked", X_OK), EACCES);

	/* Times. */
	struct timespec ts[2] = {{.tv_sec = 1000000, .tv_nsec = 5}, {.tv_sec = 2000000, .tv_nsec = 7}};
	EXPECT_OK(utimensat(AT_FDCWD, "masked", ts, 0));
	EXPECT_OK(stat("masked", &st));
	EXPECT_EQ(st.st_atim.tv_sec, 1000000);
	EXPECT_EQ(st.st_mtim.tv_sec, 2000000);
	EXPECT_EQ(st.st_mtim.tv_nsec, 7);
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = 3000000;
	EXPECT_OK(utimensat(AT_FDCWD, "masked", ts, 0));
	EXPECT_OK(stat("masked", &st));
	EXPECT_EQ(st.st_atim.tv_sec, 1000000);
	EXPECT_EQ(st.st_mtim.tv_sec, 3000000);
	ts[1].tv_nsec = 1000000000;
	EXPECT_ERR(utimensat(AT_FDCWD, "masked", ts, 0), EINVAL);
	EXPECT_ERR(utimensat(AT_FDCWD, "masked", NULL, 0x2), EINVAL);
	struct timeval tv[2] = {{.tv_sec = 4000000}, {.tv_sec = 5000000}};
	EXPECT_OK(utimes("masked", tv));
	EXPECT_OK(stat("masked", &st));
	EXPECT_EQ(st.st_mtim.tv_sec, 5000000);
	tv[0].tv_usec = 2000000;
	EXPECT_ERR(utimes("masked", tv), EINVAL);
	struct utimbuf ub = {.actime = 6000000, .modtime = 7000000};
	EXPECT_OK(utime("masked", &ub));
	EXPECT_OK(stat("masked", &st));
	EXPECT_EQ(st.st_mtim.tv_sec, 7000000);
	EXPECT_OK(utime("masked", NULL));
	EXPECT_OK(stat("masked", &st));
	EXPECT_TRUE(st.st_mtim.tv_sec > 7000000);
	fd = open("masked", O_RDONLY);
	ts[0] = (struct timespec){.tv_sec = 10};
	ts[1] = (struct timespec){.tv_sec = 20};
	EXPECT_OK(futimens(fd, ts));
	EXPECT_OK(fstat(fd, &st));
	EXPECT_EQ(st.st_mtim.tv_sec, 20);
	close(fd);

	/* Sizes. */
	EXPECT_OK(truncate("masked", 10000));
	EXPECT_OK(stat("masked", &st));
	EXPECT_EQ(st.st_size, 10000);
	EXPECT_ERR(truncate("masked", -1), EINVAL);
	EXPECT_ERR(truncate("d", 0), EISDIR);
	EXPECT_ERR(truncate("missing", 0), ENOENT);
	fd = open("masked", O_RDONLY);
	EXPECT_ERR(ftruncate(fd, 0), EINVAL);
	close(fd);
	fd = open("masked", O_RDWR);
	EXPECT_OK(ftruncate(fd, 3));
	EXPECT_OK(fstat(fd, &st));
	EXPECT_EQ(st.st_size, 3);
	EXPECT_ERR(ftruncate(fd, -5), EINVAL);
	EXPECT_OK(fallocate(fd, 0, 0, 8192));
	EXPECT_OK(fstat(fd, &st));
	EXPECT_EQ(st.st_size, 8192);
	EXPECT_OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 100000));
	EXPECT_OK(fstat(fd, &st));
	EXPECT_EQ(st.st_size, 8192);
	EXPECT_ERR(fallocate(fd, 0, -1, 10), EINVAL);
	EXPECT_ERR(fallocate(fd, 0, 0, 0), EINVAL);
	EXPECT_ERR(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 10), EOPNOTSUPP);
	EXPECT_OK(fsync(fd));
	EXPECT_OK(fdatasync(fd));
	EXPECT_OK(syncfs(fd));
	close(fd);
	EXPECT_ERR(fsync(9999), EBADF);
	sync();
}

static void test_cwd(void) {
	char buf[4096];
	EXPECT_OK(chdir("d"));
	EXPECT_TRUE(getcwd(buf, sizeof buf) != NULL);
	size_t n = strlen(buf);
	EXPECT_TRUE(n >= 2 && strcmp(buf + n - 2, "/d") == 0);
	EXPECT_ERR(syscall(SYS_getcwd, buf, 1), ERANGE);
	EXPECT_ERR(syscall(SYS_getcwd, BAD_PTR, sizeof buf), EFAULT);
	EXPECT_EQ(syscall(SYS_getcwd, buf, sizeof buf), (long)n + 1);
	EXPECT_OK(chdir(".."));
	EXPECT_ERR(chdir("ap"), ENOTDIR);
	EXPECT_ERR(chdir("missing"), ENOENT);
	int fd = open("d", O_RDONLY | O_DIRECTORY);
	EXPECT_OK(fchdir(fd));
	EXPECT_TRUE(getcwd(buf, sizeof buf) != NULL);
	EXPECT_TRUE(strcmp(buf + strlen(buf) - 2, "/d") == 0);
	EXPECT_OK(chdir(".."));
	close(fd);
	fd = open("ap", O_RDONLY);
	EXPECT_ERR(fchdir(fd), ENOTDIR);
	close(fd);
	EXPECT_ERR(fchdir(9999), EBADF);

	/* chroot in a child: the root moves and ".." stops there. */
	pid_t pid = fork();
	if (pid == 0) {
		if (chroot("jail") != 0) _exit(10);
		if (chdir("/") != 0) _exit(11);
		if (access("/inside", F_OK) != 0) _exit(12);
		if (access("/../../inside", F_OK) != 0) _exit(13);
		if (!getcwd(buf, sizeof buf) || strcmp(buf, "/") != 0) _exit(14);
		_exit(0);
	}
	int status;
	EXPECT_EQ(waitpid(pid, &status, 0), pid);
	EXPECT_EQ(status, 0);
	EXPECT_ERR(chroot("missing"), ENOENT);
	EXPECT_ERR(chroot("ap"), ENOTDIR);
}

static void test_edges(void) {
	char buf[64];
	struct stat st;
	int fd;
	EXPECT_ERR(readlink("", buf, sizeof buf), ENOENT);
	EXPECT_ERR(open("/", O_RDONLY | O_CREAT, 0644), EISDIR);
	EXPECT_ERR(mkdir("/", 0755), EEXIST);
	EXPECT_ERR(rmdir("/"), EBUSY);
	EXPECT_ERR(rmdir("."), EINVAL);
	EXPECT_ERR(rmdir(".."), ENOTEMPTY);
	EXPECT_ERR(unlink(""), ENOENT);
	EXPECT_ERR(stat("lnk/", &st), ENOTDIR);
	EXPECT_OK(stat("d/", &st));
	EXPECT_ERR(rename("ap", "ap2/"), ENOTDIR);
	EXPECT_ERR(mkdir("", 0755), ENOENT);
	EXPECT_ERR(symlink("x", ""), ENOENT);
	EXPECT_ERR(link("ap", ""), ENOENT);
	EXPECT_OK(mkdir("trail/", 0755));
	EXPECT_OK(rmdir("trail/"));
	/* O_PATH descriptors: only a few calls work. */
	EXPECT_OK(fd = open("d", O_PATH | O_DIRECTORY));
	char dbuf[256];
	EXPECT_ERR(syscall(SYS_getdents64, fd, dbuf, sizeof dbuf), EBADF);
	EXPECT_ERR(fchmod(fd, 0755), EBADF);
	EXPECT_ERR(fchown(fd, 0, 0), EBADF);
	EXPECT_ERR(fcntl(fd, F_SETFL, O_NONBLOCK), EBADF);
	EXPECT_ERR(flock(fd, LOCK_SH), EBADF);
	EXPECT_OK(fstatat(fd, "", &st, AT_EMPTY_PATH));
	EXPECT_TRUE(S_ISDIR(st.st_mode));
	int fd2;
	EXPECT_OK(fd2 = dup(fd));
	close(fd2);
	int f2 = openat(fd, "f", O_RDONLY);
	EXPECT_OK(f2);
	EXPECT_ERR(ftruncate(f2, 0), EINVAL);
	close(f2);
	EXPECT_OK(fchdir(fd));
	EXPECT_OK(chdir(".."));
	close(fd);
	/* linkat of a descriptor (AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH). */
	EXPECT_OK(fd = open("ap", O_RDONLY));
	EXPECT_OK(linkat(fd, "", AT_FDCWD, "ap-linked", AT_EMPTY_PATH));
	close(fd);
	EXPECT_STR(read_file("ap-linked"), "1234567");
	/* fstat of a pipe through fstatat. */
	int p[2];
	EXPECT_OK(pipe(p));
	EXPECT_OK(fstatat(p[0], "", &st, AT_EMPTY_PATH));
	EXPECT_TRUE(S_ISFIFO(st.st_mode));
	EXPECT_ERR(openat(p[0], "x", O_RDONLY), ENOTDIR);
	close(p[0]);
	close(p[1]);
}

int main(int argc, char **argv) {
	enter(argc, argv);
	test_open();
	test_openat2();
	test_stat();
	test_getdents();
	test_names();
	test_metadata();
	test_cwd();
	test_edges();
	return done();
}
