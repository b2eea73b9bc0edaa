package abi

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The tests of this package prove numbers and layouts against the real C
// headers: they write small C programs, compile them with gcc and read what
// the programs print.

// requireGCC returns the path of gcc. A missing gcc fails the test when
// MOAT_REQUIRE_KVM or MOAT_REQUIRE_E2E is set (as in CI) and skips it
// otherwise.
func requireGCC(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("gcc")
	if err == nil {
		return p
	}
	if os.Getenv("MOAT_REQUIRE_KVM") == "1" || os.Getenv("MOAT_REQUIRE_E2E") == "1" {
		t.Fatalf("gcc not found (needed to check layouts against the C headers): %v", err)
	}
	t.Skipf("gcc not found (needed to check layouts against the C headers; set MOAT_REQUIRE_KVM=1 to fail instead): %v", err)
	return ""
}

// kernelHeaders are the UAPI headers the kernel-side programs include. No C
// library header is included with them (printf is declared by hand), so the
// kernel's definitions are seen as the kernel has them, not as the C
// library redefines them.
const kernelHeaders = `
#include <linux/types.h>
#include <linux/errno.h>
#include <linux/stat.h>
#include <asm/stat.h>
#include <linux/time.h>
#include <linux/time_types.h>
#include <linux/resource.h>
#include <linux/utsname.h>
#include <linux/sysinfo.h>
#include <linux/times.h>
#include <linux/poll.h>
#include <linux/eventpoll.h>
#include <asm/signal.h>
#include <linux/signal.h>
#include <asm/siginfo.h>
#include <asm/sigcontext.h>
#include <asm/ucontext.h>
#include <linux/sched.h>
#include <linux/futex.h>
#include <asm/termbits.h>
#include <asm/termios.h>
#include <asm/ioctls.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/fcntl.h>
#include <linux/uio.h>
#include <linux/mman.h>
#include <linux/prctl.h>
#include <asm/prctl.h>
#include <linux/auxvec.h>
#include <linux/wait.h>
#include <linux/fs.h>
#include <linux/limits.h>
#include <linux/audit.h>
#include <linux/memfd.h>
#include <linux/seccomp.h>
#include <linux/filter.h>
#include <asm/unistd_64.h>
#include <asm/statfs.h>
#include <asm/socket.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/tcp.h>
#include <linux/un.h>
#include <linux/magic.h>
int printf(const char *, ...);
#define offsetof(t, m) __builtin_offsetof(t, m)
#define fieldsize(t, m) sizeof(((t *)0)->m)

/* The kernel's signal frame (arch/x86/include/asm/sigframe.h), which is not
   part of the UAPI headers; its pieces are. */
struct rt_sigframe {
	char *pretcode;
	struct ucontext uc;
	siginfo_t info;
};
`

// libcHeaders are the C library headers of the libc-side programs, for the
// few constants the UAPI headers do not define.
const libcHeaders = `
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <errno.h>
#include <signal.h>
#include <dirent.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/statvfs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#define fieldsize(t, m) sizeof(((t *)0)->m)
`

// runC compiles the C program src and returns the lines it printed.
func runC(t *testing.T, src string) []string {
	t.Helper()
	gcc := requireGCC(t)
	dir := t.TempDir()
	c := filepath.Join(dir, "prog.c")
	bin := filepath.Join(dir, "prog")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gcc, "-Wall", "-Wno-unused", "-O0", "-o", bin, c).CombinedOutput()
	if err != nil {
		t.Fatalf("gcc %s: %v\n%s\n--- source ---\n%s", c, err, out, numbered(src))
	}
	out, err = exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// macros returns the macros a header defines, as gcc -dM -E sees them.
func macros(t *testing.T, header string) map[string]string {
	t.Helper()
	gcc := requireGCC(t)
	cmd := exec.Command(gcc, "-dM", "-E", "-")
	cmd.Stdin = strings.NewReader("#include <" + header + ">\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gcc -dM -E %s: %v", header, err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.SplitN(line, " ", 3)
		if len(f) == 3 && f[0] == "#define" {
			m[f[1]] = f[2]
		}
	}
	return m
}

func numbered(src string) string {
	var b strings.Builder
	for i, l := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, l)
	}
	return b.String()
}
