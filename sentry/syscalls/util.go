package syscalls

import "encoding/binary"

var le = binary.LittleEndian
