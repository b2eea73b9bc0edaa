package kvm

import (
	"encoding/json"
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
