package abi

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDefaultTermiosMatchesKernel opens a real pseudo-terminal and compares
// its slave's settings with DefaultTermios.
func TestDefaultTermiosMatchesKernel(t *testing.T) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		if os.Getenv("MOAT_REQUIRE_KVM") == "1" || os.Getenv("MOAT_REQUIRE_E2E") == "1" {
			t.Fatalf("open /dev/ptmx: %v", err)
		}
		t.Skipf("no /dev/ptmx (set MOAT_REQUIRE_KVM=1 to fail instead): %v", err)
	}
	defer m.Close()
	if err := unix.IoctlSetPointerInt(int(m.Fd()), TIOCSPTLCK, 0); err != nil {
		t.Fatalf("TIOCSPTLCK: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), TIOCGPTN)
	if err != nil {
		t.Fatalf("TIOCGPTN: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the slave: %v", err)
	}
	defer s.Close()
	k, err := unix.IoctlGetTermios(int(s.Fd()), TCGETS)
	if err != nil {
		t.Fatalf("TCGETS: %v", err)
	}
	want := DefaultTermios()
	want.Cflag &^= HUPCL
	got := Termios{Iflag: k.Iflag, Oflag: k.Oflag, Cflag: k.Cflag, Lflag: k.Lflag, Line: k.Line, CC: k.Cc}
	if got != want {
		t.Errorf("pty slave termios\n got %+v\nwant %+v", got, want)
	}
	ws, err := unix.IoctlGetWinsize(int(s.Fd()), TIOCGWINSZ)
	if err != nil || ws.Row != 0 || ws.Col != 0 {
		t.Errorf("TIOCGWINSZ: %v %+v", err, ws)
	}
}
