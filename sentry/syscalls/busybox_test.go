package syscalls_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/sandbox/sandboxtest"
)

// TestBusybox runs shell pipelines of Debian's static busybox in a
// sandbox and the same commands natively in a chroot of the same tree,
// and compares their output and exit status.
func TestBusybox(t *testing.T) {
	requireRoot(t)
	sandboxtest.RequireKVM(t)
	if _, err := exec.LookPath("chroot"); err != nil {
		t.Fatalf("chroot is needed: %v", err)
	}
	root := sandboxtest.Rootfs(t, true)
	// The native run needs /dev/null (sh gives it to background jobs);
	// the sandbox has its own /dev over this one.
	if err := unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatalf("mknod /dev/null in %s: %v", root, err)
	}
	if err := unix.Mknod(filepath.Join(root, "dev/zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
		t.Fatalf("mknod /dev/zero in %s: %v", root, err)
	}
	env := []string{"PATH=/bin", "HOME=/root", "LC_ALL=C"}
	cases := []string{
		`seq 1 1000 | wc -l`,
		`echo hello > /tmp/f; echo world >> /tmp/f; cat /tmp/f; wc -c < /tmp/f; cat /tmp/f | tr a-z A-Z; rm /tmp/f`,
		`ls -la / | grep -v -e ' dev$' -e ' proc$' -e ' sys$' -e '^total'`,
		`ls -la /etc; ls -l /bin | head -5; ls -1 /bin | wc -l`,
		`find / -path /dev -prune -o -path /proc -prune -o -path /sys -prune -o -print | sort | head -30; find /bin -type l | wc -l`,
		`printf 'b\na\nc\na\nb\na\n' | sort | uniq -c | sort -rn`,
		`exec 3>/tmp/x; echo three >&3; exec 3>&-; cat /tmp/x; ls /nonexistent 2>/tmp/err || echo "missing $?"; (echo a; echo b >&2) 2>&1 | wc -l; rm /tmp/x /tmp/err`,
		`cd /tmp && mkdir -p a/b/c && touch a/b/c/f && echo x > a/g && find a | sort && mv a/g a/b/h && ls -R a && rm -r a && ls -a`,
		`cut -d: -f1,3 /etc/passwd | sort; grep -c root /etc/passwd`,
		`yes | head -n 1000 | uniq -c`,
		`seq 1 10 | xargs -n 3 echo; seq 5 | tac | tr '\n' ' '; echo`,
		`dd if=/bin/busybox bs=4096 count=10 2>/tmp/e | md5sum; cat /tmp/e | head -2; rm /tmp/e`,
		`(exit 7); echo status $?; false || echo or; true && echo and`,
		`ln -s /etc/passwd /tmp/l && readlink /tmp/l && head -1 /tmp/l && stat -c '%s %F %a' /etc/passwd /tmp && rm /tmp/l`,
		`mkfifo /tmp/ff; (echo through a fifo > /tmp/ff &); cat /tmp/ff; rm /tmp/ff`,
		`head -c 200000 /bin/busybox | od -x | tail -2; sha256sum /etc/group`,
		`for i in 1 2 3; do echo $i; done | while read x; do echo "line $x"; done; echo $((6*7))`,
		`cd /tmp; echo data > src; cp src dst; cmp src dst && echo same; chmod 600 dst; ls -l dst | cut -c1-10; truncate -s 3 dst; cat dst; echo; rm src dst`,
		`touch -d '2001-02-03 04:05:06' /tmp/t; ls -l --full-time /tmp/t | cut -d' ' -f6-8; rm /tmp/t`,
		`cat /etc/passwd /nope 2>&1; echo rc=$?`,
		`seq 1 100000 | wc -l`,
		`head -c 104857600 /dev/zero | md5sum`,
		`cd /tmp && mkdir t && echo hi > t/a && tar czf t.tgz t && rm -r t && tar xzf t.tgz && cat t/a && tar tzf t.tgz && rm -r t t.tgz`,
		`echo hello | gzip | gzip -d; echo hello | gzip -9 | wc -c`,
		`trap 'echo trapped USR1' USR1; kill -USR1 $$; trap 'echo bye' EXIT; sleep 0.1; echo slept`,
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) { compareBusybox(t, root, env, c) })
	}
	// Background jobs are checked against fixed output: a native busybox
	// sh started by the Go test process can miss its child's SIGCHLD and
	// hang in wait.
	for c, want := range map[string]string{
		`sleep 0.1 & wait; echo waited $?`:                               "waited 0\n",
		`(sleep 0.2; echo late) & echo early; wait $!; echo done $?`:     "early\nlate\ndone 0\n",
		`sleep 5 & kill $!; wait $!; echo killed $?`:                     "killed 143\n",
		`seq 1 3 | (while read x; do echo "got $x" & wait; done) | sort`: "got 1\ngot 2\ngot 3\n",
	} {
		r := sandboxtest.Run(t, root, []string{"/bin/busybox", "sh", "-c", c}, sandboxtest.Options{Env: env, CPUs: 2, Timeout: time.Minute})
		// Only stdout: whether sh reports a killed job ("Terminated")
		// on stderr depends on when it notices.
		if got := r.Stdout; got != want || r.ExitCode() != 0 {
			t.Errorf("%q: moat (exit %d):\n%s\nwant:\n%s\nlog: %s", c, r.ExitCode(), got, want, r.Log)
		}
	}
}

// compareBusybox runs sh -c c in a sandbox and natively in a chroot.
func compareBusybox(t *testing.T, root string, env []string, c string) {
	{
		argv := []string{"/bin/busybox", "sh", "-c", c}
		r := sandboxtest.Run(t, root, argv, sandboxtest.Options{Env: env, CPUs: 2, Timeout: 2 * time.Minute})
		cmd := exec.Command("chroot", append([]string{root}, argv...)...)
		cmd.Env = env
		native, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("native %q: %v", c, err)
		}
		got := r.Stdout + r.Stderr
		if got != string(native) || r.ExitCode() != code {
			t.Errorf("%q:\nmoat (exit %d):\n%s\nnative (exit %d):\n%s\nlog: %s", c, r.ExitCode(), got, code, native, r.Log)
		}
	}
}
