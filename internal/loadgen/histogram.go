package loadgen

import (
	"math/bits"
	"time"
)

// histSubBits sets the precision of the latency histogram: each power of two
// is split into 2^histSubBits buckets, so a recorded value lies within
// 1/2^histSubBits (about 3 %) of the value it is reported as.
const histSubBits = 5

// histBuckets covers every uint64 nanosecond count.
const histBuckets = (64 - histSubBits + 1) << histSubBits

// histogram counts latencies in log-linear buckets of nanoseconds. The zero
// value is empty and ready. A histogram is not safe for concurrent use:
// each worker keeps its own and they are merged at the end.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    uint64 // nanoseconds; a run of 2^64 ns is 584 years
	max    uint64
}

// histIndex returns the bucket of v nanoseconds.
func histIndex(v uint64) int {
	if v < 2<<histSubBits {
		return int(v)
	}
	e := bits.Len64(v) - (histSubBits + 1)
	return e<<histSubBits + int(v>>e)
}

// histValue returns the midpoint of bucket i.
func histValue(i int) uint64 {
	if i < 2<<histSubBits {
		return uint64(i)
	}
	e := i>>histSubBits - 1
	top := uint64(i&(1<<histSubBits-1)) + 1<<histSubBits
	return top<<e + (uint64(1)<<e)/2
}

// record adds one latency.
func (h *histogram) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[histIndex(v)]++
	h.n++
	h.sum += v
	h.max = max(h.max, v)
}

// merge adds o's counts to h.
func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the latency below which a fraction q of the recorded
// values lie (the nearest-rank method), 0 for an empty histogram. The
// result never exceeds the largest recorded value.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.999999)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(histValue(i), h.max))
		}
	}
	return time.Duration(h.max)
}

// mean returns the average latency, 0 for an empty histogram.
func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}
