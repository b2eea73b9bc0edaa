package shim

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// TestInfoFeatures: containerd reads the runtime features from the shim's
// Info; recursive read-only mounts are offered, user namespaces are not.
func TestInfoFeatures(t *testing.T) {
	info, err := NewManager(RuntimeType).Info(context.Background(), strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if info.Features == nil {
		t.Fatal("no features in the runtime info")
	}
	v, err := typeurl.UnmarshalAny(info.Features)
	if err != nil {
		t.Fatalf("decode features: %v", err)
	}
	f, ok := v.(*features.Features)
	if !ok {
		t.Fatalf("features are a %T", v)
	}
	if !slices.Contains(f.MountOptions, "rro") || f.Linux != nil {
		t.Errorf("features %+v: want rro and no Linux section", f)
	}
}
