package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const cgroupRoot = "/sys/fs/cgroup"

// RemoveAllPods stops and removes every pod sandbox (and so its
// containers) through CRI.
func (e *Env) RemoveAllPods(ctx context.Context) error {
	resp, err := e.CRI.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("list pods for teardown: %w", err)
	}
	var errs []error
	for _, p := range resp.GetItems() {
		if _, err := e.CRI.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			errs = append(errs, fmt.Errorf("stop pod %s: %w", p.Id, err))
		}
		if _, err := e.CRI.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			errs = append(errs, fmt.Errorf("remove pod %s: %w", p.Id, err))
		}
	}
	return errors.Join(errs...)
}

// paths of the harness with this id.
func harnessPaths(id string) (root, state, bridge, cgroup string) {
	return filepath.Join(RootBase, id), filepath.Join(StateBase, id), "me2e-" + id, "moat-e2e-" + id
}

// teardown removes what the harness with this id left on the machine, in
// order: processes, mounts, cgroups, the bridge, the folders. It then
// checks that nothing is left.
func teardown(id, ipBin string) error {
	root, state, bridge, _ := harnessPaths(id)
	var errs []error
	// Processes: kill, then wait for them to be gone (a dead process keeps
	// its mounts and cgroup until reaped).
	for try := 0; try < 50; try++ {
		pids := harnessProcs(id)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for try := 0; try < 5; try++ {
		mps := harnessMounts(id)
		if len(mps) == 0 {
			break
		}
		for _, mp := range mps {
			if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && try == 4 {
				errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
			}
		}
	}
	for try := 0; try < 20; try++ {
		left := false
		for _, cg := range harnessCgroups(id) {
			if err := removeCgroupTree(cg); err != nil {
				left = true
				if try == 19 {
					errs = append(errs, err)
				}
			}
		}
		if !left {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", bridge)); err == nil {
		if err := runIP(ipBin, "link", "del", bridge); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range []string{root, state} {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", d, err))
		}
	}
	for _, p := range cniCacheEntries(id) {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove CNI cache entry %s: %w", p, err))
		}
	}
	if left := Leftovers(id); len(left) > 0 {
		errs = append(errs, fmt.Errorf("harness %s left: %s", id, strings.Join(left, "; ")))
	}
	// The base folders go too when no other harness uses them.
	_ = os.Remove(RootBase)
	_ = os.Remove(StateBase)
	return errors.Join(errs...)
}

// Teardown removes what the harness with this id left on the machine
// (processes, mounts, cgroups, the bridge, folders), for a harness whose
// owner died or lives in another process; it returns what could not be
// removed.
func Teardown(id string) error {
	if !isHexID(id) {
		return fmt.Errorf("harness id %q: not a harness id", id)
	}
	return teardown(id, "")
}

// Leftovers lists what of the harness with this id is still on the
// machine: processes, mounts, cgroups, the bridge, folders.
func Leftovers(id string) []string {
	root, state, bridge, _ := harnessPaths(id)
	var left []string
	for _, pid := range harnessProcs(id) {
		left = append(left, fmt.Sprintf("process %d (%s)", pid, procCmdline(pid)))
	}
	for _, mp := range harnessMounts(id) {
		left = append(left, "mount "+mp)
	}
	for _, cg := range harnessCgroups(id) {
		left = append(left, "cgroup "+cg)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", bridge)); err == nil {
		left = append(left, "link "+bridge)
	}
	for _, d := range []string{root, state} {
		if _, err := os.Stat(d); err == nil {
			left = append(left, "folder "+d)
		}
	}
	for _, p := range cniCacheEntries(id) {
		left = append(left, "CNI cache entry "+p)
	}
	return left
}

// cniCacheDir is where libcni (in containerd's CRI) caches each
// attachment's result; a pod whose network teardown did not run leaves
// its entries there.
const cniCacheDir = "/var/lib/cni/results"

// cniCacheEntries lists the cached CNI results of the harness's pods:
// those whose result names a network namespace under its state folder
// (loopback and bridge alike).
func cniCacheEntries(id string) []string {
	_, state, _, _ := harnessPaths(id)
	ents, err := os.ReadDir(cniCacheDir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		p := filepath.Join(cniCacheDir, e.Name())
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), `"`+state+"/") {
			out = append(out, p)
		}
	}
	return out
}

// harnessProcs finds the processes that belong to the harness: those whose
// command line names one of its folders (containerd, shims) and those in
// its cgroups (containers).
func harnessProcs(id string) []int {
	root, state, _, _ := harnessPaths(id)
	self := os.Getpid()
	seen := map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == self {
			continue
		}
		cl := procCmdline(pid)
		if strings.Contains(cl, root+"/") || strings.Contains(cl, state+"/") ||
			strings.HasSuffix(cl, root) || strings.HasSuffix(cl, state) {
			seen[pid] = true
		}
	}
	for _, cg := range harnessCgroups(id) {
		_ = filepath.WalkDir(cg, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid != self {
					seen[pid] = true
				}
			}
			return nil
		})
	}
	pids := make([]int, 0, len(seen))
	for pid := range seen {
		// Skip zombies and processes already gone.
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if i := strings.LastIndexByte(string(st), ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue
			}
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

func procCmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// harnessMounts lists mount points under the harness's folders, deepest
// first.
func harnessMounts(id string) []string {
	root, state, _, _ := harnessPaths(id)
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		for _, d := range []string{root, state} {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				mps = append(mps, mp)
				break
			}
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	return mps
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// harnessCgroups lists the harness's cgroup folder in every mounted
// hierarchy (cgroup v1 has one per controller; v2 has one).
func harnessCgroups(id string) []string {
	_, _, _, name := harnessPaths(id)
	var out []string
	if _, err := os.Stat(filepath.Join(cgroupRoot, name)); err == nil {
		out = append(out, filepath.Join(cgroupRoot, name))
	}
	ents, _ := os.ReadDir(cgroupRoot)
	for _, d := range ents {
		p := filepath.Join(cgroupRoot, d.Name(), name)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// removeCgroupTree removes a cgroup folder and its children, deepest
// first (cgroup folders are removed with rmdir, never with unlink).
func removeCgroupTree(top string) error {
	var dirs []string
	_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		// A cgroup is busy while its last processes are still exiting
		// (the kubelet retries too): wait a little for them.
		var err error
		for try := 0; try < 50; try++ {
			err = syscall.Rmdir(d)
			if !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("remove cgroup %s: %w", d, err)
		}
	}
	return nil
}

// CleanStale tears down what earlier harnesses left behind when their
// test process died without Close: an id whose owner process is gone.
func CleanStale(logf func(string, ...any)) {
	ids := map[string]bool{}
	for _, base := range []string{StateBase, RootBase} {
		ents, _ := os.ReadDir(base)
		for _, d := range ents {
			ids[d.Name()] = true
		}
	}
	// CNI cache entries of harnesses whose folders are gone already.
	ents, _ := os.ReadDir(cniCacheDir)
	for _, e := range ents {
		p := filepath.Join(cniCacheDir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		_, rest, ok := strings.Cut(string(b), `"`+StateBase+"/")
		if id, _, _ := strings.Cut(rest, "/"); ok && isHexID(id) && !ids[id] {
			if _, err := os.Stat(filepath.Join(StateBase, id)); errors.Is(err, os.ErrNotExist) {
				logf("removing the CNI cache entry %s of gone harness %s", p, id)
				_ = os.Remove(p)
			}
		}
	}
	for id := range ids {
		if !isHexID(id) || !stale(id) {
			continue
		}
		logf("cleaning stale e2e harness %s", id)
		if err := teardown(id, ""); err != nil {
			logf("clean stale harness %s: %v", id, err)
		}
	}
}

func isHexID(s string) bool {
	if len(s) != 6 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// stale reports whether the harness id's owner is gone: its owner.pid names
// a dead process, or its state folder is gone and its root folder has not
// changed for ten minutes.
func stale(id string) bool {
	root, state, _, _ := harnessPaths(id)
	b, err := os.ReadFile(filepath.Join(state, "owner.pid"))
	if err == nil {
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			return true
		}
		return syscall.Kill(pid, 0) == syscall.ESRCH
	}
	if _, err := os.Stat(state); err == nil {
		return false // being created right now
	}
	fi, err := os.Stat(root)
	return err == nil && time.Since(fi.ModTime()) > 10*time.Minute
}
