// Package sysfs is the sentry's /sys: a small read-only tree with what
// programs look for in a container, the CPUs of the sandbox
// (/sys/devices/system/cpu/{online,possible,present}, which glibc's
// get_nprocs and many runtimes read) and an empty /sys/fs/cgroup.
package sysfs

import (
	"context"
	"hash/fnv"
	"sort"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/vfs"
)

// sysfsMagic is SYSFS_MAGIC, what statfs reports.
const sysfsMagic = 0x62656572

// Filesystem is one sysfs instance.
type Filesystem struct {
	dev  uint64
	made time.Time
	root *dir
}

// New returns a sysfs whose CPU files show what cpus returns (the
// sandbox's vCPU count, which can change while it runs).
func New(cpus func() int) *Filesystem {
	fs := &Filesystem{dev: vfs.NewAnonDev(), made: time.Now()}
	fs.root = fs.newDir("/")
	list := func(context.Context) []byte {
		n := cpus()
		if n <= 1 {
			return []byte("0\n")
		}
		return []byte("0-" + strconv.Itoa(n-1) + "\n")
	}
	cpu := fs.root.mkdirs("devices/system/cpu")
	for _, name := range []string{"online", "possible", "present"} {
		cpu.add(name, fs.newFile(cpu.path+"/"+name, list))
	}
	cpu.add("kernel_max", fs.newFile(cpu.path+"/kernel_max", func(context.Context) []byte { return []byte("8191\n") }))
	fs.root.mkdirs("fs/cgroup")
	fs.root.mkdirs("kernel")
	fs.root.mkdirs("class")
	fs.root.mkdirs("bus")
	return fs
}

// Name implements vfs.Filesystem.
func (fs *Filesystem) Name() string { return "sysfs" }

// Root implements vfs.Filesystem.
func (fs *Filesystem) Root(context.Context) (vfs.Inode, error) { return fs.root, nil }

// Statfs implements vfs.Filesystem.
func (fs *Filesystem) Statfs(context.Context) (vfs.Statfs, error) {
	return vfs.Statfs{Type: sysfsMagic, Bsize: 4096, Frsize: 4096, NameLen: vfs.NameMax, Flags: unix.ST_RDONLY}, nil
}

// Release implements vfs.Filesystem.
func (fs *Filesystem) Release(context.Context) {}

func inoOf(path string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(path))
	return h.Sum64()>>1 | 2
}

// node is what every inode of sysfs shares.
type node struct {
	fs   *Filesystem
	ino  uint64
	mode uint32
}

// Stat implements vfs.Inode.
func (n *node) Stat(context.Context) (vfs.Stat, error) {
	ts := unix.NsecToTimespec(n.fs.made.UnixNano())
	st := vfs.Stat{Dev: n.fs.dev, Ino: n.ino, Mode: n.mode, Nlink: 1, Blksize: 4096,
		Atime: ts, Mtime: ts, Ctime: ts, Btime: ts}
	if n.mode&unix.S_IFMT == unix.S_IFDIR {
		st.Nlink = 2
	} else {
		st.Size = 4096
	}
	return st, nil
}

// SetStat implements vfs.Inode.
func (n *node) SetStat(context.Context, vfs.SetStat) error { return unix.EPERM }

type dir struct {
	node
	path     string
	parent   *dir
	children map[string]vfs.Inode
}

func (fs *Filesystem) newDir(path string) *dir {
	return &dir{node: node{fs: fs, ino: inoOf(path), mode: unix.S_IFDIR | 0o555}, path: path, children: map[string]vfs.Inode{}}
}

func (d *dir) add(name string, n vfs.Inode) { d.children[name] = n }

// mkdirs makes the directories of a relative path and returns the last.
func (d *dir) mkdirs(rel string) *dir {
	cur := d
	for len(rel) > 0 {
		name := rel
		rest := ""
		for i := 0; i < len(rel); i++ {
			if rel[i] == '/' {
				name, rest = rel[:i], rel[i+1:]
				break
			}
		}
		rel = rest
		if c, ok := cur.children[name].(*dir); ok {
			cur = c
			continue
		}
		p := cur.path + "/" + name
		if cur.path == "/" {
			p = "/" + name
		}
		c := cur.fs.newDir(p)
		c.parent = cur
		cur.children[name] = c
		cur = c
	}
	return cur
}

// Open implements vfs.Inode (never called for directories).
func (d *dir) Open(context.Context, uint32) (vfs.FileImpl, error) { return nil, unix.EISDIR }

// Lookup implements vfs.Dir.
func (d *dir) Lookup(_ context.Context, name string) (vfs.Inode, error) {
	if c, ok := d.children[name]; ok {
		return c, nil
	}
	return nil, unix.ENOENT
}

// OpenDir implements vfs.Dir.
func (d *dir) OpenDir(context.Context) (vfs.DirReader, error) { return &dirReader{d: d}, nil }

// The directory is read-only.
func (d *dir) Create(context.Context, string, vfs.CreateAttr) (vfs.Inode, error) {
	return nil, unix.EROFS
}
func (d *dir) Mkdir(context.Context, string, vfs.CreateAttr) error { return unix.EROFS }
func (d *dir) Mknod(context.Context, string, vfs.CreateAttr) error { return unix.EROFS }
func (d *dir) Symlink(context.Context, string, string, vfs.CreateAttr) error {
	return unix.EROFS
}
func (d *dir) Link(context.Context, string, vfs.Inode) error   { return unix.EROFS }
func (d *dir) Unlink(context.Context, string, vfs.Inode) error { return unix.EROFS }
func (d *dir) Rmdir(context.Context, string, vfs.Inode) error  { return unix.EROFS }
func (d *dir) Rename(context.Context, vfs.RenameRequest) error { return unix.EROFS }

type dirReader struct{ d *dir }

// ReadDir implements vfs.DirReader; the entries never change, so their
// index is a stable offset.
func (r *dirReader) ReadDir(ctx context.Context, off int64, emit func(vfs.Dirent) bool) error {
	names := make([]string, 0, len(r.d.children))
	for n := range r.d.children {
		names = append(names, n)
	}
	sort.Strings(names)
	parent := r.d.ino
	if r.d.parent != nil {
		parent = r.d.parent.ino
	}
	ents := []vfs.Dirent{{Name: ".", Ino: r.d.ino, Type: unix.DT_DIR}, {Name: "..", Ino: parent, Type: unix.DT_DIR}}
	for _, n := range names {
		st, _ := r.d.children[n].Stat(ctx)
		ents = append(ents, vfs.Dirent{Name: n, Ino: st.Ino, Type: vfs.DirentType(st.Mode)})
	}
	for i := off; i < int64(len(ents)); i++ {
		e := ents[i]
		e.Off = i + 1
		if !emit(e) {
			return nil
		}
	}
	return nil
}

// Release implements vfs.DirReader.
func (r *dirReader) Release(context.Context) {}

type file struct {
	node
	gen func(context.Context) []byte
}

func (fs *Filesystem) newFile(path string, gen func(context.Context) []byte) *file {
	return &file{node: node{fs: fs, ino: inoOf(path), mode: unix.S_IFREG | 0o444}, gen: gen}
}

// Open implements vfs.Inode.
func (f *file) Open(ctx context.Context, flags uint32) (vfs.FileImpl, error) {
	if flags&unix.O_ACCMODE != unix.O_RDONLY {
		return nil, unix.EACCES
	}
	return &openFile{data: f.gen(ctx)}, nil
}

type openFile struct {
	vfs.FileDefaults
	data []byte
}

// Read implements vfs.FileImpl.
func (o *openFile) Read(_ context.Context, p []byte, off int64) (int, error) {
	if off >= int64(len(o.data)) {
		return 0, nil
	}
	return copy(p, o.data[off:]), nil
}

// Seek implements vfs.FileImpl.
func (o *openFile) Seek(_ context.Context, cur, off int64, whence int) (int64, error) {
	return vfs.GenericSeek(cur, off, whence, int64(len(o.data)))
}
