package kvm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// TestABIAgainstKernelHeaders compiles a C program against the installed
// <linux/kvm.h> and checks every ioctl number, offset and size moat uses.
func TestABIAgainstKernelHeaders(t *testing.T) {
	if _, err := os.Stat("/usr/include/linux/kvm.h"); err != nil {
		if os.Getenv("MOAT_REQUIRE_KVM") != "" {
			t.Fatalf("kernel headers missing (apt-get install linux-libc-dev): %v", err)
		}
		t.Skip("no /usr/include/linux/kvm.h; set MOAT_REQUIRE_KVM=1 to fail instead")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatalf("gcc is needed to check the KVM ABI: %v", err)
	}
	var sync kvmSyncRegs
	var sr kvmSregs
	checks := []struct {
		c   string
		go_ uint64
	}{
		{"KVM_GET_API_VERSION", ioctlGetAPIVersion},
		{"KVM_CREATE_VM", ioctlCreateVM},
		{"KVM_CHECK_EXTENSION", ioctlCheckExtension},
		{"KVM_GET_VCPU_MMAP_SIZE", ioctlGetVCPUMmapSize},
		{"KVM_GET_SUPPORTED_CPUID", ioctlGetSupportedCPUID},
		{"KVM_CREATE_VCPU", ioctlCreateVCPU},
		{"KVM_SET_USER_MEMORY_REGION", ioctlSetUserMemoryRegion},
		{"KVM_SET_TSS_ADDR", ioctlSetTSSAddr},
		{"KVM_RUN", ioctlRun},
		{"KVM_GET_REGS", ioctlGetRegs},
		{"KVM_SET_REGS", ioctlSetRegs},
		{"KVM_GET_SREGS", ioctlGetSregs},
		{"KVM_SET_SREGS", ioctlSetSregs},
		{"KVM_GET_MSRS", ioctlGetMSRs},
		{"KVM_SET_MSRS", ioctlSetMSRs},
		{"KVM_SET_SIGNAL_MASK", ioctlSetSignalMask},
		{"KVM_SET_CPUID2", ioctlSetCPUID2},
		{"KVM_GET_XSAVE", ioctlGetXSave},
		{"KVM_SET_XSAVE", ioctlSetXSave},
		{"KVM_GET_XSAVE2", ioctlGetXSave2},
		{"KVM_GET_XCRS", ioctlGetXCRs},
		{"KVM_SET_XCRS", ioctlSetXCRs},
		{"KVM_GET_TSC_KHZ", ioctlGetTSCKHz},
		{"KVM_CAP_SYNC_REGS", capSyncRegs},
		{"KVM_CAP_IMMEDIATE_EXIT", capImmediateExit},
		{"KVM_CAP_XSAVE2", capXSave2},
		{"KVM_CAP_MAX_VCPUS", capMaxVCPUs},
		{"KVM_EXIT_IO", exitIO},
		{"KVM_EXIT_INTERNAL_ERROR", exitInternalError},
		{"KVM_EXIT_SHUTDOWN", exitShutdown},
		{"offsetof(struct kvm_run, exit_reason)", runExitReason},
		{"offsetof(struct kvm_run, immediate_exit)", runImmediateExit},
		{"offsetof(struct kvm_run, io)", runExitData},
		{"offsetof(struct kvm_run, kvm_valid_regs)", runValidRegs},
		{"offsetof(struct kvm_run, kvm_dirty_regs)", runDirtyRegs},
		{"offsetof(struct kvm_run, s.regs.regs)", runSyncRegs},
		{"offsetof(struct kvm_run, s.regs.sregs)", runSyncSregs},
		{"sizeof(struct kvm_regs)", uint64(unsafe.Sizeof(kvmRegs{}))},
		{"sizeof(struct kvm_sregs)", uint64(unsafe.Sizeof(sr))},
		{"offsetof(struct kvm_sregs, cr0)", uint64(unsafe.Offsetof(sr.CR0))},
		{"offsetof(struct kvm_sregs, efer)", uint64(unsafe.Offsetof(sr.EFER))},
		{"offsetof(struct kvm_sync_regs, sregs)", uint64(unsafe.Offsetof(sync.Sregs))},
		{"sizeof(struct kvm_segment)", uint64(unsafe.Sizeof(kvmSegment{}))},
		{"sizeof(struct kvm_userspace_memory_region)", uint64(unsafe.Sizeof(kvmUserspaceMemoryRegion{}))},
		{"sizeof(struct kvm_cpuid_entry2)", uint64(unsafe.Sizeof(kvmCPUIDEntry2{}))},
		{"sizeof(struct kvm_msr_entry)", uint64(unsafe.Sizeof(kvmMSREntry{}))},
		{"sizeof(struct kvm_xcrs)", uint64(unsafe.Sizeof(kvmXCRs{}))},
	}
	var src strings.Builder
	src.WriteString("#include <linux/kvm.h>\n#include <stdio.h>\n#include <stddef.h>\nint main(void){\n")
	for _, c := range checks {
		src.WriteString("printf(\"%llu\\n\", (unsigned long long)(" + c.c + "));\n")
	}
	src.WriteString("return 0;}\n")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "abi.c"), []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-o", filepath.Join(dir, "abi"), filepath.Join(dir, "abi.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(dir, "abi")).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(checks) {
		t.Fatalf("got %d values for %d checks", len(lines), len(checks))
	}
	for i, c := range checks {
		want, _ := strconv.ParseUint(lines[i], 10, 64)
		if c.go_ != want {
			t.Errorf("%s = %#x in the kernel headers, %#x in moat", c.c, want, c.go_)
		}
	}
}
