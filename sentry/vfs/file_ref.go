package vfs

// TryIncRef takes a reference unless the file is already released. A
// holder of an uncounted pointer to a file (an epoll interest, which must
// not keep the file open) uses it before touching the file.
func (f *File) TryIncRef() bool {
	for {
		n := f.refs.Load()
		if n <= 0 {
			return false
		}
		if f.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}
