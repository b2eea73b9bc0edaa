// Command containerd-shim-moat-v2 is moat's containerd shim (runtime type
// io.containerd.moat.v2). Started by containerd it serves the task API of
// one pod; started with the hidden first argument "sentry" it is that
// pod's sentry process, driven by the shim over its control sockets.
package main

import (
	"context"
	"fmt"
	"os"

	cshim "github.com/containerd/containerd/v2/pkg/shim"

	"moat.dev/moat/sentry/control"
	"moat.dev/moat/shim"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == shim.SentryArg {
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: containerd-shim-moat-v2 sentry CONFIG-JSON (started by the shim)")
			os.Exit(2)
		}
		os.Exit(control.RunSentry(os.Args[2], os.Stderr))
	}
	// The shim waits for its sentry itself: containerd's reaper would
	// take the sentry's exit status.
	cshim.RunShim(context.Background(), shim.NewManager(shim.RuntimeType), func(c *cshim.Config) {
		c.NoReaper = true
		c.NoSubreaper = true
	})
}
