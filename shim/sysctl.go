package shim

import (
	"fmt"
	"sort"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/control"
)

// writeNetSysctls writes net.* sysctls (checked by control.SplitSysctls)
// into the network namespace at path netns, as runc writes a container's
// into its own: /proc/sys/net shows the namespace of the thread that
// opens it, so a locked thread enters netns, writes, and comes back.
func writeNetSysctls(netns string, sysctls map[string]string) error {
	if len(sysctls) == 0 {
		return nil
	}
	if netns == "" {
		return fmt.Errorf("net.* sysctls need the pod's own network namespace")
	}
	names := make([]string, 0, len(sysctls))
	for name := range sysctls {
		if _, err := control.NetSysctlPath(name); err != nil {
			return err
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return control.InNetNS(netns, func() error {
		for _, name := range names {
			if err := writeSysctl(name, sysctls[name]); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeSysctl writes one net.* sysctl under /proc/sys/net of the calling
// thread's network namespace.
func writeSysctl(name, value string) error {
	rel, err := control.NetSysctlPath(name)
	if err != nil {
		return err
	}
	dir, err := unix.Open("/proc/sys", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sysctl %s: open /proc/sys: %w", name, err)
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, rel, &unix.OpenHow{
		Flags:   unix.O_WRONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return fmt.Errorf("sysctl %s: open /proc/sys/%s: %w", name, rel, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return fmt.Errorf("sysctl %s: write %q to /proc/sys/%s: %w", name, value, rel, err)
	}
	return nil
}
