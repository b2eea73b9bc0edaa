package main

import (
	"flag"
	"fmt"
	"io"

	"moat.dev/moat/kvm"
)

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("moat check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON (for the node agent)")
	device := fs.String("device", "", "KVM device (default $MOAT_KVM_DEVICE or /dev/kvm)")
	exits := fs.Int("exits", 2000, "guest exits to time for the round-trip figure")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "moat check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	r := kvm.Check(kvm.CheckOptions{Device: *device, MeasureExits: *exits})
	if *asJSON {
		stdout.Write(r.JSON())
	} else {
		printReport(stdout, &r)
	}
	if !r.Available {
		fmt.Fprintf(stderr, "moat: cannot run here: %s\n", r.Reason)
		return 1
	}
	return 0
}

func printReport(w io.Writer, r *kvm.Report) {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	fmt.Fprintf(w, "KVM device:        %s\n", r.Device)
	fmt.Fprintf(w, "available:         %s\n", yes(r.Available))
	if !r.Available {
		return
	}
	fmt.Fprintf(w, "API version:       %d\n", r.APIVersion)
	fmt.Fprintf(w, "virtualization:    %s\n", r.Hypervisor)
	fmt.Fprintf(w, "nested (node is a VM): %s\n", yes(r.Nested))
	fmt.Fprintf(w, "host CPUs:         %d\n", r.HostCPUs)
	fmt.Fprintf(w, "max vCPUs per pod: %d (KVM recommends %d)\n", r.MaxVCPUs, r.RecommendedVCPUs)
	if r.ExitSamples > 0 {
		fmt.Fprintf(w, "guest exit round trip: %.1f µs (mean of %d)\n", float64(r.ExitRoundTrip.Nanoseconds())/1000, r.ExitSamples)
	}
	fmt.Fprintf(w, "capabilities:\n")
	for _, c := range r.Capabilities {
		need := "optional"
		if c.Required {
			need = "required"
		}
		mark := "ok"
		if !c.OK {
			mark = "missing"
		}
		fmt.Fprintf(w, "  %-24s %-8s %-8s %d\n", c.Name, need, mark, c.Value)
	}
}
