package shim

import (
	"fmt"
	"os"
	"strings"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	toml "github.com/pelletier/go-toml/v2"
	"google.golang.org/protobuf/types/known/anypb"
)

// Options are moat's runtime options, a TOML file named by the handler's
// `options.ConfigPath` in containerd's configuration (or given inline as
// its config body):
//
//	max_vcpus = 4       # cap of a pod's vCPUs when it has no CPU limit (0: host CPUs)
//	log_level = "info"  # the sentry's log level: debug, info, warn, error
//	strace = false      # log every system call of the pod's processes
//
// Without a ConfigPath, containerd sends the handler's options table
// itself as the config body: moat's keys may then stand in that table,
// beside containerd's own (ConfigPath, TypeUrl), which are ignored.
type Options struct {
	MaxVCPUs int    `toml:"max_vcpus"`
	LogLevel string `toml:"log_level"`
	Strace   bool   `toml:"strace"`

	// containerd's keys of the options table.
	ConfigPath string `toml:"ConfigPath"`
	TypeURL    string `toml:"TypeUrl"`
}

// DefaultOptions are used when the handler names no configuration.
func DefaultOptions() Options { return Options{LogLevel: "info"} }

// ParseOptions reads moat's TOML options.
func ParseOptions(b []byte) (Options, error) {
	o := DefaultOptions()
	dec := toml.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return Options{}, fmt.Errorf("moat options: %w", err)
	}
	o.ConfigPath, o.TypeURL = "", ""
	if o.MaxVCPUs < 0 || o.MaxVCPUs > 1024 {
		return Options{}, fmt.Errorf("moat options: max_vcpus = %d is out of range 0..1024", o.MaxVCPUs)
	}
	switch o.LogLevel {
	case "", "trace", "debug", "info", "warn", "warning", "error":
	default:
		return Options{}, fmt.Errorf("moat options: unknown log_level %q", o.LogLevel)
	}
	return o, nil
}

// optionsFromAny reads the options a Create request carries: containerd
// sends a non-runc handler's options table as containerd.runtime.v1.Options
// (type_url, config_path, config_body).
func optionsFromAny(a *anypb.Any) (Options, error) {
	if a == nil || len(a.GetValue()) == 0 && a.GetTypeUrl() == "" {
		return DefaultOptions(), nil
	}
	v, err := typeurl.UnmarshalAny(a)
	if err != nil {
		return Options{}, fmt.Errorf("runtime options of type %q: %w", a.GetTypeUrl(), err)
	}
	ro, ok := v.(*runtimeoptions.Options)
	if !ok {
		return Options{}, fmt.Errorf("runtime options: unexpected type %T (%s)", v, a.GetTypeUrl())
	}
	switch {
	case ro.ConfigPath != "":
		b, err := os.ReadFile(ro.ConfigPath)
		if err != nil {
			return Options{}, fmt.Errorf("moat options: %w", err)
		}
		o, err := ParseOptions(b)
		if err != nil {
			return Options{}, fmt.Errorf("%s: %w", ro.ConfigPath, err)
		}
		return o, nil
	case len(ro.ConfigBody) > 0:
		return ParseOptions(ro.ConfigBody)
	}
	return DefaultOptions(), nil
}
