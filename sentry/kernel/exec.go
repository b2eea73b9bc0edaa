package kernel

import (
	"context"
	"crypto/rand"
	"debug/elf"
	"errors"
	"fmt"
	"path"
	"time"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/loader"
	"moat.dev/moat/sentry/mm"
	"moat.dev/moat/sentry/platform"
	"moat.dev/moat/sentry/vfs"
)

const (
	// pieBase is where a position-independent executable is loaded (as
	// Linux does with randomization off).
	pieBase = 0x555555554000
	// maxInterpDepth bounds #! chains.
	maxInterpDepth = 4
)

// fileAdapter lets mm and the loader read a vfs.File.
type fileAdapter struct {
	ctx  context.Context
	f    *vfs.File
	name string
}

func (a *fileAdapter) ReadAt(p []byte, off int64) (int, error) {
	n, err := a.f.Pread(a.ctx, p, off)
	if n < len(p) && err == nil {
		return n, errEOF
	}
	return n, err
}
func (a *fileAdapter) Pread(ctx context.Context, p []byte, off int64) (int, error) {
	return a.f.Pread(ctx, p, off)
}
func (a *fileAdapter) Pwrite(ctx context.Context, p []byte, off int64) (int, error) {
	return a.f.Pwrite(ctx, p, off)
}
func (a *fileAdapter) Size(ctx context.Context) (int64, error) {
	st, err := a.f.Stat(ctx)
	return st.Size, err
}
func (a *fileAdapter) Name() string               { return a.name }
func (a *fileAdapter) IncRef()                    { a.f.IncRef() }
func (a *fileAdapter) DecRef(ctx context.Context) { a.f.DecRef(ctx) }

var errEOF = errors.New("EOF")

// MappableFile returns f as something mm can map.
func MappableFile(ctx context.Context, f *vfs.File, name string) mm.File {
	return &fileAdapter{ctx: ctx, f: f, name: name}
}

// ExecArgs describe a new program image.
type ExecArgs struct {
	Path  string
	DirFD int32
	Argv  []string
	Envv  []string
	// Flags: AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW (execveat).
	Flags uint32
}

// loaded is a program image built in a fresh address space.
type loaded struct {
	mm    *mm.MM
	entry uint64
	sp    uint64
	name  string
	// creds are the credentials the program runs with.
	creds *Creds
}

// openExec opens a file for execution.
func (t *Task) openExec(dirfd int32, p string, flags uint32) (*vfs.File, error) {
	pop, done, err := t.PathOp(dirfd, p, flags&abi.AT_SYMLINK_NOFOLLOW == 0)
	if err != nil {
		return nil, err
	}
	defer done()
	pop.EmptyPath = flags&abi.AT_EMPTY_PATH != 0
	of := uint32(unix.O_RDONLY)
	if flags&abi.AT_SYMLINK_NOFOLLOW != 0 {
		of |= unix.O_NOFOLLOW
	}
	return t.k.VFS.Open(t.ctx, t.creds.VFSCreds(), pop, vfs.OpenOptions{Flags: of, Exec: true})
}

// load builds the image of a.Path in a new address space.
func (t *Task) load(a ExecArgs) (*loaded, error) {
	argv, p := a.Argv, a.Path
	var f *vfs.File
	for depth := 0; ; depth++ {
		var err error
		if f, err = t.openExec(a.DirFD, p, a.Flags); err != nil {
			return nil, err
		}
		var head [256]byte
		n, _ := f.Pread(t.ctx, head[:], 0)
		if n >= 2 && head[0] == '#' && head[1] == '!' {
			f.DecRef(t.ctx)
			if depth >= maxInterpDepth {
				return nil, unix.ELOOP
			}
			interp, arg, ok, err := loader.ParseInterpreterLine(head[:n])
			if err != nil || !ok {
				return nil, unix.ENOEXEC
			}
			nargv := []string{interp}
			if arg != "" {
				nargv = append(nargv, arg)
			}
			nargv = append(nargv, p)
			if len(argv) > 1 {
				nargv = append(nargv, argv[1:]...)
			}
			argv, p = nargv, interp
			a.DirFD, a.Flags = abi.AT_FDCWD, 0
			continue
		}
		break
	}
	defer f.DecRef(t.ctx)
	name := path.Base(p)
	exe := t.FilePath(f)
	fa := &fileAdapter{ctx: t.ctx, f: f, name: exe}
	st, err := f.Stat(t.ctx)
	if err != nil {
		return nil, err
	}
	img, err := loader.Parse(fa, st.Size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, unix.ENOEXEC)
	}
	nosuid := true
	if m := f.VirtualDentryNoRef().Mount; m != nil {
		nosuid = m.Flags()&vfs.MountNoSuid != 0
	}
	newCreds, secure := execCreds(t.creds, st.Mode, st.UID, st.GID, nosuid)
	nmm, err := mm.New(t.k.M, t.k.Frames)
	if err != nil {
		return nil, unix.ENOMEM
	}
	ok := false
	defer func() {
		if !ok {
			nmm.DecUsers(t.ctx)
		}
	}()
	var bias uint64
	if img.Type == elf.ET_DYN {
		bias = pieBase
	}
	plan, err := mapImage(t.ctx, nmm, img, fa, bias)
	if err != nil {
		return nil, err
	}
	entry := plan.Entry
	var interpBase uint64
	if img.Interp != "" {
		// The interpreter (ld.so) is resolved in the container's root.
		itf, err := t.openExec(abi.AT_FDCWD, img.Interp, 0)
		if err != nil {
			return nil, err
		}
		defer itf.DecRef(t.ctx)
		ia := &fileAdapter{ctx: t.ctx, f: itf, name: img.Interp}
		ist, err := itf.Stat(t.ctx)
		if err != nil {
			return nil, err
		}
		iimg, err := loader.Parse(ia, ist.Size)
		if err != nil || iimg.Interp != "" {
			return nil, unix.ELIBBAD
		}
		if iimg.Type == elf.ET_DYN {
			// Reserve room for it in the mmap area.
			span := iimg.MaxVaddr - (iimg.MinVaddr &^ (platform.PageSize - 1))
			base, err := nmm.Map(t.ctx, mm.MapOpts{Length: span, Prot: 0})
			if err != nil {
				return nil, unix.ENOMEM
			}
			interpBase = base - (iimg.MinVaddr &^ (platform.PageSize - 1))
		}
		iplan, err := mapImage(t.ctx, nmm, iimg, ia, interpBase)
		if err != nil {
			return nil, err
		}
		entry = iplan.Entry
	}
	nmm.SetBrkStart(plan.Brk)

	// The stack.
	stackSize := uint64(mm.DefaultStackSize)
	if _, err := nmm.Map(t.ctx, mm.MapOpts{Addr: mm.StackTop - stackSize, Length: stackSize, Fixed: true,
		Prot: platform.PermRead | platform.PermWrite, GrowsDown: true, Name: "[stack]"}); err != nil {
		return nil, unix.ENOMEM
	}
	auxv := loader.ProgramAuxv(img, bias, interpBase)
	if clk := t.k.clock; clk != nil && len(clk.text) > 0 {
		// [vvar] then [vdso], as Linux lays them out.
		n := uint64(1+len(clk.text)) * platform.PageSize
		base, err := nmm.Map(t.ctx, mm.MapOpts{Length: n, Prot: 0})
		if err != nil {
			return nil, unix.ENOMEM
		}
		if _, err := nmm.MapFrames(t.ctx, base, true, []uint64{clk.vvar}, platform.PermRead, "[vvar]"); err != nil {
			return nil, unix.ENOMEM
		}
		if _, err := nmm.MapFrames(t.ctx, base+platform.PageSize, true, clk.text, platform.PermRead|platform.PermExec, "[vdso]"); err != nil {
			return nil, unix.ENOMEM
		}
		auxv = append(auxv, loader.AuxEntry{Key: abi.AT_SYSINFO_EHDR, Val: base + platform.PageSize})
	}
	c := newCreds
	sec := uint64(0)
	if secure {
		sec = 1
	}
	auxv = append(auxv,
		loader.AuxEntry{Key: abi.AT_PAGESZ, Val: platform.PageSize},
		loader.AuxEntry{Key: abi.AT_CLKTCK, Val: 100},
		loader.AuxEntry{Key: abi.AT_HWCAP, Val: hwcap()},
		loader.AuxEntry{Key: abi.AT_HWCAP2, Val: 2}, // FSGSBASE
		loader.AuxEntry{Key: abi.AT_UID, Val: uint64(c.RUID)},
		loader.AuxEntry{Key: abi.AT_EUID, Val: uint64(c.EUID)},
		loader.AuxEntry{Key: abi.AT_GID, Val: uint64(c.RGID)},
		loader.AuxEntry{Key: abi.AT_EGID, Val: uint64(c.EGID)},
		loader.AuxEntry{Key: abi.AT_SECURE, Val: sec},
		loader.AuxEntry{Key: abi.AT_MINSIGSTKSZ, Val: 3632},
	)
	sa := loader.StackArgs{Argv: argv, Envv: a.Envv, Execfn: a.Path, Platform: "x86_64", Auxv: auxv}
	rand.Read(sa.Random[:])
	data, sp, err := loader.BuildStack(mm.StackTop, sa)
	if err != nil {
		return nil, unix.E2BIG
	}
	if _, err := nmm.CopyOut(t.ctx, sp, data); err != nil {
		return nil, unix.ENOMEM
	}
	if si, err := loader.DecodeStack(data, sp); err == nil {
		nmm.ArgStart, nmm.ArgEnd, nmm.EnvStart, nmm.EnvEnd = si.ArgvStart, si.ArgvEnd, si.EnvStart, si.EnvEnd
		nmm.Auxv = encodeAuxv(si.Auxv)
	}
	nmm.Exe = exe
	ok = true
	return &loaded{mm: nmm, entry: entry, sp: sp, name: name, creds: newCreds}, nil
}

// mapImage maps the segments of img at bias into m.
func mapImage(ctx context.Context, m *mm.MM, img *loader.Image, f mm.File, bias uint64) (*loader.LoadPlan, error) {
	plan, err := loader.Plan(img, bias)
	if err != nil {
		return nil, unix.ENOEXEC
	}
	for _, mp := range plan.Mappings {
		o := mm.MapOpts{Addr: mp.Start, Length: mp.End - mp.Start, Fixed: true, Prot: platform.Perm(mp.Prot)}
		if mp.File {
			o.File, o.Off = f, mp.Offset
		}
		if _, err := m.Map(ctx, o); err != nil {
			return nil, fmt.Errorf("map segment %v: %w", mp, unix.ENOMEM)
		}
		if mp.ZeroStart != 0 {
			if err := m.ZeroForce(ctx, mp.ZeroStart, mp.End-mp.ZeroStart); err != nil {
				return nil, unix.EFAULT
			}
		}
	}
	return plan, nil
}

// hwcap is AT_HWCAP: CPUID leaf 1 EDX, what glibc expects on x86-64.
func hwcap() uint64 { return 0x178bfbff }

// Execve replaces the calling process's image. On success the task's
// registers are set for the new program (the syscall returns ErrNoReturn).
func (t *Task) Execve(a ExecArgs) error {
	img, err := t.load(a)
	if err != nil {
		return err
	}
	k := t.k
	// Point of no return: other threads go away.
	k.mu.Lock()
	for o := range t.tg.tasks {
		if o != t {
			o.exiting = true
			o.wakeLocked()
		}
	}
	k.mu.Unlock()
	for {
		k.mu.Lock()
		n := len(t.tg.tasks)
		k.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	k.mu.Lock()
	old := t.mm
	t.mm = img.mm
	k.mu.Unlock()
	old.DecUsers(t.ctx)
	t.fds.CloseOnExec(t.ctx)
	t.fp = k.M.NewFPState()
	t.regs = platform.Registers{RIP: img.entry, RSP: img.sp, RFLAGS: 0x202, CS: 0x33, SS: 0x2b}
	k.mu.Lock()
	t.creds = img.creds
	t.name = img.name
	if len(t.name) > 15 {
		t.name = t.name[:15]
	}
	h := t.tg.handlers.copy()
	for i := range h.actions {
		if h.actions[i].Handler != abi.SIG_IGN {
			h.actions[i] = abi.Sigaction{}
		}
	}
	t.tg.handlers = h
	t.altStack = abi.SignalStack{Flags: abi.SS_DISABLE}
	t.clearChildTID = 0
	t.robustList = 0
	if t.tg.leader != t {
		t.tg.leader = t
	}
	if t.vforkDone != nil {
		close(t.vforkDone)
		t.vforkDone = nil
	}
	k.mu.Unlock()
	return nil
}
