package vfs_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/vfs"
)

// TestConcurrentRenamesAndWalks moves directories back and forth while
// other goroutines walk through them, open files in them, and remove and
// recreate siblings; run with -race. Afterwards the dentry cache holds
// only what is still pinned.
func TestConcurrentRenamesAndWalks(t *testing.T) {
	e := newEnv(t)
	e.mkdir("/a", 0o755)
	e.mkdir("/b", 0o755)
	e.mkdir("/a/x", 0o755)
	e.mkdir("/a/x/y", 0o755)
	e.writeFile("/a/x/y/f", "f", 0o644)
	e.mkdir("/mnt", 0o755)
	const rounds = 300
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < rounds; i++ {
			if err := e.v.Rename(e.ctx, e.cred, e.pop("/a/x"), e.pop("/b/x"), 0); err != nil {
				t.Errorf("rename a->b: %v", err)
				return
			}
			if err := e.v.Rename(e.ctx, e.cred, e.pop("/b/x"), e.pop("/a/x"), 0); err != nil {
				t.Errorf("rename b->a: %v", err)
				return
			}
		}
	}()
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				for _, p := range []string{"/a/x/y/f", "/b/x/y/../y/f"} {
					f, err := e.v.Open(e.ctx, e.cred, e.pop(p), vfs.OpenOptions{})
					if err == nil {
						vd := f.VirtualDentry()
						if path, ok := e.v.PathOf(e.root, vd); !ok || (path != "/a/x/y/f" && path != "/b/x/y/f") {
							t.Errorf("PathOf an open file = %q %v", path, ok)
						}
						vd.DecRef(e.ctx)
						f.DecRef(e.ctx)
					} else if !errors.Is(err, unix.ENOENT) {
						t.Errorf("open %s: %v", p, err)
					}
				}
				name := fmt.Sprintf("/mnt/d%d", g)
				if err := e.v.Mkdir(e.ctx, e.cred, e.pop(name), 0o755); err != nil {
					t.Errorf("mkdir: %v", err)
				}
				cwd, err := e.v.GetDirectoryAt(e.ctx, e.cred, e.pop(name))
				if err != nil {
					t.Errorf("chdir: %v", err)
					continue
				}
				if err := e.v.Rmdir(e.ctx, e.cred, e.pop(name)); err != nil {
					t.Errorf("rmdir: %v", err)
				}
				// ".." from a removed cwd still reaches the old parent.
				up := vfs.PathOperation{Root: e.root, Start: cwd, Path: "..", FollowFinal: true}
				if st, err := e.v.Stat(e.ctx, e.cred, up); err != nil || !st.IsDir() {
					t.Errorf("stat .. of removed cwd: %v", err)
				}
				cwd.DecRef(e.ctx)
			}
		}(g)
	}
	wg.Wait()
	e.v.DropCaches()
	if n := e.v.CachedDentries(); n != 0 {
		t.Fatalf("%d dentries still cached with nothing open", n)
	}
	f, err := e.v.Open(e.ctx, e.cred, e.pop("/a/x/y/f"), vfs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.v.DropCaches()
	if n := e.v.CachedDentries(); n != 4 { // a, x, y, f
		t.Fatalf("%d dentries cached with one file open, want 4", n)
	}
	f.DecRef(e.ctx)
	e.v.DropCaches()
	if n := e.v.CachedDentries(); n != 0 {
		t.Fatalf("%d dentries cached after close", n)
	}
}

func TestDentryCacheBound(t *testing.T) {
	e := newEnv(t)
	e.v.SetDentryCacheSize(8)
	e.mkdir("/d", 0o755)
	for i := 0; i < 50; i++ {
		e.writeFile(fmt.Sprintf("/d/f%d", i), "x", 0o644)
		e.stat(fmt.Sprintf("/d/f%d", i))
	}
	// 8 unused ones plus /d, which their references pin.
	if n := e.v.CachedDentries(); n > 9 {
		t.Fatalf("%d dentries cached, limit 8 + /d", n)
	}
	// Cached names stay correct through renames and unlinks.
	if err := e.v.Rename(e.ctx, e.cred, e.pop("/d/f49"), e.pop("/d/g"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.Stat(e.ctx, e.cred, e.pop("/d/f49")); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("old name after rename: %v", err)
	}
	if err := e.v.Unlink(e.ctx, e.cred, e.pop("/d/g")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.v.Stat(e.ctx, e.cred, e.pop("/d/g")); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("name after unlink: %v", err)
	}
	e.v.SetDentryCacheSize(0)
	if n := e.v.CachedDentries(); n != 0 {
		t.Fatalf("%d dentries cached with caching off", n)
	}
}
