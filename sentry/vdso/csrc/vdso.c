// The vDSO moat maps into every process: clock_gettime, gettimeofday,
// time and getcpu answered in user mode from the TSC and a parameter page
// the sentry keeps current, so that reading the clock costs no guest exit.
// Built by gen.sh into vdso.so, which the sentry embeds.

typedef unsigned long u64;
typedef long s64;
typedef unsigned int u32;

struct timespec_k { s64 tv_sec; s64 tv_nsec; };
struct timeval_k { s64 tv_sec; s64 tv_usec; };

// The parameter page, mapped one page below the vDSO (see vdso.lds).
// Layout shared with params.go.
struct params {
	volatile u32 seq;      // odd while the sentry updates the page
	u32 ready;             // 0: always use the syscall
	u64 tsc_base;          // guest TSC at the base instant
	s64 mono_base_ns;      // CLOCK_MONOTONIC at the base instant
	s64 real_base_ns;      // CLOCK_REALTIME at the base instant
	u64 mult;              // ns = (tsc - tsc_base) * mult >> shift
	u32 shift;
	u32 pad;
};

extern const struct params moat_params __attribute__((visibility("hidden")));

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_MONOTONIC_RAW 4
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7

static inline u64 rdtsc(void) {
	u32 lo, hi;
	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static inline long sys2(long nr, long a, long b) {
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
	return ret;
}

static inline long sys3(long nr, long a, long b, long c) {
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}

// now_ns reads clock (0: realtime, 1: monotonic) and returns 0, or -1 when
// the page is not ready.
static int now_ns(int realtime, s64 *out) {
	const struct params *p = &moat_params;
	u32 seq;
	s64 ns;
	do {
		seq = p->seq;
		__asm__ volatile("" ::: "memory");
		if (!p->ready)
			return -1;
		u64 delta = rdtsc() - p->tsc_base;
		if ((s64)delta < 0)
			delta = 0;
		ns = (realtime ? p->real_base_ns : p->mono_base_ns) +
		     (s64)(((unsigned __int128)delta * p->mult) >> p->shift);
		__asm__ volatile("" ::: "memory");
	} while ((seq & 1) || seq != p->seq);
	*out = ns;
	return 0;
}

int __vdso_clock_gettime(int clock, struct timespec_k *ts) {
	int realtime;
	switch (clock) {
	case CLOCK_REALTIME:
	case CLOCK_REALTIME_COARSE:
		realtime = 1;
		break;
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_MONOTONIC_COARSE:
	case CLOCK_BOOTTIME:
		realtime = 0;
		break;
	default:
		return sys2(228, clock, (long)ts);
	}
	s64 ns;
	if (now_ns(realtime, &ns) < 0)
		return sys2(228, clock, (long)ts);
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
	return 0;
}

int __vdso_gettimeofday(struct timeval_k *tv, void *tz) {
	s64 ns;
	if (now_ns(1, &ns) < 0)
		return sys2(96, (long)tv, (long)tz);
	if (tv) {
		tv->tv_sec = ns / 1000000000;
		tv->tv_usec = (ns % 1000000000) / 1000;
	}
	if (tz) {
		((int *)tz)[0] = 0;
		((int *)tz)[1] = 0;
	}
	return 0;
}

long __vdso_time(long *t) {
	s64 ns;
	if (now_ns(1, &ns) < 0)
		return sys2(201, (long)t, 0);
	long s = ns / 1000000000;
	if (t)
		*t = s;
	return s;
}

int __vdso_clock_getres(int clock, struct timespec_k *res) {
	switch (clock) {
	case CLOCK_REALTIME:
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_BOOTTIME:
	case CLOCK_REALTIME_COARSE:
	case CLOCK_MONOTONIC_COARSE:
		if (res) {
			res->tv_sec = 0;
			res->tv_nsec = 1;
		}
		return 0;
	}
	return sys2(229, clock, (long)res);
}

// getcpu: every task may run on any vCPU; report 0, as a process pinned to
// one CPU would see.
long __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused) {
	if (cpu)
		*cpu = 0;
	if (node)
		*node = 0;
	return 0;
}

int clock_gettime(int, struct timespec_k *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval_k *, void *) __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
int clock_getres(int, struct timespec_k *) __attribute__((weak, alias("__vdso_clock_getres")));
long getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
