package node

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// RuntimeType is the containerd runtime type of the moat shim: containerd
// turns it into the binary name containerd-shim-moat-v2.
const RuntimeType = "io.containerd.moat.v2"

// OptionsTypeURL names the options containerd passes to the shim, so the shim
// can tell moat's options from anyone else's.
const OptionsTypeURL = "moat.dev/runtime-options"

// DropIn describes the containerd configuration file that registers the
// moat runtime handler.
type DropIn struct {
	Handler       string // runtime handler name, as RuntimeClass.handler says
	RuntimePath   string // absolute path of containerd-shim-moat-v2 on the host
	OptionsPath   string // absolute path of the moat runtime options file on the host, "" for none
	ConfigVersion int    // containerd config version to write: 3 (containerd 2.x) or 2 (containerd 1.7)
}

var handlerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Render returns the drop-in's TOML text. The same inputs always give the
// same bytes, so comparing against the file on disk tells whether anything
// changed.
func (d DropIn) Render() ([]byte, error) {
	tables, err := d.tables()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by moat-node: registers the %q runtime handler.\n", d.Handler)
	fmt.Fprintf(&b, "# moat-node rewrites or removes this file; edit the chart's values instead.\n")
	fmt.Fprintf(&b, "version = %d\n\n", d.ConfigVersion)
	b.WriteString(tables)
	return b.Bytes(), nil
}

// tables returns the runtime's TOML tables, without a version line.
func (d DropIn) tables() (string, error) {
	if !handlerName.MatchString(d.Handler) || len(d.Handler) > 63 {
		return "", fmt.Errorf("runtime handler %q: not a DNS label", d.Handler)
	}
	if !filepath.IsAbs(d.RuntimePath) || strings.ContainsAny(d.RuntimePath, "\"\\\n") {
		return "", fmt.Errorf("runtime path %q: must be an absolute path without quotes", d.RuntimePath)
	}
	if d.OptionsPath != "" && (!filepath.IsAbs(d.OptionsPath) || strings.ContainsAny(d.OptionsPath, "\"\\\n")) {
		return "", fmt.Errorf("runtime options path %q: must be an absolute path without quotes", d.OptionsPath)
	}
	plugin, err := criPlugin(d.ConfigVersion)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	table := fmt.Sprintf("plugins.%q.containerd.runtimes.%s", plugin, d.Handler)
	fmt.Fprintf(&b, "[%s]\n", table)
	fmt.Fprintf(&b, "  runtime_type = %q\n", RuntimeType)
	fmt.Fprintf(&b, "  runtime_path = %q\n", d.RuntimePath)
	fmt.Fprintf(&b, "  pod_annotations = [\"moat.dev/*\"]\n")
	fmt.Fprintf(&b, "  container_annotations = [\"moat.dev/*\"]\n")
	fmt.Fprintf(&b, "  privileged_without_host_devices = true\n")
	if d.OptionsPath != "" {
		fmt.Fprintf(&b, "\n[%s.options]\n", table)
		fmt.Fprintf(&b, "  TypeUrl = %q\n", OptionsTypeURL)
		fmt.Fprintf(&b, "  ConfigPath = %q\n", d.OptionsPath)
	}
	return b.String(), nil
}

// criPlugin is the CRI runtime plugin's name in a config of this version.
func criPlugin(configVersion int) (string, error) {
	switch configVersion {
	case 3:
		return "io.containerd.cri.v1.runtime", nil
	case 2:
		return "io.containerd.grpc.v1.cri", nil
	}
	return "", fmt.Errorf("containerd config version %d: moat supports 2 (containerd 1.7) and 3 (containerd 2.x)", configVersion)
}

// containerd 1.7 merges an imported file's plugin section over the main
// config's whole (a drop-in with only the moat runtime would take away
// runc and every other runtime of the node), so for it the tables go into
// the main config itself, between two marker lines that name them. The
// block starts with a newline of its own, so cutting it out gives the file
// back byte for byte.
const (
	inlineBegin = "\n# BEGIN moat-node: the moat runtime handler (containerd 1.7 cannot take it from a drop-in)\n"
	inlineEnd   = "# END moat-node\n"
)

func inlineBlock(tables string) string { return inlineBegin + tables + inlineEnd }

// cutInline returns data without moat's block, and whether it had one.
func cutInline(data []byte) ([]byte, bool) {
	s := string(data)
	i := strings.Index(s, inlineBegin)
	if i < 0 {
		return data, false
	}
	j := strings.Index(s[i:], inlineEnd)
	if j < 0 {
		return data, false
	}
	return []byte(s[:i] + s[i+j+len(inlineEnd):]), true
}

// mainConfig is the part of containerd's main config file moat reads.
type mainConfig struct {
	Version int      `toml:"version"`
	Imports []string `toml:"imports"`
}

func parseMainConfig(path string, data []byte) (mainConfig, error) {
	var c mainConfig
	if _, err := toml.Decode(string(data), &c); err != nil {
		return c, fmt.Errorf("parse containerd config %s: %w", path, err)
	}
	return c, nil
}

// importsCover reports whether containerd, reading a main config at
// mainPath with these imports, also reads dropIn (directly or by a glob).
func importsCover(mainPath string, imports []string, dropIn string) bool {
	for _, imp := range imports {
		p := filepath.Clean(imp)
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(mainPath), p)
		}
		if p == dropIn {
			return true
		}
		if strings.Contains(p, "*") {
			if ok, err := filepath.Match(p, dropIn); err == nil && ok {
				return true
			}
		}
	}
	return false
}

// The edits moat makes to containerd's main config are textual and exactly
// reversible: either one line `imports = ["<drop-in>*"]  # added by moat-node`
// placed before the first table, or the element `"<drop-in>*", ` put right
// after the opening bracket of an existing top-level imports array. Nothing
// else in the user's file is touched, and removing the same bytes gives the
// file back as it was.
const importsMarker = "  # added by moat-node"

func addedImportsLine(dropIn string) string {
	return fmt.Sprintf("imports = [%q]%s\n", importPattern(dropIn), importsMarker)
}

func addedImportsElement(dropIn string) string {
	return fmt.Sprintf("%q, ", importPattern(dropIn))
}

// importPattern is how the main config names the drop-in: as a glob that
// matches it, because containerd refuses to start when a plainly imported
// file is missing, and a glob that matches nothing is no error. So a
// drop-in deleted by hand (or by config management) never keeps
// containerd down.
func importPattern(dropIn string) string { return dropIn + "*" }

// createdMainConfig is what moat writes when the node has no containerd
// config file at all (containerd runs on its defaults).
func createdMainConfig(dropIn string, version int) string {
	return fmt.Sprintf("# Created by moat-node; removed again when moat is uninstalled.\nversion = %d\n%s", version, addedImportsLine(dropIn))
}

var (
	reTable   = regexp.MustCompile(`^\s*\[`)
	reImports = regexp.MustCompile(`^\s*imports\s*=\s*\[`)
	reVersion = regexp.MustCompile(`^\s*version\s*=\s*[0-9]+\s*(#.*)?$`)
)

// addImport returns data with dropIn added to the top-level imports. data is
// the main config's content (nil when the file does not exist).
func addImport(path string, data []byte, exists bool, dropIn string, version int) ([]byte, error) {
	if !exists {
		return []byte(createdMainConfig(dropIn, version)), nil
	}
	if _, err := parseMainConfig(path, data); err != nil {
		return nil, err
	}
	lines := strings.SplitAfter(string(data), "\n")
	insertAt := 0
	for i, l := range lines {
		if reTable.MatchString(l) {
			break
		}
		if loc := reImports.FindStringIndex(l); loc != nil {
			// Existing top-level imports array: add our element first.
			lines[i] = l[:loc[1]] + addedImportsElement(dropIn) + l[loc[1]:]
			return []byte(strings.Join(lines, "")), nil
		}
		if reVersion.MatchString(strings.TrimRight(l, "\r\n")) {
			insertAt = i + 1
		}
	}
	add := addedImportsLine(dropIn)
	if insertAt > 0 && !strings.HasSuffix(lines[insertAt-1], "\n") {
		// The version line ends the file without a newline: go before it, so
		// removing our line restores the file exactly.
		insertAt--
	}
	out := append([]string{}, lines[:insertAt]...)
	out = append(out, add)
	out = append(out, lines[insertAt:]...)
	return []byte(strings.Join(out, "")), nil
}

// removeImport undoes addImport. It returns the new content, whether the file
// should be deleted (moat created it), and whether anything was found to
// remove.
func removeImport(data []byte, dropIn string) (out []byte, remove bool, found bool) {
	s := string(data)
	for _, v := range []int{3, 2} {
		if s == createdMainConfig(dropIn, v) {
			return nil, true, true
		}
	}
	if i := strings.Index(s, addedImportsLine(dropIn)); i >= 0 {
		return []byte(s[:i] + s[i+len(addedImportsLine(dropIn)):]), false, true
	}
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if reTable.MatchString(l) {
			break
		}
		if loc := reImports.FindStringIndex(l); loc != nil && strings.HasPrefix(l[loc[1]:], addedImportsElement(dropIn)) {
			lines[i] = l[:loc[1]] + l[loc[1]+len(addedImportsElement(dropIn)):]
			return []byte(strings.Join(lines, "")), false, true
		}
	}
	return data, false, false
}

// ContainerdConfig edits containerd's configuration: the moat drop-in file
// and the main config's imports.
type ContainerdConfig struct {
	MainPath   string // containerd's main config, e.g. /etc/containerd/config.toml
	DropInPath string // where the moat drop-in goes, e.g. /etc/containerd/conf.d/moat.toml
}

// Ensure writes the drop-in and makes the main config import it. It reports
// whether any file changed (and so containerd must restart to see it).
func (c ContainerdConfig) Ensure(d DropIn) (changed bool, err error) {
	if !filepath.IsAbs(c.MainPath) || !filepath.IsAbs(c.DropInPath) {
		return false, fmt.Errorf("containerd config paths %q, %q: must be absolute", c.MainPath, c.DropInPath)
	}
	if d.ConfigVersion == 2 {
		return c.ensureInline(d)
	}
	if strings.ContainsAny(c.DropInPath, "\"\\\n*?[") {
		return false, fmt.Errorf("drop-in path %q: must not contain quotes or glob characters", c.DropInPath)
	}
	content, err := d.Render()
	if err != nil {
		return false, err
	}

	// Check the main config before writing anything, so a refusal leaves
	// the node as it was.
	if st, err := os.Lstat(c.MainPath); err == nil && st.Mode()&os.ModeSymlink != 0 {
		// Replacing the file atomically would replace the link with a file.
		return false, fmt.Errorf("containerd config %s is a symbolic link: point moat-node at the file it names", c.MainPath)
	}
	data, err := os.ReadFile(c.MainPath)
	exists := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("read containerd config: %w", err)
	}
	covered := false
	if exists {
		mc, err := parseMainConfig(c.MainPath, data)
		if err != nil {
			return false, err
		}
		if mc.Version == 1 && d.ConfigVersion == 3 {
			return false, fmt.Errorf("containerd config %s has version 1, which containerd 2 no longer reads: migrate it with `containerd config migrate`", c.MainPath)
		}
		covered = importsCover(c.MainPath, mc.Imports, c.DropInPath)
	}
	var next []byte
	if !covered {
		next, err = addImport(c.MainPath, data, exists, c.DropInPath, d.ConfigVersion)
		if err != nil {
			return false, err
		}
		mc, err := parseMainConfig(c.MainPath, next)
		if err != nil || !importsCover(c.MainPath, mc.Imports, c.DropInPath) {
			return false, fmt.Errorf("containerd config %s: could not add %s to its imports (edit would give %v, %v)", c.MainPath, c.DropInPath, mc.Imports, err)
		}
	}

	// The drop-in first, then the import that names it.
	if changed, err = writeFileIfChanged(c.DropInPath, content, 0o644); err != nil {
		return false, err
	}
	if covered {
		return changed, nil
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(c.MainPath); err == nil {
		mode = st.Mode().Perm()
	}
	if _, err := writeFileIfChanged(c.MainPath, next, mode); err != nil {
		return changed, err
	}
	return true, nil
}

// ensureInline puts the runtime's tables into the main config itself
// (containerd 1.7), replacing an older block of moat's own.
func (c ContainerdConfig) ensureInline(d DropIn) (bool, error) {
	tables, err := d.tables()
	if err != nil {
		return false, err
	}
	if st, err := os.Lstat(c.MainPath); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return false, fmt.Errorf("containerd config %s is a symbolic link: point moat-node at the file it names", c.MainPath)
	}
	data, err := os.ReadFile(c.MainPath)
	exists := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("read containerd config: %w", err)
	}
	var base []byte
	if exists {
		base, _ = cutInline(data)
		mc, err := parseMainConfig(c.MainPath, base)
		if err != nil {
			return false, err
		}
		if mc.Version != 2 {
			return false, fmt.Errorf("containerd config %s has version %d: with containerd 1.7 moat needs a version 2 config", c.MainPath, mc.Version)
		}
		var all map[string]any
		toml.Decode(string(base), &all)
		if _, ok := dig(all, "plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", d.Handler); ok {
			return false, fmt.Errorf("containerd config %s already defines the %q runtime itself: remove it, or choose another handler name", c.MainPath, d.Handler)
		}
		// containerd 1.7 replaces its built-in runtimes with the config's
		// as soon as the config names one: a config that relies on the
		// built-in runc would lose it.
		defRuntime := "runc"
		if v, ok := dig(all, "plugins", "io.containerd.grpc.v1.cri", "containerd", "default_runtime_name"); ok {
			if s, ok := v.(string); ok && s != "" {
				defRuntime = s
			}
		}
		if _, ok := dig(all, "plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", defRuntime); !ok {
			return false, fmt.Errorf("containerd 1.7 config %s does not define its default runtime %q: adding moat's runtime would take the built-in one away. Write the full config first (containerd config default > %s), or upgrade to containerd 2", c.MainPath, defRuntime, c.MainPath)
		}
	} else {
		return false, fmt.Errorf("containerd 1.7 has no config file at %s: adding moat's runtime to an empty config would take the built-in runc away. Write the full config first (containerd config default > %s), or upgrade to containerd 2", c.MainPath, c.MainPath)
	}
	next := append(append([]byte{}, base...), inlineBlock(tables)...)
	if exists && bytes.Equal(next, data) {
		return false, nil
	}
	var check map[string]any
	if _, err := toml.Decode(string(next), &check); err != nil {
		return false, fmt.Errorf("containerd config %s: adding the moat runtime would not give valid TOML (%v): does it define runtimes as an inline table?", c.MainPath, err)
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(c.MainPath); err == nil {
		mode = st.Mode().Perm()
	}
	if _, err := writeFileIfChanged(c.MainPath, next, mode); err != nil {
		return false, err
	}
	return true, nil
}

// dig follows keys through nested TOML tables.
func dig(m map[string]any, keys ...string) (any, bool) {
	var v any = m
	for _, k := range keys {
		t, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = t[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// Remove deletes the drop-in and takes moat's import out of the main config,
// leaving it as it was before Ensure. It reports whether anything changed.
func (c ContainerdConfig) Remove() (changed bool, err error) {
	data, err := os.ReadFile(c.MainPath)
	switch {
	case err == nil:
		out, del, found := removeImport(data, c.DropInPath)
		if cut, ok := cutInline(data); ok {
			out, del, found = cut, false, true
		}
		if found {
			changed = true
			if del {
				if err := os.Remove(c.MainPath); err != nil {
					return changed, fmt.Errorf("remove containerd config %s: %w", c.MainPath, err)
				}
			} else {
				st, err := os.Stat(c.MainPath)
				if err != nil {
					return changed, fmt.Errorf("stat %s: %w", c.MainPath, err)
				}
				if _, err := writeFileIfChanged(c.MainPath, out, st.Mode().Perm()); err != nil {
					return changed, err
				}
			}
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return false, fmt.Errorf("read containerd config: %w", err)
	}
	if err := os.Remove(c.DropInPath); err == nil {
		changed = true
		_ = syncDir(filepath.Dir(c.DropInPath))
	} else if !errors.Is(err, os.ErrNotExist) {
		return changed, fmt.Errorf("remove drop-in: %w", err)
	}
	return changed, nil
}

// ConfigVersionFor returns the containerd config version to write for a
// containerd that reports runtimeVersion over CRI (e.g. "v2.4.2", "1.7.27"),
// or an error for one moat does not support.
func ConfigVersionFor(runtimeVersion string) (int, error) {
	v := strings.TrimPrefix(runtimeVersion, "v")
	major, rest, _ := strings.Cut(v, ".")
	minorStr, _, _ := strings.Cut(rest, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(strings.TrimFunc(minorStr, func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("containerd version %q: cannot parse", runtimeVersion)
	}
	switch {
	case ma >= 2:
		return 3, nil
	case ma == 1 && mi >= 7:
		return 2, nil
	default:
		return 0, fmt.Errorf("containerd %s is too old: moat needs containerd 1.7 or newer (2.x recommended)", runtimeVersion)
	}
}
