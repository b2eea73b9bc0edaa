package e2e

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"moat.dev/moat/e2e/harness"
)

// foreignELF is the header of an ELF executable for AArch64: a binary for
// another architecture, which must be refused with a clear error.
func foreignELF() []byte {
	b := make([]byte, 64)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1                      // 64-bit, little-endian, version 1
	binary.LittleEndian.PutUint16(b[16:], 2)        // ET_EXEC
	binary.LittleEndian.PutUint16(b[18:], 183)      // EM_AARCH64
	binary.LittleEndian.PutUint32(b[20:], 1)        // EV_CURRENT
	binary.LittleEndian.PutUint64(b[24:], 0x400000) // entry
	binary.LittleEndian.PutUint16(b[52:], 64)       // header size
	binary.LittleEndian.PutUint16(b[54:], 56)       // program header size
	return b
}

// TestClearErrors: a container whose program cannot run (a binary for
// another architecture, a missing executable) fails promptly with an error
// that says why: StartContainer returns it, or the container exits
// non-zero with it in its status message or its log (runc writes a late
// exec failure to the container's stderr). Never a hang, never a success.
func TestClearErrors(t *testing.T) {
	t.Parallel()
	e := env(t)
	const image = "moat.test/foreign:e2e"
	bb, err := e.BusyboxFiles()
	if err != nil {
		t.Fatal(err)
	}
	err = e.ImportImage(testCtx(t), harness.Image{
		Name:  image,
		Files: append(bb, harness.File{Path: "/arm64-program", Data: foreignELF(), Mode: 0o755}),
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		argv []string
		why  []string // the error names one of these
	}{
		{"foreign-arch", []string{"/arm64-program"}, []string{"exec format error", "architecture"}},
		{"missing-binary", []string{"/no/such/program"}, []string{"no such file", "not found"}},
	}
	says := func(msg string, why []string) bool {
		for _, w := range why {
			if strings.Contains(strings.ToLower(msg), w) {
				return true
			}
		}
		return false
	}
	forEachHandler(t, func(t *testing.T, e *harness.Env, h string) {
		pod := runPod(t, e, h, "errors")
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ctx := testCtx(t)
				id, startErr := pod.Start(ctx, harness.ContainerConfig(c.name, image, c.argv...))
				if id == "" {
					t.Fatalf("create failed before start: %v", startErr)
				}
				if startErr != nil {
					if !says(startErr.Error(), c.why) {
						t.Errorf("start error %q names none of %q", startErr, c.why)
					}
					return
				}
				wctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				st, err := e.WaitExited(wctx, id)
				if err != nil {
					t.Fatalf("started and did not exit: %v", err)
				}
				logs, _ := e.Logs(ctx, id, "")
				if st.ExitCode == 0 || !says(st.Message+" "+st.Reason+" "+logs, c.why) {
					t.Errorf("exit %d reason %q message %q log %q; want a failure naming one of %q", st.ExitCode, st.Reason, st.Message, logs, c.why)
				}
			})
		}
	})
}
