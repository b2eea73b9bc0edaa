package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/sandbox"
	"moat.dev/moat/sentry/sandbox/sandboxtest"
	"moat.dev/moat/sentry/vfs"
)

// PID namespaces, capabilities and no_new_privs as guest programs see
// them.

// TestPIDNamespaceClone: a process made with CLONE_NEWPID is PID 1 of a
// new namespace, sees only that namespace in /proc and its parent as 0;
// its parent numbers it in its own namespace and reaps it by that number.
func TestPIDNamespaceClone(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "pidns", `
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int procs(void) {
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;
	if (!d) return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] >= '0' && e->d_name[0] <= '9') n++;
	closedir(d);
	return n;
}

int main(int argc, char **argv) {
	if (argc > 1 && strcmp(argv[1], "inner") == 0) {
		char self[64] = {0}, go;
		read(3, &go, 1); /* the outer process has looked at us */
		readlink("/proc/self", self, sizeof self - 1);
		pid_t c = fork();
		if (c == 0) {
			printf("grandchild pid=%d ppid=%d\n", getpid(), getppid());
			fflush(stdout);
			_exit(0);
		}
		int st;
		pid_t w = waitpid(c, &st, 0);
		printf("inner pid=%d ppid=%d self=%s procs=%d forked=%d waited=%d\n", getpid(), getppid(), self, procs() , c, w);
		/* A signal to a PID the namespace does not have. */
		int k = kill(1000, 0);
		printf("kill outer: %d %s\n", k, strerror(errno));
		fflush(stdout);
		_exit(5);
	}
	printf("outer pid=%d\n", getpid());
	fflush(stdout);
	int p[2];
	pipe(p);
	pid_t c = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
	if (c < 0) { perror("clone"); return 1; }
	if (c == 0) {
		dup2(p[0], 3);
		execl("/bin/pidns", "pidns", "inner", (char *)0);
		_exit(99);
	}
	/* The child's IDs from here down to its own namespace. */
	char path[64], line[256], nspid[64] = "none";
	snprintf(path, sizeof path, "/proc/%d/status", c);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "NSpid:", 6) == 0) {
			line[strcspn(line, "\n")] = 0;
			snprintf(nspid, sizeof nspid, "%s", line + 7);
		}
	if (f) fclose(f);
	write(p[1], "x", 1);
	int st;
	pid_t w = waitpid(c, &st, 0);
	printf("outer: child=%d nspid=%s waited=%d exit=%d procs=%d\n", c, nspid, w, WEXITSTATUS(st), procs());
	return 0;
}
`)
	r := sandboxtest.Run(t, root, []string{"/bin/pidns"}, sandboxtest.Options{Mounts: []sandbox.Mount{{Destination: "/proc", Type: "proc"}}})
	want := []string{
		"outer pid=1\n",
		"grandchild pid=2 ppid=1\n",
		"inner pid=1 ppid=0 self=1 procs=1 forked=2 waited=2\n",
		"kill outer: -1 No such process\n",
		"outer: child=2 nspid=2\t1 waited=2 exit=5 procs=1\n",
	}
	if r.Stdout != strings.Join(want, "") || r.ExitCode() != 0 {
		t.Errorf("got exit %d, stdout:\n%s\nwant:\n%s\nstderr: %s\nlog: %s", r.ExitCode(), r.Stdout, strings.Join(want, ""), r.Stderr, r.Log)
	}
}

// TestUnsharePID: unshare(CLONE_NEWPID) leaves the caller where it is and
// puts its next children in a new namespace, the first as PID 1 there; a
// second unshare before that is EINVAL; without CAP_SYS_ADMIN, EPERM.
func TestUnsharePID(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "unsharepid", `
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void child(void) {
	pid_t c = fork();
	if (c == 0) {
		printf("child pid=%d ppid=%d\n", getpid(), getppid());
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, 0, 0);
	printf("parent saw %d\n", c);
	fflush(stdout);
}

int main(void) {
	pid_t before = getpid();
	int r = unshare(CLONE_NEWPID);
	if (r != 0) {
		printf("unshare: %s\n", strerror(errno));
		return 0;
	}
	printf("same pid: %d\n", getpid() == before);
	r = unshare(CLONE_NEWPID);
	printf("again: %d %s\n", r, strerror(errno));
	fflush(stdout);
	child();
	return 0;
}
`)
	r := sandboxtest.Run(t, root, []string{"/bin/unsharepid"}, sandboxtest.Options{})
	want := "same pid: 1\nagain: -1 Invalid argument\nchild pid=1 ppid=0\nparent saw 2\n"
	if r.Stdout != want || r.ExitCode() != 0 {
		t.Errorf("root: exit %d stdout %q, want %q (stderr %q)", r.ExitCode(), r.Stdout, want, r.Stderr)
	}
	r = sandboxtest.Run(t, root, []string{"/bin/unsharepid"}, sandboxtest.Options{UID: 1000})
	if want := "unshare: Operation not permitted\n"; r.Stdout != want {
		t.Errorf("uid 1000: stdout %q, want %q", r.Stdout, want)
	}
}

// TestContainerPIDNamespaces: a container of its own PID namespace has its
// first process as PID 1 there and sees none of the pod's; a container in
// the pod's namespace sees the pod's init as PID 1 and every process of
// that namespace but not the other containers' own; the sandbox's
// namespace (a hostPID container) sees everything. When a namespace's
// init ends, the rest of the namespace is killed.
func TestContainerPIDNamespaces(t *testing.T) {
	sandboxtest.RequireKVM(t)
	sb, err := sandbox.New(sandbox.Config{CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ctx := t.Context()
	pod, err := sb.StartPodInit(ctx, "pause", [3]*vfs.File{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := func(id string, argv ...string) *kernel.ThreadGroup {
		t.Helper()
		root, ok := sb.ContainerRoot(id)
		if !ok {
			t.Fatalf("no container %s", id)
		}
		defer root.DecRef(ctx)
		ns, _ := sb.ContainerPIDNamespace(id)
		g, err := sb.Kernel.CreateProcess(kernel.ProcessSpec{Argv: argv, Cwd: "/", Creds: kernel.Creds{Caps: auth.CapSet(sandbox.RootCaps)},
			Container: id, Root: root, PIDNamespace: ns})
		if err != nil {
			t.Fatalf("start %v in %s: %v", argv, id, err)
		}
		return g
	}
	for id, mode := range map[string]sandbox.PIDMode{"own": sandbox.PIDContainer, "shared": sandbox.PIDPod, "host": sandbox.PIDSandbox} {
		r, err := sb.AddContainer(ctx, id, sandbox.ContainerSpec{RootFS: sandboxtest.Rootfs(t, true), PIDMode: mode})
		if err != nil {
			t.Fatal(err)
		}
		r.DecRef(ctx)
	}
	own := start("own", "/bin/sleep", "60")
	ownExec := start("own", "/bin/sleep", "60")
	shared := start("shared", "/bin/sleep", "60")
	host := start("host", "/bin/sleep", "60")
	rootNS := sb.Kernel.RootPIDNamespace()
	ownNS, _ := sb.ContainerPIDNamespace("own")
	sharedNS, _ := sb.ContainerPIDNamespace("shared")
	hostNS, _ := sb.ContainerPIDNamespace("host")
	if hostNS != rootNS || sharedNS.Parent() != rootNS || ownNS.Parent() != rootNS || ownNS == sharedNS {
		t.Fatalf("namespaces: own %p (parent %p), shared %p (parent %p), host %p, root %p", ownNS, ownNS.Parent(), sharedNS, sharedNS.Parent(), hostNS, rootNS)
	}
	checks := []struct {
		what      string
		ns        *kernel.PIDNamespace
		g         *kernel.ThreadGroup
		want      int32
		wantFound bool
	}{
		{"pod init in the pod's namespace", sharedNS, pod, 1, true},
		{"pod init in the sandbox's namespace", rootNS, pod, 1, true},
		{"shared container in the pod's namespace", sharedNS, shared, 2, true},
		{"own container's init in its namespace", ownNS, own, 1, true},
		{"own container's exec in its namespace", ownNS, ownExec, 2, true},
		{"pod init from the own container", ownNS, pod, 0, false},
		{"shared container from the own container", ownNS, shared, 0, false},
		{"own container from the shared one", sharedNS, own, 0, false},
		{"host container from the shared one", sharedNS, host, 0, false},
	}
	for _, c := range checks {
		id := c.ns.IDOfThreadGroup(c.g)
		if c.wantFound && id != c.want || !c.wantFound && id != 0 {
			t.Errorf("%s: ID %d, want %d", c.what, id, c.want)
		}
	}
	for _, g := range []*kernel.ThreadGroup{own, ownExec, shared, host} {
		if rootNS.IDOfThreadGroup(g) == 0 {
			t.Errorf("the pod's namespace does not see process %d", g.PID())
		}
	}
	if n := len(ownNS.ThreadGroups()); n != 2 {
		t.Errorf("the own container's namespace holds %d processes, want 2", n)
	}
	// The init of the own namespace ends: its exec goes with it.
	sb.Kernel.SendSignalFromHost(own, 9)
	for _, g := range []*kernel.ThreadGroup{own, ownExec} {
		if !waitGone(sb, g) {
			t.Errorf("process %d of the ended namespace still runs", g.PID())
		}
	}
	if waitGone(sb, shared) {
		t.Errorf("the shared container's process ended with another container's namespace")
	}
	if _, err := sb.Kernel.CreateProcess(kernel.ProcessSpec{Argv: []string{"/bin/true"}, Cwd: "/", PIDNamespace: ownNS}); err == nil {
		t.Errorf("a process entered a namespace whose init has exited")
	}
}

// TestCapabilities: the five sets as a container's root gets them from
// its OCI spec, capget/capset, the bounding and ambient sets through
// prctl, /proc/self/status, what setuid and execve do to the sets, and
// permission checks that use them.
func TestCapabilities(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "caps", `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void status(const char *tag) {
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	if (!f) { perror("status"); return; }
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "Cap", 3) == 0 || strncmp(line, "NoNewPrivs", 10) == 0)
			printf("%s %s", tag, line);
	fclose(f);
}

static int capset3(unsigned long long e, unsigned long long p, unsigned long long i) {
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2] = {{e, p, i}, {e >> 32, p >> 32, i >> 32}};
	return syscall(SYS_capset, &h, d);
}

static void capget3(const char *tag) {
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) != 0) { perror("capget"); return; }
	printf("%s capget eff=%x prm=%x inh=%x\n", tag, d[0].effective, d[0].permitted, d[0].inheritable);
}

#define R(x) do { long v_ = (long)(x); int e_ = errno; printf("%s = %ld %s\n", #x, v_, e_ ? strerror(e_) : ""); errno = 0; } while (0)

int main(int argc, char **argv) {
	if (argc > 1) { status("exec"); return 0; }
	close(open("/tmp/f", O_CREAT | O_WRONLY, 0644));
	status("start");
	capget3("start");
	errno = 0;
	R(prctl(PR_CAPBSET_READ, CAP_CHOWN, 0, 0, 0));
	R(prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0));
	R(prctl(PR_CAPBSET_READ, 99, 0, 0, 0));
	R(sethostname("x", 1));
	R(capset3(1ULL << CAP_SYS_ADMIN, 1ULL << CAP_SYS_ADMIN, 0));
	R(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0));
	/* keep chown, kill, setuid, setgid, setpcap, net_raw; inherit net_raw */
	unsigned long long keep = 1ULL << CAP_CHOWN | 1ULL << CAP_KILL | 1ULL << CAP_SETUID | 1ULL << CAP_SETGID | 1ULL << CAP_SETPCAP | 1ULL << CAP_NET_RAW;
	R(capset3(keep, keep, 1ULL << CAP_NET_RAW));
	R(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0));
	R(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_RAW, 0, 0));
	R(prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0));
	R(prctl(PR_CAPBSET_READ, CAP_MKNOD, 0, 0, 0));
	R(chown("/tmp/f", 5, 5));
	R(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	capget3("kept");
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		/* Leaving uid 0 clears the effective, permitted and ambient sets. */
		errno = 0;
		R(setresuid(1000, 1000, 1000));
		status("user");
		R(kill(1, 0));
		struct rlimit rl;
		R(prlimit(1, RLIMIT_NOFILE, 0, &rl));
		R(chown("/tmp/f", 6, 6));
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, 0, 0);
	fflush(stdout);
	/* execve as root: permitted = bounding | inheritable; effective too. */
	execl("/bin/caps", "caps", "exec", (char *)0);
	return 9;
}
`)
	const defaults = 1<<0 | 1<<1 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<13 | 1<<18 | 1<<27 | 1<<29 | 1<<31
	creds := &kernel.Creds{Caps: defaults, Permitted: defaults, Bounding: defaults}
	r := sandboxtest.Run(t, root, []string{"/bin/caps"}, sandboxtest.Options{Creds: creds, Mounts: []sandbox.Mount{{Destination: "/proc", Type: "proc"}}})
	keep := uint64(1<<0 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<13)
	want := fmt.Sprintf(`start CapInh:	0000000000000000
start CapPrm:	00000000a80425fb
start CapEff:	00000000a80425fb
start CapBnd:	00000000a80425fb
start CapAmb:	0000000000000000
start NoNewPrivs:	0
start capget eff=a80425fb prm=a80425fb inh=0
prctl(PR_CAPBSET_READ, CAP_CHOWN, 0, 0, 0) = 1 
prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) = 0 
prctl(PR_CAPBSET_READ, 99, 0, 0, 0) = -1 Invalid argument
sethostname("x", 1) = -1 Operation not permitted
capset3(1ULL << CAP_SYS_ADMIN, 1ULL << CAP_SYS_ADMIN, 0) = -1 Operation not permitted
prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0) = -1 Operation not permitted
capset3(keep, keep, 1ULL << CAP_NET_RAW) = 0 
prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0) = 0 
prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_RAW, 0, 0) = 1 
prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0) = 0 
prctl(PR_CAPBSET_READ, CAP_MKNOD, 0, 0, 0) = 0 
chown("/tmp/f", 5, 5) = 0 
prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) = 0 
kept capget eff=%x prm=%x inh=2000
setresuid(1000, 1000, 1000) = 0 
user CapInh:	0000000000002000
user CapPrm:	0000000000000000
user CapEff:	0000000000000000
user CapBnd:	00000000a00425fb
user CapAmb:	0000000000000000
user NoNewPrivs:	0
kill(1, 0) = -1 Operation not permitted
prlimit(1, RLIMIT_NOFILE, 0, &rl) = -1 Operation not permitted
chown("/tmp/f", 6, 6) = -1 Operation not permitted
exec CapInh:	0000000000002000
exec CapPrm:	00000000a00425fb
exec CapEff:	00000000a00425fb
exec CapBnd:	00000000a00425fb
exec CapAmb:	0000000000002000
exec NoNewPrivs:	0
`, keep, keep)
	if r.Stdout != want || r.ExitCode() != 0 {
		t.Errorf("exit %d, stdout:\n%s\nwant:\n%s\ndiff at: %s\nstderr: %s", r.ExitCode(), r.Stdout, want, firstDiff(r.Stdout, want), r.Stderr)
	}
}

// TestNoNewPrivs: a set-user-ID-root program makes an unprivileged user
// root, unless no_new_privs is set (the OCI process's noNewPrivileges).
func TestNoNewPrivs(t *testing.T) {
	sandboxtest.RequireKVM(t)
	if os.Geteuid() != 0 {
		if os.Getenv("MOAT_REQUIRE_KVM") != "" {
			t.Fatal("making a set-user-ID-root file needs root, and MOAT_REQUIRE_KVM is set")
		}
		t.Skip("making a set-user-ID-root file needs root (set MOAT_REQUIRE_KVM=1 to fail instead)")
	}
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "euid", `
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>
int main(void) {
	printf("Effective uid: %d nnp=%d\n", geteuid(), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	return 0;
}
`)
	p := filepath.Join(root, "bin/euid")
	if err := os.Chown(p, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	sandboxtest.BuildC(t, root, "run", `
#include <unistd.h>
int main(void) { execl("/bin/euid", "euid", (char *)0); return 1; }
`)
	for _, nnp := range []bool{false, true} {
		creds := &kernel.Creds{RUID: 1000, EUID: 1000, SUID: 1000, FSUID: 1000, RGID: 1000, EGID: 1000, SGID: 1000, FSGID: 1000, NoNewPrivs: nnp}
		r := sandboxtest.Run(t, root, []string{"/bin/run"}, sandboxtest.Options{Creds: creds})
		want := "Effective uid: 0 nnp=0\n"
		if nnp {
			want = "Effective uid: 1000 nnp=1\n"
		}
		if r.Stdout != want {
			t.Errorf("no_new_privs %v: got %q (exit %d, stderr %q), want %q", nnp, r.Stdout, r.ExitCode(), r.Stderr, want)
		}
	}
}

// waitGone waits up to five seconds for g to have exited.
func waitGone(sb *sandbox.Sandbox, g *kernel.ThreadGroup) bool {
	for range 500 {
		if g.Zombie() || sb.Kernel.ThreadGroupByID(g.PID()) != g {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func firstDiff(a, b string) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("byte %d: %q", i, a[max(0, i-20):min(len(a), i+20)])
		}
	}
	return "length"
}

// TestMaskedAndReadonlyPaths: OCI maskedPaths hide a file (empty, not
// executable, writes go nowhere) and a directory (empty, read-only);
// readonlyPaths make a tree and a /proc directory read-only; missing
// paths are skipped. A plain read-only volume does not make what is
// mounted below it read-only.
func TestMaskedAndReadonlyPaths(t *testing.T) {
	sandboxtest.RequireKVM(t)
	sb, err := sandbox.New(sandbox.Config{CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ctx := t.Context()
	rootfs := sandboxtest.Rootfs(t, true)
	os.MkdirAll(filepath.Join(rootfs, "secret"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "secret/key"), []byte("k"), 0o644)
	os.MkdirAll(filepath.Join(rootfs, "data"), 0o755)
	vol, sub := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(vol, "sub"), 0o755)
	root, err := sb.AddContainer(ctx, "c", sandbox.ContainerSpec{RootFS: rootfs,
		Mounts: []sandbox.Mount{
			{Destination: "/proc", Type: "proc"},
			{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "ro"}},
			{Destination: "/vol/sub", Type: "bind", Source: sub, Options: []string{"rbind", "rw"}},
		},
		MaskedPaths:   []string{"/bin/ls", "/secret", "/not/there"},
		ReadonlyPaths: []string{"/data", "/proc/sys", "/missing"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer root.DecRef(ctx)
	creds := auth.Root()
	pop := func(p string) vfs.PathOperation {
		return vfs.PathOperation{Root: root, Start: root, Path: p, FollowFinal: true}
	}
	create := func(p string) error {
		f, err := sb.VFS.Open(ctx, creds, pop(p), vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_CREAT, Mode: 0o644})
		if err == nil {
			f.DecRef(ctx)
		}
		return err
	}
	if st, err := sb.VFS.Stat(ctx, creds, pop("/bin/ls")); err != nil || st.Size != 0 {
		t.Errorf("masked /bin/ls: %+v, %v; want an empty file", st, err)
	}
	// What is written goes nowhere (/dev/null, as runc masks files).
	if f, err := sb.VFS.Open(ctx, creds, pop("/bin/ls"), vfs.OpenOptions{Flags: unix.O_WRONLY}); err == nil {
		f.Write(ctx, []byte("x"))
		f.DecRef(ctx)
	}
	if st, err := sb.VFS.Stat(ctx, creds, pop("/bin/ls")); err != nil || st.Size != 0 {
		t.Errorf("masked /bin/ls after a write: %+v, %v; want an empty file", st, err)
	}
	if _, err := sb.Kernel.CreateProcess(kernel.ProcessSpec{Argv: []string{"/bin/ls"}, Cwd: "/", Root: root,
		Creds: kernel.Creds{Caps: auth.CapSet(sandbox.RootCaps)}}); !errors.Is(err, unix.EACCES) {
		t.Errorf("exec of masked /bin/ls: %v, want EACCES", err)
	}
	if _, err := sb.VFS.Stat(ctx, creds, pop("/secret/key")); !errors.Is(err, unix.ENOENT) {
		t.Errorf("masked /secret/key: %v, want ENOENT", err)
	}
	for _, p := range []string{"/secret/new", "/data/new", "/proc/sys/new", "/vol/new"} {
		if err := create(p); !errors.Is(err, unix.EROFS) {
			t.Errorf("create %s: %v, want EROFS", p, err)
		}
	}
	if err := create("/vol/sub/new"); err != nil {
		t.Errorf("create below a plain read-only volume, in a mount of its own: %v", err)
	}
	if _, err := os.Stat(filepath.Join(sub, "new")); err != nil {
		t.Errorf("the file is not on the host: %v", err)
	}
	if err := create("/tmp/ok"); err != nil {
		t.Errorf("create elsewhere: %v", err)
	}
}

// TestNamespaceInitSignals: a signal whose action is the default does not
// reach the init of a PID namespace (a container's sleep outlives
// SIGTERM; SIGKILL ends it), but one the init blocks and waits for does:
// the pod's init ends on SIGTERM with status 0.
func TestNamespaceInitSignals(t *testing.T) {
	sandboxtest.RequireKVM(t)
	sb, err := sandbox.New(sandbox.Config{CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ctx := t.Context()
	pod, err := sb.StartPodInit(ctx, "pause", [3]*vfs.File{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := sb.AddContainer(ctx, "c", sandbox.ContainerSpec{RootFS: sandboxtest.Rootfs(t, true), PIDMode: sandbox.PIDContainer})
	if err != nil {
		t.Fatal(err)
	}
	defer r.DecRef(ctx)
	ns, _ := sb.ContainerPIDNamespace("c")
	sleeper, err := sb.Kernel.CreateProcess(kernel.ProcessSpec{Argv: []string{"/bin/sleep", "60"}, Cwd: "/", Root: r,
		Creds: kernel.Creds{Caps: auth.CapSet(sandbox.RootCaps)}, Container: "c", PIDNamespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	sb.Kernel.SendSignalFromHost(sleeper, abi.SIGTERM)
	// A process-directed SIGTERM that was not dropped would be pending
	// or would have ended sleep by now; neither may happen.
	time.Sleep(200 * time.Millisecond)
	if sleeper.Zombie() || sleeper.Info().SharedPending.Has(abi.SIGTERM) {
		t.Errorf("SIGTERM reached a namespace's init that has no handler for it")
	}
	sb.Kernel.SendSignalFromHost(sleeper, abi.SIGKILL)
	if !waitGone(sb, sleeper) {
		t.Errorf("SIGKILL from outside did not end a namespace's init")
	}
	sb.Kernel.SendSignalFromHost(pod, abi.SIGTERM)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := sb.Kernel.WaitInit(wctx)
	if err != nil || st.ExitCode() != 0 {
		t.Errorf("pod init after SIGTERM: status %v (exit %d), %v; want exit 0", st, st.ExitCode(), err)
	}
}

// TestTerminalForegroundPIDNamespace: a terminal's foreground process
// group is numbered as the asking process's PID namespace numbers it, so
// a shell in a container's namespace (an exec -it) finds tcgetpgrp equal
// to its getpgrp and does not stop itself as a background job; a group
// set with tcsetpgrp is read back as the same number, and one the
// namespace does not have is refused.
func TestTerminalForegroundPIDNamespace(t *testing.T) {
	sandboxtest.RequireKVM(t)
	root := sandboxtest.Rootfs(t, false)
	sandboxtest.BuildC(t, root, "ttyns", `
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
	pid_t c = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
	if (c < 0) { perror("clone"); return 1; }
	if (c == 0) {
		pid_t s = setsid();
		printf("sid=%d pgrp=%d fg=%d\n", s, getpgrp(), tcgetpgrp(0));
		int p[2];
		pipe(p);
		pid_t j = fork();
		if (j == 0) {
			char x;
			setpgid(0, 0);
			read(p[0], &x, 1);
			_exit(0);
		}
		setpgid(j, j);
		signal(SIGTTOU, SIG_IGN);
		int r = tcsetpgrp(0, j);
		printf("job=%d set=%d fg=%d\n", j, r, tcgetpgrp(0));
		r = tcsetpgrp(0, 50);
		printf("set 50: %d %s\n", r, r ? strerror(errno) : "");
		r = tcsetpgrp(0, getpgrp());
		printf("back: %d fg=%d\n", r, tcgetpgrp(0));
		write(p[1], "x", 1);
		waitpid(j, 0, 0);
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	return WEXITSTATUS(st);
}
`)
	r := sandboxtest.Run(t, root, []string{"/bin/ttyns"}, sandboxtest.Options{StdinTTY: true})
	want := []string{
		"sid=1 pgrp=1 fg=1\n",
		"job=2 set=0 fg=2\n",
		"set 50: -1 No such process\n",
		"back: 0 fg=1\n",
	}
	if r.Stdout != strings.Join(want, "") || r.ExitCode() != 0 {
		t.Errorf("got exit %d, stdout:\n%s\nwant:\n%s\nstderr: %s\nlog: %s", r.ExitCode(), r.Stdout, strings.Join(want, ""), r.Stderr, r.Log)
	}
}
