package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and bounds of [Config].
const (
	// DefaultFailAfter is how many requests may complete, none of them
	// with a 2xx answer, before a run stops as failed.
	DefaultFailAfter = 20
	// DefaultStopAfterErrors is how many consecutive transport failures
	// stop a run.
	DefaultStopAfterErrors = 50
	// maxResponseDrain bounds how much of each response body is read (to
	// reuse the connection); the rest is dropped with the connection.
	maxResponseDrain = 1 << 20
	// maxWorkers bounds Config.Workers.
	maxWorkers = 100_000
)

// Config describes one run.
type Config struct {
	// URL is the target, an absolute http or https URL. Required.
	URL string
	// Method is the request method, without a body. "" means GET.
	Method string
	// Client sends the requests: its Transport carries TLS settings,
	// client certificate and keep-alive; its Timeout bounds each exchange.
	// Required. Redirects are never followed (the run uses a copy of the
	// client with CheckRedirect set), so credentials are not resent.
	Client *http.Client
	// Auth adds the credentials of each request. nil means NoAuth.
	Auth Authorizer
	// Workers is the number of concurrent workers: in a closed loop each
	// sends its next request when the previous one is answered; at a
	// fixed Rate it bounds the requests in flight. Required, 1 to 100000.
	Workers int
	// Rate, when positive, sends requests at this many per second, 0.01
	// to 10000000 (an open loop; latency counts from the scheduled time,
	// so a slow server is not hidden by a generator that waits for it).
	// 0 means a closed loop.
	Rate float64
	// Duration and Requests bound the run: it stops when either is
	// reached. At least one must be positive.
	Duration time.Duration
	Requests int64
	// Progress, when set, is called about once per second from a
	// goroutine of its own, and not after Run returns.
	Progress func(Progress)
	// ServerPID, when positive, names the target server's process on this
	// machine: its CPU time (from /proc) is read before and after the run
	// and reported per request beside a raw ECDSA P-256 verification
	// measured in this process.
	ServerPID int
	// FailAfter is how many requests may complete without any 2xx before
	// the run stops as failed. 0 means DefaultFailAfter; negative never
	// stops (to measure a server's rejection path).
	FailAfter int
	// StopAfterErrors is how many consecutive transport failures stop the
	// run. 0 means DefaultStopAfterErrors.
	StopAfterErrors int
}

// Progress is the state of a run, as passed to Config.Progress.
type Progress struct {
	// Elapsed is the time since the load started.
	Elapsed time.Duration
	// Requests, Succeeded, Refused and Failed count the completed
	// requests: all of them, 2xx answers, other answers and transport
	// failures.
	Requests, Succeeded, Refused, Failed int64
	// PerSecond is the completion rate since the previous call.
	PerSecond float64
}

// runner is the state shared by the workers of one run.
type runner struct {
	cfg    Config
	client *http.Client
	method string
	start  time.Time

	issued    atomic.Int64 // closed loop: requests claimed
	stopping  atomic.Bool
	stopped   chan struct{} // closed when no more requests are to be sent
	stopOnce  sync.Once
	failMu    sync.Mutex
	failure   error // why the run stopped early, if it did
	ticks     chan time.Time
	completed atomic.Int64
	succeeded atomic.Int64
	refused   atomic.Int64
	failed    atomic.Int64
	errRun    atomic.Int64 // consecutive transport failures
}

// workerStats is what one worker counts; merged when the run ends.
type workerStats struct {
	hist     histogram
	outcomes map[outcomeKey]int64
	retries  int64
}

func (w *workerStats) count(k outcomeKey) {
	if _, ok := w.outcomes[k]; !ok && len(w.outcomes) >= maxOutcomes {
		k = outcomeKey{code: "other"}
	}
	w.outcomes[k]++
}

// Run sends the load described by cfg and returns the result. It first
// sends one warm-up request (not counted), which fails the run at once
// when the target cannot be reached and lets an authorizer learn a nonce.
// The error, when not nil, is one line naming why the run failed or
// stopped early; the result then holds what was measured until then (nil
// when nothing was). Cancelling ctx ends the run early without an error;
// requests cut short by it are not counted. The client's idle connections
// are closed when the load ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Auth == nil {
		cfg.Auth = NoAuth{}
	}
	if cfg.FailAfter == 0 {
		cfg.FailAfter = DefaultFailAfter
	}
	if cfg.StopAfterErrors <= 0 {
		cfg.StopAfterErrors = DefaultStopAfterErrors
	}
	client := *cfg.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// Connections dialed for a request that another connection served
	// would otherwise linger, open and unused, at the server.
	defer client.CloseIdleConnections()
	r := &runner{cfg: cfg, client: &client, method: cfg.Method, stopped: make(chan struct{})}
	if r.method == "" {
		r.method = http.MethodGet
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Warm-up: reachability, TLS, and the nonce if the server wants one.
	warm := workerStats{outcomes: map[outcomeKey]int64{}}
	sess := cfg.Auth.NewSession()
	if err := r.exchange(ctx, sess, &warm, time.Now()); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, nil
	}
	for k := range warm.outcomes {
		if k.status == 0 {
			return nil, fmt.Errorf("%s at %s", k.code, cfg.URL)
		}
	}
	// The warm-up is not counted: neither in the result nor by the stop
	// rules, which would otherwise stop a refused run one request early.
	r.completed.Store(0)
	r.succeeded.Store(0)
	r.refused.Store(0)
	r.failed.Store(0)
	r.errRun.Store(0)

	// The warm-up's proof is not part of the run's pool statistics.
	pool, _ := cfg.Auth.(interface{ PoolStats() (int64, int64, int64) })
	var warmSigned, warmMisses, warmStale int64
	if pool != nil {
		warmSigned, warmMisses, warmStale = pool.PoolStats()
	}

	// Background work of the authorizer (the DPoP proof pool) starts once
	// the warm-up has taught it the nonce, and ends with the workers.
	bgCtx, bgCancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	if b, ok := cfg.Auth.(interface{ Run(context.Context) }); ok {
		bg.Go(func() { b.Run(bgCtx) })
	}
	stopBackground := func() {
		bgCancel()
		bg.Wait()
	}
	defer stopBackground()

	var serverStart time.Duration
	if cfg.ServerPID > 0 {
		var err error
		if serverStart, err = ProcessCPU(cfg.ServerPID); err != nil {
			return nil, err
		}
	}
	selfStart, selfErr := SelfCPU()
	r.start = time.Now()

	if cfg.Rate > 0 {
		r.ticks = make(chan time.Time)
	}
	var workers sync.WaitGroup
	stats := make([]*workerStats, cfg.Workers)
	var fatalOnce sync.Once
	var fatal error
	for i := range stats {
		st := &workerStats{outcomes: map[outcomeKey]int64{}}
		stats[i] = st
		workers.Go(func() {
			if err := r.work(ctx, cfg.Auth.NewSession(), st); err != nil {
				fatalOnce.Do(func() { fatal = err })
				r.stop(nil)
			}
		})
	}
	if cfg.Rate > 0 {
		go r.dispatch(ctx)
	}
	if cfg.Duration > 0 {
		t := time.AfterFunc(cfg.Duration, func() { r.stop(nil) })
		defer t.Stop()
	}
	progressDone := make(chan struct{})
	progressStop := make(chan struct{})
	go r.progress(progressStop, progressDone)

	workers.Wait()
	elapsed := time.Since(r.start)
	stopBackground()
	close(progressStop)
	<-progressDone
	r.stop(nil)
	if fatal != nil {
		return nil, fatal
	}

	res := r.result(stats, elapsed)
	if selfErr == nil {
		if selfEnd, err := SelfCPU(); err == nil {
			res.Generator.measure(selfEnd-selfStart, elapsed, res.Exchanges)
		}
	}
	if pool != nil {
		signed, misses, stale := pool.PoolStats()
		res.Generator.Proofs = &ProofStats{Signed: signed - warmSigned, Misses: misses - warmMisses, Stale: stale - warmStale}
	}
	if cfg.ServerPID > 0 {
		serverEnd, err := ProcessCPU(cfg.ServerPID)
		if err != nil {
			return res, err
		}
		res.Server = &ServerCost{PID: cfg.ServerPID}
		res.Server.measure(serverEnd-serverStart, res.Exchanges, RawVerifyCost())
	}
	res.warn(cfg)
	if w, ok := cfg.Auth.(interface{ Warnings() []string }); ok {
		res.Warnings = append(res.Warnings, w.Warnings()...)
	}
	err := r.err()
	if err == nil && ctx.Err() == nil && res.Requests > 0 && res.Succeeded == 0 && cfg.FailAfter > 0 {
		err = r.noSuccess(res)
	}
	if err != nil {
		res.Stopped = err.Error()
	}
	return res, err
}

// check validates the fields of cfg that have no default.
func (cfg *Config) check() error {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("loadgen: the target must be an absolute http or https URL")
	}
	switch {
	case cfg.Client == nil:
		return errors.New("loadgen: Config.Client is nil")
	case cfg.Workers < 1 || cfg.Workers > maxWorkers:
		return fmt.Errorf("loadgen: workers must be between 1 and %d", maxWorkers)
	case !(cfg.Rate >= 0 && cfg.Rate <= 1e7) || (cfg.Rate > 0 && cfg.Rate < 0.01): // NaN too
		return errors.New("loadgen: the rate must be 0 (closed loop) or between 0.01 and 10000000 per second")
	case cfg.Duration < 0 || cfg.Requests < 0:
		return errors.New("loadgen: negative duration or request count")
	case cfg.Duration == 0 && cfg.Requests == 0:
		return errors.New("loadgen: a run needs a duration or a request count")
	}
	if _, err := http.NewRequest(cfg.Method, cfg.URL, nil); err != nil {
		return errors.New("loadgen: invalid method")
	}
	return nil
}

// stop ends the sending of new requests; a non-nil err records why the
// run stopped early (the first reason wins).
func (r *runner) stop(err error) {
	if err != nil {
		r.failMu.Lock()
		if r.failure == nil {
			r.failure = err
		}
		r.failMu.Unlock()
	}
	r.stopOnce.Do(func() {
		r.stopping.Store(true)
		close(r.stopped)
	})
}

func (r *runner) err() error {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return r.failure
}

// errNoSuccess is wrapped by the error of a run in which no request got a
// 2xx answer.
var errNoSuccess = errors.New("no request succeeded")

// noSuccess describes a run without a 2xx answer by its most frequent
// outcome.
func (r *runner) noSuccess(res *Result) error {
	top := res.Outcomes[0]
	return fmt.Errorf("%w: %d of %d answered %s at %s", errNoSuccess, top.Count, res.Requests, top.Outcome, r.cfg.URL)
}

// work is one worker's loop. Its error ends the run.
func (r *runner) work(ctx context.Context, sess Session, st *workerStats) error {
	for {
		var at time.Time
		if r.ticks != nil {
			t, ok := <-r.ticks
			if !ok {
				return nil
			}
			at = t
		} else {
			if r.stopping.Load() || (r.cfg.Requests > 0 && r.issued.Add(1) > r.cfg.Requests) {
				return nil
			}
			at = time.Now()
		}
		if err := r.exchange(ctx, sess, st, at); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// dispatch sends the scheduled start time of each request to the workers,
// Rate per second, until the run stops; then it closes r.ticks.
func (r *runner) dispatch(ctx context.Context) {
	defer close(r.ticks)
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := int64(0); r.cfg.Requests == 0 || i < r.cfg.Requests; i++ {
		at := r.start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-r.stopped:
				return
			case <-ctx.Done():
				return
			}
		}
		select {
		case r.ticks <- at:
		case <-r.stopped:
			return
		case <-ctx.Done():
			return
		}
	}
}

// exchange sends one request (and at most one retry the session asks
// for) and records its outcome and latency from at. Only an authorization
// error is returned; a request cut short by ctx is not counted.
func (r *runner) exchange(ctx context.Context, sess Session, st *workerStats, at time.Time) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, r.method, r.cfg.URL, nil)
		if err != nil {
			return err
		}
		if err := sess.Authorize(req); err != nil {
			return err
		}
		resp, err := r.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.record(st, outcomeKey{code: TransportCause(err)}, at)
			return nil
		}
		retry := attempt == 0 && sess.Retry(resp)
		_, derr := io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseDrain))
		resp.Body.Close()
		if derr != nil && ctx.Err() != nil {
			return nil
		}
		if retry {
			st.retries++
			continue
		}
		r.record(st, responseOutcome(resp), at)
		return nil
	}
}

// record counts one completed request and applies the stop rules.
func (r *runner) record(st *workerStats, k outcomeKey, at time.Time) {
	st.hist.record(time.Since(at))
	st.count(k)
	n := r.completed.Add(1)
	switch {
	case k.status == 0:
		r.failed.Add(1)
		if run := r.errRun.Add(1); run >= int64(r.cfg.StopAfterErrors) {
			r.stop(fmt.Errorf("the target stopped answering: %s at %s (%d failures in a row)", k.code, r.cfg.URL, run))
		}
		return
	case k.status/100 == 2:
		r.succeeded.Add(1)
	default:
		r.refused.Add(1)
	}
	r.errRun.Store(0)
	if r.cfg.FailAfter > 0 && n >= int64(r.cfg.FailAfter) && r.succeeded.Load() == 0 {
		r.stop(nil) // Run describes the failure from the merged outcomes
	}
}

// progress calls cfg.Progress once per second until stop is closed.
func (r *runner) progress(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if r.cfg.Progress == nil {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastAt := int64(0), r.start
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			n := r.completed.Load()
			r.cfg.Progress(Progress{
				Elapsed: now.Sub(r.start), Requests: n, Succeeded: r.succeeded.Load(),
				Refused: r.refused.Load(), Failed: r.failed.Load(),
				PerSecond: float64(n-last) / now.Sub(lastAt).Seconds(),
			})
			last, lastAt = n, now
		}
	}
}

// result merges the workers' counts.
func (r *runner) result(stats []*workerStats, elapsed time.Duration) *Result {
	var h histogram
	outcomes := map[outcomeKey]int64{}
	var retries int64
	for _, st := range stats {
		h.merge(&st.hist)
		for k, n := range st.outcomes {
			outcomes[k] += n
		}
		retries += st.retries
	}
	res := &Result{
		URL: r.cfg.URL, Method: r.method, Mode: r.cfg.Auth.Mode(), Workers: r.cfg.Workers, Rate: r.cfg.Rate,
		ElapsedSeconds: elapsed.Seconds(), Requests: int64(h.n), NonceRetries: retries,
		Exchanges: int64(h.n) + retries, Latency: latencyOf(&h),
		Generator: GeneratorCost{Cores: runtime.GOMAXPROCS(0)},
	}
	if elapsed > 0 {
		res.PerSecond = float64(h.n) / elapsed.Seconds()
	}
	for k, n := range outcomes {
		res.Outcomes = append(res.Outcomes, Outcome{Status: k.status, Error: k.code, Outcome: k.String(), Count: n})
		if k.status/100 == 2 {
			res.Succeeded += n
		}
	}
	sort.Slice(res.Outcomes, func(i, j int) bool {
		a, b := res.Outcomes[i], res.Outcomes[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Outcome < b.Outcome
	})
	return res
}
