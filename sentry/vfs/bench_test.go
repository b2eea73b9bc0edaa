package vfs_test

import (
	"testing"

	"moat.dev/moat/sentry/vfs"
)

// BenchmarkStatDepth5 measures a stat of /a/b/c/d/f on tmpfs.
func BenchmarkStatDepth5(b *testing.B) {
	e := newEnv(&testing.T{})
	for _, d := range []string{"/a", "/a/b", "/a/b/c", "/a/b/c/d"} {
		e.v.Mkdir(e.ctx, e.cred, e.pop(d), 0o755)
	}
	e.writeFile("/a/b/c/d/f", "x", 0o644)
	pop := e.pop("/a/b/c/d/f")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.v.Stat(e.ctx, e.cred, pop); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenReadClose measures open, a 4 KiB read and close on tmpfs.
func BenchmarkOpenReadClose(b *testing.B) {
	e := newEnv(&testing.T{})
	e.writeFile("/f", string(make([]byte, 4096)), 0o644)
	buf := make([]byte, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := e.v.Open(e.ctx, e.cred, e.pop("/f"), vfs.OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		f.Read(e.ctx, buf)
		f.DecRef(e.ctx)
	}
}
