package vfs

import (
	"context"

	"golang.org/x/sys/unix"
)

// Device opens a character or block device node. The VFS opens device
// nodes of any filesystem through its own table, never the host's
// devices: a device node planted in a root filesystem reaches at most a
// sentry device.
type Device interface {
	Open(ctx context.Context, vd VirtualDentry, flags uint32) (FileImpl, error)
}

type deviceKey struct {
	typ          uint32
	major, minor uint32
}

// RegisterDevice makes d the device behind nodes of type typ
// (unix.S_IFCHR or unix.S_IFBLK) and number major:minor.
func (v *VirtualFilesystem) RegisterDevice(typ, major, minor uint32, d Device) error {
	if typ != unix.S_IFCHR && typ != unix.S_IFBLK {
		return unix.EINVAL
	}
	v.devMu.Lock()
	defer v.devMu.Unlock()
	k := deviceKey{typ, major, minor}
	if _, ok := v.devices[k]; ok {
		return unix.EEXIST
	}
	v.devices[k] = d
	return nil
}

func (v *VirtualFilesystem) device(typ uint32, rdev uint64) Device {
	v.devMu.RLock()
	defer v.devMu.RUnlock()
	return v.devices[deviceKey{typ, unix.Major(rdev), unix.Minor(rdev)}]
}
