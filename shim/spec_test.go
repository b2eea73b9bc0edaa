package shim

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"moat.dev/moat/sentry/control"
)

// TestPIDNamespaceMode: how containerd's spec says which PID namespace a
// container gets (CRI POD, CONTAINER, NODE).
func TestPIDNamespaceMode(t *testing.T) {
	ns := func(n ...specs.LinuxNamespace) *specs.Spec {
		return &specs.Spec{Linux: &specs.Linux{Namespaces: n}}
	}
	net := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/var/run/netns/x"}
	for _, c := range []struct {
		spec    *specs.Spec
		want    string
		wantErr bool
	}{
		{ns(net, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: "/proc/42/ns/pid"}), control.PIDNamespacePod, false},
		{ns(net, specs.LinuxNamespace{Type: specs.PIDNamespace}), control.PIDNamespaceContainer, false},
		{ns(net), pidHost, false}, // the shim maps it to control.PIDNamespaceSandbox
		{&specs.Spec{}, pidHost, false},
		{ns(specs.LinuxNamespace{Type: specs.PIDNamespace, Path: "proc/42/ns/pid"}), "", true},
		{ns(specs.LinuxNamespace{Type: specs.PIDNamespace}, specs.LinuxNamespace{Type: specs.PIDNamespace}), "", true},
	} {
		got, err := pidNamespaceMode(c.spec)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("pidNamespaceMode(%+v) = %q, %v; want %q (error %v)", c.spec.Linux, got, err, c.want, c.wantErr)
		}
	}
}

// TestHostSubmounts: a plain read-only bind gets the host mounts below
// its source as mounts of their own; rro and writable binds do not.
func TestHostSubmounts(t *testing.T) {
	src := t.TempDir()
	src, _ = filepath.EvalSymlinks(src)
	os.MkdirAll(filepath.Join(src, "tmpfs"), 0o755)
	os.MkdirAll(filepath.Join(src, "ro dir"), 0o755)
	info := filepath.Join(t.TempDir(), "mountinfo")
	lines := fmt.Sprintf(`22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
90 22 0:50 / %[1]s/tmpfs rw,relatime shared:2 - tmpfs none rw
91 22 0:51 / %[1]s/ro\040dir ro,relatime shared:3 - tmpfs none rw
92 22 0:52 / %[1]sx rw,relatime shared:4 - tmpfs none rw
`, src)
	if err := os.WriteFile(info, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	ro := control.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: []string{"rbind", "rprivate", "ro"}}
	got := withHostSubmounts([]control.Mount{ro}, info)
	want := []control.Mount{ro,
		{Destination: "/mnt/tmpfs", Type: "bind", Source: src + "/tmpfs", Options: []string{"rbind", "rw"}},
		{Destination: "/mnt/ro dir", Type: "bind", Source: src + "/ro dir", Options: []string{"rbind", "ro"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plain ro bind:\n got %+v\nwant %+v", got, want)
	}
	for _, opts := range [][]string{{"rbind", "ro", "rro"}, {"rbind", "rw"}} {
		m := control.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: opts}
		if got := withHostSubmounts([]control.Mount{m}, info); len(got) != 1 {
			t.Errorf("options %v: submounts added: %+v", opts, got)
		}
	}
}

// TestInfoFeatures: the runtime's info carries its OCI features, with
// recursive read-only mounts, as containerd reads them.
func TestInfoFeatures(t *testing.T) {
	info, err := (&Manager{name: "moat"}).Info(t.Context(), strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	v, err := typeurl.UnmarshalAny(info.Features)
	if err != nil {
		t.Fatalf("features: %v", err)
	}
	f, ok := v.(*features.Features)
	if !ok || !slices.Contains(f.MountOptions, "rro") {
		t.Errorf("features %T %+v: want runtime-spec features with rro", v, v)
	}
}
