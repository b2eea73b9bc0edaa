package control

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"

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
		if errors.Is(e, syscall.ENOTSUP) {
			// A cgo build cannot change every thread at once, so it
			// could neither drop the sentry's capabilities nor set
			// no_new_privs everywhere: refuse to run guest code half
			// confined rather than warn.
			return nil, errors.New("set no_new_privs on every thread: not supported by a cgo build of the sentry; build it with CGO_ENABLED=0")
		}
		return nil, fmt.Errorf("set no_new_privs: %w", e)
	}
	if err := keepCaps(SentryCaps); err != nil {
		return nil, err
	}
	if err := installSeccomp(); err != nil {
		return nil, err
	}
	return warnings, nil
}

// SentryCaps are the capabilities a confined sentry keeps: those its host
// filesystem work needs on behalf of a container's root (owners, modes,
// permission overrides) and the network ones its containers' sockets
// will need. CAP_SYS_ADMIN and the rest are dropped from every set and
// from the bounding set.
const SentryCaps = 1<<unix.CAP_CHOWN | 1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_DAC_READ_SEARCH |
	1<<unix.CAP_FOWNER | 1<<unix.CAP_FSETID | 1<<unix.CAP_NET_BIND_SERVICE | 1<<unix.CAP_NET_RAW

// keepCaps drops every capability but keep, on every thread.
func keepCaps(keep uint64) error {
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); e != 0 && e != syscall.EINVAL {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, e)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(keep), Permitted: uint32(keep)},
		{Effective: uint32(keep >> 32), Permitted: uint32(keep >> 32)},
	}
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("drop capabilities: %w", e)
	}
	runtime.KeepAlive(&hdr)
	runtime.KeepAlive(&data)
	return nil
}
