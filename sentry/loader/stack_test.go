package loader

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/abi"
)

func testStackArgs() StackArgs {
	return StackArgs{
		Argv:     []string{"/bin/prog", "-x", "", "an argument with spaces"},
		Envv:     []string{"PATH=/usr/bin:/bin", "HOME=/root", "EMPTY="},
		Execfn:   "/bin/prog",
		Platform: abi.Platform,
		Random:   [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		Auxv: []AuxEntry{
			{abi.AT_SYSINFO_EHDR, 0x7ffff7fc1000},
			{abi.AT_HWCAP, 0x178bfbff},
			{abi.AT_PAGESZ, 4096},
			{abi.AT_CLKTCK, 100},
			{abi.AT_PHDR, 0x400040},
			{abi.AT_PHENT, 56},
			{abi.AT_PHNUM, 4},
			{abi.AT_BASE, 0},
			{abi.AT_FLAGS, 0},
			{abi.AT_ENTRY, 0x401000},
			{abi.AT_UID, 0}, {abi.AT_EUID, 0}, {abi.AT_GID, 0}, {abi.AT_EGID, 0},
			{abi.AT_SECURE, 0},
		},
	}
}

// TestBuildStackDecode builds stacks and decodes them back, checking each
// pointer lands on its string and the layout rules hold.
func TestBuildStackDecode(t *testing.T) {
	const top = 0x7ffffffff000
	for n := 0; n < 4; n++ {
		args := testStackArgs()
		args.Argv = args.Argv[:n] // argc parity changes the padding
		args.Envv = args.Envv[:3-n%3]
		data, sp, err := BuildStack(top, args)
		if err != nil {
			t.Fatal(err)
		}
		if sp%16 != 0 || sp+uint64(len(data)) != top {
			t.Fatalf("sp %#x, %d bytes", sp, len(data))
		}
		st, err := DecodeStack(data, sp)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(st.Argv, args.Argv) || !slices.Equal(st.Envv, args.Envv) {
			t.Errorf("argv %q envv %q", st.Argv, st.Envv)
		}
		at := func(a uint64) []byte { return data[a-sp:] }
		cstr := func(a uint64) string { b := at(a); return string(b[:bytes.IndexByte(b, 0)]) }
		aux := map[uint64]uint64{}
		for _, e := range st.Auxv {
			aux[e.Key] = e.Val
		}
		if len(st.Auxv) != len(args.Auxv)+3 {
			t.Errorf("%d auxv entries, want %d", len(st.Auxv), len(args.Auxv)+3)
		}
		for i, e := range args.Auxv {
			if st.Auxv[i] != e {
				t.Errorf("auxv[%d] = %v, want %v", i, st.Auxv[i], e)
			}
		}
		if !bytes.Equal(at(aux[abi.AT_RANDOM])[:16], args.Random[:]) {
			t.Error("AT_RANDOM does not point at the random bytes")
		}
		if cstr(aux[abi.AT_PLATFORM]) != "x86_64" || cstr(aux[abi.AT_EXECFN]) != args.Execfn {
			t.Error("AT_PLATFORM or AT_EXECFN points elsewhere")
		}
		// execfn is the topmost string, with 8 zero bytes above it.
		if aux[abi.AT_EXECFN] != top-8-uint64(len(args.Execfn))-1 || !bytes.Equal(data[len(data)-8:], make([]byte, 8)) {
			t.Errorf("execfn at %#x", aux[abi.AT_EXECFN])
		}
		// The strings are contiguous: argv then envp then execfn.
		if n > 0 && st.ArgvEnd != st.EnvStart || st.EnvEnd != aux[abi.AT_EXECFN] {
			t.Errorf("strings not contiguous: argv [%#x,%#x) env [%#x,%#x) execfn %#x", st.ArgvStart, st.ArgvEnd, st.EnvStart, st.EnvEnd, aux[abi.AT_EXECFN])
		}
		// The platform string sits 16-byte aligned below the strings, and the
		// random bytes right below it.
		if (aux[abi.AT_PLATFORM]+7)%16 != 0 || aux[abi.AT_RANDOM] != aux[abi.AT_PLATFORM]-16 {
			t.Errorf("platform %#x random %#x", aux[abi.AT_PLATFORM], aux[abi.AT_RANDOM])
		}
	}
}

func TestBuildStackCallerOrder(t *testing.T) {
	args := testStackArgs()
	// The caller may place the entries BuildStack fills.
	args.Auxv = append([]AuxEntry{{abi.AT_PLATFORM, 0}, {abi.AT_EXECFN, 0}}, args.Auxv...)
	args.Auxv = append(args.Auxv, AuxEntry{abi.AT_RANDOM, 0}, AuxEntry{abi.AT_MINSIGSTKSZ, 3376})
	data, sp, err := BuildStack(0x10000, args)
	if err != nil {
		t.Fatal(err)
	}
	st, err := DecodeStack(data, sp)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Auxv) != len(args.Auxv) || st.Auxv[0].Key != abi.AT_PLATFORM || st.Auxv[0].Val == 0 ||
		st.Auxv[len(st.Auxv)-2].Key != abi.AT_RANDOM || st.Auxv[len(st.Auxv)-1].Val != 3376 {
		t.Errorf("auxv %v", st.Auxv)
	}
	// No platform string: no AT_PLATFORM.
	args = testStackArgs()
	args.Platform = ""
	data, sp, _ = BuildStack(0x10000, args)
	st, _ = DecodeStack(data, sp)
	for _, e := range st.Auxv {
		if e.Key == abi.AT_PLATFORM {
			t.Error("AT_PLATFORM without a platform")
		}
	}
	// Empty argv and envp.
	data, sp, err = BuildStack(0x10000, StackArgs{Execfn: "/x"})
	if err != nil {
		t.Fatal(err)
	}
	if st, err = DecodeStack(data, sp); err != nil || len(st.Argv) != 0 || len(st.Envv) != 0 || len(st.Auxv) != 2 {
		t.Errorf("empty: %v %+v", err, st)
	}
}

func TestBuildStackLimits(t *testing.T) {
	ok := testStackArgs()
	ok.Argv = append(ok.Argv, strings.Repeat("a", MaxArgStrlen-1))
	if _, _, err := BuildStack(UserTop, ok); err != nil {
		t.Errorf("a %d-byte string: %v", MaxArgStrlen-1, err)
	}
	for _, c := range []struct {
		name   string
		top    uint64
		mutate func(*StackArgs)
		want   error
		say    string
	}{
		{"long arg", UserTop, func(a *StackArgs) { a.Argv = append(a.Argv, strings.Repeat("a", MaxArgStrlen)) }, abi.E2BIG, "argv[4] is 131072 bytes"},
		{"long env", UserTop, func(a *StackArgs) { a.Envv[1] = strings.Repeat("e", MaxArgStrlen) }, abi.E2BIG, "envp[1] is 131072 bytes"},
		{"long execfn", UserTop, func(a *StackArgs) { a.Execfn = strings.Repeat("e", MaxArgStrlen) }, abi.E2BIG, "execfn[0]"},
		{"limit", UserTop, func(a *StackArgs) { a.Limit = 60 }, abi.E2BIG, "exceed 60 bytes"},
		{"default limit", UserTop, func(a *StackArgs) {
			for i := 0; i < 17; i++ {
				a.Envv = append(a.Envv, strings.Repeat("v", MaxArgStrlen-1))
			}
		}, abi.E2BIG, "exceed 2097152 bytes"},
		{"many pointers", UserTop, func(a *StackArgs) { a.Argv = make([]string, 300000) }, abi.E2BIG, "exceed"},
		{"NUL", UserTop, func(a *StackArgs) { a.Argv[1] = "a\x00b" }, abi.EINVAL, "argv[1] holds a NUL"},
		{"platform NUL", UserTop, func(a *StackArgs) { a.Platform = "x\x00" }, abi.EINVAL, "platform"},
		{"AT_NULL", UserTop, func(a *StackArgs) { a.Auxv = append(a.Auxv, AuxEntry{abi.AT_NULL, 0}) }, abi.EINVAL, "AT_NULL"},
		{"AT_PLATFORM", UserTop, func(a *StackArgs) { a.Platform = ""; a.Auxv = append(a.Auxv, AuxEntry{abi.AT_PLATFORM, 0}) }, abi.EINVAL, "AT_PLATFORM"},
		{"dup AT_RANDOM", UserTop, func(a *StackArgs) {
			a.Auxv = append(a.Auxv, AuxEntry{abi.AT_RANDOM, 0}, AuxEntry{abi.AT_RANDOM, 0})
		}, abi.EINVAL, "twice"},
		{"top unaligned", UserTop - 8, nil, abi.EINVAL, "16-byte aligned"},
		{"top beyond", 1 << 48, nil, abi.EINVAL, "user address"},
		{"top tiny", 0x100, nil, abi.E2BIG, "do not fit below 0x100"},
		{"top zero", 0, nil, abi.E2BIG, "do not fit"},
	} {
		args := testStackArgs()
		if c.mutate != nil {
			c.mutate(&args)
		}
		_, _, err := BuildStack(c.top, args)
		if !errors.Is(err, c.want) || !strings.Contains(fmt.Sprint(err), c.say) {
			t.Errorf("%s: %v, want %v saying %q", c.name, err, c.want, c.say)
		}
	}
}

func TestDecodeStackRejects(t *testing.T) {
	data, sp, err := BuildStack(0x10000, testStackArgs())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		mut  func([]byte) []byte
	}{
		{"empty", func(b []byte) []byte { return nil }},
		{"huge argc", func(b []byte) []byte { le.PutUint64(b, 1<<40); return b }},
		{"pointer outside", func(b []byte) []byte { le.PutUint64(b[8:], 1); return b }},
		{"no NUL", func(b []byte) []byte { le.PutUint64(b[8:], sp+uint64(len(b))-1); b[len(b)-1] = 'x'; return b }},
		{"truncated auxv", func(b []byte) []byte { return b[:8*12] }},
	} {
		b := c.mut(slices.Clone(data))
		if _, err := DecodeStack(b, sp); err == nil {
			t.Errorf("%s: decoded", c.name)
		}
	}
}

// TestBuildStackMatchesKernel runs a static C program that dumps its own
// initial stack, then builds a stack with the same arguments, environment
// and auxiliary vector, and compares the two byte for byte. Address
// randomization is turned off for the child (ADDR_NO_RANDOMIZE), as it
// would move the stack top and pad below the strings by a random amount.
func TestBuildStackMatchesKernel(t *testing.T) {
	bin := cProgram(t, "stackdump", stackDumpC, "-static")
	for _, tc := range []struct {
		argv, envv []string
	}{
		{[]string{"stackdump"}, []string{"A=1"}},
		{[]string{"stackdump", "one", "", "three with spaces", strings.Repeat("x", 1000)},
			[]string{"PATH=/usr/bin:/bin", "EMPTY=", "LONG=" + strings.Repeat("y", 301)}},
		{[]string{"a", "bb"}, nil},
		{[]string{"odd"}, []string{"B=22", "C=333", "D=4444"}},
	} {
		out := runNoRandomize(t, bin, tc.argv, tc.envv)
		lines := strings.SplitN(strings.TrimSpace(out), "\n", 2)
		var top, sp uint64
		if _, err := fmt.Sscanf(lines[0], "%x %x", &top, &sp); err != nil {
			t.Fatalf("parse %q: %v", lines[0], err)
		}
		kernel, err := hex.DecodeString(lines[1])
		if err != nil || uint64(len(kernel)) != top-sp {
			t.Fatalf("dump: %v, %d bytes for [%#x, %#x)", err, len(kernel), sp, top)
		}
		st, err := DecodeStack(kernel, sp)
		if err != nil {
			t.Fatalf("decode the kernel's stack: %v", err)
		}
		if !slices.Equal(st.Argv, tc.argv) || !slices.Equal(st.Envv, tc.envv) {
			t.Fatalf("kernel stack holds argv %q envv %q", st.Argv, st.Envv)
		}
		args := StackArgs{Argv: tc.argv, Envv: tc.envv, Execfn: bin, Platform: abi.Platform}
		for _, e := range st.Auxv {
			switch e.Key {
			case abi.AT_RANDOM:
				copy(args.Random[:], kernel[e.Val-sp:])
				e.Val = 0
			case abi.AT_EXECFN, abi.AT_PLATFORM:
				e.Val = 0
			}
			args.Auxv = append(args.Auxv, e)
		}
		data, mysp, err := BuildStack(top, args)
		if err != nil {
			t.Fatal(err)
		}
		if mysp != sp {
			t.Errorf("sp %#x, the kernel's %#x (top %#x)", mysp, sp, top)
		}
		if !bytes.Equal(data, kernel) {
			n := min(len(data), len(kernel))
			for i := 1; i <= n; i++ {
				if data[len(data)-i] != kernel[len(kernel)-i] {
					t.Errorf("stacks differ first at top-%d (%d bytes, kernel %d)", i, len(data), len(kernel))
					break
				}
			}
		}
		// The program's own entries are ProgramAuxv's, in its order.
		img, _ := parseFile(t, bin)
		want := ProgramAuxv(img, 0, 0)
		i := slices.IndexFunc(st.Auxv, func(e AuxEntry) bool { return e.Key == abi.AT_PHDR })
		if i < 0 || i+len(want) > len(st.Auxv) || !slices.Equal(st.Auxv[i:i+len(want)], want) {
			t.Errorf("kernel auxv %v does not hold ProgramAuxv %v", st.Auxv, want)
		}
		t.Logf("argc %d envc %d auxv %d: %d bytes identical to the kernel's", len(tc.argv), len(tc.envv), len(st.Auxv), len(kernel))
	}
}

// runNoRandomize runs bin with address randomization off and returns its
// output. The personality is set on a locked thread, which the child is
// forked from and inherits it.
func runNoRandomize(t *testing.T, bin string, argv, envv []string) string {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	personality := func(p uintptr) uintptr {
		r, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, p, 0, 0)
		if errno != 0 {
			t.Fatalf("personality(%#x): %v", p, errno)
		}
		return r
	}
	old := personality(0xffffffff)
	personality(old | addrNoRandomize)
	defer personality(old)
	cmd := exec.Command(bin)
	cmd.Args = argv
	cmd.Env = envv
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	return string(out)
}

// addrNoRandomize is ADDR_NO_RANDOMIZE of include/uapi/linux/personality.h.
const addrNoRandomize = 0x0040000
