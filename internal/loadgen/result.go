package loadgen

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Thresholds of the warnings in a [Result].
const (
	// saturatedShare is the share of its cores above which the generator
	// is said to be saturated.
	saturatedShare = 0.8
	// missShare is the share of DPoP requests signing their own proof
	// above which the proof pool is said to fall behind.
	missShare = 0.01
	// rateShare is the share of the asked rate below which a fixed-rate
	// run is said to fall short.
	rateShare = 0.9
	// minServerCPU is the server CPU time below which a per-request cost
	// is too coarse to use (/proc counts in 10 ms ticks).
	minServerCPU = 500 * time.Millisecond
)

// Result is the report of one run. Times are in seconds or microseconds,
// as their JSON names say.
type Result struct {
	// URL and Method are the target's.
	URL    string `json:"url"`
	Method string `json:"method"`
	// Mode is the authorizer's Mode, e.g. "dpop".
	Mode string `json:"mode"`
	// Workers is Config.Workers.
	Workers int `json:"workers"`
	// Rate is the rate asked for, 0 for a closed loop.
	Rate float64 `json:"rate_per_s,omitempty"`
	// KeepAlive is not set by Run: the caller, who built the client,
	// fills it in.
	KeepAlive      bool    `json:"keepalive"`
	ElapsedSeconds float64 `json:"elapsed_s"`
	// Requests counts the completed requests, Succeeded the 2xx among
	// them; NonceRetries the extra exchanges that nonce challenges caused,
	// and Exchanges all HTTP exchanges (Requests + NonceRetries).
	Requests     int64 `json:"requests"`
	Succeeded    int64 `json:"succeeded"`
	NonceRetries int64 `json:"nonce_retries"`
	Exchanges    int64 `json:"exchanges"`
	// PerSecond is Requests over the elapsed time.
	PerSecond float64 `json:"requests_per_s"`
	// Latency runs from a request's start (at a fixed rate: its scheduled
	// start) to the end of its answer's body, retry included.
	Latency Latency `json:"latency_us"`
	// Outcomes counts the requests by outcome, most frequent first.
	Outcomes []Outcome `json:"outcomes"`
	// Generator is the CPU this process used.
	Generator GeneratorCost `json:"generator"`
	// Server is the target server's CPU time, nil without Config.ServerPID.
	Server *ServerCost `json:"server,omitempty"`
	// Warnings say when the numbers may mislead (a saturated generator,
	// a proof pool falling behind, a rate not reached, too little server
	// CPU time to divide).
	Warnings []string `json:"warnings,omitempty"`
	// Stopped says why the run ended early, "" when it did not.
	Stopped string `json:"stopped,omitempty"`
}

// Latency holds latency percentiles in microseconds, each within about 3 %
// of the measured value.
type Latency struct {
	// P50, P90 and P99 are the percentiles, Max the largest latency
	// (exact) and Mean the average (exact).
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Outcome counts the requests of one class.
type Outcome struct {
	// Status is the HTTP status, 0 for a transport failure.
	Status int `json:"status"`
	// Error is the WWW-Authenticate error code, or the transport
	// failure's cause; "" when there is none.
	Error string `json:"error,omitempty"`
	// Outcome is Status and Error as one label, e.g. "401 invalid_token".
	Outcome string `json:"outcome"`
	// Count is the number of requests with this outcome.
	Count int64 `json:"count"`
}

// GeneratorCost is the CPU the generator itself used.
type GeneratorCost struct {
	// Cores is GOMAXPROCS; CoresUsed the CPU time over the elapsed time.
	Cores     int     `json:"cores"`
	CoresUsed float64 `json:"cores_used"`
	// CPUSeconds is the CPU time of the whole run (user plus system).
	CPUSeconds float64 `json:"cpu_s"`
	// CPUPerRequest is the generator's CPU time per exchange.
	CPUPerRequest float64 `json:"cpu_per_request_us"`
	// Proofs describes the DPoP proof pool, nil in other modes.
	Proofs *ProofStats `json:"proofs,omitempty"`
}

// ProofStats describes the DPoP proof pool: proofs signed, requests that
// found the pool empty and signed their own, and ready proofs discarded
// for an older nonce or age.
type ProofStats struct {
	// Signed counts the proofs signed, by the pool or by requests.
	Signed int64 `json:"signed"`
	// Misses counts the requests that found the pool empty.
	Misses int64 `json:"misses"`
	// Stale counts the ready proofs discarded unused.
	Stale int64 `json:"stale"`
}

// ServerCost is the CPU time of the target server per exchange, beside a
// raw ECDSA P-256 verification (SHA-256 of a JWS signing input, then
// ecdsa.VerifyASN1) timed in this process after the run.
type ServerCost struct {
	// PID is Config.ServerPID.
	PID int `json:"pid"`
	// CPUSeconds is the server's CPU time during the run, all threads,
	// in 10 ms ticks.
	CPUSeconds float64 `json:"cpu_s"`
	// CPUPerRequest is CPUSeconds per exchange, in microseconds.
	CPUPerRequest float64 `json:"cpu_per_request_us"`
	// RawVerify is [RawVerifyCost] in microseconds.
	RawVerify float64 `json:"raw_es256_verify_us"`
	// PerRawVerify is CPUPerRequest / RawVerify.
	PerRawVerify float64 `json:"per_raw_verify"`
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func latencyOf(h *histogram) Latency {
	return Latency{
		P50: micros(h.quantile(0.5)), P90: micros(h.quantile(0.9)), P99: micros(h.quantile(0.99)),
		Max: micros(time.Duration(h.max)), Mean: micros(h.mean()),
	}
}

func (g *GeneratorCost) measure(cpu, elapsed time.Duration, exchanges int64) {
	g.CPUSeconds = cpu.Seconds()
	if elapsed > 0 {
		g.CoresUsed = cpu.Seconds() / elapsed.Seconds()
	}
	if exchanges > 0 {
		g.CPUPerRequest = micros(cpu) / float64(exchanges)
	}
}

func (s *ServerCost) measure(cpu time.Duration, exchanges int64, raw time.Duration) {
	s.CPUSeconds = cpu.Seconds()
	s.RawVerify = micros(raw)
	if exchanges > 0 {
		s.CPUPerRequest = micros(cpu) / float64(exchanges)
	}
	if s.RawVerify > 0 {
		s.PerRawVerify = s.CPUPerRequest / s.RawVerify
	}
}

// warn adds the warnings that say when the numbers may mislead.
func (res *Result) warn(cfg Config) {
	g := res.Generator
	if g.CPUSeconds > 0 && g.CoresUsed >= saturatedShare*float64(g.Cores) {
		res.Warnings = append(res.Warnings, fmt.Sprintf(
			"the generator used %.2f of %d cores: it may be the bottleneck (fewer workers, or run it on another machine)", g.CoresUsed, g.Cores))
	}
	if p := g.Proofs; p != nil && res.Exchanges > 0 && float64(p.Misses) > missShare*float64(res.Exchanges) {
		res.Warnings = append(res.Warnings, fmt.Sprintf(
			"%.1f %% of requests found the proof pool empty and signed their own proof: the generator is short of CPU",
			100*float64(p.Misses)/float64(res.Exchanges)))
	}
	if cfg.Rate > 0 && res.Stopped == "" && res.PerSecond < rateShare*cfg.Rate {
		res.Warnings = append(res.Warnings, fmt.Sprintf(
			"%.0f requests/s reached of the %.0f asked: more workers (-c), or the server is saturated", res.PerSecond, cfg.Rate))
	}
	if s := res.Server; s != nil && s.CPUSeconds < minServerCPU.Seconds() {
		res.Warnings = append(res.Warnings, fmt.Sprintf(
			"the server used only %.2f s of CPU: its per-request cost is coarse (it is read in 10 ms ticks); run longer", s.CPUSeconds))
	}
}

// WriteText writes res as a short human-readable report.
func (res *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	conn := "keep-alive"
	if !res.KeepAlive {
		conn = "a new connection per request"
	}
	fmt.Fprintf(&b, "target     %s %s (%s, %s)\n", res.Method, res.URL, res.Mode, conn)
	loop := "closed loop"
	if res.Rate > 0 {
		loop = fmt.Sprintf("fixed rate %g/s", res.Rate)
	}
	fmt.Fprintf(&b, "load       %d workers, %s, %.2f s\n", res.Workers, loop, res.ElapsedSeconds)
	fmt.Fprintf(&b, "requests   %d (%.1f/s), %d succeeded", res.Requests, res.PerSecond, res.Succeeded)
	if res.NonceRetries > 0 {
		fmt.Fprintf(&b, ", %d nonce retries", res.NonceRetries)
	}
	b.WriteByte('\n')
	l := res.Latency
	fmt.Fprintf(&b, "latency    p50 %s  p90 %s  p99 %s  max %s\n", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max))
	for i, o := range res.Outcomes {
		label := "outcomes"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(&b, "%-10s %-40s %d\n", label, o.Outcome, o.Count)
	}
	g := res.Generator
	fmt.Fprintf(&b, "generator  %.2f of %d cores, %.1f µs CPU per request", g.CoresUsed, g.Cores, g.CPUPerRequest)
	if p := g.Proofs; p != nil {
		fmt.Fprintf(&b, "; proofs: %d signed, %d pool misses, %d discarded", p.Signed, p.Misses, p.Stale)
	}
	b.WriteByte('\n')
	if s := res.Server; s != nil {
		fmt.Fprintf(&b, "server     pid %d: %.1f µs CPU per request = %.2f× a raw ES256 verify (%.1f µs)\n",
			s.PID, s.CPUPerRequest, s.PerRawVerify, s.RawVerify)
	}
	for _, m := range res.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", m)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ms renders microseconds as milliseconds with three significant digits.
func ms(us float64) string {
	v := us / 1000
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}
