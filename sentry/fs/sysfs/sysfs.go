// Package sysfs is the sentry's /sys: a small read-only tree with what
// programs look for in a container, the CPUs of the sandbox
// (/sys/devices/system/cpu/{online,possible,present}, which glibc's
// get_nprocs and many runtimes read) and an empty /sys/fs/cgroup. It is
// built with synthfs.
package sysfs

import (
	"context"
	"strconv"

	"moat.dev/moat/sentry/fs/synthfs"
)

// sysfsMagic is SYSFS_MAGIC, what statfs reports.
const sysfsMagic = 0x62656572

// New returns a sysfs whose CPU files show what cpus returns (the
// sandbox's vCPU count, which can change while it runs).
func New(cpus func() int) *synthfs.Filesystem {
	fs := synthfs.New("sysfs", sysfsMagic)
	dir := func(parent *synthfs.Dir, names ...string) *synthfs.Dir {
		d := parent
		for _, n := range names {
			c := fs.NewDir(synthfs.Attr{Mode: 0o555})
			d.Add(n, c)
			d = c
		}
		return d
	}
	root := fs.RootDir()
	cpu := dir(root, "devices", "system", "cpu")
	list := func(context.Context) ([]byte, error) {
		n := cpus()
		if n <= 1 {
			return []byte("0\n"), nil
		}
		return []byte("0-" + strconv.Itoa(n-1) + "\n"), nil
	}
	for _, name := range []string{"online", "possible", "present"} {
		cpu.Add(name, fs.NewFile(synthfs.Attr{Mode: 0o444}, list))
	}
	cpu.Add("kernel_max", fs.NewFile(synthfs.Attr{Mode: 0o444}, func(context.Context) ([]byte, error) { return []byte("8191\n"), nil }))
	dir(root, "fs", "cgroup")
	for _, n := range []string{"kernel", "class", "bus"} {
		dir(root, n)
	}
	return fs
}
