package abi

// Address families (include/linux/socket.h).
const (
	AF_UNSPEC  = 0
	AF_UNIX    = 1
	AF_LOCAL   = AF_UNIX
	AF_INET    = 2
	AF_INET6   = 10
	AF_NETLINK = 16
	AF_PACKET  = 17
	AF_VSOCK   = 40
)

// Socket types, and the flags socket(2), socketpair(2) and accept4(2) take
// with them.
const (
	SOCK_STREAM    = 1
	SOCK_DGRAM     = 2
	SOCK_RAW       = 3
	SOCK_RDM       = 4
	SOCK_SEQPACKET = 5
	SOCK_PACKET    = 10
	SOCK_NONBLOCK  = O_NONBLOCK
	SOCK_CLOEXEC   = O_CLOEXEC
	// SOCK_TYPE_MASK selects the type from socket(2)'s type argument.
	SOCK_TYPE_MASK = 0xf
)

// Socket option levels.
const (
	SOL_IP     = 0
	SOL_SOCKET = 1
	SOL_TCP    = 6
	SOL_UDP    = 17
	SOL_IPV6   = 41
)

// SOL_SOCKET options of x86-64 (include/uapi/asm-generic/socket.h).
const (
	SO_DEBUG         = 1
	SO_REUSEADDR     = 2
	SO_TYPE          = 3
	SO_ERROR         = 4
	SO_DONTROUTE     = 5
	SO_BROADCAST     = 6
	SO_SNDBUF        = 7
	SO_RCVBUF        = 8
	SO_KEEPALIVE     = 9
	SO_OOBINLINE     = 10
	SO_NO_CHECK      = 11
	SO_PRIORITY      = 12
	SO_LINGER        = 13
	SO_BSDCOMPAT     = 14
	SO_REUSEPORT     = 15
	SO_PASSCRED      = 16
	SO_PEERCRED      = 17
	SO_RCVLOWAT      = 18
	SO_SNDLOWAT      = 19
	SO_RCVTIMEO      = 20
	SO_SNDTIMEO      = 21
	SO_BINDTODEVICE  = 25
	SO_ATTACH_FILTER = 26
	SO_DETACH_FILTER = 27
	SO_PEERNAME      = 28
	SO_TIMESTAMP     = 29
	SO_ACCEPTCONN    = 30
	SO_PEERSEC       = 31
	SO_SNDBUFFORCE   = 32
	SO_RCVBUFFORCE   = 33
	SO_PASSSEC       = 34
	SO_TIMESTAMPNS   = 35
	SO_MARK          = 36
	SO_PROTOCOL      = 38
	SO_DOMAIN        = 39
	SO_RXQ_OVFL      = 40
	SO_PEEK_OFF      = 42
	SO_BUSY_POLL     = 46
	SO_INCOMING_CPU  = 49
	SO_COOKIE        = 57
	SO_PEERGROUPS    = 59
	SO_ZEROCOPY      = 60
)

// send/recv flags.
const (
	MSG_OOB          = 0x1
	MSG_PEEK         = 0x2
	MSG_DONTROUTE    = 0x4
	MSG_CTRUNC       = 0x8
	MSG_PROXY        = 0x10
	MSG_TRUNC        = 0x20
	MSG_DONTWAIT     = 0x40
	MSG_EOR          = 0x80
	MSG_WAITALL      = 0x100
	MSG_FIN          = 0x200
	MSG_SYN          = 0x400
	MSG_CONFIRM      = 0x800
	MSG_RST          = 0x1000
	MSG_ERRQUEUE     = 0x2000
	MSG_NOSIGNAL     = 0x4000
	MSG_MORE         = 0x8000
	MSG_WAITFORONE   = 0x10000
	MSG_BATCH        = 0x40000
	MSG_ZEROCOPY     = 0x4000000
	MSG_FASTOPEN     = 0x20000000
	MSG_CMSG_CLOEXEC = 0x40000000
)

// shutdown(2) how.
const (
	SHUT_RD   = 0
	SHUT_WR   = 1
	SHUT_RDWR = 2
)

// Control message types at SOL_SOCKET.
const (
	SCM_RIGHTS      = 1
	SCM_CREDENTIALS = 2
	// SCM_MAX_FD is how many descriptors one SCM_RIGHTS message may carry
	// (include/net/scm.h).
	SCM_MAX_FD = 253
)

// SOMAXCONN is the largest listen(2) backlog (net.core.somaxconn's default).
const SOMAXCONN = 4096

// UNIX_PATH_MAX is the size of sockaddr_un's sun_path.
const UNIX_PATH_MAX = 108

// IP protocols (include/uapi/linux/in.h, in6.h).
const (
	IPPROTO_IP     = 0
	IPPROTO_ICMP   = 1
	IPPROTO_TCP    = 6
	IPPROTO_UDP    = 17
	IPPROTO_IPV6   = 41
	IPPROTO_ICMPV6 = 58
	IPPROTO_RAW    = 255
)

// IPPROTO_IP options.
const (
	IP_TOS             = 1
	IP_TTL             = 2
	IP_HDRINCL         = 3
	IP_OPTIONS         = 4
	IP_PKTINFO         = 8
	IP_MTU_DISCOVER    = 10
	IP_RECVERR         = 11
	IP_RECVTTL         = 12
	IP_RECVTOS         = 13
	IP_MTU             = 14
	IP_MULTICAST_IF    = 32
	IP_MULTICAST_TTL   = 33
	IP_MULTICAST_LOOP  = 34
	IP_ADD_MEMBERSHIP  = 35
	IP_DROP_MEMBERSHIP = 36
)

// IPPROTO_IPV6 options.
const (
	IPV6_UNICAST_HOPS   = 16
	IPV6_MULTICAST_IF   = 17
	IPV6_MULTICAST_HOPS = 18
	IPV6_MULTICAST_LOOP = 19
	IPV6_V6ONLY         = 26
	IPV6_RECVPKTINFO    = 49
	IPV6_PKTINFO        = 50
	IPV6_TCLASS         = 67
)

// IPPROTO_TCP options (include/uapi/linux/tcp.h).
const (
	TCP_NODELAY      = 1
	TCP_MAXSEG       = 2
	TCP_CORK         = 3
	TCP_KEEPIDLE     = 4
	TCP_KEEPINTVL    = 5
	TCP_KEEPCNT      = 6
	TCP_SYNCNT       = 7
	TCP_LINGER2      = 8
	TCP_DEFER_ACCEPT = 9
	TCP_WINDOW_CLAMP = 10
	TCP_INFO         = 11
	TCP_QUICKACK     = 12
	TCP_CONGESTION   = 13
	TCP_USER_TIMEOUT = 18
	TCP_FASTOPEN     = 23
)
