package procfs

import (
	"context"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/vfs"
)

// attr is what every procfs inode reports about itself.
type attr struct {
	fs   *Filesystem
	ino  uint64
	mode uint32
	// owner gives the owner and group (a process's files belong to its
	// effective user); root when nil.
	owner func() (uid, gid uint32)
	// made is the files' time stamps.
	made time.Time
}

func (fs *Filesystem) attr(path string, mode uint32, owner func() (uint32, uint32), made time.Time) attr {
	return attr{fs: fs, ino: inoOf(path), mode: mode, owner: owner, made: made}
}

// Stat implements vfs.Inode.
func (a *attr) Stat(context.Context) (vfs.Stat, error) {
	st := vfs.Stat{Dev: a.fs.dev, Ino: a.ino, Mode: a.mode, Nlink: 1, Blksize: 1024}
	if a.mode&unix.S_IFMT == unix.S_IFDIR {
		st.Nlink = 2
	}
	if a.owner != nil {
		st.UID, st.GID = a.owner()
	}
	ts := timespec(a.made)
	st.Atime, st.Mtime, st.Ctime, st.Btime = ts, ts, ts, ts
	return st, nil
}

// SetStat implements vfs.Inode: /proc's metadata is fixed.
func (a *attr) SetStat(context.Context, vfs.SetStat) error { return unix.EPERM }

// Open implements vfs.Inode for inodes that are never opened this way
// (directories and symbolic links).
func (a *attr) Open(context.Context, uint32) (vfs.FileImpl, error) { return nil, unix.EINVAL }

// readOnlyDir refuses every change to a directory, with Linux's errors
// for a directory whose inode has no such operation.
type readOnlyDir struct{}

func (readOnlyDir) Create(context.Context, string, vfs.CreateAttr) (vfs.Inode, error) {
	return nil, unix.EACCES
}
func (readOnlyDir) Mkdir(context.Context, string, vfs.CreateAttr) error { return unix.EPERM }
func (readOnlyDir) Mknod(context.Context, string, vfs.CreateAttr) error { return unix.EPERM }
func (readOnlyDir) Symlink(context.Context, string, string, vfs.CreateAttr) error {
	return unix.EPERM
}
func (readOnlyDir) Link(context.Context, string, vfs.Inode) error   { return unix.EPERM }
func (readOnlyDir) Unlink(context.Context, string, vfs.Inode) error { return unix.EPERM }
func (readOnlyDir) Rmdir(context.Context, string, vfs.Inode) error  { return unix.EPERM }
func (readOnlyDir) Rename(context.Context, vfs.RenameRequest) error { return unix.EPERM }

// entry is one name in a directory listing. pos orders the entries and
// stays the same while the entry exists, so a reader that resumes at an
// offset never repeats or skips one ("." and ".." take 0 and 1).
type entry struct {
	name string
	pos  int64
	typ  uint8
	ino  uint64
}

// dir is a directory whose entries come from functions.
type dir struct {
	attr
	readOnlyDir
	parentIno uint64
	// list returns the entries, in pos order.
	list func(ctx context.Context) ([]entry, error)
	// lookup returns the child called name.
	lookup func(ctx context.Context, name string) (vfs.Inode, error)
	// check, if set, runs before a lookup or listing (the access rules
	// of /proc/[pid]/fd).
	check func(ctx context.Context) error
	// revalidate, if set, says whether a cached child is still the one
	// name stands for (a process or descriptor may have gone).
	revalidate func(ctx context.Context, name string, child vfs.Inode) bool
}

// Revalidate implements vfs.Revalidator.
func (d *dir) Revalidate(ctx context.Context, name string, child vfs.Inode) bool {
	if d.revalidate == nil {
		return true
	}
	return d.revalidate(ctx, name, child)
}

// Lookup implements vfs.Dir.
func (d *dir) Lookup(ctx context.Context, name string) (vfs.Inode, error) {
	if d.check != nil {
		if err := d.check(ctx); err != nil {
			return nil, err
		}
	}
	return d.lookup(ctx, name)
}

// OpenDir implements vfs.Dir.
func (d *dir) OpenDir(ctx context.Context) (vfs.DirReader, error) {
	if d.check != nil {
		if err := d.check(ctx); err != nil {
			return nil, err
		}
	}
	return &dirReader{d: d}, nil
}

type dirReader struct{ d *dir }

// ReadDir implements vfs.DirReader: each call lists the directory afresh.
func (r *dirReader) ReadDir(ctx context.Context, off int64, emit func(vfs.Dirent) bool) error {
	if off <= 0 && !emit(vfs.Dirent{Name: ".", Ino: r.d.ino, Type: unix.DT_DIR, Off: 1}) {
		return nil
	}
	if off <= 1 {
		p := r.d.parentIno
		if p == 0 {
			p = r.d.ino
		}
		if !emit(vfs.Dirent{Name: "..", Ino: p, Type: unix.DT_DIR, Off: 2}) {
			return nil
		}
	}
	ents, err := r.d.list(ctx)
	if err != nil {
		return err
	}
	i := sort.Search(len(ents), func(i int) bool { return ents[i].pos >= off })
	for _, e := range ents[i:] {
		if !emit(vfs.Dirent{Name: e.name, Ino: e.ino, Type: e.typ, Off: e.pos + 1}) {
			return nil
		}
	}
	return nil
}

// Release implements vfs.DirReader.
func (r *dirReader) Release(context.Context) {}

// staticDir is a directory with a fixed set of children.
type staticDir struct {
	dir
	// path is the directory's path in /proc.
	path     string
	names    []string
	children map[string]vfs.Inode
}

func (fs *Filesystem) newStaticDir(path string, parentIno uint64) *staticDir {
	d := &staticDir{children: map[string]vfs.Inode{}, path: path}
	d.dir = dir{attr: fs.attr(path, unix.S_IFDIR|0o555, nil, fs.k.BootTime()), parentIno: parentIno}
	d.list = d.listStatic
	d.lookup = d.lookupStatic
	return d
}

func (d *staticDir) add(name string, n vfs.Inode) {
	d.names = append(d.names, name)
	d.children[name] = n
}

func (d *staticDir) listStatic(ctx context.Context) ([]entry, error) {
	out := make([]entry, 0, len(d.names))
	for i, name := range d.names {
		st, _ := d.children[name].Stat(ctx)
		out = append(out, entry{name: name, pos: int64(i) + 2, typ: vfs.DirentType(st.Mode), ino: st.Ino})
	}
	return out, nil
}

func (d *staticDir) lookupStatic(_ context.Context, name string) (vfs.Inode, error) {
	if n, ok := d.children[name]; ok {
		return n, nil
	}
	return nil, unix.ENOENT
}

// file is a regular file whose content is generated when it is read.
type file struct {
	attr
	gen func(ctx context.Context) ([]byte, error)
	// write, if set, takes what is written; nil makes the file
	// read-only whatever its mode says.
	write func(ctx context.Context, p []byte) error
	// check, if set, runs at open (the access rules of environ, maps).
	check func(ctx context.Context) error
}

func (fs *Filesystem) newFile(path string, mode uint32, gen func(context.Context) ([]byte, error)) *file {
	return &file{attr: fs.attr(path, unix.S_IFREG|mode, nil, fs.k.BootTime()), gen: gen}
}

// Open implements vfs.Inode.
func (f *file) Open(ctx context.Context, flags uint32) (vfs.FileImpl, error) {
	if f.check != nil {
		if err := f.check(ctx); err != nil {
			return nil, err
		}
	}
	if flags&unix.O_ACCMODE != unix.O_RDONLY && f.write == nil {
		return nil, unix.EACCES
	}
	return &seqFile{f: f}, nil
}

// seqFile is an open generated file. A read from offset 0 generates the
// content afresh; reads further on continue the same snapshot, so a
// reader that reads in pieces sees one consistent text and one that
// rewinds sees the present.
type seqFile struct {
	vfs.FileDefaults
	f *file

	mu   sync.Mutex
	data []byte
	have bool
}

// Read implements vfs.FileImpl.
func (s *seqFile) Read(ctx context.Context, p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off == 0 || !s.have {
		data, err := s.f.gen(ctx)
		if err != nil {
			return 0, err
		}
		s.data, s.have = data, true
	}
	if off >= int64(len(s.data)) {
		return 0, nil
	}
	return copy(p, s.data[off:]), nil
}

// Write implements vfs.FileImpl.
func (s *seqFile) Write(ctx context.Context, p []byte, off int64) (int, error) {
	if s.f.write == nil {
		return 0, unix.EINVAL
	}
	if err := s.f.write(ctx, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Seek implements vfs.FileImpl.
func (s *seqFile) Seek(_ context.Context, cur, off int64, whence int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if whence != unix.SEEK_SET && whence != unix.SEEK_CUR {
		return 0, unix.EINVAL
	}
	return vfs.GenericSeek(cur, off, whence, int64(len(s.data)))
}

// link is a symbolic link whose target is computed when it is read.
type link struct {
	attr
	target func(ctx context.Context) (string, error)
	check  func(ctx context.Context) error
}

func (fs *Filesystem) newLink(path string, target func(context.Context) (string, error)) *link {
	return &link{attr: fs.attr(path, unix.S_IFLNK|0o777, nil, fs.k.BootTime()), target: target}
}

// Readlink implements vfs.Symlink.
func (l *link) Readlink(ctx context.Context) (string, error) {
	if l.check != nil {
		if err := l.check(ctx); err != nil {
			return "", err
		}
	}
	return l.target(ctx)
}

// text returns a generator of fixed content.
func text(s string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) { return []byte(s), nil }
}

// SetStat implements vfs.Inode: a writable file accepts the truncation
// and time stamps of an open with O_TRUNC (as Linux's /proc/sys does);
// its owner and mode stay fixed.
func (f *file) SetStat(ctx context.Context, s vfs.SetStat) error {
	if f.write != nil && s.Mask&^(vfs.SetSize|vfs.SetAtime|vfs.SetMtime|vfs.SetCtime) == 0 {
		return nil
	}
	return unix.EPERM
}
