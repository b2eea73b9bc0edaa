package abi

// MaxSyscall is one more than the highest system call number in the table.
const MaxSyscall = len(syscallNames)

// SyscallName returns the name of system call nr as the kernel's table
// spells it ("read", "clone3"), or "" when x86-64 has no system call nr.
func SyscallName(nr uint64) string {
	if nr >= uint64(len(syscallNames)) {
		return ""
	}
	return syscallNames[nr]
}

// SyscallNumber returns the number of the system call called name.
func SyscallNumber(name string) (uint64, bool) {
	if name == "" {
		return 0, false
	}
	for nr, n := range syscallNames {
		if n == name {
			return uint64(nr), true
		}
	}
	return 0, false
}
