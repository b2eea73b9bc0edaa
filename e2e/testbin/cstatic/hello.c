/* A static glibc program for the e2e tests: it prints its arguments,
 * starts a thread, forks a child and reports the child's exit status,
 * exercising the C library's start-up, threads and process calls the way
 * real C programs do. Exits with the code given as its first argument. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *worker(void *arg) {
	printf("thread says %s\n", (const char *)arg);
	return NULL;
}

int main(int argc, char **argv) {
	pthread_t t;
	int status;
	pid_t pid;

	printf("hello from static C, argc=%d\n", argc);
	if (pthread_create(&t, NULL, worker, "hi") != 0 || pthread_join(t, NULL) != 0) {
		perror("thread");
		return 100;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 101;
	}
	if (pid == 0)
		_exit(7);
	if (waitpid(pid, &status, 0) != pid) {
		perror("waitpid");
		return 102;
	}
	printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return argc > 1 ? atoi(argv[1]) : 0;
}
