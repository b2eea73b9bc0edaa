package loader

import (
	"encoding/binary"
	"fmt"
	"strings"

	"moat.dev/moat/sentry/abi"
)

// Limits on the strings execve copies (include/uapi/linux/binfmts.h).
const (
	// MaxArgStrlen is the longest argument or environment string, its NUL
	// included (MAX_ARG_STRLEN, 32 pages).
	MaxArgStrlen = 32 * PageSize
	// DefaultArgLimit bounds the strings and pointers of argv and envp when
	// StackArgs.Limit is 0: a quarter of the default 8 MiB stack limit, as
	// Linux allows.
	DefaultArgLimit = 8 << 20 / 4
)

// AuxEntry is one entry of the auxiliary vector.
type AuxEntry struct {
	Key uint64 // abi.AT_*
	Val uint64
}

// StackArgs is what goes on a new process's stack.
type StackArgs struct {
	// Argv is taken as given. (Since 5.18 Linux gives a program run with an
	// empty argv one empty argument; that is execve's business.)
	Argv []string
	Envv []string
	// Execfn is the path given to execve; AT_EXECFN points at it.
	Execfn string
	// Platform is the AT_PLATFORM string, abi.Platform on x86-64; empty
	// leaves AT_PLATFORM out.
	Platform string
	// Random is the 16 bytes AT_RANDOM points at (the C library's stack
	// protector and pointer guard seeds).
	Random [16]byte
	// Auxv holds the entries the caller knows (AT_PHDR, AT_PHENT, AT_PHNUM,
	// AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY, AT_UID, AT_EUID, AT_GID,
	// AT_EGID, AT_SECURE, AT_CLKTCK, AT_HWCAP, AT_HWCAP2, AT_MINSIGSTKSZ,
	// AT_SYSINFO_EHDR, ...), in the order they should appear. BuildStack
	// sets the values of AT_RANDOM, AT_EXECFN and AT_PLATFORM where the
	// caller lists them and appends those it does not, then ends the vector
	// with AT_NULL.
	Auxv []AuxEntry
	// Limit bounds the bytes of the argv, envp and execfn strings (with
	// their NULs) plus 8 bytes per argv and envp pointer; 0 means
	// DefaultArgLimit. Exceeding it is an error wrapping abi.E2BIG.
	Limit uint64
}

// BuildStack lays out the initial stack of a process whose stack ends at
// top, as Linux does on x86-64, and returns the bytes that belong at
// [top-len(data), top) and the stack pointer, sp = top-len(data).
//
// From top down: 8 zero bytes; the execfn string; the environment strings
// and the argument strings (argv[0] lowest); padding to 16 bytes; the
// platform string; the 16 random bytes; padding; then, from sp up: argc,
// the argv pointers and a NULL, the envp pointers and a NULL, and the
// auxiliary vector ending with AT_NULL. sp is 16-byte aligned and points at
// argc, as the x86-64 psABI requires at process entry.
//
// An argument or environment string longer than MaxArgStrlen, or all of
// them together over the limit, is an error wrapping abi.E2BIG; a string
// holding a NUL, or a top that is not 16-byte aligned or beyond the user
// address space, an error wrapping abi.EINVAL.
func BuildStack(top uint64, args StackArgs) (data []byte, sp uint64, err error) {
	if top%16 != 0 || top > UserTop {
		return nil, 0, fmt.Errorf("stack: top %#x is not a 16-byte aligned user address: %w", top, abi.EINVAL)
	}
	limit := args.Limit
	if limit == 0 {
		limit = DefaultArgLimit
	}
	var total uint64
	check := func(what string, i int, s string) error {
		if strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("stack: %s[%d] holds a NUL: %w", what, i, abi.EINVAL)
		}
		n := uint64(len(s)) + 1
		if n > MaxArgStrlen {
			return fmt.Errorf("stack: %s[%d] is %d bytes, more than %d: %w", what, i, len(s), MaxArgStrlen-1, abi.E2BIG)
		}
		total += n
		if what != "execfn" {
			total += 8
		}
		if total > limit {
			return fmt.Errorf("stack: arguments and environment exceed %d bytes at %s[%d]: %w", limit, what, i, abi.E2BIG)
		}
		return nil
	}
	if err := check("execfn", 0, args.Execfn); err != nil {
		return nil, 0, err
	}
	for i, s := range args.Envv {
		if err := check("envp", i, s); err != nil {
			return nil, 0, err
		}
	}
	for i, s := range args.Argv {
		if err := check("argv", i, s); err != nil {
			return nil, 0, err
		}
	}
	if strings.IndexByte(args.Platform, 0) >= 0 || len(args.Platform) > 64 {
		return nil, 0, fmt.Errorf("stack: bad platform string %q: %w", args.Platform, abi.EINVAL)
	}

	// The auxiliary vector, with the entries BuildStack owns filled in below.
	auxv := make([]AuxEntry, 0, len(args.Auxv)+4)
	idx := map[uint64]int{}
	for _, e := range args.Auxv {
		switch e.Key {
		case abi.AT_NULL:
			return nil, 0, fmt.Errorf("stack: auxv holds AT_NULL before its end: %w", abi.EINVAL)
		case abi.AT_PLATFORM:
			if args.Platform == "" {
				return nil, 0, fmt.Errorf("stack: auxv holds AT_PLATFORM but no platform string is given: %w", abi.EINVAL)
			}
		}
		if _, dup := idx[e.Key]; dup && (e.Key == abi.AT_RANDOM || e.Key == abi.AT_EXECFN || e.Key == abi.AT_PLATFORM) {
			return nil, 0, fmt.Errorf("stack: auxv holds key %d twice: %w", e.Key, abi.EINVAL)
		}
		idx[e.Key] = len(auxv)
		auxv = append(auxv, e)
	}
	own := []uint64{abi.AT_RANDOM, abi.AT_EXECFN}
	if args.Platform != "" {
		own = append(own, abi.AT_PLATFORM)
	}
	for _, k := range own {
		if _, ok := idx[k]; !ok {
			idx[k] = len(auxv)
			auxv = append(auxv, AuxEntry{Key: k})
		}
	}
	auxv = append(auxv, AuxEntry{Key: abi.AT_NULL})

	// Everything must fit below top: the strings, at most 15 bytes of
	// alignment twice, the platform string, the random bytes, the pointers
	// and the auxiliary vector.
	items := uint64(len(args.Argv)+1) + uint64(len(args.Envv)+1) + 1 + 2*uint64(len(auxv))
	need := 8 + total - 8*uint64(len(args.Argv)+len(args.Envv)) + 15 + uint64(len(args.Platform)) + 1 + 16 + items*8 + 15
	if need > top {
		return nil, 0, fmt.Errorf("stack: %d bytes do not fit below %#x: %w", need, top, abi.E2BIG)
	}

	// Strings, from the top down (addresses relative to top until the size
	// is known, then absolute).
	p := top - 8
	place := func(s string) uint64 {
		p -= uint64(len(s)) + 1
		return p
	}
	execfn := place(args.Execfn)
	envp := make([]uint64, len(args.Envv))
	for i := len(args.Envv) - 1; i >= 0; i-- {
		envp[i] = place(args.Envv[i])
	}
	argv := make([]uint64, len(args.Argv))
	for i := len(args.Argv) - 1; i >= 0; i-- {
		argv[i] = place(args.Argv[i])
	}
	p &^= 15
	var platform uint64
	if args.Platform != "" {
		platform = place(args.Platform)
	}
	p -= 16
	random := p

	sp = (p - items*8) &^ 15

	auxv[idx[abi.AT_RANDOM]].Val = random
	auxv[idx[abi.AT_EXECFN]].Val = execfn
	if args.Platform != "" {
		auxv[idx[abi.AT_PLATFORM]].Val = platform
	}

	data = make([]byte, top-sp)
	at := func(addr uint64) []byte { return data[addr-sp:] }
	le := binary.LittleEndian
	w := sp
	put := func(v uint64) {
		le.PutUint64(at(w), v)
		w += 8
	}
	put(uint64(len(args.Argv)))
	for _, a := range argv {
		put(a)
	}
	put(0)
	for _, e := range envp {
		put(e)
	}
	put(0)
	for _, e := range auxv {
		put(e.Key)
		put(e.Val)
	}
	copy(at(random), args.Random[:])
	if args.Platform != "" {
		copy(at(platform), args.Platform)
	}
	for i, a := range argv {
		copy(at(a), args.Argv[i])
	}
	for i, e := range envp {
		copy(at(e), args.Envv[i])
	}
	copy(at(execfn), args.Execfn)
	return data, sp, nil
}

// ProgramAuxv returns the auxiliary vector entries that describe the
// program img loaded at load bias bias, with its interpreter (if any)
// loaded at interpBase: AT_PHDR, AT_PHENT, AT_PHNUM, AT_BASE, AT_FLAGS and
// AT_ENTRY, in Linux's order.
func ProgramAuxv(img *Image, bias, interpBase uint64) []AuxEntry {
	return []AuxEntry{
		{abi.AT_PHDR, img.PhdrVaddr + bias},
		{abi.AT_PHENT, uint64(img.Phent)},
		{abi.AT_PHNUM, uint64(img.Phnum)},
		{abi.AT_BASE, interpBase},
		{abi.AT_FLAGS, 0},
		{abi.AT_ENTRY, img.Entry + bias},
	}
}

// StackImage is an initial stack decoded by DecodeStack.
type StackImage struct {
	Argv []string
	Envv []string
	Auxv []AuxEntry // without the final AT_NULL
	// ArgvStart..EnvEnd bound the argument and environment strings (what
	// /proc/pid/cmdline and /proc/pid/environ show).
	ArgvStart, ArgvEnd, EnvStart, EnvEnd uint64
}

// DecodeStack reads back a stack image data that starts at address sp
// (as BuildStack returns it): argc, the pointers, the auxiliary vector and
// the strings they point at. Every pointer must land inside data.
func DecodeStack(data []byte, sp uint64) (*StackImage, error) {
	le := binary.LittleEndian
	top := sp + uint64(len(data))
	off := uint64(0)
	word := func() (uint64, error) {
		if off+8 > uint64(len(data)) {
			return 0, fmt.Errorf("stack: runs past its end at %#x", sp+off)
		}
		v := le.Uint64(data[off:])
		off += 8
		return v, nil
	}
	str := func(addr uint64) (string, uint64, error) {
		if addr < sp || addr >= top {
			return "", 0, fmt.Errorf("stack: pointer %#x is outside [%#x, %#x)", addr, sp, top)
		}
		b := data[addr-sp:]
		for i, c := range b {
			if c == 0 {
				return string(b[:i]), addr + uint64(i) + 1, nil
			}
		}
		return "", 0, fmt.Errorf("stack: string at %#x has no NUL", addr)
	}
	argc, err := word()
	if err != nil {
		return nil, err
	}
	if argc > uint64(len(data))/8 {
		return nil, fmt.Errorf("stack: argc %d is too large", argc)
	}
	img := &StackImage{}
	readList := func(n int) ([]string, uint64, uint64, error) {
		var out []string
		var start, end uint64
		for i := 0; n < 0 || i < n; i++ {
			p, err := word()
			if err != nil {
				return nil, 0, 0, err
			}
			if p == 0 {
				if n >= 0 {
					return nil, 0, 0, fmt.Errorf("stack: argv[%d] is NULL before argc %d", i, n)
				}
				break
			}
			s, e, err := str(p)
			if err != nil {
				return nil, 0, 0, err
			}
			if i == 0 {
				start = p
			}
			end = e
			out = append(out, s)
		}
		if n >= 0 {
			if p, err := word(); err != nil || p != 0 {
				return nil, 0, 0, fmt.Errorf("stack: argv is not NULL-terminated")
			}
		}
		return out, start, end, nil
	}
	if img.Argv, img.ArgvStart, img.ArgvEnd, err = readList(int(argc)); err != nil {
		return nil, err
	}
	if img.Envv, img.EnvStart, img.EnvEnd, err = readList(-1); err != nil {
		return nil, err
	}
	for {
		k, err := word()
		if err != nil {
			return nil, err
		}
		v, err := word()
		if err != nil {
			return nil, err
		}
		if k == abi.AT_NULL {
			break
		}
		img.Auxv = append(img.Auxv, AuxEntry{k, v})
	}
	return img, nil
}
