package vfs_test

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/auth"
	"moat.dev/moat/sentry/fs/tmpfs"
	"moat.dev/moat/sentry/vfs"
)

// A task's view: a root, a cwd, credentials; paths resolved from them.
func ExampleVirtualFilesystem_Open() {
	ctx := context.Background()
	v, err := vfs.New(ctx, tmpfs.New(tmpfs.Options{}), vfs.MountOptions{})
	if err != nil {
		panic(err)
	}
	root := v.Root() // the task keeps this (and its cwd) referenced
	defer root.DecRef(ctx)
	creds := auth.Root()
	at := func(path string) vfs.PathOperation {
		return vfs.PathOperation{Root: root, Start: root, Path: path, FollowFinal: true}
	}
	if err := v.Mkdir(ctx, creds, at("/etc"), 0o755); err != nil {
		panic(err)
	}
	f, err := v.Open(ctx, creds, at("/etc/hostname"), vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_CREAT, Mode: 0o644})
	if err != nil {
		panic(err)
	}
	defer f.DecRef(ctx)
	f.Write(ctx, []byte("moat\n"))
	buf := make([]byte, 16)
	n, _ := f.Pread(ctx, buf, 0)
	fmt.Printf("%q\n", buf[:n])

	_, err = v.Open(ctx, auth.User(1000, 1000), at("/etc/hostname"), vfs.OpenOptions{Flags: unix.O_WRONLY})
	fmt.Println(err == unix.EACCES)
	// Output:
	// "moat\n"
	// true
}
