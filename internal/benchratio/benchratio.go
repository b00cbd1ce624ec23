// Package benchratio measures an operation against the raw cryptographic
// operation it cannot avoid, so that benchmarks report a ratio ("x-raw")
// that stays meaningful on a machine whose speed and load vary.
//
// Two ways are offered. [NsPerOp] divided by a raw time from [BestNs]
// compares means taken seconds apart. [Interleaved] (or [Ratios] inside a
// benchmark loop) times a batch of raw operations and then a batch of the
// full operation back to back, round after round, and takes the median of
// the rounds' ratios: load from other processes affects both sides of a
// round alike, and a load spike skews only the few rounds it falls in.
//
// The metric names are the callers' own: they pass the ratios to
// testing.B.ReportMetric under the names their documentation cites.
package benchratio

import (
	"slices"
	"testing"
	"time"
)

// Ratios collects per-round ratios of a full operation's time to the raw
// operation's. The zero value is empty and ready to use.
type Ratios []float64

// Add records one round: full and raw are the times of the same number of
// full and raw operations. A round whose raw time is not positive (a
// clock that did not advance) is dropped.
func (r *Ratios) Add(full, raw time.Duration) {
	if raw > 0 {
		*r = append(*r, float64(full)/float64(raw))
	}
}

// Median returns the median round ratio (the upper one of an even count),
// or 0 when no round was recorded.
func (r Ratios) Median() float64 {
	if len(r) == 0 {
		return 0
	}
	s := slices.Clone(r)
	slices.Sort(s)
	return s[len(s)/2]
}

// Interleaved runs rounds rounds, each timing batch calls of raw and then
// batch calls of full, and returns the median over the rounds of the full
// batch's time over the raw batch's. full receives the call's index, 0 to
// rounds·batch-1, so that it can take a fresh input per call.
func Interleaved(rounds, batch int, raw func(), full func(i int)) float64 {
	var r Ratios
	n := 0
	for range rounds {
		t0 := time.Now()
		for range batch {
			raw()
		}
		t1 := time.Now()
		for range batch {
			full(n)
			n++
		}
		r.Add(time.Since(t1), t1.Sub(t0))
	}
	return r.Median()
}

// NsPerOp returns the wall-clock nanoseconds per iteration of b's timed
// loop so far, or 0 before any iteration.
func NsPerOp(b *testing.B) float64 {
	if b.N <= 0 {
		return 0
	}
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// BestNs returns the nanoseconds per call of f in the fastest of rounds
// rounds, each calling f for at least d: the least disturbed measurement
// of the raw operation, taken outside the benchmark loop
// (testing.Benchmark cannot run inside a benchmark).
func BestNs(rounds int, d time.Duration, f func()) float64 {
	best := 0.0
	for range rounds {
		n := 0
		start := time.Now()
		for n == 0 || time.Since(start) < d {
			f()
			n++
		}
		if ns := float64(time.Since(start).Nanoseconds()) / float64(n); best == 0 || ns < best {
			best = ns
		}
	}
	return best
}
