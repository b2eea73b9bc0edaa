package sandbox

import (
	"context"
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/kernel"
	"moat.dev/moat/sentry/vfs"
)

// podInitCode is the machine code of the pod's init, the process that
// stands for the pod's sandbox (pause) container as pid 1:
//
//	rt_sigaction(SIGCHLD, {SIG_IGN}, NULL, 8)  // orphans reap themselves
//	rt_sigprocmask(SIG_BLOCK, {SIGTERM, SIGINT}, NULL, 8)
//	loop: sig = rt_sigtimedwait({SIGTERM, SIGINT}, NULL, NULL, 8)
//	      if sig == SIGTERM || sig == SIGINT: exit_group(0)
//	      goto loop
//
// followed by the sigaction (handler SIG_IGN) and the signal set it reads.
// It needs nothing from the pause image and no file of any container.
var podInitCode = []byte{
	0x48, 0x8d, 0x35, 0x61, 0x00, 0x00, 0x00, 0xbf, 0x11, 0x00, 0x00, 0x00,
	0x31, 0xd2, 0x41, 0xba, 0x08, 0x00, 0x00, 0x00, 0xb8, 0x0d, 0x00, 0x00,
	0x00, 0x0f, 0x05, 0x31, 0xff, 0x48, 0x8d, 0x35, 0x64, 0x00, 0x00, 0x00,
	0x31, 0xd2, 0x41, 0xba, 0x08, 0x00, 0x00, 0x00, 0xb8, 0x0e, 0x00, 0x00,
	0x00, 0x0f, 0x05, 0x48, 0x8d, 0x3d, 0x4e, 0x00, 0x00, 0x00, 0x31, 0xf6,
	0x31, 0xd2, 0x41, 0xba, 0x08, 0x00, 0x00, 0x00, 0xb8, 0x80, 0x00, 0x00,
	0x00, 0x0f, 0x05, 0x83, 0xf8, 0x0f, 0x74, 0x07, 0x83, 0xf8, 0x02, 0x74,
	0x02, 0xeb, 0xdc, 0x31, 0xff, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05,
	0xf4, 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x02, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
}

const (
	podInitPath  = hiddenDir + "/init"
	podInitVaddr = 0x400000
	elfHeader    = 64
	elfPhdr      = 56
)

// podInitELF returns podInitCode as a static x86-64 executable.
func podInitELF() []byte {
	off := uint64(elfHeader + elfPhdr)
	b := make([]byte, off+uint64(len(podInitCode)))
	le := binary.LittleEndian
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1 // ELFCLASS64, little-endian, version 1
	le.PutUint16(b[16:], 2)    // ET_EXEC
	le.PutUint16(b[18:], 62)   // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], podInitVaddr+off) // entry
	le.PutUint64(b[32:], elfHeader)        // phoff
	le.PutUint16(b[52:], elfHeader)
	le.PutUint16(b[54:], elfPhdr)
	le.PutUint16(b[56:], 1) // phnum
	ph := b[elfHeader:]
	le.PutUint32(ph[0:], 1) // PT_LOAD
	le.PutUint32(ph[4:], 5) // PF_R|PF_X
	le.PutUint64(ph[16:], podInitVaddr)
	le.PutUint64(ph[24:], podInitVaddr)
	le.PutUint64(ph[32:], uint64(len(b)))
	le.PutUint64(ph[40:], uint64(len(b)))
	le.PutUint64(ph[48:], 0x1000)
	copy(b[off:], podInitCode)
	return b
}

// StartPodInit starts the pod's init, which stands for the pod's sandbox
// container: PID 1 of the pod's PID namespace (and the first process of
// the sandbox), it waits for SIGTERM or SIGINT and exits 0, and reaps the
// orphans of its namespace.
func (s *Sandbox) StartPodInit(ctx context.Context, container string, stdio [3]*vfs.File, onExit func(kernel.WaitStatus)) (*kernel.ThreadGroup, error) {
	root := s.VFS.Root()
	defer root.DecRef(ctx)
	if err := mkdirAllMode(ctx, s.VFS, root, hiddenDir, 0o700); err != nil {
		return nil, fmt.Errorf("pod init: %w", err)
	}
	pop := vfs.PathOperation{Root: root, Start: root, Path: podInitPath}
	f, err := s.VFS.Open(ctx, auth.Root(), pop, vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, Mode: 0o500})
	if err != nil {
		return nil, fmt.Errorf("pod init: create %s: %w", podInitPath, err)
	}
	_, err = f.Write(ctx, podInitELF())
	f.DecRef(ctx)
	if err != nil {
		return nil, fmt.Errorf("pod init: write %s: %w", podInitPath, err)
	}
	ns, err := s.podNamespace()
	if err != nil {
		return nil, fmt.Errorf("pod init: %w", err)
	}
	return s.Kernel.CreateProcess(kernel.ProcessSpec{
		Argv: []string{"init"}, Path: podInitPath, Cwd: "/", Init: true, PIDNamespace: ns,
		Container: container, Stdio: stdio, OnExit: onExit,
		Creds: kernel.Creds{Caps: auth.CapSet(RootCaps)},
	})
}
