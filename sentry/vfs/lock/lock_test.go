package lock

import (
	"errors"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"moat.dev/moat/sentry/waiter"
)

func TestRecordLocks(t *testing.T) {
	type step struct {
		owner   string
		typ     Type
		start   uint64
		end     uint64
		wantErr error
	}
	tests := []struct {
		name  string
		steps []step
		want  []Record // owner and range and type only
	}{
		{
			name:  "two readers share",
			steps: []step{{"a", Read, 0, 10, nil}, {"b", Read, 5, 15, nil}},
			want:  []Record{{Range{0, 10}, Read, "a", 0}, {Range{5, 15}, Read, "b", 0}},
		},
		{
			name:  "writer conflicts with reader",
			steps: []step{{"a", Read, 0, 10, nil}, {"b", Write, 9, 20, unix.EAGAIN}},
			want:  []Record{{Range{0, 10}, Read, "a", 0}},
		},
		{
			name:  "disjoint writers",
			steps: []step{{"a", Write, 0, 10, nil}, {"b", Write, 10, 20, nil}},
			want:  []Record{{Range{0, 10}, Write, "a", 0}, {Range{10, 20}, Write, "b", 0}},
		},
		{
			name:  "own lock is replaced and split",
			steps: []step{{"a", Write, 0, 30, nil}, {"a", Read, 10, 20, nil}},
			want:  []Record{{Range{0, 10}, Write, "a", 0}, {Range{10, 20}, Read, "a", 0}, {Range{20, 30}, Write, "a", 0}},
		},
		{
			name:  "unlock the middle",
			steps: []step{{"a", Read, 0, EOF, nil}, {"a", Unlock, 100, 200, nil}},
			want:  []Record{{Range{0, 100}, Read, "a", 0}, {Range{200, EOF}, Read, "a", 0}},
		},
		{
			name:  "adjacent locks merge",
			steps: []step{{"a", Write, 0, 10, nil}, {"a", Write, 10, 20, nil}, {"a", Write, 5, 12, nil}},
			want:  []Record{{Range{0, 20}, Write, "a", 0}},
		},
		{
			name:  "empty range",
			steps: []step{{"a", Write, 10, 10, unix.EINVAL}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l Locks
			for i, s := range tc.steps {
				err := l.SetRecord(s.owner, 0, s.typ, Range{s.start, s.end})
				if !errors.Is(err, s.wantErr) && !(err == nil && s.wantErr == nil) {
					t.Fatalf("step %d %+v: err %v, want %v", i, s, err, s.wantErr)
				}
			}
			got := l.Records()
			if len(got) != len(tc.want) {
				t.Fatalf("records %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("records %+v, want %+v", got, tc.want)
				}
			}
		})
	}
}

func TestTestRecordAndRelease(t *testing.T) {
	var l Locks
	if err := l.SetRecord("a", 42, Write, Range{0, 100}); err != nil {
		t.Fatal(err)
	}
	rec, ok := l.TestRecord("b", Read, Range{50, 60})
	if !ok || rec.PID != 42 || rec.Owner != "a" {
		t.Fatalf("TestRecord = %+v, %v; want a's lock with pid 42", rec, ok)
	}
	if _, ok := l.TestRecord("a", Write, Range{0, 100}); ok {
		t.Fatal("an owner conflicts with itself")
	}
	e, ch := waiter.NewChannelEntry(waiter.EventIn)
	l.Queue.EventRegister(e)
	defer l.Queue.EventUnregister(e)
	l.ReleaseOwner("a")
	select {
	case <-ch:
	default:
		t.Fatal("release did not notify waiters")
	}
	if !l.Empty() {
		t.Fatalf("locks left after release: %+v", l.Records())
	}
}

func TestFlock(t *testing.T) {
	var l Locks
	a, b := new(int), new(int)
	if err := l.Flock(a, Read); err != nil {
		t.Fatal(err)
	}
	if err := l.Flock(b, Read); err != nil {
		t.Fatal(err)
	}
	if err := l.Flock(b, Write); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("upgrade with another reader: %v, want EWOULDBLOCK", err)
	}
	if err := l.Flock(a, Unlock); err != nil {
		t.Fatal(err)
	}
	if err := l.Flock(b, Write); err != nil {
		t.Fatalf("upgrade when alone: %v", err)
	}
	if err := l.Flock(a, Read); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("read under a writer: %v", err)
	}
	l.ReleaseOwner(b)
	if !l.Empty() {
		t.Fatal("flock survived ReleaseOwner")
	}
}

func TestConcurrentWriters(t *testing.T) {
	var l Locks
	var mu sync.Mutex
	holders := 0
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(owner int) {
			defer wg.Done()
			for n := 0; n < 200; {
				if err := l.SetRecord(owner, int32(owner), Write, Range{0, 10}); err != nil {
					continue
				}
				mu.Lock()
				holders++
				if holders != 1 {
					t.Errorf("%d holders of an exclusive lock", holders)
				}
				holders--
				mu.Unlock()
				if err := l.SetRecord(owner, int32(owner), Unlock, Range{0, 10}); err != nil {
					t.Error(err)
				}
				n++
			}
		}(i)
	}
	wg.Wait()
}
