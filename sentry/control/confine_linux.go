package control

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// confine shuts the sentry process in once its sandbox holds every host
// resource it needs (/dev/kvm, guest memory): in its own mount namespace
// (created by its parent, see Launch) it pivots onto an empty read-only
// tmpfs, so no host path is reachable any more; container files arrive as
// descriptors. It also sets no_new_privs on every thread. It returns what
// it could not do among the optional steps.
func confine() (warnings []string, err error) {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("make the sentry's mounts private: %w", err)
	}
	const dir = "/tmp"
	if err := unix.Mount("moat-sentry", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=16k,mode=0700"); err != nil {
		return nil, fmt.Errorf("mount the sentry's empty root on %s: %w", dir, err)
	}
	if err := os.Mkdir(dir+"/old", 0o700); err != nil {
		return nil, fmt.Errorf("confine: %w", err)
	}
	if err := unix.PivotRoot(dir, dir+"/old"); err != nil {
		return nil, fmt.Errorf("pivot the sentry onto its empty root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return nil, fmt.Errorf("confine: chdir /: %w", err)
	}
	if err := unix.Unmount("/old", unix.MNT_DETACH); err != nil {
		return nil, fmt.Errorf("detach the host's root from the sentry: %w", err)
	}
	if err := os.Remove("/old"); err != nil {
		return nil, fmt.Errorf("confine: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, fmt.Errorf("make the sentry's root read-only: %w", err)
	}
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); e != 0 {
		if !errors.Is(e, syscall.ENOTSUP) {
			return nil, fmt.Errorf("set no_new_privs: %w", e)
		}
		// A cgo build cannot change every thread at once.
		warnings = append(warnings, "no_new_privs not set (a cgo build)")
	}
	return warnings, nil
}

// joinNetNS moves every thread of the sentry into the network namespace
// at path, so the sockets the sentry opens for its containers are the
// pod's.
func joinNetNS(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer unix.Close(fd)
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_SETNS, uintptr(fd), unix.CLONE_NEWNET, 0); e != 0 {
		if errors.Is(e, syscall.ENOTSUP) {
			return fmt.Errorf("join network namespace %s: a cgo build cannot move every thread", path)
		}
		return fmt.Errorf("join network namespace %s: %w", path, e)
	}
	return nil
}
