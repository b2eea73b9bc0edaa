package loader

// BinprmBufSize is how many bytes of a file Linux reads to recognize its
// format, and so the longest "#!" line it looks at (BINPRM_BUF_SIZE).
const BinprmBufSize = 256

func spacetab(c byte) bool { return c == ' ' || c == '\t' }

// ParseInterpreterLine reads the "#!" line at the start of a file, given its
// first bytes (up to BinprmBufSize; more are ignored, fewer mean the file is
// that short). ok is false when the file does not start with "#!"; then it
// is not a script and err is nil.
//
// The rules are Linux's (fs/binfmt_script.c): the line ends at the first
// newline within the first BinprmBufSize bytes; spaces and tabs after "#!"
// and at the end of the line are dropped; the interpreter path runs to the
// first space, tab or NUL; whatever follows the spaces and tabs after it, up
// to the end of the line or a NUL, is the one optional argument, spaces
// included. A line with no interpreter, or whose interpreter path is cut off
// by the end of the buffer, is an error wrapping ErrNoExec (a cut-off
// argument is silently shortened).
func ParseInterpreterLine(first []byte) (interp, arg string, ok bool, err error) {
	if len(first) < 2 || first[0] != '#' || first[1] != '!' {
		return "", "", false, nil
	}
	// The kernel's buffer holds zeros past the end of a short file.
	var buf [BinprmBufSize]byte
	copy(buf[:], first)
	end := -1
	for i := 2; i < BinprmBufSize; i++ {
		if buf[i] == '\n' {
			end = i
			break
		}
	}
	if end < 0 {
		// No newline in the buffer: the line may be cut off. That is only
		// acceptable if the interpreter path itself ended (at a space, tab or
		// NUL) before the end of the buffer.
		i := 2
		for i < BinprmBufSize && spacetab(buf[i]) {
			i++
		}
		if i == BinprmBufSize {
			return "", "", true, noExec("script: #! line is only spaces and tabs")
		}
		for i < BinprmBufSize && !spacetab(buf[i]) && buf[i] != 0 {
			i++
		}
		if i == BinprmBufSize {
			return "", "", true, noExec("script: interpreter path is cut off at %d bytes", BinprmBufSize)
		}
		// The line ends before the buffer's last byte, which the kernel
		// overwrites with the string's NUL.
		end = BinprmBufSize - 1
	}
	line := buf[2:end]
	for len(line) > 0 && spacetab(line[len(line)-1]) {
		line = line[:len(line)-1]
	}
	for len(line) > 0 && spacetab(line[0]) {
		line = line[1:]
	}
	// The line is a C string from here on: a NUL ends it.
	for i, c := range line {
		if c == 0 {
			line = line[:i]
			break
		}
	}
	if len(line) == 0 {
		return "", "", true, noExec("script: no interpreter on the #! line")
	}
	i := 0
	for i < len(line) && !spacetab(line[i]) {
		i++
	}
	interp = string(line[:i])
	for i < len(line) && spacetab(line[i]) {
		i++
	}
	arg = string(line[i:])
	return interp, arg, true, nil
}
