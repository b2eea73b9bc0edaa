package loader

import (
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestParseInterpreterLine(t *testing.T) {
	long := strings.Repeat("a", 300)
	for _, c := range []struct {
		in           string
		interp, arg  string
		ok, wantsErr bool
	}{
		{"", "", "", false, false},
		{"#", "", "", false, false},
		{"\x7fELF", "", "", false, false},
		{"#!/bin/sh\n", "/bin/sh", "", true, false},
		{"#!/bin/sh", "/bin/sh", "", true, false},
		{"#! /bin/sh\n", "/bin/sh", "", true, false},
		{"#!\t /bin/sh \t\n", "/bin/sh", "", true, false},
		{"#!/bin/sh -e\n", "/bin/sh", "-e", true, false},
		{"#!/usr/bin/env  python3  -u \necho", "/usr/bin/env", "python3  -u", true, false},
		{"#!/bin/sh\t-x\n", "/bin/sh", "-x", true, false},
		{"#!/bin/sh -x\x00y\n", "/bin/sh", "-x", true, false},
		{"#!/bin/sh\x00 -x\n", "/bin/sh", "", true, false},
		{"#!/bin/sh\r\n", "/bin/sh\r", "", true, false},
		{"#!0 0 \x00", "0", "0 ", true, false},
		{"#!/bin/sh " + long, "/bin/sh", long[:256-2-8-1], true, false},
		{"#!" + long, "", "", true, true},
		{"#!" + strings.Repeat(" ", 300), "", "", true, true},
		{"#!\n", "", "", true, true},
		{"#!   \n/bin/sh", "", "", true, true},
		{"#!" + strings.Repeat(" ", 250) + "/bin/sh", "", "", true, true},
		{"#!" + strings.Repeat(" ", 240) + "/bin/sh", "/bin/sh", "", true, false},
		{"#!" + strings.Repeat("b", 253) + " x", strings.Repeat("b", 253), "", true, false},
		{"#!" + strings.Repeat("b", 254) + " ", "", "", true, true},
		{"#!" + strings.Repeat("b", 254) + "\n", "", "", true, true},
		{"#!" + strings.Repeat("b", 253) + "\n", strings.Repeat("b", 253), "", true, false},
		{"#!" + strings.Repeat("b", 254) + "x\n", "", "", true, true},
	} {
		interp, arg, ok, err := ParseInterpreterLine([]byte(c.in))
		if ok != c.ok || (err != nil) != c.wantsErr || interp != c.interp || arg != c.arg {
			t.Errorf("ParseInterpreterLine(%.40q) = %q, %q, %v, %v; want %q, %q, %v, err %v", c.in, interp, arg, ok, err, c.interp, c.arg, c.ok, c.wantsErr)
		}
		if err != nil && !errors.Is(err, ErrNoExec) {
			t.Errorf("%.40q: %v does not wrap ErrNoExec", c.in, err)
		}
	}
}

// argvC prints its arguments, hex-encoded, one a line.
const argvC = `
#include <stdio.h>
int main(int argc, char **argv) {
	for (int i = 0; i < argc; i++) {
		for (char *p = argv[i]; *p; p++) printf("%02x", (unsigned char)*p);
		printf("\n");
	}
	return 0;
}
`

// TestParseInterpreterLineMatchesKernel executes scripts whose "#!" lines
// name a C program that prints its arguments, and checks that
// ParseInterpreterLine finds the interpreter and argument the kernel found,
// and rejects exactly the lines the kernel rejects with ENOEXEC.
func TestParseInterpreterLineMatchesKernel(t *testing.T) {
	interp := cProgram(t, "argv", argvC, "-static")
	dir := t.TempDir()
	pad := func(n int) string { return strings.Repeat(" ", n) }
	lines := []string{
		"#!P\n",
		"#!P",
		"#! P\n",
		"#!\t P \t\n",
		"#!P -e\n",
		"#!P  one  two three  \nrest",
		"#!P\targ\n",
		"#!P arg\x00rest\n",
		"#!P\x00 arg\n",
		"#!P " + strings.Repeat("a", 300),
		"#!P" + strings.Repeat("a", 300),
		"#!" + pad(300),
		"#!\n",
		"#!   \nP",
		"#!" + pad(256-3-len(interp)) + "P",
		"#!" + pad(256-4-len(interp)) + "P",
		"#!" + pad(256-3-len(interp)) + "P\n",
		"#!" + pad(256-4-len(interp)) + "P x",
		"#!P\r\n",
		"#!P arg \x00x\n",
		"#!" + pad(254-len(interp)) + "P x",
		"#!" + pad(253-len(interp)) + "P x",
		"#!" + pad(253-len(interp)) + "P\n",
		"#!" + pad(254-len(interp)) + "P\n",
	}
	for i, l := range lines {
		content := strings.ReplaceAll(l, "P", interp)
		script := filepath.Join(dir, "s"+string(rune('a'+i)))
		if err := os.WriteFile(script, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		out, kerr := exec.Command(script, "extra").Output()
		gotInterp, gotArg, ok, perr := ParseInterpreterLine([]byte(content))
		if !ok {
			t.Errorf("%.50q: not recognized as a script", l)
			continue
		}
		var errno syscall.Errno
		switch {
		case errors.As(kerr, &errno) && errno == syscall.ENOEXEC:
			if perr == nil {
				t.Errorf("%.50q: the kernel says ENOEXEC, ParseInterpreterLine gives %q %q", l, gotInterp, gotArg)
			}
		case errors.As(kerr, &errno) && errno == syscall.ENOENT:
			if perr != nil || gotInterp == interp {
				t.Errorf("%.50q: the kernel found no interpreter; ParseInterpreterLine gives %q, %v", l, gotInterp, perr)
			}
		case kerr != nil:
			t.Errorf("%.50q: run: %v", l, kerr)
		default:
			var args []string
			for _, h := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
				b, err := hex.DecodeString(h)
				if err != nil {
					t.Fatal(err)
				}
				args = append(args, string(b))
			}
			// argv: interpreter, [argument], script, "extra".
			want := []string{interp}
			if perr == nil && gotArg != "" {
				want = append(want, gotArg)
			}
			want = append(want, script, "extra")
			if perr != nil || gotInterp != interp || strings.Join(args, "\x00") != strings.Join(want, "\x00") {
				t.Errorf("%.50q: kernel ran %q; ParseInterpreterLine gives %q %q %v", l, args, gotInterp, gotArg, perr)
			}
		}
	}
}
