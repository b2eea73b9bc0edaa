package sandbox_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"moat.dev/moat/sentry/sandbox"
	"moat.dev/moat/sentry/sandbox/sandboxtest"
)

// The mounts a container gets: runc's defaults, and the ones an OCI spec
// lists (tmpfs with size=, read-only mounts, binds of host files and
// directories, mount points made where missing).

func TestSpecMounts(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "config.txt"), []byte("from the host\n"), 0o644)
	hosts := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(hosts, []byte("127.0.0.1 localhost pod\n"), 0o644)
	rw := filepath.Join(t.TempDir(), "rw.conf")
	os.WriteFile(rw, []byte("writable\n"), 0o644)
	sandboxtest.BuildC(t, root, "mnt", `
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
static void cat(const char *p) {
	char buf[4096]; int fd = open(p, O_RDONLY);
	if (fd < 0) { printf("%s: open %s\n", p, strerror(errno)); return; }
	ssize_t n = read(fd, buf, sizeof buf); if (n > 0) fwrite(buf, 1, n, stdout); close(fd);
}
static void put(const char *p, int size) {
	static char buf[100000];
	int fd = open(p, O_WRONLY|O_CREAT|O_TRUNC, 0644);
	if (fd < 0) { printf("%s: open %s\n", p, strerror(errno)); return; }
	ssize_t n = write(fd, buf, size);
	printf("%s: wrote %zd %s\n", p, n, n < 0 ? strerror(errno) : "");
	close(fd);
}
int main(void) {
	put("/data/small", 1000);
	put("/data/big", 100000);
	put("/ro/x", 1);
	cat("/etc/hosts");
	put("/etc/hosts", 1);
	cat("/etc/rw.conf");
	put("/etc/rw.conf", 3);
	cat("/config/config.txt");
	put("/config/new", 1);
	struct stat st;
	printf("proc: %s\n", stat("/deep/er/proc/self", &st) == 0 ? "mounted" : strerror(errno));
	cat("/deep/er/proc/self/mounts");
	return 0;
}`)
	mounts := []sandbox.Mount{
		{Destination: "/data", Type: "tmpfs", Options: []string{"size=64k", "mode=1777", "nosuid"}},
		{Destination: "/ro", Type: "tmpfs", Options: []string{"ro"}},
		{Destination: "/etc/hosts", Type: "bind", Source: hosts, Options: []string{"rbind", "ro"}},
		{Destination: "/etc/rw.conf", Type: "bind", Source: rw, Options: []string{"rbind"}},
		{Destination: "/config", Type: "bind", Source: hostDir, Options: []string{"rbind", "ro", "nosuid"}},
		{Destination: "/deep/er/proc", Type: "proc"},
	}
	r := sandboxtest.Run(t, root, []string{"/bin/mnt"}, sandboxtest.Options{Mounts: mounts})
	if r.ExitCode() != 0 {
		t.Fatalf("exit %d: %s %s", r.ExitCode(), r.Stdout, r.Stderr)
	}
	for _, want := range []string{
		"/data/small: wrote 1000 \n",
		"/data/big: wrote 61440 \n", // 64k less the page the small file holds: a short write
		"/ro/x: open Read-only file system\n",
		"127.0.0.1 localhost pod\n",
		"/etc/hosts: open Read-only file system\n",
		"writable\n/etc/rw.conf: wrote 3 \n",
		"from the host\n",
		"/config/new: open Read-only file system\n",
		"proc: mounted\n",
		"tmpfs /data tmpfs rw,nosuid,relatime 0 0\n",
		"tmpfs /ro tmpfs ro,relatime 0 0\n",
		"proc /deep/er/proc proc rw,relatime 0 0\n",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("no %q in:\n%s", want, r.Stdout)
		}
	}
	// The binds are the host files themselves, not copies.
	if b, _ := os.ReadFile(rw); string(b) != "\x00\x00\x00" {
		t.Errorf("the host file behind /etc/rw.conf holds %q after the write", b)
	}
	if b, _ := os.ReadFile(hosts); string(b) != "127.0.0.1 localhost pod\n" {
		t.Errorf("the read-only host file changed: %q", b)
	}
	if strings.Contains(r.Stdout, " /sys ") {
		t.Errorf("a spec's mounts replace the defaults:\n%s", r.Stdout)
	}
}

func TestBadMounts(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	for _, m := range []sandbox.Mount{
		{Destination: "relative", Type: "tmpfs"},
		{Destination: "/x/../../etc", Type: "tmpfs"},
		{Destination: "/", Type: "tmpfs"},
		{Destination: "/x", Type: "ext4", Source: "/dev/sda"},
		{Destination: "/x", Type: "tmpfs", Options: []string{"size=lots"}},
		{Destination: "/x", Type: "tmpfs", Options: []string{"mode=999"}},
		{Destination: "/x", Type: "bind", Source: "relative/path"},
		{Destination: "/x", Type: "bind", Source: "/nonexistent/source"},
		{Destination: "/etc/passwd/x", Type: "tmpfs"},
	} {
		sb, err := sandbox.New(sandbox.Config{RootFS: root, Mounts: []sandbox.Mount{m}})
		if err == nil {
			sb.Close()
			t.Errorf("mount %+v: no error", m)
			continue
		}
		if !strings.Contains(err.Error(), m.Destination) {
			t.Errorf("mount %+v: the error does not name the destination: %v", m, err)
		}
	}
}
