package control

import (
	"fmt"
	"sort"
	"strings"

	"moat.dev/moat/sentry/fs/procfs"
)

// SysctlKind says where one sysctl of an OCI spec lives for a sandbox.
type SysctlKind int

const (
	// SysctlNet is a sysctl of the pod's network namespace
	// (/proc/sys/net): whoever runs the sentry writes it there.
	SysctlNet SysctlKind = iota + 1
	// SysctlSandbox is one the sandbox keeps itself (IPC and UTS ones,
	// procfs.IsSandboxSysctl): it goes to the sentry in Config.Sysctls
	// or AddContainerArgs.Sysctls.
	SysctlSandbox
)

// maxSysctlValue bounds a sysctl's value (Linux reads at most a page).
const maxSysctlValue = 4096

// CheckSysctl validates one sysctl of an OCI spec (linux.sysctl) for a
// sandbox and says where it lives. hostNet says the sandbox uses the
// host's network namespace, where no net.* sysctl may be set (as runc
// refuses them there). Any sysctl that is neither in the network
// namespace nor one the sandbox keeps is refused, naming it.
func CheckSysctl(name, value string, hostNet bool) (SysctlKind, error) {
	if procfs.IsSandboxSysctl(name) {
		if _, err := procfs.CheckSandboxSysctl(name, value); err != nil {
			return 0, err
		}
		return SysctlSandbox, nil
	}
	if !strings.HasPrefix(name, "net.") {
		return 0, fmt.Errorf("sysctl %q is not supported in a moat sandbox (only net.* and the IPC and UTS sysctls are namespaced)", name)
	}
	if _, err := NetSysctlPath(name); err != nil {
		return 0, err
	}
	if len(value) > maxSysctlValue || strings.ContainsAny(value, "\n\x00") {
		return 0, fmt.Errorf("sysctl %s: value %q has a newline or NUL or is longer than %d bytes", name, value, maxSysctlValue)
	}
	if hostNet {
		return 0, fmt.Errorf("sysctl %q is not allowed in the host's network namespace", name)
	}
	return SysctlNet, nil
}

// NetSysctlPath turns a net.* sysctl name into its path under /proc/sys
// ("net/ipv4/ip_forward"): dotted components of letters, digits, '_' and
// '-' only, so the path cannot leave /proc/sys/net.
func NetSysctlPath(name string) (string, error) {
	parts := strings.Split(name, ".")
	if len(parts) < 2 || parts[0] != "net" {
		return "", fmt.Errorf("sysctl %q is not a net.* sysctl", name)
	}
	for _, p := range parts {
		if p == "" {
			return "", fmt.Errorf("sysctl %q has an empty component", name)
		}
		for _, c := range p {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return "", fmt.Errorf("sysctl %q has a character %q that no net.* sysctl name has", name, c)
			}
		}
	}
	return strings.Join(parts, "/"), nil
}

// SplitSysctls validates every sysctl of a spec (CheckSysctl) and splits
// them into the network namespace's and the sandbox's own.
func SplitSysctls(sysctls map[string]string, hostNet bool) (netSysctls, sandboxSysctls map[string]string, err error) {
	names := make([]string, 0, len(sysctls))
	for name := range sysctls {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		kind, err := CheckSysctl(name, sysctls[name], hostNet)
		if err != nil {
			return nil, nil, err
		}
		m := &netSysctls
		if kind == SysctlSandbox {
			m = &sandboxSysctls
		}
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[name] = sysctls[name]
	}
	return netSysctls, sandboxSysctls, nil
}
