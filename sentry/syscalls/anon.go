package syscalls

import (
	"context"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
)

// anonInode is what fstat reports for the anonymous files made here
// (epoll, eventfd, timerfd): like Linux's anon_inodefs, mode 0600 and no
// file type.
type anonInode struct {
	ino      uint64
	uid, gid uint32
	now      unix.Timespec
}

var (
	anonIno atomic.Uint64
	anonDev = vfs.NewAnonDev()
)

func newAnonInode(t *kernel.Task) *anonInode {
	c := t.Creds()
	return &anonInode{ino: anonIno.Add(1), uid: c.FSUID, gid: c.FSGID, now: vfs.Now()}
}

func (i *anonInode) Stat(context.Context) (vfs.Stat, error) {
	return vfs.Stat{Dev: anonDev, Ino: i.ino, Mode: unix.S_IRUSR | unix.S_IWUSR, Nlink: 1,
		UID: i.uid, GID: i.gid, Blksize: 4096, Atime: i.now, Mtime: i.now, Ctime: i.now}, nil
}

func (i *anonInode) SetStat(context.Context, vfs.SetStat) error { return unix.EPERM }

func (i *anonInode) Open(context.Context, uint32) (vfs.FileImpl, error) { return nil, unix.ENXIO }

// installAnon wraps impl in an anonymous file and gives it a descriptor.
func installAnon(t *kernel.Task, impl vfs.FileImpl, flags uint32) (uint64, error) {
	f, err := t.Kernel().VFS.NewAnonFile(t.Ctx(), newAnonInode(t), impl, unix.O_RDWR|flags&unix.O_NONBLOCK, true)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t.Ctx())
	return newFD(t, f, 0, flags&unix.O_CLOEXEC != 0)
}
