package procfs

import (
	"context"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/mm"
	"moat.dev/moat/sentry/vfs"
)

// capSysPtrace is CAP_SYS_PTRACE, which lets a process look into any
// other.
const capSysPtrace auth.Capability = 19

// proc is the process, or the thread of one, that a directory of /proc
// shows.
type proc struct {
	fs *Filesystem
	g  *kernel.ThreadGroup
	// t is the thread of /proc/[pid]/task/[tid]; nil for the process.
	t *kernel.Task
	// path is the directory's path in /proc, for inode numbers.
	path string
}

// live says whether the process (or thread) still exists, zombies
// included.
func (p *proc) live() bool {
	if p.t != nil {
		return p.t.Alive()
	}
	return p.fs.k.ThreadGroupByID(p.g.PID()) == p.g
}

// task returns the thread whose state the files show: the thread, or
// the process's main thread (another one once the main thread is gone);
// nil for a zombie.
func (p *proc) task() *kernel.Task {
	if p.t != nil {
		if p.t.Alive() {
			return p.t
		}
		return nil
	}
	if l := p.g.Leader(); l != nil && l.Alive() {
		return l
	}
	if ts := p.g.Tasks(); len(ts) > 0 {
		return ts[0]
	}
	return nil
}

// owner returns the effective user and group of the process, which own
// its files (root for a zombie).
func (p *proc) owner() (uint32, uint32) {
	t := p.task()
	if t == nil {
		return 0, 0
	}
	c := t.ProcCreds()
	return c.EUID, c.EGID
}

// mayAccess applies Linux's ptrace access rule for reading another
// process's memory and descriptors (PTRACE_MODE_READ_FSCREDS): the
// caller's own process, a caller whose filesystem user and group match
// every user and group id of the target, or one with CAP_SYS_PTRACE.
func (p *proc) mayAccess(ctx context.Context) error {
	caller := kernel.TaskFromContext(ctx)
	if caller == nil || caller.ThreadGroup() == p.g {
		return nil
	}
	cc := caller.Creds()
	if cc.Caps&auth.CapSetOf(capSysPtrace) != 0 {
		return nil
	}
	t := p.task()
	if t == nil {
		return nil // a zombie shows nothing anyway
	}
	tc := t.ProcCreds()
	if cc.FSUID == tc.RUID && cc.FSUID == tc.EUID && cc.FSUID == tc.SUID &&
		cc.FSGID == tc.RGID && cc.FSGID == tc.EGID && cc.FSGID == tc.SGID {
		return nil
	}
	return unix.EACCES
}

// withMM runs fn with the address space of the process, held so that an
// exit meanwhile cannot free it; it returns false for a zombie.
func (p *proc) withMM(fn func(m *mm.MM)) bool {
	t := p.task()
	if t == nil {
		return false
	}
	m := t.ProcMM()
	if m == nil {
		return false
	}
	defer m.DecUsers(context.Background())
	fn(m)
	return true
}

// procDir is /proc/[pid], /proc/[pid]/task/[tid], or /proc/[tid] of a
// thread.
type procDir struct {
	*staticDir
	p *proc
}

func (fs *Filesystem) newProcDir(g *kernel.ThreadGroup, t *kernel.Task) *procDir {
	path := "/" + strconv.Itoa(int(g.PID()))
	if t != nil {
		path = "/" + strconv.Itoa(int(g.PID())) + "/task/" + strconv.Itoa(int(t.TID()))
	}
	return fs.newProcDirAt(g, t, path)
}

func (fs *Filesystem) newProcDirAt(g *kernel.ThreadGroup, t *kernel.Task, path string) *procDir {
	p := &proc{fs: fs, g: g, t: t, path: path}
	start := g.Info().Start
	d := &procDir{staticDir: fs.newStaticDir(path, inoOf("/")), p: p}
	d.owner = p.owner
	d.made = start
	d.revalidate = func(context.Context, string, vfs.Inode) bool { return p.live() }

	f := func(name string, mode uint32, gen func(context.Context) ([]byte, error)) *file {
		n := &file{attr: fs.attr(path+"/"+name, unix.S_IFREG|mode, p.owner, start), gen: gen}
		d.add(name, n)
		return n
	}
	l := func(name string, target func(context.Context) (string, error)) *link {
		n := &link{attr: fs.attr(path+"/"+name, unix.S_IFLNK|0o777, p.owner, start), target: target, check: p.mayAccess}
		d.add(name, n)
		return n
	}
	f("auxv", 0o400, p.auxv).check = p.mayAccess
	f("cgroup", 0o444, text("0::/\n"))
	f("cmdline", 0o444, p.cmdline)
	comm := f("comm", 0o644, p.comm)
	comm.write = p.setComm
	d.add("cwd", &fsLink{link: link{attr: fs.attr(path+"/cwd", unix.S_IFLNK|0o777, p.owner, start), target: p.cwd, check: p.mayAccess}, p: p})
	f("environ", 0o400, p.environ).check = p.mayAccess
	l("exe", p.exe)
	d.add("fd", fs.newFDDir(p, false))
	d.add("fdinfo", fs.newFDDir(p, true))
	f("limits", 0o444, p.limits)
	f("maps", 0o444, p.maps).check = p.mayAccess
	f("mountinfo", 0o444, p.mountinfo)
	f("mounts", 0o444, p.mounts)
	if fs.netDir != nil {
		d.add("net", fs.netDir)
	}
	f("oom_score", 0o444, text("0\n"))
	adj := f("oom_score_adj", 0o644, p.oomScoreAdj)
	adj.write = p.setOOMScoreAdj
	d.add("root", &fsLink{link: link{attr: fs.attr(path+"/root", unix.S_IFLNK|0o777, p.owner, start), target: p.root, check: p.mayAccess}, p: p, root: true})
	f("smaps", 0o444, p.smaps).check = p.mayAccess
	f("stat", 0o444, p.stat)
	f("statm", 0o444, p.statm)
	f("status", 0o444, p.status)
	if t == nil {
		d.add("task", fs.newTaskDir(p))
	}
	return d
}

// newTaskDir is /proc/[pid]/task: one directory per live thread.
func (fs *Filesystem) newTaskDir(p *proc) *dir {
	path := p.path + "/task"
	d := &dir{attr: fs.attr(path, unix.S_IFDIR|0o555, p.owner, p.g.Info().Start), parentIno: inoOf(p.path)}
	d.list = func(ctx context.Context) ([]entry, error) {
		ns := fs.viewer(ctx)
		ts := p.g.Tasks()
		ids := map[*kernel.Task]int32{}
		for _, t := range ts {
			ids[t] = ns.IDOfTask(t)
		}
		sort.Slice(ts, func(i, j int) bool { return ids[ts[i]] < ids[ts[j]] })
		out := make([]entry, 0, len(ts))
		for _, t := range ts {
			if ids[t] == 0 {
				continue
			}
			name := strconv.Itoa(int(ids[t]))
			out = append(out, entry{name: name, pos: 2 + int64(ids[t]), typ: unix.DT_DIR, ino: inoOf(path + "/" + name)})
		}
		return out, nil
	}
	d.lookup = func(ctx context.Context, name string) (vfs.Inode, error) {
		id, err := strconv.ParseInt(name, 10, 32)
		if err != nil || strconv.FormatInt(id, 10) != name {
			return nil, unix.ENOENT
		}
		t := fs.viewer(ctx).TaskWithID(int32(id))
		if t == nil || t.ThreadGroup() != p.g {
			return nil, unix.ENOENT
		}
		return fs.newProcDirAt(p.g, t, path+"/"+name), nil
	}
	d.revalidate = func(_ context.Context, _ string, child vfs.Inode) bool {
		pd, ok := child.(*procDir)
		return !ok || pd.p.live()
	}
	return d
}

// fsLink is /proc/[pid]/cwd or root: a magic link to the directory
// itself, which may lie outside the reader's root or have been removed.
type fsLink struct {
	link
	p    *proc
	root bool
}

// Target implements vfs.MagicLink.
func (l *fsLink) Target(ctx context.Context) (vfs.VirtualDentry, error) {
	if err := l.p.mayAccess(ctx); err != nil {
		return vfs.VirtualDentry{}, err
	}
	t := l.p.task()
	if t == nil {
		return vfs.VirtualDentry{}, unix.ENOENT
	}
	root, cwd, ok := t.ProcFS()
	if !ok {
		return vfs.VirtualDentry{}, unix.ENOENT
	}
	if l.root {
		cwd.DecRef(ctx)
		return root, nil
	}
	root.DecRef(ctx)
	return cwd, nil
}
