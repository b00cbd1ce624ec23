package benchratio

import (
	"math"
	"testing"
	"time"
)

func TestRatiosMedian(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		add   [][2]time.Duration // full, raw
		want  float64
		order []float64 // the recorded ratios, in order, after Median
	}{
		{"empty", nil, 0, nil},
		{"one", [][2]time.Duration{{30, 10}}, 3, []float64{3}},
		{"odd count", [][2]time.Duration{{50, 10}, {10, 10}, {20, 10}}, 2, []float64{5, 1, 2}},
		{"even count takes the upper", [][2]time.Duration{{40, 10}, {10, 10}, {20, 10}, {30, 10}}, 3, []float64{4, 1, 2, 3}},
		{"spike skews one round only", [][2]time.Duration{{20, 10}, {20, 10}, {2000, 10}, {20, 10}, {20, 1}}, 2, []float64{2, 2, 200, 2, 20}},
		{"zero raw time dropped", [][2]time.Duration{{20, 0}, {30, 10}}, 3, []float64{3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var r Ratios
			for _, a := range tc.add {
				r.Add(a[0], a[1])
			}
			if got := r.Median(); got != tc.want {
				t.Errorf("Median = %v, want %v", got, tc.want)
			}
			if len(r) != len(tc.order) {
				t.Fatalf("recorded %v, want %v", r, tc.order)
			}
			for i := range r {
				if r[i] != tc.order[i] {
					t.Errorf("Median reordered the rounds: %v, want %v", r, tc.order)
					break
				}
			}
		})
	}
}

// spin busy-waits for d.
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

func TestInterleaved(t *testing.T) {
	t.Parallel()
	const rounds, batch = 5, 4
	var idx []int
	rawCalls := 0
	got := Interleaved(rounds, batch, func() { rawCalls++; spin(50 * time.Microsecond) }, func(i int) {
		idx = append(idx, i)
		spin(200 * time.Microsecond)
	})
	if rawCalls != rounds*batch || len(idx) != rounds*batch {
		t.Fatalf("%d raw and %d full calls, want %d each", rawCalls, len(idx), rounds*batch)
	}
	for i, v := range idx {
		if v != i {
			t.Fatalf("full got indices %v, want 0 to %d in order", idx, rounds*batch-1)
		}
	}
	// 200 µs against 50 µs: about 4, whatever the machine's load does to
	// both sides of a round.
	if got < 2.5 || got > 8 {
		t.Errorf("Interleaved = %v, want about 4", got)
	}
}

func TestBestNs(t *testing.T) {
	t.Parallel()
	calls := 0
	got := BestNs(3, 2*time.Millisecond, func() { calls++; spin(100 * time.Microsecond) })
	if calls < 3 {
		t.Errorf("%d calls, want at least one per round", calls)
	}
	if got < float64(100*time.Microsecond) || got > float64(5*time.Millisecond) {
		t.Errorf("BestNs = %v ns, want about 100 µs", got)
	}
	// A round shorter than one call still calls f once.
	calls = 0
	if got := BestNs(2, 0, func() { calls++ }); calls != 2 || got < 0 || math.IsNaN(got) {
		t.Errorf("BestNs with d 0: %d calls, %v ns; want 2 calls", calls, got)
	}
}

func TestNsPerOp(t *testing.T) {
	t.Parallel()
	var perOp, reported float64
	res := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			spin(20 * time.Microsecond)
		}
		perOp = NsPerOp(b)
		reported = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	if res.N == 0 || perOp != reported || perOp < float64(20*time.Microsecond) {
		t.Errorf("NsPerOp = %v, want the loop's ns/op %v (at least 20 µs)", perOp, reported)
	}
}
