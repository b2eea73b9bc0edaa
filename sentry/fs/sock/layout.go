package sock

// Socket address sizes beyond those of sentry/abi (which holds the
// layouts of the socket calls: Msghdr, Cmsghdr, Ucred, Linger, the
// sockaddrs).
const (
	// SockaddrFamilySize is the size of sa_family_t, which every socket
	// address starts with.
	SockaddrFamilySize = 2
	// SockaddrInet6MinSize is the shortest sockaddr_in6 Linux takes: the
	// older form without sin6_scope_id (SIN6_LEN_RFC2133).
	SockaddrInet6MinSize = 24
	// SockaddrStorageSize is the size of struct sockaddr_storage, the
	// largest address any call takes.
	SockaddrStorageSize = 128
)
