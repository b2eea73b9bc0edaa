package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestMoatImage(t *testing.T) {
	dir := t.TempDir()
	var args []string
	for _, n := range []string{"agent", "shim", "moat"} {
		p := filepath.Join(dir, n)
		os.WriteFile(p, []byte(n), 0o755)
		args = append(args, "--"+n+"="+p)
	}
	out := filepath.Join(dir, "img.tar")
	var stdout, stderr bytes.Buffer
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if code := run(append(args, "--out="+out, "--tag=moat.dev/moat-node:t"), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "moat.dev/moat-node:t@sha256:") {
		t.Errorf("stdout %q", stdout.String())
	}
	img, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Created.Unix() != 1700000000 || cf.Config.Labels["org.opencontainers.image.title"] != "moat-node" {
		t.Errorf("config %+v", cf)
	}

	stderr.Reset()
	if code := run(append(args, "--agent="+filepath.Join(dir, "missing"), "--out="+out), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "missing") {
		t.Errorf("missing binary: exit %d: %s", code, stderr.String())
	}
	if code := run(append(args, "--out="+out, "--tag=NOT A TAG"), &stdout, &stderr); code != 1 {
		t.Errorf("bad tag: exit %d", code)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if code := run(append(args, "--out="+out), &stdout, &stderr); code != 1 {
		t.Errorf("bad SOURCE_DATE_EPOCH: exit %d", code)
	}
}
