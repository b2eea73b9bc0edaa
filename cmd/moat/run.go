package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/fs/hostio"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/sandbox"
	"moat.dev/moat/sentry/seccomp"
	"moat.dev/moat/sentry/vfs"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// runOptions are moat run's flags.
type runOptions struct {
	rootfs, image, workdir, user, hostname, memory string
	seccomp                                        string
	cpus                                           int
	env                                            listFlag
	strace                                         bool
	args                                           []string
}

func parseRun(args []string, stderr io.Writer) (*runOptions, error) {
	fs := flag.NewFlagSet("moat run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &runOptions{}
	fs.StringVar(&o.rootfs, "rootfs", "", "host directory holding the container's root filesystem")
	fs.StringVar(&o.image, "image", "", "OCI image layout directory or tarball to unpack as the root filesystem")
	fs.IntVar(&o.cpus, "cpus", 1, "vCPUs: how many threads run at once")
	fs.StringVar(&o.memory, "memory", "", "memory limit (e.g. 512M, 2G); the process that overruns it is killed")
	fs.Var(&o.env, "env", "environment variable K=V (repeatable)")
	fs.StringVar(&o.workdir, "workdir", "/", "working directory")
	fs.StringVar(&o.user, "user", "0:0", "UID[:GID]")
	fs.StringVar(&o.hostname, "hostname", "moat", "hostname")
	fs.BoolVar(&o.strace, "strace", false, "print every syscall with its arguments and result")
	fs.StringVar(&o.seccomp, "seccomp", "", "seccomp profile to enforce on the container: a JSON file in the form of an OCI config's linux.seccomp")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: moat run [flags] -- CMD [ARG...]\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.args = fs.Args()
	if len(o.args) == 0 && o.image == "" {
		return nil, fmt.Errorf("moat run: no command given (moat run [flags] -- CMD [ARG...])")
	}
	if (o.rootfs == "") == (o.image == "") {
		return nil, fmt.Errorf("moat run: give exactly one of --rootfs and --image")
	}
	return o, nil
}

// parseSize reads 512M, 2G, 1048576.
func parseSize(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	mult := uint64(1)
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad size %q: want a number with an optional K, M or G suffix", s)
	}
	return n * mult, nil
}

func parseUser(s string) (uint32, uint32, error) {
	u, g, _ := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("bad --user %q: want UID[:GID]", s)
	}
	gid := uid
	if g != "" {
		if gid, err = strconv.ParseUint(g, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("bad --user %q: want UID[:GID]", s)
		}
	}
	return uint32(uid), uint32(gid), nil
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	o, err := parseRun(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, err)
		return 2
	}
	mem, err := parseSize(o.memory)
	if err != nil {
		fmt.Fprintf(stderr, "moat run: --memory: %v\n", err)
		return 2
	}
	filter, err := loadSeccomp(o.seccomp)
	if err != nil {
		fmt.Fprintf(stderr, "moat run: --seccomp: %v\n", err)
		return 2
	}
	uid, gid, err := parseUser(o.user)
	if err != nil {
		fmt.Fprintf(stderr, "moat run: %v\n", err)
		return 2
	}
	rootfs := o.rootfs
	if o.image != "" {
		img, cleanup, err := unpackImage(o.image, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "moat run: %v\n", err)
			return 1
		}
		defer cleanup()
		rootfs = img.RootFS
		// The image's configuration supplies what the command line
		// leaves out, as docker run does.
		if len(o.args) == 0 {
			o.args = append(append([]string{}, img.Config.Entrypoint...), img.Config.Cmd...)
		} else if len(img.Config.Entrypoint) > 0 {
			o.args = append(append([]string{}, img.Config.Entrypoint...), o.args...)
		}
		if len(o.args) == 0 {
			fmt.Fprintln(stderr, "moat run: the image has no command and none was given")
			return 2
		}
		o.env = append(append(listFlag{}, img.Config.Env...), o.env...)
		if o.workdir == "/" && img.Config.WorkingDir != "" {
			o.workdir = img.Config.WorkingDir
		}
	}
	code, err := runContainer(o, rootfs, mem, uid, gid, filter, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "moat run: %v\n", err)
		return 125
	}
	return code
}

// loadSeccomp reads and compiles a seccomp profile (nil without one).
func loadSeccomp(path string) (*kernel.SeccompFilter, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p seccomp.Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	c, err := seccomp.Compile(&p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &kernel.SeccompFilter{Program: c.Program, Log: p.Log()}, nil
}

func runContainer(o *runOptions, rootfs string, mem uint64, uid, gid uint32, filter *kernel.SeccompFilter, stderr io.Writer) (int, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := sandbox.Config{CPUs: o.cpus, Memory: mem, RootFS: rootfs, Hostname: o.hostname, Log: log}
	if o.strace {
		cfg.Strace = stderr
	}
	sb, err := sandbox.New(cfg)
	if err != nil {
		return 0, err
	}
	defer sb.Close()
	ctx := context.Background()
	var stdio [3]*vfs.File
	for i := 0; i < 3; i++ {
		fd, err := unix.Dup(i)
		if err != nil {
			return 0, fmt.Errorf("dup stdio %d: %w", i, err)
		}
		flags := uint32(unix.O_RDWR)
		f, err := hostio.New(ctx, sb.VFS, fd, flags)
		if err != nil {
			return 0, err
		}
		stdio[i] = f
		defer f.DecRef(ctx)
	}
	env := []string(o.env)
	if !hasEnv(env, "PATH") {
		env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	}
	if !hasEnv(env, "HOME") {
		env = append(env, "HOME=/root")
	}
	if !hasEnv(env, "HOSTNAME") {
		env = append(env, "HOSTNAME="+o.hostname)
	}
	prog, err := lookPath(rootfs, o.args[0], env)
	if err != nil {
		return 0, err
	}
	creds := kernel.Creds{RUID: uid, EUID: uid, SUID: uid, FSUID: uid, RGID: gid, EGID: gid, SGID: gid, FSGID: gid}
	if uid == 0 {
		creds.Caps = rootCaps
	}
	init, err := sb.Start(kernel.ProcessSpec{
		Argv: o.args, Envv: env, Path: prog, Cwd: o.workdir, Creds: creds, Umask: 0o022,
		Stdio: stdio, Init: true, Container: "main", Seccomp: filter,
	})
	if err != nil {
		return 0, err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	defer signal.Stop(sigs)
	go func() {
		// The first SIGINT/SIGTERM goes to the container's init, which
		// may ignore it (pid 1 ignores what it has no handler for, as in
		// any container); a second one kills the container.
		stops := 0
		for s := range sigs {
			sig := abi.Signal(s.(unix.Signal))
			if sig == abi.SIGINT || sig == abi.SIGTERM {
				if stops++; stops > 1 {
					fmt.Fprintln(stderr, "moat run: second interrupt: killing the container")
					sig = abi.SIGKILL
				}
			}
			sb.Kernel.SendSignalFromHost(init, sig)
		}
	}()
	status, err := sb.Kernel.WaitInit(ctx)
	if err != nil {
		return 0, err
	}
	return status.ExitCode(), nil
}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return true
		}
	}
	return false
}

// lookPath finds a command without a slash in the container's PATH.
func lookPath(rootfs, cmd string, env []string) (string, error) {
	if strings.Contains(cmd, "/") {
		return cmd, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		p := dir + "/" + cmd
		if st, err := os.Stat(rootfs + p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: command not found in the container's PATH (%s)", cmd, path)
}

// rootCaps are the capabilities of a container's root: Docker's default
// set (chown, dac_override, fowner, fsetid, kill, setgid, setuid, setpcap,
// net_bind_service, net_raw, sys_chroot, mknod, audit_write, setfcap).
const rootCaps = 1<<0 | 1<<1 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<13 | 1<<18 | 1<<27 | 1<<29 | 1<<31
