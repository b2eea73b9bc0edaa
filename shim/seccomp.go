package shim

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"moat.dev/moat/sentry/seccomp"
)

// seccompProfile turns the OCI spec's linux.seccomp into the profile the
// sentry enforces on every process of the container (its init and its
// execs), and compiles it once so that a profile the sentry cannot
// enforce fails the container's creation, as with runc. nil: no profile
// (Unconfined, or a privileged container).
func seccompProfile(l *specs.Linux) (*seccomp.Profile, error) {
	if l == nil || l.Seccomp == nil {
		return nil, nil
	}
	s := l.Seccomp
	if s.ListenerPath != "" {
		return nil, fmt.Errorf("seccomp listenerPath %q: user notification is not offered by the sandbox", s.ListenerPath)
	}
	p := &seccomp.Profile{DefaultAction: string(s.DefaultAction), DefaultErrnoRet: errnoRet(s.DefaultErrnoRet)}
	for _, a := range s.Architectures {
		p.Architectures = append(p.Architectures, string(a))
	}
	for _, f := range s.Flags {
		p.Flags = append(p.Flags, string(f))
	}
	for _, sc := range s.Syscalls {
		r := seccomp.Rule{Names: sc.Names, Action: string(sc.Action), ErrnoRet: errnoRet(sc.ErrnoRet)}
		for _, a := range sc.Args {
			if a.Index > 5 {
				return nil, fmt.Errorf("seccomp rule %v: argument index %d (0 to 5 allowed)", sc.Names, a.Index)
			}
			r.Args = append(r.Args, seccomp.Arg{Index: uint32(a.Index), Value: a.Value, ValueTwo: a.ValueTwo, Op: string(a.Op)})
		}
		p.Syscalls = append(p.Syscalls, r)
	}
	if _, err := seccomp.Compile(p); err != nil {
		return nil, err
	}
	return p, nil
}

func errnoRet(v *uint) *uint32 {
	if v == nil {
		return nil
	}
	// Compile refuses values beyond 16 bits; keep larger ones large.
	e := uint32(min(*v, 1<<32-1))
	return &e
}
