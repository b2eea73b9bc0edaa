package abi

// Auxiliary vector keys (include/uapi/linux/auxvec.h and
// arch/x86/include/uapi/asm/auxvec.h): the a_type of each (key, value) pair
// the kernel puts on a new process's stack after its environment pointers.
const (
	AT_NULL              = 0  // end of the vector
	AT_IGNORE            = 1  // entry to ignore
	AT_EXECFD            = 2  // file descriptor of the program
	AT_PHDR              = 3  // address of the program headers
	AT_PHENT             = 4  // size of one program header
	AT_PHNUM             = 5  // number of program headers
	AT_PAGESZ            = 6  // page size
	AT_BASE              = 7  // load address of the interpreter
	AT_FLAGS             = 8  // flags (0)
	AT_ENTRY             = 9  // entry point of the program
	AT_NOTELF            = 10 // the program is not ELF
	AT_UID               = 11 // real uid
	AT_EUID              = 12 // effective uid
	AT_GID               = 13 // real gid
	AT_EGID              = 14 // effective gid
	AT_PLATFORM          = 15 // address of the platform string, "x86_64"
	AT_HWCAP             = 16 // CPUID leaf 1 EDX
	AT_CLKTCK            = 17 // clock ticks per second (USER_HZ)
	AT_SECURE            = 23 // secure mode (setuid exec)
	AT_BASE_PLATFORM     = 24 // address of the real platform string
	AT_RANDOM            = 25 // address of 16 random bytes
	AT_HWCAP2            = 26 // more hardware capability bits
	AT_RSEQ_FEATURE_SIZE = 27 // rseq feature size
	AT_RSEQ_ALIGN        = 28 // rseq allocation alignment
	AT_HWCAP3            = 29
	AT_HWCAP4            = 30
	AT_EXECFN            = 31 // address of the file name given to execve
	AT_SYSINFO_EHDR      = 33 // address of the vDSO's ELF header
	AT_MINSIGSTKSZ       = 51 // smallest signal stack the CPU's state needs
)

// CLK_TCK is USER_HZ, the AT_CLKTCK value and the unit of times(2).
const CLK_TCK = 100

// Platform is the AT_PLATFORM string of x86-64.
const Platform = "x86_64"
