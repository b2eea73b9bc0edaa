package charts

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// vmHWM returns a process's peak resident memory in bytes.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, os.ErrNotExist
}

// The RuntimeClass's memory overhead must hold what a sentry really uses:
// run one (moat run, a sleeping busybox) on the real /dev/kvm and compare
// its peak resident memory with the chart's default. The overhead also
// pays for the pod's shim, so the sentry must fit in half of it.
func TestOverheadCoversMeasuredSentry(t *testing.T) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		if os.Getenv("MOAT_REQUIRE_KVM") == "1" {
			t.Fatalf("no /dev/kvm: %v", err)
		}
		t.Skipf("no /dev/kvm (%v); MOAT_REQUIRE_KVM=1 makes this a failure", err)
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		if os.Getenv("MOAT_REQUIRE_E2E") == "1" || os.Getenv("MOAT_REQUIRE_KVM") == "1" {
			t.Fatalf("busybox is missing: %v (apt-get install busybox-static)", err)
		}
		t.Skipf("busybox is missing (%v)", err)
	}
	var values struct {
		RuntimeClass struct {
			Overhead struct {
				Memory string `json:"memory"`
			} `json:"overhead"`
		} `json:"runtimeClass"`
	}
	b, err := os.ReadFile("moat/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	overhead, err := resource.ParseQuantity(values.RuntimeClass.Overhead.Memory)
	if err != nil {
		t.Fatalf("overhead memory %q: %v", values.RuntimeClass.Overhead.Memory, err)
	}

	dir := t.TempDir()
	moat := filepath.Join(dir, "moat")
	if out, err := exec.Command("go", "build", "-o", moat, "moat.dev/moat/cmd/moat").CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/moat: %v\n%s", err, out)
	}
	root := filepath.Join(dir, "rootfs")
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755)

	cmd := exec.Command(moat, "run", "--rootfs", root, "--", "/bin/busybox", "sleep", "3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var peak int64
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if v, err := vmHWM(cmd.Process.Pid); err == nil && v > peak {
			peak = v
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("moat run: %v", err)
	}
	if peak == 0 {
		t.Fatal("could not read the sentry's memory")
	}
	t.Logf("sentry peak resident memory %.1f MiB; RuntimeClass overhead %s", float64(peak)/(1<<20), overhead.String())
	if peak > overhead.Value()/2 {
		t.Fatalf("a sentry uses %d bytes, more than half the RuntimeClass overhead %s: raise runtimeClass.overhead.memory", peak, overhead.String())
	}
}
