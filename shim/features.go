package shim

import (
	"fmt"

	"github.com/containerd/containerd/api/types"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features is what the runtime tells containerd it supports (the OCI
// runtime features document, as `runc features` prints it). containerd's
// CRI reads two things from it: the "rro" mount option (recursive
// read-only mounts: a read-only mount of the sentry is read-only all the
// way down, since a host directory is reached through a descriptor and
// its submounts are no mounts of the sandbox) and user namespaces with
// idmapped mounts (not offered: no Linux section).
func Features() *features.Features {
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		MountOptions: []string{
			"atime", "bind", "defaults", "dev", "diratime", "exec", "gid", "mode",
			"noatime", "nodev", "nodiratime", "noexec", "norelatime", "nostrictatime",
			"nosuid", "rbind", "relatime", "ro", "rro", "rw", "size", "strictatime",
			"suid", "uid",
		},
	}
}

// runtimeInfo describes the runtime to containerd (the shim's -info).
func runtimeInfo(name string) (*types.RuntimeInfo, error) {
	f, err := typeurl.MarshalAnyToProto(Features())
	if err != nil {
		return nil, fmt.Errorf("marshal runtime features: %w", err)
	}
	return &types.RuntimeInfo{Name: name, Version: &types.RuntimeVersion{Version: "moat"}, Features: f}, nil
}
