package procfs

import (
	"context"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
)

// pidPosBase is where process entries start in the root's listing: a
// process's position is pidPosBase+pid, past every fixed entry.
const pidPosBase = 1 << 16

// rootDir is /proc: the fixed files, then one directory per process.
type rootDir struct {
	*staticDir
}

func newRootDir(fs *Filesystem) *rootDir {
	r := &rootDir{staticDir: fs.newStaticDir("/", 0)}
	r.list = r.listAll
	r.lookup = r.lookupAny
	r.revalidate = r.revalidateChild
	r.add("self", fs.newLink("/self", func(ctx context.Context) (string, error) {
		t := kernel.TaskFromContext(ctx)
		if t == nil {
			return "", unix.ENOENT
		}
		return strconv.Itoa(int(t.LocalPID())), nil
	}))
	r.add("thread-self", fs.newLink("/thread-self", func(ctx context.Context) (string, error) {
		t := kernel.TaskFromContext(ctx)
		if t == nil {
			return "", unix.ENOENT
		}
		return strconv.Itoa(int(t.LocalPID())) + "/task/" + strconv.Itoa(int(t.LocalTID())), nil
	}))
	fs.addSystemFiles(r.staticDir)
	return r
}

func (r *rootDir) listAll(ctx context.Context) ([]entry, error) {
	out, _ := r.listStatic(ctx)
	ns := r.fs.viewer(ctx)
	type numbered struct {
		g   *kernel.ThreadGroup
		pid int32
	}
	var groups []numbered
	for _, g := range ns.ThreadGroups() {
		if pid := ns.IDOfThreadGroup(g); pid != 0 {
			groups = append(groups, numbered{g, pid})
		}
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].pid < groups[j].pid })
	for _, n := range groups {
		pid := int(n.pid)
		out = append(out, entry{name: strconv.Itoa(pid), pos: pidPosBase + int64(pid),
			// The directory's inode number follows its root-namespace
			// path, as newProcDir makes it.
			typ: unix.DT_DIR, ino: inoOf("/" + strconv.Itoa(int(n.g.PID())))})
	}
	return out, nil
}

func (r *rootDir) lookupAny(ctx context.Context, name string) (vfs.Inode, error) {
	if n, ok := r.children[name]; ok {
		return n, nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != name {
		return nil, unix.ENOENT
	}
	ns := r.fs.viewer(ctx)
	if g := ns.ThreadGroupWithID(int32(id)); g != nil {
		return r.fs.newProcDir(g, nil), nil
	}
	// A thread's ID opens its directory too, unlisted, as on Linux.
	if t := ns.TaskWithID(int32(id)); t != nil {
		return r.fs.newProcDir(t.ThreadGroup(), t), nil
	}
	return nil, unix.ENOENT
}

// revalidateChild drops a cached process directory once its process is
// gone, its ID was reused, or the reader's PID namespace gives the name
// to another process (or to none).
func (r *rootDir) revalidateChild(ctx context.Context, name string, child vfs.Inode) bool {
	pd, ok := child.(*procDir)
	if !ok {
		return true
	}
	if !pd.p.live() {
		return false
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return false
	}
	ns := r.fs.viewer(ctx)
	if pd.p.t != nil {
		return ns.TaskWithID(int32(id)) == pd.p.t
	}
	return ns.ThreadGroupWithID(int32(id)) == pd.p.g
}
