package kvm

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// DefaultDevice is the KVM device path; MOAT_KVM_DEVICE overrides it.
const DefaultDevice = "/dev/kvm"

// DevicePath returns the KVM device moat uses: path if set, else
// $MOAT_KVM_DEVICE, else /dev/kvm.
func DevicePath(path string) string {
	if path != "" {
		return path
	}
	if p := os.Getenv("MOAT_KVM_DEVICE"); p != "" {
		return p
	}
	return DefaultDevice
}

// ErrNoKVM is wrapped by every error that means KVM cannot be used here.
var ErrNoKVM = errors.New("kvm unavailable")

// requiredCaps are the capabilities moat cannot run without.
var requiredCaps = []struct {
	id   int
	name string
}{
	{capUserMemory, "KVM_CAP_USER_MEMORY"},
	{capSyncMMU, "KVM_CAP_SYNC_MMU"},
	{capExtCPUID, "KVM_CAP_EXT_CPUID"},
	{capXSave, "KVM_CAP_XSAVE"},
	{capXCRs, "KVM_CAP_XCRS"},
	{capImmediateExit, "KVM_CAP_IMMEDIATE_EXIT"},
}

// optionalCaps are used when present.
var optionalCaps = []struct {
	id   int
	name string
}{
	{capSyncRegs, "KVM_CAP_SYNC_REGS"},
	{capXSave2, "KVM_CAP_XSAVE2"},
	{capNrVCPUs, "KVM_CAP_NR_VCPUS"},
	{capMaxVCPUs, "KVM_CAP_MAX_VCPUS"},
	{capNrMemslots, "KVM_CAP_NR_MEMSLOTS"},
	{capGetTSCKHz, "KVM_CAP_GET_TSC_KHZ"},
	{capSetTSSAddr, "KVM_CAP_SET_TSS_ADDR"},
}

// Device is an open KVM device whose API version and capabilities have
// been checked.
type Device struct {
	Path         string
	fd           int
	APIVersion   int
	Capabilities []Capability
	caps         map[int]int
}

// OpenDevice opens the KVM device at path (see DevicePath) and checks the
// API version and every capability moat needs. Each missing piece is an
// error wrapping ErrNoKVM that names it.
func OpenDevice(path string) (*Device, error) {
	path = DevicePath(path)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil, fmt.Errorf("%w: %s does not exist (load kvm_intel or kvm_amd; on a virtual machine, enable nested virtualization)", ErrNoKVM, path)
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
			return nil, fmt.Errorf("%w: open %s: permission denied", ErrNoKVM, path)
		}
		return nil, fmt.Errorf("%w: open %s: %v", ErrNoKVM, path, err)
	}
	d := &Device{Path: path, fd: fd, caps: map[int]int{}}
	v, err := ioctlInt(fd, ioctlGetAPIVersion, 0)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("%w: %s is not a KVM device: KVM_GET_API_VERSION: %v", ErrNoKVM, path, err)
	}
	d.APIVersion = v
	if v != apiVersion {
		d.Close()
		return nil, fmt.Errorf("%w: %s speaks KVM API version %d, moat needs %d", ErrNoKVM, path, v, apiVersion)
	}
	var missing []string
	for _, c := range requiredCaps {
		val := d.extension(c.id)
		d.Capabilities = append(d.Capabilities, Capability{Name: c.name, ID: c.id, Value: val, Required: true, OK: val > 0})
		if val <= 0 {
			missing = append(missing, c.name)
		}
	}
	for _, c := range optionalCaps {
		val := d.extension(c.id)
		d.Capabilities = append(d.Capabilities, Capability{Name: c.name, ID: c.id, Value: val, OK: val > 0})
	}
	if len(missing) > 0 {
		d.Close()
		return nil, fmt.Errorf("%w: %s lacks required capabilities %v", ErrNoKVM, path, missing)
	}
	return d, nil
}

func (d *Device) extension(id int) int {
	if v, ok := d.caps[id]; ok {
		return v
	}
	v, err := ioctlInt(d.fd, ioctlCheckExtension, uintptr(id))
	if err != nil {
		v = 0
	}
	d.caps[id] = v
	return v
}

// Has reports whether capability id is present.
func (d *Device) Has(id int) bool { return d.extension(id) > 0 }

// MaxVCPUs is the most vCPUs one VM may have.
func (d *Device) MaxVCPUs() int {
	if v := d.extension(capMaxVCPUs); v > 0 {
		return v
	}
	if v := d.extension(capNrVCPUs); v > 0 {
		return v
	}
	return 4
}

// RecommendedVCPUs is KVM's recommended vCPU count per VM.
func (d *Device) RecommendedVCPUs() int {
	if v := d.extension(capNrVCPUs); v > 0 {
		return v
	}
	return 4
}

// Close closes the device.
func (d *Device) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// ioctlInt issues an ioctl with an integer (or pointer) argument, retrying
// when a signal interrupts it (the Go runtime's preemption signal can land
// during a slow ioctl such as KVM_CREATE_VM).
func ioctlInt(fd int, req uintptr, arg uintptr) (int, error) {
	for {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return int(r), e
		}
		return int(r), nil
	}
}
