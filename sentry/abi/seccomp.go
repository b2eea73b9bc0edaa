package abi

// seccomp(2) operations, modes and filter flags (linux/seccomp.h).
const (
	SECCOMP_MODE_DISABLED = 0
	SECCOMP_MODE_STRICT   = 1
	SECCOMP_MODE_FILTER   = 2

	SECCOMP_SET_MODE_STRICT  = 0
	SECCOMP_SET_MODE_FILTER  = 1
	SECCOMP_GET_ACTION_AVAIL = 2
	SECCOMP_GET_NOTIF_SIZES  = 3

	SECCOMP_FILTER_FLAG_TSYNC              = 1 << 0
	SECCOMP_FILTER_FLAG_LOG                = 1 << 1
	SECCOMP_FILTER_FLAG_SPEC_ALLOW         = 1 << 2
	SECCOMP_FILTER_FLAG_NEW_LISTENER       = 1 << 3
	SECCOMP_FILTER_FLAG_TSYNC_ESRCH        = 1 << 4
	SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5
)

// Filter return values: the action in the high 16 bits, data in the low.
const (
	SECCOMP_RET_KILL_PROCESS = 0x80000000
	SECCOMP_RET_KILL_THREAD  = 0x00000000
	SECCOMP_RET_TRAP         = 0x00030000
	SECCOMP_RET_ERRNO        = 0x00050000
	SECCOMP_RET_USER_NOTIF   = 0x7fc00000
	SECCOMP_RET_TRACE        = 0x7ff00000
	SECCOMP_RET_LOG          = 0x7ffc0000
	SECCOMP_RET_ALLOW        = 0x7fff0000

	SECCOMP_RET_ACTION_FULL = 0xffff0000
	SECCOMP_RET_DATA        = 0x0000ffff
)

// SeccompDataSize is sizeof(struct seccomp_data): nr (int), arch (u32),
// instruction_pointer (u64), args[6] (u64).
const SeccompDataSize = 64

// Classic BPF (linux/filter.h, linux/bpf_common.h): instruction classes,
// sizes, modes, operations and sources, as sock_filter's code field
// combines them.
const (
	BPF_LD   = 0x00
	BPF_LDX  = 0x01
	BPF_ST   = 0x02
	BPF_STX  = 0x03
	BPF_ALU  = 0x04
	BPF_JMP  = 0x05
	BPF_RET  = 0x06
	BPF_MISC = 0x07

	BPF_W = 0x00
	BPF_H = 0x08
	BPF_B = 0x10

	BPF_IMM = 0x00
	BPF_ABS = 0x20
	BPF_IND = 0x40
	BPF_MEM = 0x60
	BPF_LEN = 0x80
	BPF_MSH = 0xa0

	BPF_ADD = 0x00
	BPF_SUB = 0x10
	BPF_MUL = 0x20
	BPF_DIV = 0x30
	BPF_OR  = 0x40
	BPF_AND = 0x50
	BPF_LSH = 0x60
	BPF_RSH = 0x70
	BPF_NEG = 0x80
	BPF_MOD = 0x90
	BPF_XOR = 0xa0

	BPF_JA   = 0x00
	BPF_JEQ  = 0x10
	BPF_JGT  = 0x20
	BPF_JGE  = 0x30
	BPF_JSET = 0x40

	BPF_K = 0x00
	BPF_X = 0x08

	BPF_A   = 0x10 // BPF_RET: return the accumulator
	BPF_TAX = 0x00 // BPF_MISC: X = A
	BPF_TXA = 0x80 // BPF_MISC: A = X

	BPF_MAXINSNS = 4096
	BPF_MEMWORDS = 16
)

// SockFilterSize and SockFprogSize are the sizes of struct sock_filter
// and struct sock_fprog.
const (
	SockFilterSize = 8
	SockFprogSize  = 16
)
