package loader_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"moat.dev/moat/sentry/abi"
	"moat.dev/moat/sentry/loader"
)

// Loading an executable: parse it, plan its mappings at a load bias, and
// build the initial stack that describes it to the program.
func Example() {
	f, err := os.Open("/bin/true")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	st, _ := f.Stat()
	img, err := loader.Parse(f, st.Size())
	if err != nil {
		fmt.Println(err)
		return
	}
	bias := uint64(0x555555554000) // /bin/true is position-independent
	plan, err := loader.Plan(img, bias)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("interpreter:", img.Interp)
	fmt.Println("first mapping is file-backed:", plan.Mappings[0].File)

	auxv := append(loader.ProgramAuxv(img, bias, 0x7ffff7fc3000),
		loader.AuxEntry{Key: abi.AT_PAGESZ, Val: abi.PageSize})
	data, sp, err := loader.BuildStack(0x7ffffffff000, loader.StackArgs{
		Argv:     []string{"true"},
		Envv:     []string{"PATH=/bin"},
		Execfn:   "/bin/true",
		Platform: abi.Platform,
		Auxv:     auxv,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("sp aligned:", sp%16 == 0, "image bytes:", len(data))
	// Output:
	// interpreter: /lib64/ld-linux-x86-64.so.2
	// first mapping is file-backed: true
	// sp aligned: true image bytes: 288
}

func ExampleParse_foreign() {
	// The first bytes of an aarch64 executable.
	hdr := make([]byte, 64)
	copy(hdr, "\x7fELF\x02\x01\x01")
	hdr[16], hdr[18], hdr[20] = 2, 183, 1
	_, err := loader.Parse(bytes.NewReader(hdr), int64(len(hdr)))
	fmt.Println(err)
	fmt.Println(errors.Is(err, loader.ErrNoExec))
	// Output:
	// elf: machine is aarch64 (183), want x86-64
	// true
}

func ExampleParseInterpreterLine() {
	interp, arg, ok, err := loader.ParseInterpreterLine([]byte("#!/usr/bin/env python3\nprint('hi')\n"))
	fmt.Printf("%q %q %v %v\n", interp, arg, ok, err)
	// Output: "/usr/bin/env" "python3" true <nil>
}
