package abi

import "time"

// TimespecSize is the size of struct timespec (and __kernel_timespec) on x86-64.
const TimespecSize = 16

// Timespec is struct timespec.
type Timespec struct {
	Sec  int64 // 0
	Nsec int64 // 8
}

// NsecToTimespec converts nanoseconds to a Timespec.
func NsecToTimespec(ns int64) Timespec {
	t := Timespec{Sec: ns / 1e9, Nsec: ns % 1e9}
	if t.Nsec < 0 {
		t.Sec--
		t.Nsec += 1e9
	}
	return t
}

// TimeToTimespec converts a time.Time to a Timespec since the Unix epoch.
func TimeToTimespec(t time.Time) Timespec {
	return Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// Valid reports whether t is a valid timespec argument: 0 <= Nsec < 1e9 and
// Sec >= 0.
func (t Timespec) Valid() bool { return t.Sec >= 0 && t.Nsec >= 0 && t.Nsec < 1e9 }

// Duration returns t as a duration, saturating at the largest one.
func (t Timespec) Duration() time.Duration {
	const maxSec = int64(1<<63-1) / 1e9
	if t.Sec > maxSec {
		return time.Duration(1<<63 - 1)
	}
	if t.Sec < -maxSec {
		return time.Duration(-1 << 63)
	}
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Nsec)
}

// Marshal writes t into b[:TimespecSize].
func (t *Timespec) Marshal(b []byte) {
	b = b[:TimespecSize]
	le.PutUint64(b[0:], uint64(t.Sec))
	le.PutUint64(b[8:], uint64(t.Nsec))
}

// Unmarshal reads t from b[:TimespecSize].
func (t *Timespec) Unmarshal(b []byte) {
	b = b[:TimespecSize]
	t.Sec = int64(le.Uint64(b[0:]))
	t.Nsec = int64(le.Uint64(b[8:]))
}

// TimevalSize is the size of struct timeval on x86-64.
const TimevalSize = 16

// Timeval is struct timeval.
type Timeval struct {
	Sec  int64 // 0
	Usec int64 // 8
}

// DurationToTimeval converts a duration to a Timeval.
func DurationToTimeval(d time.Duration) Timeval {
	return Timeval{Sec: int64(d / time.Second), Usec: int64(d%time.Second) / 1e3}
}

// Valid reports whether t is a valid timeval argument.
func (t Timeval) Valid() bool { return t.Sec >= 0 && t.Usec >= 0 && t.Usec < 1e6 }

// Duration returns t as a duration, saturating at the largest one.
func (t Timeval) Duration() time.Duration {
	return Timespec{Sec: t.Sec, Nsec: t.Usec * 1e3}.Duration()
}

// Marshal writes t into b[:TimevalSize].
func (t *Timeval) Marshal(b []byte) {
	b = b[:TimevalSize]
	le.PutUint64(b[0:], uint64(t.Sec))
	le.PutUint64(b[8:], uint64(t.Usec))
}

// Unmarshal reads t from b[:TimevalSize].
func (t *Timeval) Unmarshal(b []byte) {
	b = b[:TimevalSize]
	t.Sec = int64(le.Uint64(b[0:]))
	t.Usec = int64(le.Uint64(b[8:]))
}

// ItimervalSize is the size of struct itimerval.
const ItimervalSize = 32

// Itimerval is struct itimerval (setitimer(2)).
type Itimerval struct {
	Interval Timeval // 0
	Value    Timeval // 16
}

// Marshal writes t into b[:ItimervalSize].
func (t *Itimerval) Marshal(b []byte) {
	b = b[:ItimervalSize]
	t.Interval.Marshal(b[0:])
	t.Value.Marshal(b[16:])
}

// Unmarshal reads t from b[:ItimervalSize].
func (t *Itimerval) Unmarshal(b []byte) {
	b = b[:ItimervalSize]
	t.Interval.Unmarshal(b[0:])
	t.Value.Unmarshal(b[16:])
}

// ItimerspecSize is the size of struct itimerspec.
const ItimerspecSize = 32

// Itimerspec is struct itimerspec (timer_settime(2), timerfd_settime(2)).
type Itimerspec struct {
	Interval Timespec // 0
	Value    Timespec // 16
}

// Marshal writes t into b[:ItimerspecSize].
func (t *Itimerspec) Marshal(b []byte) {
	b = b[:ItimerspecSize]
	t.Interval.Marshal(b[0:])
	t.Value.Marshal(b[16:])
}

// Unmarshal reads t from b[:ItimerspecSize].
func (t *Itimerspec) Unmarshal(b []byte) {
	b = b[:ItimerspecSize]
	t.Interval.Unmarshal(b[0:])
	t.Value.Unmarshal(b[16:])
}

// TmsSize is the size of struct tms.
const TmsSize = 32

// Tms is struct tms (times(2)), in clock ticks of CLK_TCK per second.
type Tms struct {
	Utime  int64 // 0
	Stime  int64 // 8
	Cutime int64 // 16
	Cstime int64 // 24
}

// Marshal writes t into b[:TmsSize].
func (t *Tms) Marshal(b []byte) {
	b = b[:TmsSize]
	le.PutUint64(b[0:], uint64(t.Utime))
	le.PutUint64(b[8:], uint64(t.Stime))
	le.PutUint64(b[16:], uint64(t.Cutime))
	le.PutUint64(b[24:], uint64(t.Cstime))
}

// Unmarshal reads t from b[:TmsSize].
func (t *Tms) Unmarshal(b []byte) {
	b = b[:TmsSize]
	t.Utime = int64(le.Uint64(b[0:]))
	t.Stime = int64(le.Uint64(b[8:]))
	t.Cutime = int64(le.Uint64(b[16:]))
	t.Cstime = int64(le.Uint64(b[24:]))
}

// TimezoneSize is the size of struct timezone.
const TimezoneSize = 8

// Timezone is struct timezone (gettimeofday(2)); Linux keeps it for
// compatibility only.
type Timezone struct {
	Minuteswest int32 // 0
	Dsttime     int32 // 4
}

// Marshal writes z into b[:TimezoneSize].
func (z *Timezone) Marshal(b []byte) {
	b = b[:TimezoneSize]
	le.PutUint32(b[0:], uint32(z.Minuteswest))
	le.PutUint32(b[4:], uint32(z.Dsttime))
}

// Unmarshal reads z from b[:TimezoneSize].
func (z *Timezone) Unmarshal(b []byte) {
	b = b[:TimezoneSize]
	z.Minuteswest = int32(le.Uint32(b[0:]))
	z.Dsttime = int32(le.Uint32(b[4:]))
}
