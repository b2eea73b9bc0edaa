package waiter

import (
	"sync"
	"testing"
)

func TestNotifyWakesMatchingEntries(t *testing.T) {
	var q Queue
	in, inCh := NewChannelEntry(EventIn)
	out, outCh := NewChannelEntry(EventOut)
	var got EventMask
	fn := NewFunctionEntry(EventIn|EventHUp, func(m EventMask) { got |= m })
	q.EventRegister(in)
	q.EventRegister(out)
	q.EventRegister(fn)
	if m := q.Events(); m != EventIn|EventOut|EventHUp {
		t.Fatalf("Events() = %#x, want %#x", m, EventIn|EventOut|EventHUp)
	}
	q.Notify(EventIn)
	select {
	case <-inCh:
	default:
		t.Fatal("EventIn entry not woken")
	}
	select {
	case <-outCh:
		t.Fatal("EventOut entry woken by EventIn")
	default:
	}
	if got != EventIn {
		t.Fatalf("function entry got %#x, want %#x", got, EventIn)
	}
	// A second notification before the first is consumed does not block.
	q.Notify(EventOut)
	q.Notify(EventOut)
	<-outCh
	q.EventUnregister(in)
	q.EventUnregister(in) // no-op
	q.Notify(EventIn)
	select {
	case <-inCh:
		t.Fatal("unregistered entry woken")
	default:
	}
	q.EventUnregister(out)
	q.EventUnregister(fn)
	if m := q.Events(); m != 0 {
		t.Fatalf("Events() on empty queue = %#x", m)
	}
}

func TestConcurrentRegisterNotify(t *testing.T) {
	var q Queue
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 500; j++ {
				e, ch := NewChannelEntry(EventIn)
				q.EventRegister(e)
				q.Notify(EventIn)
				<-ch // our own notify, or another goroutine's, woke us
				q.EventUnregister(e)
			}
		}()
	}
	wg.Wait()
	if q.head != nil || q.tail != nil {
		t.Fatal("queue not empty after all entries unregistered")
	}
}
