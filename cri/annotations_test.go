package cri

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestFromSpecSandbox(t *testing.T) {
	quota, period := int64(150000), uint64(100000)
	s := &specs.Spec{
		Annotations: map[string]string{
			AnnotationContainerType:    "sandbox",
			AnnotationSandboxID:        "abc123",
			AnnotationSandboxName:      "web",
			AnnotationSandboxNamespace: "default",
			AnnotationSandboxUID:       "uid-1",
			AnnotationSandboxLogDir:    "/var/log/pods/x",
			AnnotationSandboxCPUQuota:  "150000",
			AnnotationSandboxCPUPeriod: "100000",
			AnnotationSandboxCPUShares: "1536",
			AnnotationSandboxMemory:    "268435456",
			AnnotationRuntimeHandler:   "moat",
		},
		Linux: &specs.Linux{Resources: &specs.LinuxResources{CPU: &specs.LinuxCPU{
			Quota: &quota, Period: &period, Cpus: "0-3",
		}}},
	}
	got, err := FromSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	want := Info{
		Type: ContainerTypeSandbox, SandboxID: "abc123", PodName: "web", PodNamespace: "default",
		PodUID: "uid-1", LogDirectory: "/var/log/pods/x", Handler: "moat",
		CPUQuota: 150000, CPUPeriod: 100000, CPUShares: 1536, MemoryLimit: 256 << 20,
		CPUSet: "0-3", ContainerCPUQuota: 150000, ContainerCPUPeriod: 100000,
	}
	if *got != want {
		t.Errorf("FromSpec:\n got %+v\nwant %+v", *got, want)
	}
	if !got.IsSandbox() {
		t.Error("IsSandbox() = false for a sandbox")
	}
	if l := got.PodCPULimit(); l != 1.5 {
		t.Errorf("PodCPULimit() = %v, want 1.5", l)
	}
}

func TestFromSpecContainer(t *testing.T) {
	s := &specs.Spec{Annotations: map[string]string{
		AnnotationContainerType: "container",
		AnnotationSandboxID:     "abc123",
		AnnotationContainerName: "app",
		AnnotationImageName:     "busybox:latest",
	}}
	got, err := FromSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.IsSandbox() || got.ContainerName != "app" || got.SandboxID != "abc123" || got.ImageName != "busybox:latest" {
		t.Errorf("FromSpec = %+v", *got)
	}
	if got.PodCPULimit() != 0 || got.MemoryLimit != 0 {
		t.Errorf("container without resources has limits: %+v", *got)
	}
}

func TestFromSpecErrors(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		want string
	}{
		{"unknown type", map[string]string{AnnotationContainerType: "pod", AnnotationSandboxID: "x"}, `"pod"`},
		{"no sandbox id", map[string]string{AnnotationContainerType: "container"}, AnnotationSandboxID},
		{"bad quota", map[string]string{AnnotationContainerType: "sandbox", AnnotationSandboxID: "x",
			AnnotationSandboxCPUQuota: "1.5"}, AnnotationSandboxCPUQuota},
		{"bad memory", map[string]string{AnnotationContainerType: "sandbox", AnnotationSandboxID: "x",
			AnnotationSandboxMemory: "1Gi"}, AnnotationSandboxMemory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromSpec(&specs.Spec{Annotations: tt.ann})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("FromSpec error = %v, want one naming %s", err, tt.want)
			}
		})
	}
	if _, err := FromSpec(&specs.Spec{}); !errors.Is(err, ErrNotCRI) {
		t.Errorf("FromSpec(no annotations) = %v, want ErrNotCRI", err)
	}
	if _, err := FromSpec(nil); err == nil {
		t.Error("FromSpec(nil) gave no error")
	}
}
