// Package seccomp holds the sentry's seccomp machinery that knows nothing
// of tasks: classic BPF programs checked as Linux checks a seccomp filter
// (seccomp_check_filter), an interpreter that runs them on a system call's
// struct seccomp_data, the precedence of filter results, and a compiler
// from an OCI-style profile (the pod's seccomp profile) to such a program.
//
// A checked program always ends: every jump goes forward, so a run takes
// at most one step per instruction.
package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"

	"moat.dev/moat/sentry/abi"
)

// Instruction is struct sock_filter.
type Instruction struct {
	Op     uint16
	Jt, Jf uint8
	K      uint32
}

// Stmt and Jump build instructions.
func Stmt(op uint16, k uint32) Instruction { return Instruction{Op: op, K: k} }

// Jump builds a conditional jump.
func Jump(op uint16, k uint32, jt, jf uint8) Instruction {
	return Instruction{Op: op, Jt: jt, Jf: jf, K: k}
}

// Decode reads n instructions in struct sock_filter layout from b.
func Decode(b []byte) []Instruction {
	out := make([]Instruction, len(b)/abi.SockFilterSize)
	for i := range out {
		r := b[i*abi.SockFilterSize:]
		out[i] = Instruction{Op: binary.LittleEndian.Uint16(r), Jt: r[2], Jf: r[3], K: binary.LittleEndian.Uint32(r[4:])}
	}
	return out
}

// Data is struct seccomp_data: what a filter sees of a system call.
type Data struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

// word returns the 32-bit word of d at byte offset off (aligned, in range).
func (d *Data) word(off uint32) uint32 {
	switch {
	case off == 0:
		return uint32(d.Nr)
	case off == 4:
		return d.Arch
	case off == 8:
		return uint32(d.IP)
	case off == 12:
		return uint32(d.IP >> 32)
	}
	a := d.Args[(off-16)/8]
	if off%8 == 0 {
		return uint32(a)
	}
	return uint32(a >> 32)
}

// ErrInvalid marks a program Linux would refuse (EINVAL).
var ErrInvalid = errors.New("invalid seccomp filter")

// Program is a checked filter, ready to run.
type Program struct {
	insns []Instruction
}

// Len is the number of instructions.
func (p *Program) Len() int { return len(p.insns) }

// Instructions returns a copy of the program.
func (p *Program) Instructions() []Instruction { return append([]Instruction(nil), p.insns...) }

// Check validates insns as a seccomp filter, with Linux's rules: 1 to
// BPF_MAXINSNS instructions; only the instructions seccomp allows; loads
// from struct seccomp_data only as aligned 32-bit words inside it; scratch
// memory indexes below BPF_MEMWORDS, and no load of a slot some path has
// not stored; no division by a zero constant and no shift by 32 or more;
// jumps forward and inside the program; the last instruction a return.
// BPF_LEN loads become loads of sizeof(struct seccomp_data), as in Linux.
func Check(insns []Instruction) (*Program, error) {
	n := len(insns)
	if n == 0 || n > abi.BPF_MAXINSNS {
		return nil, fmt.Errorf("%w: %d instructions (1 to %d allowed)", ErrInvalid, n, abi.BPF_MAXINSNS)
	}
	p := make([]Instruction, n)
	copy(p, insns)
	for pc := range p {
		in := &p[pc]
		bad := func(why string) error {
			return fmt.Errorf("%w: instruction %d (code %#x, k %#x): %s", ErrInvalid, pc, in.Op, in.K, why)
		}
		switch in.Op {
		case abi.BPF_LD | abi.BPF_W | abi.BPF_ABS:
			if in.K >= abi.SeccompDataSize || in.K&3 != 0 {
				return nil, bad("load outside struct seccomp_data or unaligned")
			}
		case abi.BPF_LD | abi.BPF_W | abi.BPF_LEN:
			*in = Stmt(abi.BPF_LD|abi.BPF_IMM, abi.SeccompDataSize)
		case abi.BPF_LDX | abi.BPF_W | abi.BPF_LEN:
			*in = Stmt(abi.BPF_LDX|abi.BPF_IMM, abi.SeccompDataSize)
		case abi.BPF_RET | abi.BPF_K, abi.BPF_RET | abi.BPF_A,
			abi.BPF_ALU | abi.BPF_ADD | abi.BPF_K, abi.BPF_ALU | abi.BPF_ADD | abi.BPF_X,
			abi.BPF_ALU | abi.BPF_SUB | abi.BPF_K, abi.BPF_ALU | abi.BPF_SUB | abi.BPF_X,
			abi.BPF_ALU | abi.BPF_MUL | abi.BPF_K, abi.BPF_ALU | abi.BPF_MUL | abi.BPF_X,
			abi.BPF_ALU | abi.BPF_DIV | abi.BPF_X,
			abi.BPF_ALU | abi.BPF_AND | abi.BPF_K, abi.BPF_ALU | abi.BPF_AND | abi.BPF_X,
			abi.BPF_ALU | abi.BPF_OR | abi.BPF_K, abi.BPF_ALU | abi.BPF_OR | abi.BPF_X,
			abi.BPF_ALU | abi.BPF_XOR | abi.BPF_K, abi.BPF_ALU | abi.BPF_XOR | abi.BPF_X,
			abi.BPF_ALU | abi.BPF_LSH | abi.BPF_X, abi.BPF_ALU | abi.BPF_RSH | abi.BPF_X,
			abi.BPF_ALU | abi.BPF_NEG,
			abi.BPF_LD | abi.BPF_IMM, abi.BPF_LDX | abi.BPF_IMM,
			abi.BPF_MISC | abi.BPF_TAX, abi.BPF_MISC | abi.BPF_TXA:
		case abi.BPF_ALU | abi.BPF_DIV | abi.BPF_K:
			if in.K == 0 {
				return nil, bad("division by zero")
			}
		case abi.BPF_ALU | abi.BPF_LSH | abi.BPF_K, abi.BPF_ALU | abi.BPF_RSH | abi.BPF_K:
			if in.K >= 32 {
				return nil, bad("shift by 32 or more")
			}
		case abi.BPF_LD | abi.BPF_MEM, abi.BPF_LDX | abi.BPF_MEM, abi.BPF_ST, abi.BPF_STX:
			if in.K >= abi.BPF_MEMWORDS {
				return nil, bad("scratch memory index out of range")
			}
		case abi.BPF_JMP | abi.BPF_JA:
			if uint64(in.K) >= uint64(n-pc-1) {
				return nil, bad("jump out of the program")
			}
		case abi.BPF_JMP | abi.BPF_JEQ | abi.BPF_K, abi.BPF_JMP | abi.BPF_JEQ | abi.BPF_X,
			abi.BPF_JMP | abi.BPF_JGE | abi.BPF_K, abi.BPF_JMP | abi.BPF_JGE | abi.BPF_X,
			abi.BPF_JMP | abi.BPF_JGT | abi.BPF_K, abi.BPF_JMP | abi.BPF_JGT | abi.BPF_X,
			abi.BPF_JMP | abi.BPF_JSET | abi.BPF_K, abi.BPF_JMP | abi.BPF_JSET | abi.BPF_X:
			if pc+int(in.Jt)+1 >= n || pc+int(in.Jf)+1 >= n {
				return nil, bad("jump out of the program")
			}
		default:
			return nil, bad("instruction not allowed in a seccomp filter")
		}
	}
	switch p[n-1].Op {
	case abi.BPF_RET | abi.BPF_K, abi.BPF_RET | abi.BPF_A:
	default:
		return nil, fmt.Errorf("%w: the last instruction is not a return", ErrInvalid)
	}
	if err := checkMemory(p); err != nil {
		return nil, err
	}
	return &Program{insns: p}, nil
}

// checkMemory refuses a load of a scratch slot that some path to it has
// not stored (Linux's check_load_and_stores). valid[pc] is the set of
// slots stored on every path reaching pc.
func checkMemory(p []Instruction) error {
	const all = 1<<abi.BPF_MEMWORDS - 1
	valid := make([]uint16, len(p))
	for i := range valid {
		valid[i] = all
	}
	cur := uint16(0)
	for pc, in := range p {
		cur &= valid[pc]
		switch in.Op {
		case abi.BPF_ST, abi.BPF_STX:
			cur |= 1 << in.K
		case abi.BPF_LD | abi.BPF_MEM, abi.BPF_LDX | abi.BPF_MEM:
			if cur&(1<<in.K) == 0 {
				return fmt.Errorf("%w: instruction %d loads scratch slot %d before any store", ErrInvalid, pc, in.K)
			}
		case abi.BPF_JMP | abi.BPF_JA:
			valid[pc+1+int(in.K)] &= cur
			cur = all // the next instruction is reached only by jumps
		default:
			if in.Op&0x07 == abi.BPF_JMP {
				valid[pc+1+int(in.Jt)] &= cur
				valid[pc+1+int(in.Jf)] &= cur
				cur = all
			}
		}
	}
	return nil
}

// Run evaluates the program on d and returns its 32-bit result. It takes
// at most Len steps.
func (p *Program) Run(d *Data) uint32 {
	var a, x uint32
	var mem [abi.BPF_MEMWORDS]uint32
	insns := p.insns
	for pc := 0; pc < len(insns); pc++ {
		in := insns[pc]
		switch in.Op {
		case abi.BPF_LD | abi.BPF_W | abi.BPF_ABS:
			a = d.word(in.K)
		case abi.BPF_LD | abi.BPF_IMM:
			a = in.K
		case abi.BPF_LDX | abi.BPF_IMM:
			x = in.K
		case abi.BPF_LD | abi.BPF_MEM:
			a = mem[in.K]
		case abi.BPF_LDX | abi.BPF_MEM:
			x = mem[in.K]
		case abi.BPF_ST:
			mem[in.K] = a
		case abi.BPF_STX:
			mem[in.K] = x
		case abi.BPF_RET | abi.BPF_K:
			return in.K
		case abi.BPF_RET | abi.BPF_A:
			return a
		case abi.BPF_MISC | abi.BPF_TAX:
			x = a
		case abi.BPF_MISC | abi.BPF_TXA:
			a = x
		case abi.BPF_JMP | abi.BPF_JA:
			pc += int(in.K)
		default:
			src := in.K
			if in.Op&abi.BPF_X != 0 {
				src = x
			}
			switch in.Op &^ abi.BPF_X {
			case abi.BPF_ALU | abi.BPF_ADD:
				a += src
			case abi.BPF_ALU | abi.BPF_SUB:
				a -= src
			case abi.BPF_ALU | abi.BPF_MUL:
				a *= src
			case abi.BPF_ALU | abi.BPF_DIV:
				if src == 0 {
					// Linux ends the program with 0 (KILL_THREAD).
					return 0
				}
				a /= src
			case abi.BPF_ALU | abi.BPF_AND:
				a &= src
			case abi.BPF_ALU | abi.BPF_OR:
				a |= src
			case abi.BPF_ALU | abi.BPF_XOR:
				a ^= src
			case abi.BPF_ALU | abi.BPF_LSH:
				a = shift(a, src, true)
			case abi.BPF_ALU | abi.BPF_RSH:
				a = shift(a, src, false)
			case abi.BPF_ALU | abi.BPF_NEG:
				a = -a
			case abi.BPF_JMP | abi.BPF_JEQ:
				pc += cond(a == src, in)
			case abi.BPF_JMP | abi.BPF_JGT:
				pc += cond(a > src, in)
			case abi.BPF_JMP | abi.BPF_JGE:
				pc += cond(a >= src, in)
			case abi.BPF_JMP | abi.BPF_JSET:
				pc += cond(a&src != 0, in)
			default:
				// Check admits nothing else.
				return 0
			}
		}
	}
	return 0 // unreachable for a checked program: it ends with a return
}

func cond(c bool, in Instruction) int {
	if c {
		return int(in.Jt)
	}
	return int(in.Jf)
}

// shift shifts a 32-bit value as the kernel's eBPF translation does for a
// register amount: by the amount modulo 32 (x86's shl/shr on 32 bits).
func shift(a, n uint32, left bool) uint32 {
	n &= 31
	if left {
		return a << n
	}
	return a >> n
}
