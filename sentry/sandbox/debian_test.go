package sandbox_test

import (
	"os"
	"os/exec"
	"testing"

	"moat.dev/moat/sentry/sandbox/sandboxtest"
)

// debianRootfs returns the Debian root filesystem .ci/install.d/
// 30-debian-rootfs.sh makes (glibc, bash, coreutils, python3).
func debianRootfs(t *testing.T) string {
	dir := os.Getenv("MOAT_DEBIAN_ROOTFS")
	if dir == "" {
		dir = "/var/cache/moat-test/debian-bookworm"
	}
	if _, err := os.Stat(dir + "/.moat-complete"); err != nil {
		if os.Getenv("MOAT_REQUIRE_KVM") != "" || os.Getenv("MOAT_REQUIRE_E2E") != "" {
			t.Fatalf("Debian root filesystem missing at %s (run .ci/install.d/30-debian-rootfs.sh)", dir)
		}
		t.Skipf("Debian root filesystem missing at %s; MOAT_REQUIRE_KVM unset", dir)
	}
	return dir
}

// TestDebianPrograms runs dynamically linked Debian programs (ld.so, glibc,
// bash, coreutils, python3) in a sandbox and compares their output with
// the same commands run natively in a chroot of the same tree.
func TestDebianPrograms(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := debianRootfs(t)
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/root", "LC_ALL=C"}
	cases := [][]string{
		{"/bin/bash", "-c", `echo "$BASH_VERSION"; for i in 3 1 2; do echo $i; done | sort | tr '\n' ' '; echo`},
		{"/bin/bash", "-c", `seq 1 20000 | awk '{s+=$1} END {print s}'; printf '%s\n' b a c a | sort | uniq -c`},
		{"/bin/bash", "-c", `ls -la /etc/debian_version /usr/bin/env | awk '{print $1, $NF}'; cat /etc/os-release | head -2`},
		{"/bin/bash", "-c", `head -c 1000000 /dev/zero | sha256sum; echo hello | gzip | gzip -d`},
		{"/bin/bash", "-c", `cd /tmp && rm -rf moat-t && mkdir moat-t && cd moat-t && echo data > f && tar czf a.tgz f && rm f && tar xzf a.tgz && cat f && cd / && rm -rf /tmp/moat-t`},
		{"/bin/bash", "-c", `trap 'echo trapped' USR1; kill -USR1 $$; (exit 3); echo "sub $?"; x=$(echo nested); echo $x`},
		{"/usr/bin/python3", "-c", `
import json, os, subprocess, sys, threading
out = []
def work(i): out.append(sum(range(i * 1000)))
ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sorted(out))
print(json.dumps({"a": [1, 2, {"b": None}]}, sort_keys=True))
print(subprocess.run(["/bin/echo", "from child"], capture_output=True, text=True).stdout.strip())
print(sys.version_info[:2] >= (3, 11))
`},
	}
	for _, argv := range cases {
		r := sandboxtest.Run(t, root, argv, sandboxtest.Options{Env: env, CPUs: 2})
		cmd := exec.Command("chroot", append([]string{root}, argv...)...)
		cmd.Env = env
		native, err := cmd.Output()
		if err != nil {
			t.Fatalf("native %v: %v", argv, err)
		}
		if r.Stdout != string(native) || r.ExitCode() != 0 {
			t.Errorf("%v:\nmoat (exit %d):\n%s\nnative:\n%s\nstderr: %s\nlog: %s", argv, r.ExitCode(), r.Stdout, native, r.Stderr, r.Log)
		}
	}
}
