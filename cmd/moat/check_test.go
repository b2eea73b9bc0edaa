package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"moat.dev/moat/kvm"
)

func TestCheckHere(t *testing.T) {
	if _, err := kvm.OpenDevice(""); err != nil {
		if errors.Is(err, kvm.ErrNoKVM) && os.Getenv("MOAT_REQUIRE_KVM") == "" {
			t.Skipf("no usable KVM (MOAT_REQUIRE_KVM unset): %v", err)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--json", "--exits", "50"}, &out, &errb); code != 0 {
		t.Fatalf("moat check exited %d: %s", code, errb.String())
	}
	var r kvm.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out.String())
	}
	if !r.Available || r.APIVersion != 12 || r.ExitSamples != 50 || r.ExitRoundTrip <= 0 || r.MaxVCPUs < 1 {
		t.Fatalf("report: %+v", r)
	}
	out.Reset()
	if code := run([]string{"check", "--exits", "20"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "guest exit round trip") {
		t.Fatalf("human output (exit %d):\n%s", code, out.String())
	}
}

func TestCheckMissingDevice(t *testing.T) {
	for _, dev := range []string{filepath.Join(t.TempDir(), "kvm"), "/dev/null"} {
		var out, errb bytes.Buffer
		code := run([]string{"check", "--device", dev}, &out, &errb)
		if code == 0 {
			t.Fatalf("moat check --device %s exited 0", dev)
		}
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], dev) {
			t.Fatalf("want one line naming %s, got %q", dev, errb.String())
		}
	}
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != 2 {
		t.Fatalf("no arguments: exit %d", code)
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "frobnicate") {
		t.Fatalf("unknown command: exit %d %q", code, errb.String())
	}
}
