package procfs

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
)

// AnonNamer is implemented by the implementations of anonymous files
// (eventfd, epoll, timerfd) to name themselves in /proc/[pid]/fd, as
// "anon_inode:[eventfd]".
type AnonNamer interface {
	AnonName() string
}

// newFDDir is /proc/[pid]/fd (symbolic links to the open files) or, with
// info, /proc/[pid]/fdinfo (their offsets and flags).
func (fs *Filesystem) newFDDir(p *proc, info bool) *dir {
	name, mode, typ := "/fd", uint32(0o500), uint8(unix.DT_LNK)
	if info {
		name, mode, typ = "/fdinfo", 0o555, unix.DT_REG
	}
	path := p.path + name
	d := &dir{attr: fs.attr(path, unix.S_IFDIR|mode, p.owner, p.g.Info().Start), parentIno: inoOf(p.path), check: p.mayAccess}
	d.list = func(context.Context) ([]entry, error) {
		t := p.task()
		if t == nil {
			return nil, nil
		}
		fds := t.FDs().FDs()
		sort.Slice(fds, func(i, j int) bool { return fds[i] < fds[j] })
		out := make([]entry, 0, len(fds))
		for _, fd := range fds {
			n := strconv.Itoa(int(fd))
			out = append(out, entry{name: n, pos: 2 + int64(fd), typ: typ, ino: inoOf(path + "/" + n)})
		}
		return out, nil
	}
	d.lookup = func(ctx context.Context, name string) (vfs.Inode, error) {
		fd, err := strconv.ParseInt(name, 10, 32)
		if err != nil || fd < 0 || strconv.FormatInt(fd, 10) != name {
			return nil, unix.ENOENT
		}
		t := p.task()
		if t == nil {
			return nil, unix.ENOENT
		}
		f := t.FDs().Get(int32(fd))
		if f == nil {
			return nil, unix.ENOENT
		}
		readable, writable := f.Readable(), f.Writable()
		f.DecRef(ctx)
		a := fs.attr(path+"/"+name, 0, p.owner, p.g.Info().Start)
		if info {
			a.mode = unix.S_IFREG | 0o444
			return &file{attr: a, gen: func(ctx context.Context) ([]byte, error) { return p.fdinfo(ctx, int32(fd)) }}, nil
		}
		a.mode = unix.S_IFLNK
		if readable {
			a.mode |= 0o500
		}
		if writable {
			a.mode |= 0o300
		}
		return &fdLink{link: link{attr: a, check: p.mayAccess,
			target: func(ctx context.Context) (string, error) { return p.fdTarget(ctx, int32(fd)) }}, p: p, fd: int32(fd)}, nil
	}
	// A cached entry stands only while the descriptor is open.
	d.revalidate = func(ctx context.Context, name string, _ vfs.Inode) bool {
		fd, err := strconv.ParseInt(name, 10, 32)
		if err != nil {
			return false
		}
		t := p.task()
		if t == nil {
			return false
		}
		f := t.FDs().Get(int32(fd))
		if f == nil {
			return false
		}
		f.DecRef(ctx)
		return true
	}
	return d
}

// fdLink is /proc/[pid]/fd/N.
type fdLink struct {
	link
	p  *proc
	fd int32
}

// fdTarget is what /proc/[pid]/fd/N points to.
func (p *proc) fdTarget(ctx context.Context, fd int32) (string, error) {
	t := p.task()
	if t == nil {
		return "", unix.ENOENT
	}
	f := t.FDs().Get(fd)
	if f == nil {
		return "", unix.ENOENT
	}
	defer f.DecRef(ctx)
	return p.fs.filePath(ctx, t, f)
}

// filePath names an open file as Linux does in /proc: its path from the
// task's root (with " (deleted)" once it is unlinked or out of reach),
// or "pipe:[ino]", "socket:[ino]", "anon_inode:[kind]" for files without
// a name.
func (fs *Filesystem) filePath(ctx context.Context, t *kernel.Task, f *vfs.File) (string, error) {
	vd := f.VirtualDentry()
	defer vd.DecRef(ctx)
	if vd.Mount.Filesystem().Name() == "anon_inodefs" {
		st, err := f.Stat(ctx)
		if err != nil {
			return "", err
		}
		switch st.Type() {
		case unix.S_IFIFO:
			return fmt.Sprintf("pipe:[%d]", st.Ino), nil
		case unix.S_IFSOCK:
			return fmt.Sprintf("socket:[%d]", st.Ino), nil
		}
		if n, ok := f.Impl().(AnonNamer); ok {
			return "anon_inode:[" + n.AnonName() + "]", nil
		}
		return "anon_inode:[" + strconv.FormatUint(st.Ino, 10) + "]", nil
	}
	root, cwd, ok := t.ProcFS()
	if !ok {
		return "", unix.ENOENT
	}
	defer root.DecRef(ctx)
	defer cwd.DecRef(ctx)
	p, reachable := fs.k.VFS.PathOf(root, vd)
	if !reachable {
		p += " (deleted)"
	}
	return p, nil
}

// oLargefile is Linux's O_LARGEFILE on x86-64, which the kernel sets on
// every file it opens there (Go's unix.O_LARGEFILE is 0 on amd64).
const oLargefile = 0o100000

// fdinfo is /proc/[pid]/fdinfo/N.
func (p *proc) fdinfo(ctx context.Context, fd int32) ([]byte, error) {
	t := p.task()
	if t == nil {
		return nil, unix.ENOENT
	}
	f, cloexec := t.FDs().GetWithFlags(fd)
	if f == nil {
		return nil, unix.ENOENT
	}
	defer f.DecRef(ctx)
	flags := f.StatusFlags() | oLargefile
	if cloexec {
		flags |= unix.O_CLOEXEC
	}
	vd := f.VirtualDentry()
	defer vd.DecRef(ctx)
	st, err := f.Stat(ctx)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "pos:\t%d\nflags:\t0%o\nmnt_id:\t%d\nino:\t%d\n",
		f.Offset(), flags, p.fs.mountID(vd.Mount), st.Ino), nil
}

// Target makes fd/N a magic link, as on Linux: following it reaches the
// open file itself, even one without a name (a pipe) or that lost it.
func (l *fdLink) Target(ctx context.Context) (vfs.VirtualDentry, error) {
	if err := l.p.mayAccess(ctx); err != nil {
		return vfs.VirtualDentry{}, err
	}
	t := l.p.task()
	if t == nil {
		return vfs.VirtualDentry{}, unix.ENOENT
	}
	f := t.FDs().Get(l.fd)
	if f == nil {
		return vfs.VirtualDentry{}, unix.ENOENT
	}
	defer f.DecRef(ctx)
	return f.VirtualDentry(), nil
}
