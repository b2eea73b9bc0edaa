package procfs

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"weak"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/vfs"
)

// mountID returns the number /proc shows for a mount (mnt_id,
// mountinfo), given the first time /proc sees it.
func (fs *Filesystem) mountID(m *vfs.Mount) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.mountIDs == nil {
		fs.mountIDs = map[weak.Pointer[vfs.Mount]]int{}
		fs.nextMountID = firstMountID
	}
	k := weak.Make(m)
	if id, ok := fs.mountIDs[k]; ok {
		return id
	}
	id := fs.nextMountID
	fs.nextMountID++
	fs.mountIDs[k] = id
	return id
}

// firstMountID is the first mount's number; the root's parent is the
// one before, a mount outside the container, as in a runc container.
const firstMountID = 21

// mountLine is one mount as a process sees it.
type mountLine struct {
	m     *vfs.Mount
	path  string // from the process's root
	fs    string
	flags uint32
}

// mountLines lists the mounts under the process's root, parents before
// children, with paths from that root.
func (p *proc) mountLines(ctx context.Context) []mountLine {
	t := p.task()
	if t == nil {
		return nil
	}
	root, cwd, ok := t.ProcFS()
	if !ok {
		return nil
	}
	defer root.DecRef(ctx)
	defer cwd.DecRef(ctx)
	rootPath, _ := p.fs.k.VFS.PathOf(vfs.VirtualDentry{}, root)
	var out []mountLine
	haveRoot := false
	for _, mi := range p.fs.k.VFS.Mounts() {
		rel := mi.Path
		switch {
		case rootPath == "/":
		case mi.Path == rootPath:
			rel = "/"
		case strings.HasPrefix(mi.Path, rootPath+"/"):
			rel = mi.Path[len(rootPath):]
		default:
			continue
		}
		if rel == "/" {
			haveRoot = true
		}
		out = append(out, mountLine{m: mi.Mount, path: rel, fs: mi.FS, flags: mi.Flags})
	}
	if !haveRoot {
		out = append(out, mountLine{m: root.Mount, path: "/", fs: root.Mount.Filesystem().Name(), flags: root.Mount.Flags()})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].path < out[j].path })
	for _, l := range out {
		p.fs.mountID(l.m)
	}
	return out
}

// mountOptions renders a mount's flags as mount(8) does.
func mountOptions(flags uint32) string {
	var b strings.Builder
	if flags&vfs.MountReadOnly != 0 {
		b.WriteString("ro")
	} else {
		b.WriteString("rw")
	}
	for _, f := range []struct {
		bit  uint32
		name string
	}{{vfs.MountNoSuid, "nosuid"}, {vfs.MountNoDev, "nodev"}, {vfs.MountNoExec, "noexec"}} {
		if flags&f.bit != 0 {
			b.WriteString("," + f.name)
		}
	}
	if flags&vfs.MountNoAtime != 0 {
		b.WriteString(",noatime")
	} else {
		b.WriteString(",relatime")
	}
	return b.String()
}

// escapePath escapes the characters mount tables cannot hold as they are.
func escapePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// mounts is /proc/[pid]/mounts.
func (p *proc) mounts(ctx context.Context) ([]byte, error) {
	var b []byte
	for _, l := range p.mountLines(ctx) {
		b = fmt.Appendf(b, "%s %s %s %s 0 0\n", l.fs, escapePath(l.path), l.fs, mountOptions(l.flags))
	}
	return b, nil
}

// mountinfo is /proc/[pid]/mountinfo.
func (p *proc) mountinfo(ctx context.Context) ([]byte, error) {
	lines := p.mountLines(ctx)
	var b []byte
	for i, l := range lines {
		id := p.fs.mountID(l.m)
		parent := firstMountID - 1
		// The parent is the mount at the longest path above this one.
		best := -1
		for j, o := range lines {
			if j == i || !isUnder(l.path, o.path) {
				continue
			}
			if best < 0 || len(o.path) > len(lines[best].path) {
				best = j
			}
		}
		if best >= 0 {
			parent = p.fs.mountID(lines[best].m)
		}
		var dev uint64
		if root, err := l.m.Filesystem().Root(ctx); err == nil {
			if st, err := root.Stat(ctx); err == nil {
				dev = st.Dev
			}
		}
		super := "rw"
		if l.flags&vfs.MountReadOnly != 0 {
			super = "ro"
		}
		b = fmt.Appendf(b, "%d %d %d:%d / %s %s - %s %s %s\n", id, parent, unix.Major(dev), unix.Minor(dev),
			escapePath(l.path), mountOptions(l.flags), l.fs, l.fs, super)
	}
	return b, nil
}

// isUnder says whether path p lies strictly below dir.
func isUnder(p, dir string) bool {
	if p == dir || p == "/" {
		return false
	}
	if dir == "/" {
		return true
	}
	return strings.HasPrefix(p, dir+"/")
}
