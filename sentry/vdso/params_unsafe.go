package vdso

import (
	"sync/atomic"
	"unsafe"
)

// Write publishes p into the parameter page with the seqlock protocol the
// vDSO reads it with: the sequence is odd while the fields change.
func Write(page []byte, p Params) {
	_ = page[PageSize-1]
	seq := (*uint32)(unsafe.Pointer(&page[offSeq]))
	s := atomic.AddUint32(seq, 1)
	if s&1 == 0 {
		s = atomic.AddUint32(seq, 1)
	}
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&page[offTSCBase])), p.TSCBase)
	atomic.StoreInt64((*int64)(unsafe.Pointer(&page[offMonoBase])), p.MonoBaseNS)
	atomic.StoreInt64((*int64)(unsafe.Pointer(&page[offRealBase])), p.RealBaseNS)
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&page[offMult])), p.Mult)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&page[offShift])), p.Shift)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&page[offReady])), 1)
	atomic.StoreUint32(seq, s+1)
}
