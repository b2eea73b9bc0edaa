// Command moat runs containers in KVM sandboxes without Kubernetes and
// reports whether a node can run them.
//
//	moat check [--json] [--device PATH] [--exits N]
//	moat demo
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `moat runs each container in its own KVM-backed application kernel.

Usage:
  moat demo                                         run a Go program and busybox in a KVM sandbox
  moat run [flags] -- CMD [ARG...]                  run a container in a KVM sandbox
  moat check [--json] [--device PATH] [--exits N]   report whether this node can run moat

Run "moat COMMAND --help" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "hello": // what moat demo runs inside its sandbox
		return cmdHello(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "moat: unknown command %q\n\n%s", args[0], usage)
	return 2
}
