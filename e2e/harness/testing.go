package harness

import (
	"context"
	"os"
	"testing"
)

// RequireE2E is the environment variable that turns missing e2e tools into
// test failures instead of skips (CI sets it).
const RequireE2E = "MOAT_REQUIRE_E2E"

// Required reports whether MOAT_REQUIRE_E2E=1.
func Required() bool { return os.Getenv(RequireE2E) == "1" }

// SkipOrFail ends the test for a harness that could not start: with
// missing tools it skips, naming them, unless MOAT_REQUIRE_E2E=1, and
// every other error fails the test.
func SkipOrFail(t testing.TB, err error) {
	t.Helper()
	if IsMissingTools(err) && !Required() {
		t.Skipf("skipping e2e test (set %s=1 to make this a failure): %v", RequireE2E, err)
	}
	t.Fatal(err)
}

// Start is New for one test: it skips or fails as SkipOrFail says, logs
// through t, and closes the harness when the test ends (failing the test
// if teardown leaves anything behind).
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	e, err := New(context.Background(), opts)
	if err != nil {
		SkipOrFail(t, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("containerd log (last lines):\n%s", e.ContainerdLogTail(40))
		}
		if err := e.Close(); err != nil {
			t.Errorf("harness teardown: %v", err)
		}
	})
	return e
}
