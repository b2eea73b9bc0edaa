package abi

import "testing"

func BenchmarkStatMarshal(b *testing.B) {
	s := Stat{Dev: 1, Ino: 2, Nlink: 1, Mode: S_IFREG | 0o644, Size: 100, Blksize: 4096}
	buf := make([]byte, StatSize)
	for b.Loop() {
		s.Marshal(buf)
	}
}

func BenchmarkSyscallName(b *testing.B) {
	for b.Loop() {
		_ = SyscallName(SYS_EPOLL_PWAIT2)
	}
}
