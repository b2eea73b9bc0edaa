package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"moat.dev/moat/kvm"
)

// Metrics are the agent's Prometheus metrics, on their own registry.
type Metrics struct {
	Registry         *prometheus.Registry
	kvmAvailable     prometheus.Gauge
	kvmNested        prometheus.Gauge
	exitRoundTrip    prometheus.Gauge
	maxVCPUs         prometheus.Gauge
	sandboxesRunning prometheus.Gauge
	capacity         prometheus.Gauge
	installState     *prometheus.GaugeVec
	restarts         prometheus.Counter
	errors           *prometheus.CounterVec
	info             *prometheus.GaugeVec
}

var allStates = []string{StateInstalling, StateReady, StateCleanup, StateFailed, "unsupported"}

// NewMetrics creates the metrics and registers them (with the Go and
// process collectors) on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		kvmAvailable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "moat_node_kvm_available", Help: "1 when /dev/kvm opens and has every capability moat needs.",
		}),
		kvmNested: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "moat_node_kvm_nested", Help: "1 when the node is itself a virtual machine (nested virtualization).",
		}),
		exitRoundTrip: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "moat_node_kvm_exit_round_trip_seconds", Help: "Measured time of one guest exit and re-entry (0 when not measured).",
		}),
		maxVCPUs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "moat_node_kvm_max_vcpus", Help: "KVM's maximum vCPUs per virtual machine.",
		}),
		sandboxesRunning: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "moat_node_sandboxes_running", Help: "Ready pod sandboxes of the moat runtime handler on this node.",
		}),
		capacity: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "moat_node_sandbox_capacity", Help: "The moat.dev/sandbox capacity advertised for this node.",
		}),
		installState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "moat_node_install_state", Help: "1 for the agent's current install state, 0 for the others.",
		}, []string{"state"}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "moat_node_containerd_restarts_total", Help: "containerd restarts the agent caused.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_node_errors_total", Help: "Failed steps of the agent, by step.",
		}, []string{"step"}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "moat_node_info", Help: "Always 1: the node's hypervisor and containerd version as labels.",
		}, []string{"hypervisor", "containerd_version"}),
	}
	m.Registry.MustRegister(m.kvmAvailable, m.kvmNested, m.exitRoundTrip, m.maxVCPUs,
		m.sandboxesRunning, m.capacity, m.installState, m.restarts, m.errors, m.info,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *Metrics) setReport(r kvm.Report) {
	m.kvmAvailable.Set(b2f(r.Available))
	m.kvmNested.Set(b2f(r.Nested))
	m.exitRoundTrip.Set(r.ExitRoundTrip.Seconds())
	m.maxVCPUs.Set(float64(r.MaxVCPUs))
}

func (m *Metrics) setState(state string) {
	for _, s := range allStates {
		m.installState.WithLabelValues(s).Set(b2f(s == state))
	}
}

func (m *Metrics) setInfo(hypervisor, containerdVersion string) {
	m.info.Reset()
	m.info.WithLabelValues(hypervisor, containerdVersion).Set(1)
}
