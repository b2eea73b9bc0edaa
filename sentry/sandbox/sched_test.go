package sandbox_test

import (
	"fmt"
	"testing"

	"moat.dev/moat/sentry/sandbox/sandboxtest"
)

// TestCPULimit: four threads that spin share the sandbox's vCPUs. The time
// the threads hold a vCPU (CLOCK_THREAD_CPUTIME_ID: time running user code)
// adds up to at most the wall time with --cpus 1 and well past it with
// --cpus 2, whatever else loads the host; every thread progresses either
// way (time slices).
func TestCPULimit(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "burner", `
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <time.h>
static atomic_long progress[4];
static double cpu[4];
static void *burn(void *arg) {
	long id = (long)arg;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		for (volatile int i = 0; i < 20000; i++) {}
		atomic_fetch_add(&progress[id], 1);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < 1500);
	struct timespec c;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c);
	cpu[id] = c.tv_sec + c.tv_nsec / 1e9;
	return 0;
}
int main(void) {
	pthread_t th[4];
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < 4; i++) pthread_create(&th[i], 0, burn, (void *)i);
	for (int i = 0; i < 4; i++) pthread_join(th[i], 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	int all = 1;
	double sum = 0;
	for (int i = 0; i < 4; i++) { all &= progress[i] > 0; sum += cpu[i]; }
	double wall = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("all_progressed=%d ratio=%.2f\n", all, sum / wall);
	return 0;
}`)
	for _, cpus := range []int{1, 2} {
		r := sandboxtest.Run(t, root, []string{"/bin/burner"}, sandboxtest.Options{CPUs: cpus})
		var all int
		var ratio float64
		if _, err := fmt.Sscanf(r.Stdout, "all_progressed=%d ratio=%f", &all, &ratio); err != nil || all != 1 {
			t.Fatalf("--cpus %d: %q (stderr %q): %v", cpus, r.Stdout, r.Stderr, err)
		}
		t.Logf("--cpus %d: threads held vCPUs for %.2f× the wall time", cpus, ratio)
		if cpus == 1 && ratio > 1.3 {
			t.Errorf("--cpus 1 used %.2f CPUs", ratio)
		}
		if cpus == 2 && ratio < 1.5 {
			t.Errorf("--cpus 2 used only %.2f CPUs", ratio)
		}
	}
}
