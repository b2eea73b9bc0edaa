package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The images every harness imports.
const (
	// BusyboxImage holds Debian's static busybox with a link per applet,
	// /tmp and a minimal /etc/passwd.
	BusyboxImage = "moat.test/busybox:e2e"
	// HTTPServerImage holds only the static Go program e2e/testbin/httpserver
	// at /httpserver, in the manner of a distroless image.
	HTTPServerImage = "moat.test/httpserver:e2e"
	// HTTPServerGreeting is what its /hello answers (with a newline).
	HTTPServerGreeting = "hello from moat e2e"
)

const testbinPkg = "moat.dev/moat/e2e/testbin/"

// importTestImages builds the test programs and imports the pause, busybox
// and httpserver images.
func (e *Env) importTestImages(ctx context.Context) error {
	for _, name := range []string{"pause", "httpserver", "nnp"} {
		if err := e.Tools.buildGo(testbinPkg+name, e.TestBin(name)); err != nil {
			return err
		}
	}
	bb, err := e.BusyboxFiles()
	if err != nil {
		return err
	}
	for _, img := range []Image{
		{
			Name:       PauseImage,
			Files:      []File{{Path: "/pause", HostPath: e.TestBin("pause"), Mode: 0o755}},
			Entrypoint: []string{"/pause"},
			User:       "65535:65535",
		},
		{Name: BusyboxImage, Files: bb, Cmd: []string{"sh"}},
		{
			Name:       HTTPServerImage,
			Files:      []File{{Path: "/httpserver", HostPath: e.TestBin("httpserver"), Mode: 0o755}},
			Entrypoint: []string{"/httpserver"},
		},
	} {
		if err := e.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	return nil
}

// TestBin is the path of a program of e2e/testbin built by the harness
// ("pause", "httpserver").
func (e *Env) TestBin(name string) string { return filepath.Join(e.Root, "testbin", name) }

// BusyboxFiles is a root filesystem of the static busybox: the binary at
// /bin/busybox and a hard link for each applet it lists, /tmp, /root and a
// minimal /etc/passwd and /etc/group.
func (e *Env) BusyboxFiles() ([]File, error) {
	bin := e.Tools.Busybox
	out, err := exec.Command(bin, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", bin, err)
	}
	files := []File{
		{Path: "/bin/busybox", HostPath: bin, Mode: 0o755},
		{Path: "/tmp", Dir: true, Mode: 0o777 | os.ModeSticky},
		{Path: "/etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "/etc/group", Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{Path: "/root", Dir: true, Mode: 0o700},
	}
	for _, l := range strings.Fields(string(out)) {
		p := "/" + strings.TrimPrefix(l, "/")
		if p == "/bin/busybox" {
			continue
		}
		// Hard links, as in the busybox images of registries: masking
		// one applet's path (OCI maskedPaths) must not mask them all.
		files = append(files, File{Path: p, HardLink: "/bin/busybox"})
	}
	return files, nil
}
