package seccomp

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"moat.dev/moat/sentry/abi"
)

const (
	ldAbs = abi.BPF_LD | abi.BPF_W | abi.BPF_ABS
	ret   = abi.BPF_RET | abi.BPF_K
	jeq   = abi.BPF_JMP | abi.BPF_JEQ | abi.BPF_K
)

func TestCheckRefuses(t *testing.T) {
	long := make([]Instruction, abi.BPF_MAXINSNS+1)
	for i := range long {
		long[i] = Stmt(ret, abi.SECCOMP_RET_ALLOW)
	}
	cases := map[string][]Instruction{
		"empty":                  nil,
		"too long":               long,
		"unaligned load":         {Stmt(ldAbs, 2), Stmt(ret, 0)},
		"load past the data":     {Stmt(ldAbs, 64), Stmt(ret, 0)},
		"byte load":              {Stmt(abi.BPF_LD|abi.BPF_B|abi.BPF_ABS, 0), Stmt(ret, 0)},
		"indirect load":          {Stmt(abi.BPF_LD|abi.BPF_W|abi.BPF_IND, 0), Stmt(ret, 0)},
		"modulo":                 {Stmt(abi.BPF_ALU|abi.BPF_MOD|abi.BPF_K, 3), Stmt(ret, 0)},
		"division by zero":       {Stmt(abi.BPF_ALU|abi.BPF_DIV|abi.BPF_K, 0), Stmt(ret, 0)},
		"shift by 32":            {Stmt(abi.BPF_ALU|abi.BPF_LSH|abi.BPF_K, 32), Stmt(ret, 0)},
		"no return at the end":   {Stmt(ldAbs, 0)},
		"jump past the end":      {Jump(jeq, 0, 1, 0), Stmt(ret, 0)},
		"always jump past":       {Stmt(abi.BPF_JMP|abi.BPF_JA, 1), Stmt(ret, 0)},
		"huge always jump":       {Stmt(abi.BPF_JMP|abi.BPF_JA, 0xffffffff), Stmt(ret, 0)},
		"scratch out of range":   {Stmt(abi.BPF_ST, 16), Stmt(ret, 0)},
		"load of unstored slot":  {Stmt(abi.BPF_LD|abi.BPF_MEM, 3), Stmt(ret, 0)},
		"slot stored on one arm": {Jump(jeq, 0, 0, 1), Stmt(abi.BPF_ST, 1), Stmt(abi.BPF_LD|abi.BPF_MEM, 1), Stmt(ret, 0)},
		"unknown opcode":         {Stmt(0xffff, 0), Stmt(ret, 0)},
	}
	for name, p := range cases {
		if _, err := Check(p); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Check = %v, want ErrInvalid", name, err)
		}
	}
}

func TestRun(t *testing.T) {
	d := &Data{Nr: 39, Arch: abi.AUDIT_ARCH_X86_64, IP: 0x1122334455667788, Args: [6]uint64{1, 2, 3, 4, 5, 0xdeadbeef00000006}}
	cases := []struct {
		name string
		prog []Instruction
		want uint32
	}{
		{"nr", []Instruction{Stmt(ldAbs, 0), Stmt(abi.BPF_RET|abi.BPF_A, 0)}, 39},
		{"arch", []Instruction{Stmt(ldAbs, 4), Stmt(abi.BPF_RET|abi.BPF_A, 0)}, abi.AUDIT_ARCH_X86_64},
		{"ip high", []Instruction{Stmt(ldAbs, 12), Stmt(abi.BPF_RET|abi.BPF_A, 0)}, 0x11223344},
		{"arg 5 high", []Instruction{Stmt(ldAbs, 16+5*8+4), Stmt(abi.BPF_RET|abi.BPF_A, 0)}, 0xdeadbeef},
		{"len", []Instruction{Stmt(abi.BPF_LD|abi.BPF_W|abi.BPF_LEN, 0), Stmt(abi.BPF_RET|abi.BPF_A, 0)}, 64},
		{"jeq taken", []Instruction{Stmt(ldAbs, 0), Jump(jeq, 39, 0, 1), Stmt(ret, 1), Stmt(ret, 2)}, 1},
		{"jeq not taken", []Instruction{Stmt(ldAbs, 0), Jump(jeq, 40, 0, 1), Stmt(ret, 1), Stmt(ret, 2)}, 2},
		{"jset", []Instruction{Stmt(ldAbs, 16), Jump(abi.BPF_JMP|abi.BPF_JSET|abi.BPF_K, 1, 0, 1), Stmt(ret, 7), Stmt(ret, 8)}, 7},
		{"ja", []Instruction{Stmt(abi.BPF_JMP|abi.BPF_JA, 1), Stmt(ret, 1), Stmt(ret, 2)}, 2},
		{"alu", []Instruction{
			Stmt(abi.BPF_LD|abi.BPF_IMM, 6), Stmt(abi.BPF_ALU|abi.BPF_MUL|abi.BPF_K, 7),
			Stmt(abi.BPF_ALU|abi.BPF_SUB|abi.BPF_K, 2), Stmt(abi.BPF_ALU|abi.BPF_LSH|abi.BPF_K, 1),
			Stmt(abi.BPF_ALU|abi.BPF_DIV|abi.BPF_K, 5), Stmt(abi.BPF_RET|abi.BPF_A, 0)}, 16},
		{"scratch and x", []Instruction{
			Stmt(abi.BPF_LD|abi.BPF_IMM, 9), Stmt(abi.BPF_ST, 15), Stmt(abi.BPF_LDX|abi.BPF_MEM, 15),
			Stmt(abi.BPF_LD|abi.BPF_IMM, 1), Stmt(abi.BPF_ALU|abi.BPF_ADD|abi.BPF_X, 0), Stmt(abi.BPF_RET|abi.BPF_A, 0)}, 10},
		{"division by zero x", []Instruction{Stmt(abi.BPF_LDX|abi.BPF_IMM, 0), Stmt(abi.BPF_LD|abi.BPF_IMM, 5),
			Stmt(abi.BPF_ALU|abi.BPF_DIV|abi.BPF_X, 0), Stmt(ret, abi.SECCOMP_RET_ALLOW)}, 0},
	}
	for _, c := range cases {
		p, err := Check(c.prog)
		if err != nil {
			t.Errorf("%s: Check: %v", c.name, err)
			continue
		}
		if got := p.Run(d); got != c.want {
			t.Errorf("%s: Run = %#x, want %#x", c.name, got, c.want)
		}
	}
}

func TestPrecedence(t *testing.T) {
	order := []uint32{abi.SECCOMP_RET_KILL_PROCESS, abi.SECCOMP_RET_KILL_THREAD, abi.SECCOMP_RET_TRAP,
		abi.SECCOMP_RET_ERRNO, abi.SECCOMP_RET_USER_NOTIF, abi.SECCOMP_RET_TRACE, abi.SECCOMP_RET_LOG, abi.SECCOMP_RET_ALLOW}
	for i := range order {
		for j := range order {
			if got := MoreRestrictive(order[i], order[j]); got != (i < j) {
				t.Errorf("MoreRestrictive(%#x, %#x) = %v", order[i], order[j], got)
			}
		}
	}
}

// reference evaluates a profile's rules directly, for comparison with the
// compiled filter.
func reference(p *Profile, d *Data) uint32 {
	def, _ := actionValue(p.DefaultAction, p.DefaultErrnoRet)
	best := uint32(0)
	found := false
	for _, r := range p.Syscalls {
		rv, _ := actionValue(r.Action, r.ErrnoRet)
		hit := false
		for _, n := range r.Names {
			if nr, ok := syscallNumber(n); ok && int32(nr) == d.Nr {
				hit = true
			}
		}
		if !hit || rv == def {
			continue
		}
		counts := map[uint32]int{}
		for _, a := range r.Args {
			counts[a.Index]++
		}
		split := false
		for _, c := range counts {
			split = split || c > 1
		}
		match := !split
		for _, a := range r.Args {
			v := d.Args[a.Index]
			var ok bool
			switch a.Op {
			case "SCMP_CMP_EQ":
				ok = v == a.Value
			case "SCMP_CMP_NE":
				ok = v != a.Value
			case "SCMP_CMP_LT":
				ok = v < a.Value
			case "SCMP_CMP_LE":
				ok = v <= a.Value
			case "SCMP_CMP_GT":
				ok = v > a.Value
			case "SCMP_CMP_GE":
				ok = v >= a.Value
			case "SCMP_CMP_MASKED_EQ":
				ok = v&a.Value == a.ValueTwo
			}
			if split {
				match = match || ok
			} else {
				match = match && ok
			}
		}
		if match && (!found || MoreRestrictive(rv, best)) {
			best, found = rv, true
		}
	}
	if !found {
		return def
	}
	return best
}

func TestCompileMatchesReference(t *testing.T) {
	ops := []string{"SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GT", "SCMP_CMP_GE", "SCMP_CMP_MASKED_EQ"}
	actions := []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"}
	names := []string{"read", "write", "openat", "close", "mmap", "clone", "sethostname", "arm_fadvise64_64"}
	// Values near the boundaries of the high and low words.
	vals := []uint64{0, 1, 2, 0xffffffff, 0x100000000, 0x100000001, 0xffffffff00000000, ^uint64(0), 0x7fffffff}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(n int) int { return rng.IntN(n) }
	for round := 0; round < 300; round++ {
		p := &Profile{DefaultAction: actions[pick(len(actions))]}
		for r := pick(6); r > 0; r-- {
			rule := Rule{Action: actions[pick(len(actions))]}
			for n := 1 + pick(3); n > 0; n-- {
				rule.Names = append(rule.Names, names[pick(len(names))])
			}
			if rule.Action == "SCMP_ACT_ERRNO" && pick(2) == 0 {
				e := uint32(pick(200))
				rule.ErrnoRet = &e
			}
			for n := pick(4); n > 0; n-- {
				rule.Args = append(rule.Args, Arg{Index: uint32(pick(3)), Op: ops[pick(len(ops))],
					Value: vals[pick(len(vals))], ValueTwo: vals[pick(len(vals))]})
			}
			p.Syscalls = append(p.Syscalls, rule)
		}
		c, err := Compile(p)
		if err != nil {
			t.Fatalf("round %d: Compile: %v", round, err)
		}
		for k := 0; k < 200; k++ {
			nr, _ := syscallNumber(names[pick(len(names)-1)])
			d := &Data{Nr: int32(nr), Arch: abi.AUDIT_ARCH_X86_64}
			for i := range 3 {
				d.Args[i] = vals[pick(len(vals))]
			}
			if got, want := c.Program.Run(d), reference(p, d); got != want {
				t.Fatalf("round %d: profile %+v on %+v: filter %#x, rules %#x", round, p, d, got, want)
			}
		}
	}
}

// TestCompileManyCalls: a profile over most of the table (the binary
// search over numbers) decides as its rules do for every number.
func TestCompileManyCalls(t *testing.T) {
	actions := []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"}
	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 20; round++ {
		p := &Profile{DefaultAction: actions[rng.IntN(len(actions))]}
		for nr := uint64(0); nr < uint64(abi.MaxSyscall); nr++ {
			n := abi.SyscallName(nr)
			if n == "" || rng.IntN(3) == 0 {
				continue
			}
			r := Rule{Names: []string{n}, Action: actions[rng.IntN(len(actions))]}
			if rng.IntN(4) == 0 {
				r.Args = []Arg{{Index: 0, Op: "SCMP_CMP_LT", Value: 10}}
			}
			p.Syscalls = append(p.Syscalls, r)
		}
		c, err := Compile(p)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for nr := int32(-1); nr < int32(abi.MaxSyscall)+5; nr++ {
			for _, a0 := range []uint64{3, 30} {
				d := &Data{Nr: nr, Arch: abi.AUDIT_ARCH_X86_64, Args: [6]uint64{a0}}
				if got, want := c.Program.Run(d), reference(p, d); got != want {
					t.Fatalf("round %d: nr %d arg %d: filter %#x, rules %#x", round, nr, a0, got, want)
				}
			}
		}
	}
}

func TestCompile(t *testing.T) {
	e := uint32(38)
	p := &Profile{
		DefaultAction: "SCMP_ACT_ERRNO", DefaultErrnoRet: &e,
		Architectures: []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"},
		Syscalls: []Rule{
			{Names: []string{"read", "write", "no_such_call"}, Action: "SCMP_ACT_ALLOW"},
			{Names: []string{"sethostname"}, Action: "SCMP_ACT_ERRNO"},
		},
	}
	c, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Ignored) != 1 || c.Ignored[0] != "no_such_call" {
		t.Errorf("Ignored = %v", c.Ignored)
	}
	run := func(nr uint64, arch uint32) uint32 {
		return c.Program.Run(&Data{Nr: int32(nr), Arch: arch})
	}
	if got := run(abi.SYS_READ, abi.AUDIT_ARCH_X86_64); got != abi.SECCOMP_RET_ALLOW {
		t.Errorf("read: %#x", got)
	}
	if got := run(abi.SYS_SETHOSTNAME, abi.AUDIT_ARCH_X86_64); got != abi.SECCOMP_RET_ERRNO|1 {
		t.Errorf("sethostname: %#x", got)
	}
	if got := run(abi.SYS_GETPID, abi.AUDIT_ARCH_X86_64); got != abi.SECCOMP_RET_ERRNO|38 {
		t.Errorf("getpid: %#x", got)
	}
	if got := run(abi.SYS_READ, 0x40000003); got != abi.SECCOMP_RET_KILL_PROCESS {
		t.Errorf("other arch: %#x", got)
	}

	bad := []*Profile{
		{DefaultAction: "SCMP_ACT_FROB"},
		{DefaultAction: "SCMP_ACT_NOTIFY"},
		{DefaultAction: "SCMP_ACT_ALLOW", Architectures: []string{"SCMP_ARCH_VAX"}},
		{DefaultAction: "SCMP_ACT_ALLOW", Flags: []string{"SECCOMP_FILTER_FLAG_NEW_LISTENER"}},
		{DefaultAction: "SCMP_ACT_ALLOW", Syscalls: []Rule{{Names: []string{"read"}, Action: "SCMP_ACT_ERRNO", Args: []Arg{{Index: 6, Op: "SCMP_CMP_EQ"}}}}},
		{DefaultAction: "SCMP_ACT_ALLOW", Syscalls: []Rule{{Names: []string{"read"}, Action: "SCMP_ACT_ERRNO", Args: []Arg{{Index: 0, Op: "SCMP_CMP_XX"}}}}},
		{DefaultAction: "SCMP_ACT_ALLOW", Syscalls: []Rule{{Names: []string{"read"}, Action: "SCMP_ACT_KILL", ErrnoRet: &e}}},
	}
	for _, b := range bad {
		if _, err := Compile(b); !errors.Is(err, ErrProfile) {
			t.Errorf("Compile(%+v) = %v, want ErrProfile", b, err)
		}
	}
	// A profile too large for one filter is refused, not truncated.
	huge := &Profile{DefaultAction: "SCMP_ACT_ALLOW"}
	for i := 0; i < 1000; i++ {
		huge.Syscalls = append(huge.Syscalls, Rule{Names: []string{"read"}, Action: "SCMP_ACT_ERRNO",
			Args: []Arg{{Index: 0, Op: "SCMP_CMP_EQ", Value: uint64(i)}}})
	}
	if _, err := Compile(huge); !errors.Is(err, ErrProfile) {
		t.Errorf("Compile(huge) = %v, want ErrProfile", err)
	}
}

// FuzzCheckRun: any program Check accepts runs to a return without
// panicking, whatever the data.
func FuzzCheckRun(f *testing.F) {
	f.Add([]byte{0x20, 0, 0, 0, 0, 0, 0, 0, 0x06, 0, 0, 0, 0, 0, 0xff, 0x7f}, uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, arg uint64) {
		p, err := Check(Decode(b))
		if err != nil {
			return
		}
		d := &Data{Nr: int32(arg), Arch: abi.AUDIT_ARCH_X86_64, IP: arg, Args: [6]uint64{arg, ^arg}}
		p.Run(d)
	})
}

func TestDecode(t *testing.T) {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b, ldAbs)
	binary.LittleEndian.PutUint32(b[4:], 4)
	binary.LittleEndian.PutUint16(b[8:], ret)
	b[10], b[11] = 1, 2
	binary.LittleEndian.PutUint32(b[12:], abi.SECCOMP_RET_ALLOW)
	got := Decode(b)
	want := []Instruction{Stmt(ldAbs, 4), {Op: ret, Jt: 1, Jf: 2, K: abi.SECCOMP_RET_ALLOW}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Decode = %+v, want %+v", got, want)
	}
}

// BenchmarkRun: one system call through a profile the size of
// containerd's RuntimeDefault (about 350 allowed names), for a call near
// the end of the list and for one that is not in it.
func BenchmarkRun(b *testing.B) {
	p := &Profile{DefaultAction: "SCMP_ACT_ERRNO", Syscalls: []Rule{{Action: "SCMP_ACT_ALLOW"}}}
	for nr := uint64(0); nr < 350; nr++ {
		if n := abi.SyscallName(nr); n != "" {
			p.Syscalls[0].Names = append(p.Syscalls[0].Names, n)
		}
	}
	c, err := Compile(p)
	if err != nil {
		b.Fatal(err)
	}
	for _, nr := range []int32{abi.SYS_READ, 330, 440} {
		d := &Data{Nr: nr, Arch: abi.AUDIT_ARCH_X86_64}
		b.Run(abi.SyscallName(uint64(nr)), func(b *testing.B) {
			for b.Loop() {
				c.Program.Run(d)
			}
		})
	}
}
