package abi

import "golang.org/x/sys/unix"

// Error numbers of the x86-64 Linux ABI. The values are those of
// golang.org/x/sys/unix, which are the kernel's (include/uapi/asm-generic/errno*.h).
const (
	EPERM           = Errno(unix.EPERM)
	ENOENT          = Errno(unix.ENOENT)
	ESRCH           = Errno(unix.ESRCH)
	EINTR           = Errno(unix.EINTR)
	EIO             = Errno(unix.EIO)
	ENXIO           = Errno(unix.ENXIO)
	E2BIG           = Errno(unix.E2BIG)
	ENOEXEC         = Errno(unix.ENOEXEC)
	EBADF           = Errno(unix.EBADF)
	ECHILD          = Errno(unix.ECHILD)
	EAGAIN          = Errno(unix.EAGAIN)
	ENOMEM          = Errno(unix.ENOMEM)
	EACCES          = Errno(unix.EACCES)
	EFAULT          = Errno(unix.EFAULT)
	ENOTBLK         = Errno(unix.ENOTBLK)
	EBUSY           = Errno(unix.EBUSY)
	EEXIST          = Errno(unix.EEXIST)
	EXDEV           = Errno(unix.EXDEV)
	ENODEV          = Errno(unix.ENODEV)
	ENOTDIR         = Errno(unix.ENOTDIR)
	EISDIR          = Errno(unix.EISDIR)
	EINVAL          = Errno(unix.EINVAL)
	ENFILE          = Errno(unix.ENFILE)
	EMFILE          = Errno(unix.EMFILE)
	ENOTTY          = Errno(unix.ENOTTY)
	ETXTBSY         = Errno(unix.ETXTBSY)
	EFBIG           = Errno(unix.EFBIG)
	ENOSPC          = Errno(unix.ENOSPC)
	ESPIPE          = Errno(unix.ESPIPE)
	EROFS           = Errno(unix.EROFS)
	EMLINK          = Errno(unix.EMLINK)
	EPIPE           = Errno(unix.EPIPE)
	EDOM            = Errno(unix.EDOM)
	ERANGE          = Errno(unix.ERANGE)
	EDEADLK         = Errno(unix.EDEADLK)
	ENAMETOOLONG    = Errno(unix.ENAMETOOLONG)
	ENOLCK          = Errno(unix.ENOLCK)
	ENOSYS          = Errno(unix.ENOSYS)
	ENOTEMPTY       = Errno(unix.ENOTEMPTY)
	ELOOP           = Errno(unix.ELOOP)
	ENOMSG          = Errno(unix.ENOMSG)
	EIDRM           = Errno(unix.EIDRM)
	ECHRNG          = Errno(unix.ECHRNG)
	EL2NSYNC        = Errno(unix.EL2NSYNC)
	EL3HLT          = Errno(unix.EL3HLT)
	EL3RST          = Errno(unix.EL3RST)
	ELNRNG          = Errno(unix.ELNRNG)
	EUNATCH         = Errno(unix.EUNATCH)
	ENOCSI          = Errno(unix.ENOCSI)
	EL2HLT          = Errno(unix.EL2HLT)
	EBADE           = Errno(unix.EBADE)
	EBADR           = Errno(unix.EBADR)
	EXFULL          = Errno(unix.EXFULL)
	ENOANO          = Errno(unix.ENOANO)
	EBADRQC         = Errno(unix.EBADRQC)
	EBADSLT         = Errno(unix.EBADSLT)
	EBFONT          = Errno(unix.EBFONT)
	ENOSTR          = Errno(unix.ENOSTR)
	ENODATA         = Errno(unix.ENODATA)
	ETIME           = Errno(unix.ETIME)
	ENOSR           = Errno(unix.ENOSR)
	ENONET          = Errno(unix.ENONET)
	ENOPKG          = Errno(unix.ENOPKG)
	EREMOTE         = Errno(unix.EREMOTE)
	ENOLINK         = Errno(unix.ENOLINK)
	EADV            = Errno(unix.EADV)
	ESRMNT          = Errno(unix.ESRMNT)
	ECOMM           = Errno(unix.ECOMM)
	EPROTO          = Errno(unix.EPROTO)
	EMULTIHOP       = Errno(unix.EMULTIHOP)
	EDOTDOT         = Errno(unix.EDOTDOT)
	EBADMSG         = Errno(unix.EBADMSG)
	EOVERFLOW       = Errno(unix.EOVERFLOW)
	ENOTUNIQ        = Errno(unix.ENOTUNIQ)
	EBADFD          = Errno(unix.EBADFD)
	EREMCHG         = Errno(unix.EREMCHG)
	ELIBACC         = Errno(unix.ELIBACC)
	ELIBBAD         = Errno(unix.ELIBBAD)
	ELIBSCN         = Errno(unix.ELIBSCN)
	ELIBMAX         = Errno(unix.ELIBMAX)
	ELIBEXEC        = Errno(unix.ELIBEXEC)
	EILSEQ          = Errno(unix.EILSEQ)
	ERESTART        = Errno(unix.ERESTART)
	ESTRPIPE        = Errno(unix.ESTRPIPE)
	EUSERS          = Errno(unix.EUSERS)
	ENOTSOCK        = Errno(unix.ENOTSOCK)
	EDESTADDRREQ    = Errno(unix.EDESTADDRREQ)
	EMSGSIZE        = Errno(unix.EMSGSIZE)
	EPROTOTYPE      = Errno(unix.EPROTOTYPE)
	ENOPROTOOPT     = Errno(unix.ENOPROTOOPT)
	EPROTONOSUPPORT = Errno(unix.EPROTONOSUPPORT)
	ESOCKTNOSUPPORT = Errno(unix.ESOCKTNOSUPPORT)
	EOPNOTSUPP      = Errno(unix.EOPNOTSUPP)
	EPFNOSUPPORT    = Errno(unix.EPFNOSUPPORT)
	EAFNOSUPPORT    = Errno(unix.EAFNOSUPPORT)
	EADDRINUSE      = Errno(unix.EADDRINUSE)
	EADDRNOTAVAIL   = Errno(unix.EADDRNOTAVAIL)
	ENETDOWN        = Errno(unix.ENETDOWN)
	ENETUNREACH     = Errno(unix.ENETUNREACH)
	ENETRESET       = Errno(unix.ENETRESET)
	ECONNABORTED    = Errno(unix.ECONNABORTED)
	ECONNRESET      = Errno(unix.ECONNRESET)
	ENOBUFS         = Errno(unix.ENOBUFS)
	EISCONN         = Errno(unix.EISCONN)
	ENOTCONN        = Errno(unix.ENOTCONN)
	ESHUTDOWN       = Errno(unix.ESHUTDOWN)
	ETOOMANYREFS    = Errno(unix.ETOOMANYREFS)
	ETIMEDOUT       = Errno(unix.ETIMEDOUT)
	ECONNREFUSED    = Errno(unix.ECONNREFUSED)
	EHOSTDOWN       = Errno(unix.EHOSTDOWN)
	EHOSTUNREACH    = Errno(unix.EHOSTUNREACH)
	EALREADY        = Errno(unix.EALREADY)
	EINPROGRESS     = Errno(unix.EINPROGRESS)
	ESTALE          = Errno(unix.ESTALE)
	EUCLEAN         = Errno(unix.EUCLEAN)
	ENOTNAM         = Errno(unix.ENOTNAM)
	ENAVAIL         = Errno(unix.ENAVAIL)
	EISNAM          = Errno(unix.EISNAM)
	EREMOTEIO       = Errno(unix.EREMOTEIO)
	EDQUOT          = Errno(unix.EDQUOT)
	ENOMEDIUM       = Errno(unix.ENOMEDIUM)
	EMEDIUMTYPE     = Errno(unix.EMEDIUMTYPE)
	ECANCELED       = Errno(unix.ECANCELED)
	ENOKEY          = Errno(unix.ENOKEY)
	EKEYEXPIRED     = Errno(unix.EKEYEXPIRED)
	EKEYREVOKED     = Errno(unix.EKEYREVOKED)
	EKEYREJECTED    = Errno(unix.EKEYREJECTED)
	EOWNERDEAD      = Errno(unix.EOWNERDEAD)
	ENOTRECOVERABLE = Errno(unix.ENOTRECOVERABLE)
	ERFKILL         = Errno(unix.ERFKILL)
	EHWPOISON       = Errno(unix.EHWPOISON)
	EFTYPE          = Errno(unix.EFTYPE)

	// EDEADLOCK and EWOULDBLOCK are the kernel's other names of EDEADLK and EAGAIN.
	EDEADLOCK   = EDEADLK
	EWOULDBLOCK = EAGAIN
	// ENOTSUP is the name userspace gives to EOPNOTSUPP.
	ENOTSUP = EOPNOTSUPP
)

// errnoNames holds the name of each error number; for numbers with two names
// it holds the one the kernel's headers define first.
var errnoNames = map[Errno]string{
	EPERM:           "EPERM",
	ENOENT:          "ENOENT",
	ESRCH:           "ESRCH",
	EINTR:           "EINTR",
	EIO:             "EIO",
	ENXIO:           "ENXIO",
	E2BIG:           "E2BIG",
	ENOEXEC:         "ENOEXEC",
	EBADF:           "EBADF",
	ECHILD:          "ECHILD",
	EAGAIN:          "EAGAIN",
	ENOMEM:          "ENOMEM",
	EACCES:          "EACCES",
	EFAULT:          "EFAULT",
	ENOTBLK:         "ENOTBLK",
	EBUSY:           "EBUSY",
	EEXIST:          "EEXIST",
	EXDEV:           "EXDEV",
	ENODEV:          "ENODEV",
	ENOTDIR:         "ENOTDIR",
	EISDIR:          "EISDIR",
	EINVAL:          "EINVAL",
	ENFILE:          "ENFILE",
	EMFILE:          "EMFILE",
	ENOTTY:          "ENOTTY",
	ETXTBSY:         "ETXTBSY",
	EFBIG:           "EFBIG",
	ENOSPC:          "ENOSPC",
	ESPIPE:          "ESPIPE",
	EROFS:           "EROFS",
	EMLINK:          "EMLINK",
	EPIPE:           "EPIPE",
	EDOM:            "EDOM",
	ERANGE:          "ERANGE",
	EDEADLK:         "EDEADLK",
	ENAMETOOLONG:    "ENAMETOOLONG",
	ENOLCK:          "ENOLCK",
	ENOSYS:          "ENOSYS",
	ENOTEMPTY:       "ENOTEMPTY",
	ELOOP:           "ELOOP",
	ENOMSG:          "ENOMSG",
	EIDRM:           "EIDRM",
	ECHRNG:          "ECHRNG",
	EL2NSYNC:        "EL2NSYNC",
	EL3HLT:          "EL3HLT",
	EL3RST:          "EL3RST",
	ELNRNG:          "ELNRNG",
	EUNATCH:         "EUNATCH",
	ENOCSI:          "ENOCSI",
	EL2HLT:          "EL2HLT",
	EBADE:           "EBADE",
	EBADR:           "EBADR",
	EXFULL:          "EXFULL",
	ENOANO:          "ENOANO",
	EBADRQC:         "EBADRQC",
	EBADSLT:         "EBADSLT",
	EBFONT:          "EBFONT",
	ENOSTR:          "ENOSTR",
	ENODATA:         "ENODATA",
	ETIME:           "ETIME",
	ENOSR:           "ENOSR",
	ENONET:          "ENONET",
	ENOPKG:          "ENOPKG",
	EREMOTE:         "EREMOTE",
	ENOLINK:         "ENOLINK",
	EADV:            "EADV",
	ESRMNT:          "ESRMNT",
	ECOMM:           "ECOMM",
	EPROTO:          "EPROTO",
	EMULTIHOP:       "EMULTIHOP",
	EDOTDOT:         "EDOTDOT",
	EBADMSG:         "EBADMSG",
	EOVERFLOW:       "EOVERFLOW",
	ENOTUNIQ:        "ENOTUNIQ",
	EBADFD:          "EBADFD",
	EREMCHG:         "EREMCHG",
	ELIBACC:         "ELIBACC",
	ELIBBAD:         "ELIBBAD",
	ELIBSCN:         "ELIBSCN",
	ELIBMAX:         "ELIBMAX",
	ELIBEXEC:        "ELIBEXEC",
	EILSEQ:          "EILSEQ",
	ERESTART:        "ERESTART",
	ESTRPIPE:        "ESTRPIPE",
	EUSERS:          "EUSERS",
	ENOTSOCK:        "ENOTSOCK",
	EDESTADDRREQ:    "EDESTADDRREQ",
	EMSGSIZE:        "EMSGSIZE",
	EPROTOTYPE:      "EPROTOTYPE",
	ENOPROTOOPT:     "ENOPROTOOPT",
	EPROTONOSUPPORT: "EPROTONOSUPPORT",
	ESOCKTNOSUPPORT: "ESOCKTNOSUPPORT",
	EOPNOTSUPP:      "EOPNOTSUPP",
	EPFNOSUPPORT:    "EPFNOSUPPORT",
	EAFNOSUPPORT:    "EAFNOSUPPORT",
	EADDRINUSE:      "EADDRINUSE",
	EADDRNOTAVAIL:   "EADDRNOTAVAIL",
	ENETDOWN:        "ENETDOWN",
	ENETUNREACH:     "ENETUNREACH",
	ENETRESET:       "ENETRESET",
	ECONNABORTED:    "ECONNABORTED",
	ECONNRESET:      "ECONNRESET",
	ENOBUFS:         "ENOBUFS",
	EISCONN:         "EISCONN",
	ENOTCONN:        "ENOTCONN",
	ESHUTDOWN:       "ESHUTDOWN",
	ETOOMANYREFS:    "ETOOMANYREFS",
	ETIMEDOUT:       "ETIMEDOUT",
	ECONNREFUSED:    "ECONNREFUSED",
	EHOSTDOWN:       "EHOSTDOWN",
	EHOSTUNREACH:    "EHOSTUNREACH",
	EALREADY:        "EALREADY",
	EINPROGRESS:     "EINPROGRESS",
	ESTALE:          "ESTALE",
	EUCLEAN:         "EUCLEAN",
	ENOTNAM:         "ENOTNAM",
	ENAVAIL:         "ENAVAIL",
	EISNAM:          "EISNAM",
	EREMOTEIO:       "EREMOTEIO",
	EDQUOT:          "EDQUOT",
	ENOMEDIUM:       "ENOMEDIUM",
	EMEDIUMTYPE:     "EMEDIUMTYPE",
	ECANCELED:       "ECANCELED",
	ENOKEY:          "ENOKEY",
	EKEYEXPIRED:     "EKEYEXPIRED",
	EKEYREVOKED:     "EKEYREVOKED",
	EKEYREJECTED:    "EKEYREJECTED",
	EOWNERDEAD:      "EOWNERDEAD",
	ENOTRECOVERABLE: "ENOTRECOVERABLE",
	ERFKILL:         "ERFKILL",
	EHWPOISON:       "EHWPOISON",
	EFTYPE:          "EFTYPE",
}
