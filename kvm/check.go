package kvm

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Capability is one KVM capability moat asks the kernel about.
type Capability struct {
	Name     string `json:"name"`
	ID       int    `json:"id"`
	Value    int    `json:"value"`
	Required bool   `json:"required"`
	OK       bool   `json:"ok"`
}

// Report is what Check found out about a node's KVM: whether moat can run
// there and, if not, the one-line reason. It is the output of `moat check
// --json` and what the node agent serves and labels nodes from.
type Report struct {
	Device           string        `json:"device"`
	Available        bool          `json:"available"`
	Reason           string        `json:"reason,omitempty"`
	APIVersion       int           `json:"apiVersion"`
	Capabilities     []Capability  `json:"capabilities"`
	MaxVCPUs         int           `json:"maxVCPUs"`
	RecommendedVCPUs int           `json:"recommendedVCPUs"`
	HostCPUs         int           `json:"hostCPUs"`
	Hypervisor       string        `json:"hypervisor"` // vmx, svm, pvm or unknown
	Nested           bool          `json:"nested"`     // the node is itself a virtual machine
	ExitRoundTrip    time.Duration `json:"exitRoundTripNs"`
	ExitSamples      int           `json:"exitSamples"`
}

// JSON returns the report as indented JSON.
func (r *Report) JSON() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return append(b, '\n')
}

// CheckOptions configures Check.
type CheckOptions struct {
	// Device is the KVM device ("" for $MOAT_KVM_DEVICE or /dev/kvm).
	Device string
	// MeasureExits is how many guest exits to time (0: none).
	MeasureExits int
}

// Check finds out whether moat can run on this node: the KVM device opens,
// speaks the right API and has every capability moat needs, a VM with a
// vCPU in long mode can be built, and (if asked) the round trip of a guest
// exit. It never fails: a node that cannot run moat gets Available false
// and the reason.
func Check(opts CheckOptions) Report {
	r := Report{Device: DevicePath(opts.Device), HostCPUs: runtime.NumCPU()}
	r.Hypervisor, r.Nested = hostVirtualization()
	dev, err := OpenDevice(r.Device)
	if err != nil {
		r.Reason = err.Error()
		return r
	}
	r.APIVersion = dev.APIVersion
	r.Capabilities = dev.Capabilities
	r.MaxVCPUs = dev.MaxVCPUs()
	if r.MaxVCPUs > maxVCPUs {
		r.MaxVCPUs = maxVCPUs
	}
	r.RecommendedVCPUs = dev.RecommendedVCPUs()
	vm, err := newVM(dev, Config{VCPUs: 1, PageTableMemory: 1 << 20})
	if err != nil {
		dev.Close()
		r.Reason = fmt.Sprintf("cannot build a guest: %v", err)
		return r
	}
	defer vm.Close()
	n := opts.MeasureExits
	if n < 1 {
		n = 1 // run the guest at least once: it proves ring 3 and the exit path work
	}
	d, err := measureExits(vm, n)
	if err != nil {
		r.Reason = fmt.Sprintf("guest does not run: %v", err)
		return r
	}
	if opts.MeasureExits > 0 {
		r.ExitRoundTrip = d
		r.ExitSamples = n
	}
	r.Available = true
	return r
}

// measureExits runs a user-mode loop of SYSCALL instructions for n exits
// and returns the mean round trip of one Switch.
func measureExits(vm *VM, n int) (time.Duration, error) {
	as, err := vm.NewAddressSpace()
	if err != nil {
		return 0, err
	}
	defer as.Release()
	r, err := vm.AddRegion(2 << 20)
	if err != nil {
		return 0, err
	}
	page, err := vm.Memory(r.GPA, pageSize)
	if err != nil {
		return 0, err
	}
	copy(page, []byte{0x0f, 0x05, 0xeb, 0xfc}) // syscall; jmp .-4
	const va = 0x400000
	if err := as.Map(va, r.GPA, pageSize, PermRead|PermExec); err != nil {
		return 0, err
	}
	c := vm.Acquire()
	defer vm.Release(c)
	fp := vm.NewFPState()
	regs := &Registers{RIP: va, RSP: 0x800000, RFLAGS: 0x202}
	// One warm-up exit loads the FP state and the address space.
	if e, err := c.Switch(as, regs, fp); err != nil || e.Kind != ExitSyscall {
		return 0, fmt.Errorf("first exit: %v %v", e, err)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		e, err := c.Switch(as, regs, fp)
		if err != nil {
			return 0, err
		}
		if e.Kind != ExitSyscall {
			return 0, fmt.Errorf("exit %d: got %v at rip %#x, want a syscall", i, e, regs.RIP)
		}
	}
	return time.Since(start) / time.Duration(n), nil
}

// hostVirtualization reports the virtualization extension KVM uses here
// (vmx, svm, or pvm for the paravirtualized module on nested clouds) and
// whether this node is itself a virtual machine.
func hostVirtualization() (kind string, nested bool) {
	kind = "unknown"
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "flags") {
				continue
			}
			for _, f := range strings.Fields(line) {
				switch f {
				case "vmx", "svm":
					kind = f
				case "hypervisor":
					nested = true
				}
			}
			break
		}
	}
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		kind = "pvm"
	}
	return kind, nested
}
