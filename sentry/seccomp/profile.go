package seccomp

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"moat.dev/moat/sentry/abi"
)

// Profile is a container's seccomp profile, shaped as the OCI runtime
// spec's linux.seccomp (and JSON-compatible with it).
type Profile struct {
	DefaultAction   string   `json:"defaultAction"`
	DefaultErrnoRet *uint32  `json:"defaultErrnoRet,omitempty"`
	Architectures   []string `json:"architectures,omitempty"`
	Flags           []string `json:"flags,omitempty"`
	Syscalls        []Rule   `json:"syscalls,omitempty"`
}

// Rule gives an action to the system calls Names when every condition of
// Args holds.
type Rule struct {
	Names    []string `json:"names"`
	Action   string   `json:"action"`
	ErrnoRet *uint32  `json:"errnoRet,omitempty"`
	Args     []Arg    `json:"args,omitempty"`
}

// Arg compares the system call's argument Index (0 to 5) with Value by Op:
// SCMP_CMP_EQ, NE, LT, LE, GT, GE (unsigned 64-bit), or MASKED_EQ
// (argument & Value == ValueTwo).
type Arg struct {
	Index    uint32 `json:"index"`
	Value    uint64 `json:"value"`
	ValueTwo uint64 `json:"valueTwo,omitempty"`
	Op       string `json:"op"`
}

// ErrProfile marks a profile the sentry cannot enforce.
var ErrProfile = errors.New("bad seccomp profile")

// knownArches are libseccomp's architecture names. The sentry runs only
// x86-64 programs, so the list is checked and otherwise does not matter:
// the rules always apply to x86-64 system calls.
var knownArches = []string{
	"SCMP_ARCH_NATIVE", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM",
	"SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
	"SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
	"SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
	"SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
	"SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
}

// Log reports whether the profile asks for SECCOMP_FILTER_FLAG_LOG.
func (p *Profile) Log() bool { return slices.Contains(p.Flags, "SECCOMP_FILTER_FLAG_LOG") }

// Compiled is a profile turned into a filter.
type Compiled struct {
	Program *Program
	// Ignored are the system call names the sentry's table does not
	// know (they are skipped, as libseccomp skips names unknown on an
	// architecture).
	Ignored []string
}

// Compile turns p into a checked seccomp filter for x86-64. Names resolve
// through the sentry's system call table; see Compiled.Ignored.
func Compile(p *Profile) (*Compiled, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: no profile", ErrProfile)
	}
	def, err := actionValue(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("%w: defaultAction: %v", ErrProfile, err)
	}
	for _, a := range p.Architectures {
		if !slices.Contains(knownArches, a) {
			return nil, fmt.Errorf("%w: unknown architecture %q", ErrProfile, a)
		}
	}
	for _, f := range p.Flags {
		switch f {
		case "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
			"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV":
			// TSYNC: the process starts with one thread. SPEC_ALLOW:
			// there is no speculation mitigation to leave off.
			// WAIT_KILLABLE_RECV only matters with a listener.
		default:
			return nil, fmt.Errorf("%w: unknown flag %q", ErrProfile, f)
		}
	}
	type rule struct {
		ret  uint32
		args []Arg
	}
	byNr := map[uint32][]rule{}
	var ignored []string
	for i, r := range p.Syscalls {
		ret, err := actionValue(r.Action, r.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("%w: syscalls[%d] %v: %v", ErrProfile, i, r.Names, err)
		}
		for j, a := range r.Args {
			if a.Index >= 6 {
				return nil, fmt.Errorf("%w: syscalls[%d].args[%d]: index %d (0 to 5 allowed)", ErrProfile, i, j, a.Index)
			}
			if _, ok := condLen[a.Op]; !ok {
				return nil, fmt.Errorf("%w: syscalls[%d].args[%d]: unknown operator %q", ErrProfile, i, j, a.Op)
			}
		}
		if ret == def {
			// libseccomp refuses a rule with the default action;
			// runc skips it. It changes nothing.
			continue
		}
		// Conditions on one argument twice are separate rules (as runc
		// adds them); otherwise all conditions must hold.
		sets := [][]Arg{r.Args}
		seen := map[uint32]bool{}
		for _, a := range r.Args {
			if seen[a.Index] {
				sets = nil
				for _, a := range r.Args {
					sets = append(sets, []Arg{a})
				}
				break
			}
			seen[a.Index] = true
		}
		for _, name := range r.Names {
			nr, ok := syscallNumber(name)
			if !ok {
				if !slices.Contains(ignored, name) {
					ignored = append(ignored, name)
				}
				continue
			}
			for _, s := range sets {
				byNr[nr] = append(byNr[nr], rule{ret: ret, args: s})
			}
		}
	}

	// Layout: check the architecture, load the number, a binary search
	// over the system calls that have rules ending in one test per call
	// (its action when it has one rule without conditions, else a jump
	// to its block) or the default action, then the blocks: each rule's conditions and action, most restrictive first
	// (so the first rule that matches is the most restrictive one that
	// matches), and the default action when none matches.
	var prog []Instruction
	prog = append(prog,
		Stmt(abi.BPF_LD|abi.BPF_W|abi.BPF_ABS, 4),
		Jump(abi.BPF_JMP|abi.BPF_JEQ|abi.BPF_K, abi.AUDIT_ARCH_X86_64, 1, 0),
		Stmt(abi.BPF_RET|abi.BPF_K, abi.SECCOMP_RET_KILL_PROCESS),
		Stmt(abi.BPF_LD|abi.BPF_W|abi.BPF_ABS, 0),
	)
	nrs := make([]uint32, 0, len(byNr))
	for nr, rs := range byNr {
		slices.SortStableFunc(rs, func(a, b rule) int {
			switch {
			case MoreRestrictive(a.ret, b.ret):
				return -1
			case MoreRestrictive(b.ret, a.ret):
				return 1
			}
			return 0
		})
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	type patch struct {
		at int
		nr uint32
	}
	var patches []patch
	// dispatch finds the number among nrs by binary search: a JGE
	// splits the range (the far half through a JA, whose offset has no
	// 8-bit limit), and at most leafSize numbers are tested one by one.
	const leafSize = 4
	var dispatch func(nrs []uint32)
	dispatch = func(nrs []uint32) {
		if len(nrs) > leafSize {
			mid := len(nrs) / 2
			prog = append(prog, Jump(abi.BPF_JMP|abi.BPF_JGE|abi.BPF_K, nrs[mid], 0, 1))
			ja := len(prog)
			prog = append(prog, Stmt(abi.BPF_JMP|abi.BPF_JA, 0))
			dispatch(nrs[:mid])
			prog[ja].K = uint32(len(prog) - ja - 1)
			dispatch(nrs[mid:])
			return
		}
		for _, nr := range nrs {
			rs := byNr[nr]
			prog = append(prog, Jump(abi.BPF_JMP|abi.BPF_JEQ|abi.BPF_K, nr, 0, 1))
			if len(rs[0].args) == 0 {
				prog = append(prog, Stmt(abi.BPF_RET|abi.BPF_K, rs[0].ret))
				continue
			}
			patches = append(patches, patch{at: len(prog), nr: nr})
			prog = append(prog, Stmt(abi.BPF_JMP|abi.BPF_JA, 0))
		}
		prog = append(prog, Stmt(abi.BPF_RET|abi.BPF_K, def))
	}
	dispatch(nrs)
	for _, pt := range patches {
		prog[pt.at].K = uint32(len(prog) - pt.at - 1)
		for _, r := range byNr[pt.nr] {
			prog = append(prog, ruleCode(r.args, r.ret)...)
			if len(r.args) == 0 {
				break // always matches: later rules are unreachable
			}
		}
		prog = append(prog, Stmt(abi.BPF_RET|abi.BPF_K, def))
		if len(prog) > abi.BPF_MAXINSNS {
			break
		}
	}
	if len(prog) > abi.BPF_MAXINSNS {
		return nil, fmt.Errorf("%w: the profile needs more than %d BPF instructions", ErrProfile, abi.BPF_MAXINSNS)
	}
	prg, err := Check(prog)
	if err != nil {
		return nil, fmt.Errorf("%w: compiled filter refused: %v", ErrProfile, err)
	}
	return &Compiled{Program: prg, Ignored: ignored}, nil
}

// actionValue is the filter result of an OCI action name.
func actionValue(action string, errnoRet *uint32) (uint32, error) {
	data := func(def uint32) (uint32, error) {
		if errnoRet == nil {
			return def, nil
		}
		if *errnoRet > abi.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("errnoRet %d too large", *errnoRet)
		}
		return *errnoRet, nil
	}
	noData := func(ret uint32) (uint32, error) {
		if errnoRet != nil {
			return 0, fmt.Errorf("errnoRet is only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not %s", action)
		}
		return ret, nil
	}
	switch action {
	case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD":
		return noData(abi.SECCOMP_RET_KILL_THREAD)
	case "SCMP_ACT_KILL_PROCESS":
		return noData(abi.SECCOMP_RET_KILL_PROCESS)
	case "SCMP_ACT_TRAP":
		return noData(abi.SECCOMP_RET_TRAP)
	case "SCMP_ACT_ALLOW":
		return noData(abi.SECCOMP_RET_ALLOW)
	case "SCMP_ACT_LOG":
		return noData(abi.SECCOMP_RET_LOG)
	case "SCMP_ACT_ERRNO":
		d, err := data(uint32(abi.EPERM))
		return abi.SECCOMP_RET_ERRNO | d, err
	case "SCMP_ACT_TRACE":
		d, err := data(uint32(abi.EPERM))
		return abi.SECCOMP_RET_TRACE | d, err
	case "SCMP_ACT_NOTIFY":
		return 0, fmt.Errorf("SCMP_ACT_NOTIFY needs a seccomp listener, which the sandbox does not offer")
	case "":
		return 0, fmt.Errorf("no action")
	}
	return 0, fmt.Errorf("unknown action %q", action)
}

// condLen is the length of each operator's code.
var condLen = map[string]int{
	"SCMP_CMP_EQ": 4, "SCMP_CMP_NE": 4, "SCMP_CMP_MASKED_EQ": 6,
	"SCMP_CMP_GT": 5, "SCMP_CMP_GE": 5, "SCMP_CMP_LT": 5, "SCMP_CMP_LE": 5,
}

// ruleCode is a rule's conditions (each on a 64-bit argument, compared
// high word first) followed by its action; a failed condition jumps past
// the action, to the next rule.
func ruleCode(args []Arg, ret uint32) []Instruction {
	n := 1
	for _, a := range args {
		n += condLen[a.Op]
	}
	out := make([]Instruction, 0, n)
	const (
		ld   = abi.BPF_LD | abi.BPF_W | abi.BPF_ABS
		and  = abi.BPF_ALU | abi.BPF_AND | abi.BPF_K
		jeq  = abi.BPF_JMP | abi.BPF_JEQ | abi.BPF_K
		jgt  = abi.BPF_JMP | abi.BPF_JGT | abi.BPF_K
		jge  = abi.BPF_JMP | abi.BPF_JGE | abi.BPF_K
		pass = -1
		fail = -2
	)
	for _, a := range args {
		end := len(out) + condLen[a.Op] // first instruction after this condition
		lo := 16 + 8*a.Index
		hi := lo + 4
		vhi, vlo := uint32(a.Value>>32), uint32(a.Value)
		// j builds a jump whose targets are pass, fail or 0 (the next
		// instruction), placed at the current end of out.
		j := func(op uint16, k uint32, jt, jf int) Instruction {
			at := len(out)
			rel := func(t int) uint8 {
				switch t {
				case pass:
					return uint8(end - at - 1)
				case fail:
					return uint8(n - at - 1)
				}
				return 0
			}
			return Jump(op, k, rel(jt), rel(jf))
		}
		switch a.Op {
		case "SCMP_CMP_EQ":
			out = append(out, Stmt(ld, hi))
			out = append(out, j(jeq, vhi, 0, fail))
			out = append(out, Stmt(ld, lo))
			out = append(out, j(jeq, vlo, pass, fail))
		case "SCMP_CMP_NE":
			out = append(out, Stmt(ld, hi))
			out = append(out, j(jeq, vhi, 0, pass))
			out = append(out, Stmt(ld, lo))
			out = append(out, j(jeq, vlo, fail, pass))
		case "SCMP_CMP_MASKED_EQ":
			whi, wlo := uint32(a.ValueTwo>>32), uint32(a.ValueTwo)
			out = append(out, Stmt(ld, hi), Stmt(and, vhi))
			out = append(out, j(jeq, whi, 0, fail))
			out = append(out, Stmt(ld, lo), Stmt(and, vlo))
			out = append(out, j(jeq, wlo, pass, fail))
		case "SCMP_CMP_GT", "SCMP_CMP_GE":
			last := uint16(jgt)
			if a.Op == "SCMP_CMP_GE" {
				last = jge
			}
			out = append(out, Stmt(ld, hi))
			out = append(out, j(jgt, vhi, pass, 0))
			out = append(out, j(jeq, vhi, 0, fail))
			out = append(out, Stmt(ld, lo))
			out = append(out, j(last, vlo, pass, fail))
		case "SCMP_CMP_LT", "SCMP_CMP_LE":
			// Not GE, not GT.
			last := uint16(jge)
			if a.Op == "SCMP_CMP_LE" {
				last = jgt
			}
			out = append(out, Stmt(ld, hi))
			out = append(out, j(jgt, vhi, fail, 0))
			out = append(out, j(jeq, vhi, 0, pass))
			out = append(out, Stmt(ld, lo))
			out = append(out, j(last, vlo, fail, pass))
		}
	}
	return append(out, Stmt(abi.BPF_RET|abi.BPF_K, ret))
}

var (
	namesOnce sync.Once
	names     map[string]uint32
)

// syscallNumber resolves a system call name through the sentry's table.
func syscallNumber(name string) (uint32, bool) {
	namesOnce.Do(func() {
		names = map[string]uint32{}
		for nr := uint64(0); nr < uint64(abi.MaxSyscall); nr++ {
			if n := abi.SyscallName(nr); n != "" {
				names[n] = uint32(nr)
			}
		}
	})
	nr, ok := names[name]
	return nr, ok
}
