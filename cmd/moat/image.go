package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"moat.dev/moat/cri/ociimage"
)

// unpackImage unpacks an OCI image into a temporary root filesystem,
// with a progress line on a terminal.
func unpackImage(ref string, progress io.Writer) (*ociimage.Image, func(), error) {
	img, closeImg, err := ociimage.Open(ref)
	if err != nil {
		return nil, nil, err
	}
	defer closeImg()
	dir, err := os.MkdirTemp("", "moat-rootfs-")
	if err != nil {
		return nil, nil, fmt.Errorf("temporary root filesystem: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	var p ociimage.Progress
	if f, ok := progress.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p = func(format string, args ...any) { fmt.Fprintf(progress, "\r\033[K"+format, args...) }
	}
	out, err := ociimage.Unpack(img, dir, p)
	if p != nil {
		fmt.Fprint(progress, "\r\033[K")
	}
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("unpack %s: %w", ref, err)
	}
	return out, cleanup, nil
}
