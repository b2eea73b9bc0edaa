// Package abi holds the x86-64 Linux ABI as data: system call numbers, error
// numbers, signals, flags, ioctl numbers, auxiliary vector keys, and the
// binary layout of the structures that cross the user/kernel boundary, with
// little-endian encoders and decoders that work on byte slices.
//
// It holds no behaviour. The code that implements a system call lives
// elsewhere in the sentry and uses this package for the numbers and layouts.
//
// Every layout type has a Size constant, a Marshal method that writes it into
// a byte slice and an Unmarshal method that reads it from one. Both require a
// slice at least Size bytes long and panic otherwise (a short buffer is a bug
// in the sentry, never an input from the guest: the sentry sizes the buffer
// before it copies guest memory into it). Padding bytes are written as zero.
//
// The tests prove every size, offset and constant against the real C headers
// by compiling and running small C programs with gcc.
package abi
