package main

import (
	"fmt"
	"io"
)

// unpackImage unpacks an OCI image into a temporary root filesystem.
func unpackImage(ref string, progress io.Writer) (string, func(), error) {
	return "", nil, fmt.Errorf("--image %s: unpacking OCI images is not built yet; use --rootfs", ref)
}
