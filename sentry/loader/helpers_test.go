package loader

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The tests load real executables: the system's /bin/true and dynamic
// linker, the test binary itself (a Go program), and C programs compiled
// with gcc as static, static-PIE, PIE and non-PIE executables.

// requireTool returns the path of a tool. A missing tool fails the test
// when MOAT_REQUIRE_KVM or MOAT_REQUIRE_E2E is set (as in CI) and skips it
// otherwise.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("MOAT_REQUIRE_KVM") == "1" || os.Getenv("MOAT_REQUIRE_E2E") == "1" {
		t.Fatalf("%s not found (needed to build test executables): %v", name, err)
	}
	t.Skipf("%s not found (needed to build test executables; set MOAT_REQUIRE_KVM=1 to fail instead): %v", name, err)
	return ""
}

// requireFile returns path if it exists, with the same skip rules.
func requireFile(t testing.TB, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("MOAT_REQUIRE_KVM") == "1" || os.Getenv("MOAT_REQUIRE_E2E") == "1" {
			t.Fatalf("%s is missing: %v", path, err)
		}
		t.Skipf("%s is missing (set MOAT_REQUIRE_KVM=1 to fail instead): %v", path, err)
	}
	return path
}

var (
	buildDir  string
	buildMu   sync.Mutex
	buildDone = map[string]string{}
)

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "moat-loader-test-")
	if err != nil {
		panic(err)
	}
	buildDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// helloC prints its auxiliary vector's view of where it was loaded, so
// tests can compare Parse and Plan with the kernel's own loading.
const helloC = `
#include <stdio.h>
#include <sys/auxv.h>
int data_word = 42;
char bss_area[100000];
int main(void) {
	printf("phdr %lx\nentry %lx\nbase %lx\nphnum %lx\nphent %lx\n",
		getauxval(AT_PHDR), getauxval(AT_ENTRY), getauxval(AT_BASE),
		getauxval(AT_PHNUM), getauxval(AT_PHENT));
	printf("data %lx\nbss %lx\n", (unsigned long)&data_word, (unsigned long)bss_area);
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	while (f && fgets(line, sizeof line, f))
		printf("map %s", line);
	return bss_area[99999] + data_word - 42;
}
`

// stackDumpC prints the top of its stack mapping, the stack pointer at
// entry (just below argv) and the bytes between them.
const stackDumpC = `
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
int main(int argc, char **argv) {
	unsigned long sp = (unsigned long)argv - 8, top = 0;
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	while (f && fgets(line, sizeof line, f)) {
		if (strstr(line, "[stack]")) {
			unsigned long lo, hi;
			sscanf(line, "%lx-%lx", &lo, &hi);
			top = hi;
		}
	}
	if (!top) return 2;
	printf("%lx %lx\n", top, sp);
	for (unsigned char *p = (unsigned char *)sp; p < (unsigned char *)top; p++)
		printf("%02x", *p);
	printf("\n");
	return 0;
}
`

// cProgram compiles src with gcc flags once per test binary run and
// returns the executable's path.
func cProgram(t testing.TB, name, src string, flags ...string) string {
	t.Helper()
	gcc := requireTool(t, "gcc")
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildDone[name]; ok {
		return p
	}
	c := filepath.Join(buildDir, name+".c")
	bin := filepath.Join(buildDir, name)
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-O1", "-o", bin, c}, flags...)
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, out)
	}
	buildDone[name] = bin
	return bin
}

// realBinary is one executable the tests load, and what it should be.
type realBinary struct {
	name   string
	path   func(testing.TB) string
	typ    string // "exec" or "dyn"
	interp bool
	runs   bool // it runs helloC and reports its loading
}

var realBinaries = []realBinary{
	{"static", func(t testing.TB) string { return cProgram(t, "static", helloC, "-static") }, "exec", false, true},
	{"static-pie", func(t testing.TB) string { return cProgram(t, "static-pie", helloC, "-static-pie") }, "dyn", false, true},
	{"pie", func(t testing.TB) string { return cProgram(t, "pie", helloC, "-pie", "-fPIE") }, "dyn", true, true},
	{"no-pie", func(t testing.TB) string { return cProgram(t, "no-pie", helloC, "-no-pie") }, "exec", true, true},
	{"bin-true", func(t testing.TB) string { return requireFile(t, "/bin/true") }, "dyn", true, false},
	{"ld.so", func(t testing.TB) string { return requireFile(t, "/lib64/ld-linux-x86-64.so.2") }, "dyn", false, false},
	{"go", goProgram, "exec", false, false},
}

func parseFile(t testing.TB, path string) (*Image, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := Parse(f, int64(len(b)))
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return img, b
}

// goProgram builds a small static Go program (CGO_ENABLED=0) once per test
// binary run and returns its path.
func goProgram(t testing.TB) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildDone["go"]; ok {
		return p
	}
	// go test puts its own toolchain first in PATH.
	gotool := requireTool(t, "go")
	dir := filepath.Join(buildDir, "gosrc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod":  "module hello\n\ngo 1.22\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(buildDir, "hello-go")
	cmd := exec.Command(gotool, "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	buildDone["go"] = bin
	return bin
}
