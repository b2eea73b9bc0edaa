package harness

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

// PauseImage is the sandbox image containerd v2.4.2 pins
// (`containerd config default`: pinned_images.sandbox). The harness builds
// and imports an image of that name, since no registry is reachable.
const PauseImage = "registry.k8s.io/pause:3.10.2"

// Handler names the CRI runtime handlers the harness configures.
const (
	HandlerRunc = "runc"
	HandlerMoat = "moat"
	// MoatRuntimeType is the containerd runtime type of the moat shim;
	// containerd maps it to the binary containerd-shim-moat-v2.
	MoatRuntimeType = "io.containerd.moat.v2"
)

// configTemplate is a containerd v2.4 (schema version 4) configuration
// that moves every default path under the harness's own root and state
// folders, so a run never touches a system containerd. In version 4 the
// sockets are set in the grpc and ttrpc server plugins (a top-level [grpc]
// table is ignored).
var configTemplate = template.Must(template.New("config").Funcs(template.FuncMap{"q": tomlQuote}).Parse(`# Written by moat's e2e harness; private to one test run.
version = 4
root = {{q .Root}}
state = {{q .State}}
temp = {{q .Temp}}
imports = [{{q .ConfD}}]
oom_score = 0

[debug]
  level = 'info'

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = {{q .Socket}}
  [plugins.'io.containerd.server.v1.ttrpc']
    address = {{q .TTRPCSocket}}
  [plugins.'io.containerd.server.v1.debug']
    address = ''
  [plugins.'io.containerd.server.v1.metrics']
    address = ''
  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = {{q .ShimSocketDir}}
  [plugins.'io.containerd.internal.v1.opt']
    path = {{q .Opt}}
  [plugins.'io.containerd.image-verifier.v1.bindir']
    bin_dir = {{q .ImageVerifierDir}}
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
    socket_path = {{q .NRISocket}}
    plugin_path = {{q .NRIPluginDir}}
    plugin_config_path = {{q .NRIConfDir}}
  [plugins.'io.containerd.transfer.v1.local']
    config_path = {{q .CertsD}}

  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = {{q .PauseImage}}
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = {{q .CertsD}}

  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'

  [plugins.'io.containerd.cri.v1.runtime']
    # No process but pid 1 may raise oom_score_adj here (no CAP_SYS_RESOURCE
    # in the test's user namespace); without this every pod fails.
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = [{{q .CDIDir}}]
    enable_criu = false

    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [{{q .CNIBinDir}}]
      conf_dir = {{q .CNIConfDir}}
      max_conf_num = 1

    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        sandboxer = 'podsandbox'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = {{q .Runc}}
          Root = {{q .RuncRoot}}
          SystemdCgroup = false
{{- if .MoatShim}}

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.moat]
        runtime_type = {{q .MoatRuntimeType}}
        runtime_path = {{q .MoatShim}}
        sandboxer = 'podsandbox'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.moat.options]
          ConfigPath = {{q .MoatConfig}}
{{- end}}
`))

// configData is what configTemplate fills in.
type configData struct {
	Root, State, Temp, ConfD              string
	Socket, TTRPCSocket, ShimSocketDir    string
	Opt, ImageVerifierDir                 string
	NRISocket, NRIPluginDir, NRIConfDir   string
	CertsD, CDIDir, CNIBinDir, CNIConfDir string
	PauseImage, Runc, RuncRoot            string
	MoatShim, MoatConfig, MoatRuntimeType string
}

// tomlQuote renders s as a TOML basic string.
func tomlQuote(s string) string { return strconv.Quote(s) }

func renderConfig(d configData) (string, error) {
	var b strings.Builder
	if err := configTemplate.Execute(&b, d); err != nil {
		return "", fmt.Errorf("render containerd config: %w", err)
	}
	return b.String(), nil
}

func (e *Env) configData() configData {
	return configData{
		Root:             e.Root,
		State:            filepath.Join(e.State, "containerd"),
		Temp:             filepath.Join(e.Root, "tmp"),
		ConfD:            filepath.Join(e.ConfDir, "*.toml"),
		Socket:           e.Socket,
		TTRPCSocket:      e.Socket + ".ttrpc",
		ShimSocketDir:    filepath.Join(e.State, "s"),
		Opt:              filepath.Join(e.Root, "opt"),
		ImageVerifierDir: filepath.Join(e.Root, "image-verifier"),
		NRISocket:        filepath.Join(e.State, "nri.sock"),
		NRIPluginDir:     filepath.Join(e.Root, "nri", "plugins"),
		NRIConfDir:       filepath.Join(e.Root, "nri", "conf.d"),
		CertsD:           filepath.Join(e.Root, "certs.d"),
		CDIDir:           filepath.Join(e.Root, "cdi"),
		CNIBinDir:        e.Tools.CNIBinDir,
		CNIConfDir:       filepath.Join(e.State, "cni", "net.d"),
		PauseImage:       PauseImage,
		Runc:             e.Tools.Runc,
		RuncRoot:         filepath.Join(e.State, "runc"),
		MoatShim:         e.opts.MoatShim,
		MoatConfig:       e.opts.MoatConfig,
		MoatRuntimeType:  MoatRuntimeType,
	}
}
