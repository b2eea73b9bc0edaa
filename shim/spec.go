package shim

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"moat.dev/moat/sentry/control"
)

// pidHost is what pidNamespaceMode returns for a spec that keeps the
// host's PID namespace (CRI NamespaceMode NODE, hostPID).
const pidHost = "host"

// pidNamespaceMode reads which PID namespace an application container's
// spec asks for, as containerd writes it from the CRI NamespaceOption:
//
//   - a "pid" namespace with a path (the sandbox task's
//     /proc/<pid>/ns/pid): join the pod's (NamespaceMode POD);
//   - a "pid" namespace without a path: a new one of its own
//     (NamespaceMode CONTAINER);
//   - no "pid" namespace: the host's (NamespaceMode NODE).
//
// The sentry is the only kernel a sandbox's processes have, so the path
// is not opened: any path means the pod's namespace.
func pidNamespaceMode(sp *specs.Spec) (string, error) {
	if sp.Linux == nil {
		return pidHost, nil
	}
	found := ""
	for _, ns := range sp.Linux.Namespaces {
		if ns.Type != specs.PIDNamespace {
			continue
		}
		if found != "" {
			return "", fmt.Errorf("the spec names the pid namespace twice")
		}
		found = control.PIDNamespaceContainer
		if ns.Path != "" {
			if !filepath.IsAbs(ns.Path) {
				return "", fmt.Errorf("pid namespace path %q is not absolute", ns.Path)
			}
			found = control.PIDNamespacePod
		}
	}
	if found == "" {
		return pidHost, nil
	}
	return found, nil
}

// withHostSubmounts adds, after each read-only bind mount that is not
// recursively read-only (OCI option "ro" without "rro"), the host mounts
// found below its source, as mounts of their own with their own
// read-only state: an rbind carries them along on Linux and "ro" makes
// only the top one read-only. The sentry reaches a host directory as one
// filesystem, so without them a submount would be read-only too.
//
// mountInfo is the mountinfo file to read (/proc/self/mountinfo).
func withHostSubmounts(ms []control.Mount, mountInfo string) []control.Mount {
	var infos []hostMount
	out := make([]control.Mount, 0, len(ms))
	for _, m := range ms {
		out = append(out, m)
		if !isBind(m.Options, m.Type) || !has(m.Options, "ro") || has(m.Options, "rro") || !has(m.Options, "rbind") {
			continue
		}
		src, err := filepath.EvalSymlinks(m.Source)
		if err != nil {
			continue // PrepareContainer reports it
		}
		if st, err := os.Stat(src); err != nil || !st.IsDir() {
			continue
		}
		if infos == nil {
			if infos, err = readMountInfo(mountInfo); err != nil {
				continue
			}
		}
		for _, hm := range infos {
			rel, ok := strings.CutPrefix(hm.point, src+"/")
			if !ok || src == "/" && hm.point == "/" {
				continue
			}
			opts := []string{"rbind", "rw"}
			if hm.readOnly {
				opts[1] = "ro"
			}
			out = append(out, control.Mount{Destination: path.Join(m.Destination, rel), Type: "bind", Source: hm.point, Options: opts})
		}
	}
	return out
}

// hostMount is one line of mountinfo.
type hostMount struct {
	point    string
	readOnly bool
}

// readMountInfo reads the mount points of a mountinfo file, in its
// order (a parent before what is mounted below it).
func readMountInfo(p string) ([]hostMount, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close()
	var out []hostMount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		ro := false
		for _, o := range strings.Split(fields[5], ",") {
			if o == "ro" {
				ro = true
			}
		}
		out = append(out, hostMount{point: unescapeMountInfo(fields[4]), readOnly: ro})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return out, nil
}

// unescapeMountInfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountInfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v := 0
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + int(c-'0')
			}
			if ok {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func has(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

func isBind(opts []string, typ string) bool {
	return typ == "bind" || typ == "rbind" || has(opts, "bind") || has(opts, "rbind")
}

// runtimeFeatures are the OCI runtime features of the shim and its
// sentry: the mount options the sentry understands (rro: read-only
// with everything below it).
func runtimeFeatures() *features.Features {
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		MountOptions: []string{
			"bind", "rbind", "ro", "rro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
			"noatime", "atime", "relatime", "strictatime", "norelatime", "nostrictatime",
			"private", "rprivate", "slave", "rslave",
		},
	}
}
