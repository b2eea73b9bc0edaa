package sandbox_test

import (
	"testing"
	"time"

	"moat.dev/moat/sentry/sandbox/sandboxtest"
)

// TestSigsuspendPending: a signal that arrived while blocked is delivered
// as soon as sigsuspend's mask unblocks it (a shell's wait for its jobs
// relies on it), rather than sigsuspend sleeping for ever.
func TestSigsuspendPending(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "suspend", `
#include <errno.h>
#include <signal.h>
#include <stdio.h>
static volatile sig_atomic_t got;
static void handler(int sig) { got = sig; }
int main(void) {
	struct sigaction sa = {0};
	sa.sa_handler = handler;
	sigaction(SIGUSR1, &sa, 0);
	sigset_t block, empty;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigemptyset(&empty);
	sigprocmask(SIG_BLOCK, &block, 0);
	raise(SIGUSR1);
	int r = sigsuspend(&empty);
	sigset_t now;
	sigprocmask(SIG_SETMASK, 0, &now);
	printf("sigsuspend %d errno %d got %d still blocked %d\n", r, errno, got, sigismember(&now, SIGUSR1));
	return 0;
}`)
	r := sandboxtest.Run(t, root, []string{"/bin/suspend"}, sandboxtest.Options{Timeout: 20 * time.Second})
	if want := "sigsuspend -1 errno 4 got 10 still blocked 1\n"; r.ExitCode() != 0 || r.Stdout != want {
		t.Fatalf("exit %d stdout %q, want %q (stderr %q)", r.ExitCode(), r.Stdout, want, r.Stderr)
	}
}
