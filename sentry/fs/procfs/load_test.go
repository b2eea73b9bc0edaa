package procfs

import (
	"math"
	"testing"
	"time"
)

func TestLoadAverageDecays(t *testing.T) {
	var l loadAvg
	t0 := time.Unix(1000, 0)
	if got := l.update(t0, 2); got != [3]float64{} {
		t.Fatalf("first reading %v, want zeros", got)
	}
	// A minute at 2 running threads: the 1-minute figure reaches
	// 2(1-1/e), the longer ones less.
	got := l.update(t0.Add(time.Minute), 2)
	if math.Abs(got[0]-2*(1-math.Exp(-1))) > 1e-9 || !(got[0] > got[1] && got[1] > got[2] && got[2] > 0) {
		t.Fatalf("after a minute at 2: %v", got)
	}
	// An hour idle brings them back near zero.
	got = l.update(t0.Add(time.Hour), 0)
	if got[0] > 1e-6 || got[2] > 0.1 {
		t.Fatalf("after an idle hour: %v", got)
	}
}
