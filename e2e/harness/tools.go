package harness

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultToolsDir is where .ci/install.d puts the test tools.
const DefaultToolsDir = "/usr/local/lib/moat-test/bin"

// Tools are the absolute paths of the programs the harness drives.
type Tools struct {
	Dir        string // $MOAT_TOOLS
	Containerd string
	Ctr        string
	ShimRuncV2 string
	Runc       string
	Crictl     string
	CNIBinDir  string // holds bridge, loopback, host-local
	Busybox    string // a static busybox for the test images
	IP         string // iproute2's ip, for the test bridge
	Go         string // the go command, to build the test programs
	CC         string // a C compiler for static test programs; optional
}

// MissingToolsError lists what FindTools could not find; its message names
// every missing tool and how to install it.
type MissingToolsError struct{ Missing []string }

func (e *MissingToolsError) Error() string {
	return "e2e tools missing: " + strings.Join(e.Missing, "; ") +
		" (run `make e2e-tools` as root, or set MOAT_TOOLS)"
}

// ToolsDir is $MOAT_TOOLS or DefaultToolsDir.
func ToolsDir() string {
	if d := os.Getenv("MOAT_TOOLS"); d != "" {
		return d
	}
	return DefaultToolsDir
}

// FindTools looks for every tool the harness needs, in dir (containerd,
// ctr, the runc shim, crictl, CNI plugins under dir/cni) and on PATH (runc,
// ip, go), plus a static busybox. It also requires root. All that is
// missing is reported at once as a *MissingToolsError.
func FindTools(dir string) (*Tools, error) {
	t := &Tools{Dir: dir, CNIBinDir: filepath.Join(dir, "cni")}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (the e2e tests run containerd and need uid 0)")
	}
	inDir := func(dst *string, name string) {
		p := filepath.Join(dir, name)
		if isExecutable(p) {
			*dst = p
			return
		}
		missing = append(missing, p)
	}
	inDir(&t.Containerd, "containerd")
	inDir(&t.Ctr, "ctr")
	inDir(&t.ShimRuncV2, "containerd-shim-runc-v2")
	inDir(&t.Crictl, "crictl")
	for _, p := range []string{"bridge", "loopback", "host-local"} {
		var s string
		inDir(&s, filepath.Join("cni", p))
	}
	onPath := func(dst *string, name string, extra ...string) {
		if p, err := exec.LookPath(name); err == nil {
			*dst, _ = filepath.Abs(p)
			return
		}
		for _, p := range extra {
			if isExecutable(p) {
				*dst = p
				return
			}
		}
		missing = append(missing, name+" (not on PATH)")
	}
	onPath(&t.Runc, "runc", "/usr/sbin/runc", "/usr/bin/runc")
	onPath(&t.IP, "ip", "/usr/sbin/ip", "/sbin/ip")
	onPath(&t.Go, "go", "/usr/local/go/bin/go")
	if p, err := exec.LookPath("cc"); err == nil {
		t.CC = p
	}
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if isExecutable(p) && isStatic(p) {
			t.Busybox = p
			break
		}
	}
	if t.Busybox == "" {
		missing = append(missing, "static busybox (Debian package busybox-static)")
	}
	if len(missing) > 0 {
		return t, &MissingToolsError{Missing: missing}
	}
	return t, nil
}

// IsMissingTools reports whether err says tools are missing.
func IsMissingTools(err error) bool {
	var m *MissingToolsError
	return errors.As(err, &m)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// isStatic reports whether the ELF file at p has no program interpreter.
func isStatic(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// buildGo builds the main package pkg (an import path in this module) as a
// static binary at out.
func (t *Tools) buildGo(pkg, out string) error {
	cmd := exec.Command(t.Go, "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// BuildStaticC compiles the C source files srcs into a static binary at
// out. A missing C compiler is a *MissingToolsError.
func (t *Tools) BuildStaticC(out string, srcs ...string) error {
	if t.CC == "" {
		return &MissingToolsError{Missing: []string{"cc (Debian packages gcc and libc6-dev)"}}
	}
	args := append([]string{"-static", "-O2", "-pthread", "-o", out}, srcs...)
	if b, err := exec.Command(t.CC, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("cc %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	if !isStatic(out) {
		return fmt.Errorf("cc %s: %s is not static", strings.Join(args, " "), out)
	}
	return nil
}

// BuildGo builds the main package pkg (an import path in this module, the
// current folder being inside it) as a static binary at out.
func (t *Tools) BuildGo(pkg, out string) error { return t.buildGo(pkg, out) }
