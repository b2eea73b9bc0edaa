package control

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// maxFDs is the most descriptors one message may carry (a container's
// root and its volumes, or a process's stdio).
const maxFDs = 64

// SendFDs sends fds with token over c (a seqpacket unix socket).
func SendFDs(c *net.UnixConn, token uint64, fds []int) error {
	if len(fds) > maxFDs {
		return fmt.Errorf("send fds: %d descriptors, at most %d", len(fds), maxFDs)
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], token)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, oobn, err := c.WriteMsgUnix(b[:], oob, nil)
	if err != nil {
		return fmt.Errorf("send fds (token %d): %w", token, err)
	}
	if n != len(b) || oobn != len(oob) {
		return fmt.Errorf("send fds (token %d): short write", token)
	}
	return nil
}

// fdInbox receives descriptor messages and hands them out by token.
type fdInbox struct {
	mu      sync.Mutex
	got     map[uint64][]int
	arrived chan struct{} // closed and replaced on every arrival
	closed  error
}

func newFDInbox() *fdInbox {
	return &fdInbox{got: map[uint64][]int{}, arrived: make(chan struct{})}
}

// run reads messages from c until it fails.
func (in *fdInbox) run(c *net.UnixConn) {
	buf := make([]byte, 8)
	oob := make([]byte, unix.CmsgSpace(maxFDs*4))
	for {
		n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			in.fail(fmt.Errorf("descriptor socket: %w", err))
			return
		}
		var fds []int
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				in.fail(fmt.Errorf("descriptor socket: %w", err))
				return
			}
			for _, m := range msgs {
				r, err := unix.ParseUnixRights(&m)
				if err != nil {
					continue
				}
				fds = append(fds, r...)
			}
		}
		if n != 8 || flags&unix.MSG_CTRUNC != 0 || len(fds) > maxFDs {
			// A malformed message: drop what it carried.
			closeAll(fds)
			continue
		}
		token := binary.LittleEndian.Uint64(buf)
		in.mu.Lock()
		if old, ok := in.got[token]; ok {
			closeAll(old)
		}
		in.got[token] = fds
		close(in.arrived)
		in.arrived = make(chan struct{})
		in.mu.Unlock()
	}
}

func (in *fdInbox) fail(err error) {
	in.mu.Lock()
	in.closed = err
	close(in.arrived)
	in.arrived = make(chan struct{})
	in.mu.Unlock()
}

// take returns the descriptors of token, waiting up to timeout for them.
func (in *fdInbox) take(token uint64, timeout time.Duration) ([]int, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		in.mu.Lock()
		fds, ok := in.got[token]
		delete(in.got, token)
		closed, arrived := in.closed, in.arrived
		in.mu.Unlock()
		if ok {
			return fds, nil
		}
		if closed != nil {
			return nil, closed
		}
		select {
		case <-arrived:
		case <-deadline.C:
			return nil, fmt.Errorf("descriptors with token %d did not arrive in %v", token, timeout)
		}
	}
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// SocketPair returns two connected sockets of type typ (unix.SOCK_STREAM or
// unix.SOCK_SEQPACKET) as files, close-on-exec.
func SocketPair(typ int) (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "control"), os.NewFile(uintptr(fds[1]), "control"), nil
}

// unixConn turns a socket file into a *net.UnixConn (the file is closed).
func unixConn(f *os.File) (*net.UnixConn, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("not a unix socket")
	}
	return uc, nil
}
