package abi_test

import (
	"errors"
	"fmt"

	"moat.dev/moat/sentry/abi"
)

func ExampleSyscallName() {
	fmt.Println(abi.SyscallName(abi.SYS_CLONE3), abi.SyscallName(999) == "")
	// Output: clone3 true
}

func ExampleErrno() {
	err := fmt.Errorf("open /etc/shadow: %w", abi.EACCES)
	fmt.Println(err, errors.Is(err, abi.EACCES), abi.EACCES.Description())
	fmt.Printf("%#x\n", abi.EACCES.Return())
	// Output:
	// open /etc/shadow: EACCES true permission denied
	// 0xfffffffffffffff3
}

func ExampleStat() {
	st := abi.Stat{Ino: 42, Mode: abi.S_IFREG | 0o644, Size: 5}
	buf := make([]byte, abi.StatSize)
	st.Marshal(buf) // the bytes fstat(2) copies out
	var back abi.Stat
	back.Unmarshal(buf)
	fmt.Println(back.Ino, back.Mode&abi.S_IFMT == abi.S_IFREG, back.Size)
	// Output: 42 true 5
}

func ExampleDefaultAction() {
	for _, s := range []abi.Signal{abi.SIGSEGV, abi.SIGCHLD, abi.SIGTSTP, abi.SIGRTMIN + 2} {
		fmt.Println(s, abi.DefaultAction(s))
	}
	// Output:
	// SIGSEGV core
	// SIGCHLD ignore
	// SIGTSTP stop
	// SIGRTMIN+2 term
}
