package loadgen

import (
	"errors"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one value", []time.Duration{3 * time.Millisecond}, 0.99, 3 * time.Millisecond},
		{"small exact", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5, 5},
		{"median of 1..1000 µs", seq(1000, time.Microsecond), 0.5, 500 * time.Microsecond},
		{"p90 of 1..1000 µs", seq(1000, time.Microsecond), 0.9, 900 * time.Microsecond},
		{"p99 of 1..1000 µs", seq(1000, time.Microsecond), 0.99, 990 * time.Microsecond},
		{"max", seq(1000, time.Microsecond), 1, 1000 * time.Microsecond},
		{"outlier", append(seq(99, time.Millisecond/99), time.Minute), 1, time.Minute},
		{"huge", []time.Duration{math.MaxInt64}, 0.5, math.MaxInt64},
		{"negative counts as 0", []time.Duration{-5}, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var h histogram
			for _, v := range tt.values {
				h.record(v)
			}
			got := h.quantile(tt.q)
			// Buckets are 1/32 of a power of two wide.
			if diff := math.Abs(float64(got - tt.want)); diff > float64(tt.want)/32+1 {
				t.Errorf("quantile(%v) = %v, want %v within 1/32", tt.q, got, tt.want)
			}
		})
	}
}

func seq(n int, step time.Duration) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = time.Duration(i+1) * step
	}
	return s
}

func TestHistogramIndex(t *testing.T) {
	t.Parallel()
	// Every bucket's midpoint falls back in that bucket, and indexes grow
	// with values, over the whole uint64 range.
	prev := -1
	for e := 0; e < 64; e++ {
		for _, v := range []uint64{1 << e, 1<<e + 1<<e/3, 1<<e + 1<<e/2} {
			i := histIndex(v)
			if i < prev || i >= histBuckets {
				t.Fatalf("histIndex(%d) = %d after %d", v, i, prev)
			}
			prev = i
			if j := histIndex(histValue(i)); j != i {
				t.Fatalf("value %d of bucket %d falls in bucket %d", histValue(i), i, j)
			}
		}
	}
	if i := histIndex(math.MaxUint64); i != histBuckets-1 {
		t.Errorf("histIndex(max) = %d, want %d", i, histBuckets-1)
	}
}

func TestHistogramMerge(t *testing.T) {
	t.Parallel()
	var a, b histogram
	for _, v := range seq(500, time.Microsecond) {
		a.record(v)
		b.record(v + 500*time.Microsecond)
	}
	a.merge(&b)
	if a.n != 1000 || a.max != uint64(time.Millisecond) {
		t.Fatalf("merged n=%d max=%d", a.n, a.max)
	}
	if m := a.mean(); m < 495*time.Microsecond || m > 505*time.Microsecond {
		t.Errorf("mean %v, want about 500.5µs", m)
	}
}

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	tail := " S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 1 0 100 0 0"
	tests := []struct {
		name      string
		line      string
		user, sys time.Duration
		wantErr   bool
	}{
		{"plain", "1234 (senderbound)" + tail, 2500 * time.Millisecond, 750 * time.Millisecond, false},
		{"name with spaces and parentheses", "77 (a) b (c) d)" + tail, 2500 * time.Millisecond, 750 * time.Millisecond, false},
		{"name faking fields", "77 (x) S 1 2 3 4 5 6 7 8 9 10 999 999)" + tail, 2500 * time.Millisecond, 750 * time.Millisecond, false},
		{"empty", "", 0, 0, true},
		{"no parentheses", "1234 senderbound" + tail, 0, 0, true},
		{"too few fields", "1234 (x) S 1 2 3", 0, 0, true},
		{"negative ticks", "1 (x) S 1 2 3 4 5 6 7 8 9 10 -1 75", 0, 0, true},
		{"not a number", "1 (x) S 1 2 3 4 5 6 7 8 9 10 25x 75", 0, 0, true},
		{"overflow", "1 (x) S 1 2 3 4 5 6 7 8 9 10 99999999999999999999 75", 0, 0, true},
		{"ticks past Duration", "1 (x) S 1 2 3 4 5 6 7 8 9 10 92233720368547759 75", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, s, err := parseProcStat(tt.line)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, errProcStat)) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if u != tt.user || s != tt.sys {
				t.Errorf("user %v system %v, want %v %v", u, s, tt.user, tt.sys)
			}
		})
	}
}

// TestProcessCPUThisProcess reads this process's /proc stat around some
// work and checks it against getrusage.
func TestProcessCPUThisProcess(t *testing.T) {
	// Not parallel: other tests' CPU would blur the comparison.
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	selfBefore, err := SelfCPU()
	if err != nil {
		t.Fatal(err)
	}
	burnCPU(t, 300*time.Millisecond)
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	selfAfter, err := SelfCPU()
	if err != nil {
		t.Fatal(err)
	}
	proc, self := after-before, selfAfter-selfBefore
	if proc < 100*time.Millisecond {
		t.Errorf("/proc saw %v of CPU over 300ms of work (getrusage %v)", proc, self)
	}
	// Both count the same process; /proc in 10 ms ticks.
	if d := proc - self; d > 50*time.Millisecond || d < -50*time.Millisecond {
		t.Errorf("/proc %v, getrusage %v: more than 50ms apart", proc, self)
	}
	if _, err := ProcessCPU(-1); err == nil {
		t.Error("ProcessCPU(-1) succeeded")
	}
}

// burnCPU spins until this process has used about d more CPU time (or
// 20 s have passed on a starved machine).
func burnCPU(t *testing.T, d time.Duration) {
	t.Helper()
	start, err := SelfCPU()
	if err != nil {
		t.Fatal(err)
	}
	x := uint64(1)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		for range 100000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		if now, err := SelfCPU(); err != nil || now-start >= d {
			break
		}
	}
	if x == 0 {
		t.Log("unreachable")
	}
}

func TestRawVerifyCost(t *testing.T) {
	t.Parallel()
	if d := RawVerifyCost(); d <= 0 || d > 50*time.Millisecond {
		t.Errorf("RawVerifyCost() = %v, want a plausible P-256 verify time", d)
	}
}

func TestResponseOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		www    []string
		want   string
	}{
		{"success", 200, nil, "200"},
		{"success ignores challenges", 204, []string{`DPoP error="invalid_token"`}, "204"},
		{"dpop error", 401, []string{`DPoP error="invalid_dpop_proof", algs="ES256"`}, "401 invalid_dpop_proof"},
		{"bearer then dpop", 401, []string{`Bearer realm="x"`, `DPoP error="use_dpop_nonce"`}, "401 use_dpop_nonce"},
		{"two challenges in one field", 401, []string{`Bearer realm="x", DPoP error="invalid_token"`}, "401 invalid_token"},
		{"no error code", 401, []string{`DPoP algs="ES256"`}, "401"},
		{"unparsable field", 401, []string{`DPoP error="unterminated`}, "401"},
		{"terminal escape", 401, []string{"DPoP error=\"x\x1b[2J\""}, "401"},
		{"hostile code", 401, []string{`DPoP error="<script>"`}, "401 (unreadable error code)"},
		{"long code", 401, []string{`DPoP error="` + strings.Repeat("a", 41) + `"`}, "401 (unreadable error code)"},
		{"server error", 503, nil, "503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{"Www-Authenticate": tt.www}}
			if got := responseOutcome(resp).String(); got != tt.want {
				t.Errorf("outcome = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOutcomeCap(t *testing.T) {
	t.Parallel()
	w := workerStats{outcomes: map[outcomeKey]int64{}}
	for i := range 100 {
		w.count(outcomeKey{status: 400 + i})
	}
	if len(w.outcomes) != maxOutcomes+1 || w.outcomes[outcomeKey{code: "other"}] != 100-maxOutcomes {
		t.Errorf("%d outcomes kept, other = %d; want %d and %d", len(w.outcomes), w.outcomes[outcomeKey{code: "other"}], maxOutcomes+1, 100-maxOutcomes)
	}
}

func TestResultWarnings(t *testing.T) {
	t.Parallel()
	base := func() *Result {
		return &Result{Requests: 1000, Exchanges: 1000, PerSecond: 1000,
			Generator: GeneratorCost{Cores: 2, CoresUsed: 0.5, CPUSeconds: 5, Proofs: &ProofStats{Signed: 1000}}}
	}
	tests := []struct {
		name   string
		cfg    Config
		change func(*Result)
		want   string // "" means no warning
	}{
		{"quiet run", Config{}, func(*Result) {}, ""},
		{"saturated generator", Config{}, func(r *Result) { r.Generator.CoresUsed = 1.7 }, "the generator used 1.70 of 2 cores"},
		{"pool falls behind", Config{}, func(r *Result) { r.Generator.Proofs.Misses = 50 }, "5.0 % of requests found the proof pool empty"},
		{"pool misses below 1 %", Config{}, func(r *Result) { r.Generator.Proofs.Misses = 9 }, ""},
		{"rate not reached", Config{Rate: 2000}, func(*Result) {}, "1000 requests/s reached of the 2000 asked"},
		{"rate reached", Config{Rate: 1050}, func(*Result) {}, ""},
		{"rate of a stopped run", Config{Rate: 2000}, func(r *Result) { r.Stopped = "no request succeeded" }, ""},
		{"little server CPU", Config{}, func(r *Result) { r.Server = &ServerCost{CPUSeconds: 0.2} }, "the server used only 0.20 s of CPU"},
		{"enough server CPU", Config{}, func(r *Result) { r.Server = &ServerCost{CPUSeconds: 3} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := base()
			tt.change(r)
			r.warn(tt.cfg)
			switch {
			case tt.want == "" && len(r.Warnings) != 0:
				t.Errorf("warnings %q, want none", r.Warnings)
			case tt.want != "" && (len(r.Warnings) != 1 || !strings.HasPrefix(r.Warnings[0], tt.want)):
				t.Errorf("warnings %q, want one starting %q", r.Warnings, tt.want)
			}
		})
	}
}

func TestRefreshWait(t *testing.T) {
	t.Parallel()
	tests := []struct{ lifetime, want time.Duration }{
		{time.Hour, 45 * time.Minute},
		{5 * time.Minute, 225 * time.Second},
		{4 * time.Second, 2500 * time.Millisecond}, // 1.5 s before the end
		{3 * time.Second, 1500 * time.Millisecond},
		{2 * time.Second, time.Second}, // never sooner than a second
		{time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		if got := refreshWait(tt.lifetime); got != tt.want {
			t.Errorf("refreshWait(%v) = %v, want %v", tt.lifetime, got, tt.want)
		}
	}
}
