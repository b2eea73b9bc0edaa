package abi

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sigframeC sends itself SIGUSR1 with an SA_SIGINFO handler that dumps the
// signal frame the kernel pushed: the return address at the stack pointer
// the handler started with, where its siginfo and ucontext arguments point,
// and the frame's and the FP state's bytes.
const sigframeC = `
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <ucontext.h>

static void dump(const char *name, const void *p, size_t n) {
	printf("%s ", name);
	for (size_t i = 0; i < n; i++) printf("%02x", ((const unsigned char *)p)[i]);
	printf("\n");
}

__attribute__((noinline, optimize("no-omit-frame-pointer")))
static void handler(int sig, siginfo_t *si, void *ucv) {
	/* With a frame pointer, the stack pointer at entry is rbp + 8. */
	char *sp = (char *)__builtin_frame_address(0) + 8;
	ucontext_t *uc = ucv;
	printf("sp %lx\nsi %lx\nuc %lx\nret %lx\nsig %d\npid %d\n",
		(unsigned long)sp, (unsigned long)si, (unsigned long)uc,
		(unsigned long)__builtin_return_address(0), sig, getpid());
	dump("frame", sp, 440);
	char *fp = (char *)uc->uc_mcontext.fpregs;
	printf("fp %lx\n", (unsigned long)fp);
	dump("fpstate", fp, 576);
	unsigned int ext = *(unsigned int *)(fp + 468);
	dump("magic2", fp + ext - 4, 4);
}

int main(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO;
	sigaddset(&sa.sa_mask, SIGUSR2);
	sigaction(SIGUSR1, &sa, NULL);
	syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1);
	return 0;
}
`

// TestSignalFrameMatchesKernel checks RtSigframe, UContext, SigContext,
// SignalInfo and FPState against a frame the kernel really pushed.
func TestSignalFrameMatchesKernel(t *testing.T) {
	gcc := requireGCC(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "sigframe.c")
	bin := filepath.Join(dir, "sigframe")
	if err := os.WriteFile(src, []byte(sigframeC), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-O0", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	v := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, val, _ := strings.Cut(l, " ")
		v[k] = val
	}
	num := func(k string) uint64 {
		var n uint64
		for _, c := range v[k] {
			n = n*16 + uint64(strings.IndexRune("0123456789abcdef", c))
		}
		return n
	}
	sp, si, uc, fp := num("sp"), num("si"), num("uc"), num("fp")
	if uc-sp != RtSigframeUContextOffset || si-sp != RtSigframeInfoOffset {
		t.Errorf("ucontext at sp+%d, siginfo at sp+%d; want %d, %d", uc-sp, si-sp, RtSigframeUContextOffset, RtSigframeInfoOffset)
	}
	if (sp+8)%16 != 0 {
		t.Errorf("handler entered with sp %#x: sp+8 is not 16-byte aligned", sp)
	}
	raw, err := hex.DecodeString(v["frame"])
	if err != nil || len(raw) != RtSigframeSize {
		t.Fatalf("frame: %v, %d bytes", err, len(raw))
	}
	var f RtSigframe
	f.Unmarshal(raw)
	if f.Pretcode != num("ret") || f.Pretcode == 0 {
		t.Errorf("pretcode %#x, the handler's return address %#x", f.Pretcode, num("ret"))
	}
	var pid int32
	for _, c := range v["pid"] {
		pid = pid*10 + int32(c-'0')
	}
	if f.Info.Signo() != SIGUSR1 || f.Info.Code() != SI_TKILL || f.Info.PID() != pid || f.Info.UID() != uint32(os.Getuid()) {
		t.Errorf("siginfo signo %v code %d pid %d uid %d", f.Info.Signo(), f.Info.Code(), f.Info.PID(), f.Info.UID())
	}
	u := f.UContext
	if u.Flags&UC_FP_XSTATE == 0 || u.Flags&UC_SIGCONTEXT_SS == 0 {
		t.Errorf("uc_flags %#x", u.Flags)
	}
	// No alternate stack is set: the kernel saves an empty one.
	if u.Stack.Sp != 0 || u.Stack.Size != 0 {
		t.Errorf("uc_stack %+v", u.Stack)
	}
	// The mask to restore is the one before delivery: empty.
	if u.Sigmask != 0 {
		t.Errorf("uc_sigmask %#x", uint64(u.Sigmask))
	}
	m := u.MContext
	if m.FPState != fp || fp%FPStateAlign != 0 || fp < sp+RtSigframeSize {
		t.Errorf("fpstate at %#x (frame end %#x)", m.FPState, sp+RtSigframeSize)
	}
	if m.Rsp <= fp || m.Rip == 0 || m.Cs != 0x33 || m.Ss != 0x2b || m.Eflags&0x200 == 0 {
		t.Errorf("sigcontext rsp %#x rip %#x cs %#x ss %#x eflags %#x", m.Rsp, m.Rip, m.Cs, m.Ss, m.Eflags)
	}
	fpraw, err := hex.DecodeString(v["fpstate"])
	if err != nil || len(fpraw) != FPStateHeaderSize {
		t.Fatalf("fpstate: %v", err)
	}
	var fs FPState
	fs.Unmarshal(fpraw)
	if fs.Sw.Magic1 != FP_XSTATE_MAGIC1 || fs.Mxcsr&0xffc0 != MXCSRDefault&0xffc0 || fs.Cwd != FCWDefault {
		t.Errorf("fpstate magic1 %#x mxcsr %#x cwd %#x", fs.Sw.Magic1, fs.Mxcsr, fs.Cwd)
	}
	if fs.Sw.ExtendedSize != fs.Sw.XStateSize+FP_XSTATE_MAGIC2_SIZE || fs.Sw.XStateSize < FPStateHeaderSize {
		t.Errorf("extended size %d, xstate size %d", fs.Sw.ExtendedSize, fs.Sw.XStateSize)
	}
	if fs.XFeatures&^fs.Sw.XFeatures != 0 || fs.Sw.XFeatures&XFEATURE_MASK_FPSSE != XFEATURE_MASK_FPSSE {
		t.Errorf("xfeatures %#x, saved %#x", fs.XFeatures, fs.Sw.XFeatures)
	}
	if v["magic2"] != "45585046" { // FP_XSTATE_MAGIC2, little-endian
		t.Errorf("magic2 %s", v["magic2"])
	}
	t.Logf("frame at %#x, fpstate at %#x (%d bytes with xsave, features %#x)", sp, fp, fs.Sw.ExtendedSize, fs.Sw.XFeatures)
}
