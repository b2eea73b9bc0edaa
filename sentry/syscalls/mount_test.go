package syscalls_test

import (
	"strings"
	"testing"

	"moat.dev/moat/sentry/sandbox/sandboxtest"
)

// TestMountBind: a privileged guest bind-mounts inside its own tree,
// remounts read-only and unmounts (busybox mount and umount); an
// unprivileged one gets EPERM.
func TestMountBind(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, true)
	script := `mkdir -p /tmp/m /tmp/src && echo inside > /tmp/src/f
mount --bind /tmp/src /tmp/m && cat /tmp/m/f
grep -c ' /tmp/m ' /proc/mounts
mount --make-rshared /tmp/m && echo propagation-ok
mkdir -p /tmp/r && mount --rbind /tmp /tmp/r && cat /tmp/r/m/f && umount /tmp/r
mount -o remount,bind,ro /tmp/m && { echo x > /tmp/m/g 2>/dev/null || echo read-only; }
umount /tmp/m && ls -A /tmp/m | wc -l
mount -t ext4 /dev/null /tmp/m 2>/dev/null || echo no-new-filesystems`
	r := sandboxtest.Run(t, root, []string{"/bin/sh", "-c", script}, sandboxtest.Options{})
	want := "inside\n1\npropagation-ok\ninside\nread-only\n0\nno-new-filesystems\n"
	if r.ExitCode() != 0 || r.Stdout != want {
		t.Fatalf("exit %d\nstdout %q\nwant   %q\nstderr %q\nlog %s", r.ExitCode(), r.Stdout, want, r.Stderr, r.Log)
	}
	r = sandboxtest.Run(t, root, []string{"/bin/sh", "-c", "mkdir -p /tmp/u; mount --bind /bin /tmp/u"}, sandboxtest.Options{UID: 1000})
	if r.ExitCode() == 0 || !strings.Contains(r.Stderr, "ermission") {
		t.Fatalf("an unprivileged bind mount: exit %d, stderr %q", r.ExitCode(), r.Stderr)
	}
}
