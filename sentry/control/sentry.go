package control

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/sandbox"
)

// Descriptors a sentry process inherits.
const (
	// CtlFD is the stream socket of the net/rpc calls.
	CtlFD = 3
	// FDsFD is the seqpacket socket that brings descriptors.
	FDsFD = 4
)

// ParseLevel turns a log level name into a slog level (info if unknown).
func ParseLevel(s string) slog.Level {
	switch s {
	case "debug", "trace":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error", "fatal", "panic":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// RunSentry is the main of a sentry process: configJSON is its Config,
// the control sockets are CtlFD and FDsFD, logs go to stderr. It returns
// the process's exit code once the control connection closes or
// Shutdown is called; by then every process of the sandbox is gone.
func RunSentry(configJSON string, stderr io.Writer) int {
	var cfg Config
	if err := json.Unmarshal([]byte(configJSON), &cfg); err != nil {
		fmt.Fprintf(stderr, "sentry: bad configuration %q: %v\n", configJSON, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: ParseLevel(cfg.LogLevel)}))
	if cfg.Pod != "" {
		log = log.With("pod", cfg.Pod)
	}
	ctl, err := unixConn(os.NewFile(CtlFD, "control"))
	if err != nil {
		log.Error("sentry: control socket (fd 3)", "err", err)
		return 2
	}
	fdc, err := unixConn(os.NewFile(FDsFD, "descriptors"))
	if err != nil {
		log.Error("sentry: descriptor socket (fd 4)", "err", err)
		return 2
	}
	if cfg.NewNetNS {
		// A new network namespace starts with its loopback down.
		if err := loopbackUp(); err != nil {
			log.Error("sentry: bring up the loopback of its network namespace", "err", err)
			return 1
		}
	}
	sc := sandbox.Config{CPUs: cfg.CPUs, Memory: cfg.Memory, Hostname: cfg.Hostname, Sysctls: cfg.Sysctls, Log: log}
	if cfg.Strace {
		sc.Strace = stderr
	}
	sb, err := sandbox.New(sc)
	if err != nil {
		log.Error("sentry: start sandbox", "cpus", cfg.CPUs, "memory", cfg.Memory, "err", err)
		return 1
	}
	log.Info("sandbox up", "pid", os.Getpid(), "cpus", cfg.CPUs, "memory", cfg.Memory)
	if cfg.Confine {
		warnings, err := confine()
		if err != nil {
			log.Error("sentry: confine", "err", err)
			sb.Close()
			return 1
		}
		for _, w := range warnings {
			log.Warn("sentry: confine", "warning", w)
		}
	}
	log.Info("sentry ready", "confined", cfg.Confine)
	s := NewSentry(sb, log)
	s.Serve(ctl, fdc)
	if err := sb.Close(); err != nil {
		log.Warn("sentry: close sandbox", "err", err)
	}
	log.Info("sentry exits")
	return 0
}

// loopbackUp sets the up flag of the network namespace's "lo", as runc
// does for a container's new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS lo up: %w", err)
	}
	return nil
}
