package syscalls

// The names /proc/[pid]/fd shows for anonymous files, as Linux's
// anon_inode:[...] (procfs.AnonNamer).

// AnonName names an epoll instance.
func (*epoll) AnonName() string { return "eventpoll" }

// AnonName names an eventfd.
func (*eventFD) AnonName() string { return "eventfd" }
