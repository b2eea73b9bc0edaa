package cri

import (
	"errors"
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Annotation keys that containerd's CRI plugin writes into the OCI runtime
// spec of every sandbox and container it asks a runtime to create. A shim
// reads them to group containers into pods and to size the pod's sandbox.
const (
	// AnnotationContainerType is ContainerTypeSandbox for the pod's sandbox
	// (the pause container) and ContainerTypeContainer for the others.
	AnnotationContainerType = "io.kubernetes.cri.container-type"
	// AnnotationSandboxID is the CRI id of the pod sandbox; on the sandbox
	// itself it equals the container id.
	AnnotationSandboxID = "io.kubernetes.cri.sandbox-id"
	// AnnotationSandboxName, -Namespace and -UID identify the Kubernetes pod.
	AnnotationSandboxName      = "io.kubernetes.cri.sandbox-name"
	AnnotationSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	AnnotationSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	// AnnotationSandboxLogDir is where the kubelet wants the pod's logs.
	AnnotationSandboxLogDir = "io.kubernetes.cri.sandbox-log-directory"
	// AnnotationContainerName is the container's name within its pod.
	AnnotationContainerName = "io.kubernetes.cri.container-name"
	// AnnotationImageName is the image reference the container was created from.
	AnnotationImageName = "io.kubernetes.cri.image-name"
	// The pod-level resources the kubelet passed in the sandbox config
	// (LinuxPodSandboxConfig.Resources), set on the sandbox only, as
	// decimal integers: CFS quota and period in µs, shares, memory bytes.
	AnnotationSandboxCPUQuota  = "io.kubernetes.cri.sandbox-cpu-quota"
	AnnotationSandboxCPUPeriod = "io.kubernetes.cri.sandbox-cpu-period"
	AnnotationSandboxCPUShares = "io.kubernetes.cri.sandbox-cpu-shares"
	AnnotationSandboxMemory    = "io.kubernetes.cri.sandbox-memory"
	// AnnotationRuntimeHandler names the CRI runtime handler (e.g. "moat").
	AnnotationRuntimeHandler = "io.containerd.cri.runtime-handler"
)

// ContainerType is the value of AnnotationContainerType.
type ContainerType string

const (
	ContainerTypeSandbox   ContainerType = "sandbox"
	ContainerTypeContainer ContainerType = "container"
)

// ErrNotCRI is returned by FromSpec for a spec that carries no CRI
// container-type annotation (a container made by ctr or another client).
var ErrNotCRI = errors.New("not a CRI container: no " + AnnotationContainerType + " annotation")

// Info is what CRI tells a runtime about one sandbox or container through
// its OCI spec. Zero values mean "not given".
type Info struct {
	Type          ContainerType
	SandboxID     string
	ContainerName string
	PodName       string
	PodNamespace  string
	PodUID        string
	LogDirectory  string
	ImageName     string
	Handler       string

	// Pod-level resources (sandbox only); 0 when absent.
	CPUQuota    int64 // µs per period; <= 0 means no limit
	CPUPeriod   int64 // µs
	CPUShares   int64
	MemoryLimit int64 // bytes; <= 0 means no limit

	// CPUSet is linux.resources.cpu.cpus of the spec ("0-3,6"), if any.
	CPUSet string
	// ContainerCPUQuota/Period are linux.resources.cpu of the spec itself.
	ContainerCPUQuota  int64
	ContainerCPUPeriod int64
}

// IsSandbox reports whether the spec is that of the pod's sandbox.
func (i *Info) IsSandbox() bool { return i.Type == ContainerTypeSandbox }

// PodCPULimit is the pod's CPU limit in CPUs from the sandbox annotations,
// 0 when the pod has none.
func (i *Info) PodCPULimit() float64 { return CPULimit(i.CPUQuota, i.CPUPeriod) }

// FromSpec reads the CRI annotations and CPU resources of an OCI runtime
// spec. The spec comes from containerd on the runtime's behalf, yet every
// value is checked: an unknown container type, a container without a
// sandbox id, or a resource annotation that is not a decimal integer is an
// error naming the key and value.
func FromSpec(s *specs.Spec) (*Info, error) {
	if s == nil {
		return nil, errors.New("read CRI annotations: nil OCI spec")
	}
	a := s.Annotations
	typ, ok := a[AnnotationContainerType]
	if !ok {
		return nil, ErrNotCRI
	}
	info := &Info{
		Type:          ContainerType(typ),
		SandboxID:     a[AnnotationSandboxID],
		ContainerName: a[AnnotationContainerName],
		PodName:       a[AnnotationSandboxName],
		PodNamespace:  a[AnnotationSandboxNamespace],
		PodUID:        a[AnnotationSandboxUID],
		LogDirectory:  a[AnnotationSandboxLogDir],
		ImageName:     a[AnnotationImageName],
		Handler:       a[AnnotationRuntimeHandler],
	}
	switch info.Type {
	case ContainerTypeSandbox, ContainerTypeContainer:
	default:
		return nil, fmt.Errorf("read CRI annotations: %s=%q is neither %q nor %q",
			AnnotationContainerType, typ, ContainerTypeSandbox, ContainerTypeContainer)
	}
	if info.SandboxID == "" {
		return nil, fmt.Errorf("read CRI annotations: %s container without %s", typ, AnnotationSandboxID)
	}
	for _, f := range []struct {
		key string
		dst *int64
	}{
		{AnnotationSandboxCPUQuota, &info.CPUQuota},
		{AnnotationSandboxCPUPeriod, &info.CPUPeriod},
		{AnnotationSandboxCPUShares, &info.CPUShares},
		{AnnotationSandboxMemory, &info.MemoryLimit},
	} {
		v, ok := a[f.key]
		if !ok || v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("read CRI annotations: %s=%q: %w", f.key, v, err)
		}
		*f.dst = n
	}
	if s.Linux != nil && s.Linux.Resources != nil && s.Linux.Resources.CPU != nil {
		c := s.Linux.Resources.CPU
		info.CPUSet = c.Cpus
		if c.Quota != nil {
			info.ContainerCPUQuota = *c.Quota
		}
		if c.Period != nil {
			info.ContainerCPUPeriod = int64(*c.Period)
		}
	}
	return info, nil
}
