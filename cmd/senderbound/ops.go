package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/resource"
)

// The operational endpoints of serve-issuer and serve-resource.
const (
	opsHealthPath  = "/healthz"
	opsReadyPath   = "/readyz"
	opsMetricsPath = "/metrics"
)

// opsCheckTimeout bounds one readiness check (a Redis PING, a key fetch).
const opsCheckTimeout = 2 * time.Second

// opsDurationBuckets, in seconds, cover 50 µs (a proof check) to 10 s (a
// slow key fetch).
var opsDurationBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// serveOpsFlags is --ops-addr, shared by both servers.
type serveOpsFlags struct {
	addr string
}

func (f *serveOpsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "ops-addr", "", "serve "+opsHealthPath+", "+opsReadyPath+" and "+opsMetricsPath+" on this separate plain-HTTP listener HOST:PORT, for the monitoring network only (default: on the main listener when --addr is loopback, otherwise not at all)")
}

func (f *serveOpsFlags) check(e *env, cmd string) error {
	if f.addr == "" {
		return nil
	}
	if _, err := serveAddrHost(f.addr); err != nil {
		return serveUsagef(e, cmd, "--ops-addr must be HOST:PORT")
	}
	return nil
}

// serveOps holds one server's operational endpoints: a Prometheus
// registry of its own (never the global one, so that two servers in one
// process do not mix), the readiness checks, and the last state of each
// check, so that a change is logged once rather than on every probe.
type serveOps struct {
	reg    *prometheus.Registry
	logger *slog.Logger

	mu      sync.Mutex
	checks  []opsCheck
	failing map[string]bool
}

// opsCheck is one readiness condition; check returns nil when it holds.
type opsCheck struct {
	name  string
	check func(ctx context.Context) error
}

func newServeOps(logger *slog.Logger) *serveOps {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &serveOps{reg: reg, logger: logger, failing: map[string]bool{}}
}

// addCheck adds a readiness condition, reported under name.
func (o *serveOps) addCheck(name string, check func(ctx context.Context) error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.checks = append(o.checks, opsCheck{name, check})
}

// ready runs every check and returns one "name: ok" or "name: unavailable"
// line per check and whether all held. A check that starts or stops
// failing is logged once, with its error: the error is for the operator's
// log, never for the HTTP answer.
func (o *serveOps) ready(ctx context.Context) (string, bool) {
	o.mu.Lock()
	checks := append([]opsCheck(nil), o.checks...)
	o.mu.Unlock()
	var b strings.Builder
	all := true
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, opsCheckTimeout)
		err := c.check(cctx)
		cancel()
		state := "ok"
		if err != nil {
			state, all = "unavailable", false
		}
		fmt.Fprintf(&b, "%s: %s\n", c.name, state)
		o.mu.Lock()
		was := o.failing[c.name]
		o.failing[c.name] = err != nil
		o.mu.Unlock()
		switch {
		case err != nil && !was:
			o.logger.Warn("not ready", slog.String("check", c.name), slog.String("error", opsErrorText(err)))
		case err == nil && was:
			o.logger.Info("ready again", slog.String("check", c.name))
		}
	}
	return b.String(), all
}

// opsErrorText drops the package prefix of a library error.
func opsErrorText(err error) string {
	s := err.Error()
	for _, p := range []string{"resource: ", "issuer: "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// handler serves the three endpoints. /healthz answers 200 while the
// process serves; /readyz 200 or 503 with one line per check; /metrics
// the registry in the Prometheus text format.
func (o *serveOps) handler() http.Handler {
	mux := http.NewServeMux()
	o.register(mux)
	return mux
}

func (o *serveOps) register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+opsHealthPath, func(w http.ResponseWriter, _ *http.Request) {
		opsText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET "+opsReadyPath, func(w http.ResponseWriter, r *http.Request) {
		body, ok := o.ready(r.Context())
		if !ok {
			opsText(w, http.StatusServiceUnavailable, "not ready\n"+body)
			return
		}
		opsText(w, http.StatusOK, "ready\n"+body)
	})
	mux.Handle("GET "+opsMetricsPath, promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{}))
}

func opsText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// start places the endpoints. With --ops-addr they get their own
// listener, started here and stopped by the returned function. Without
// it they join main when the server listens on loopback only (a local
// demo, where nobody else can reach them), and are not served otherwise:
// on a public port, metrics would tell anyone the server's traffic,
// refusal reasons and dependencies' health. It returns the handler for
// the main listener.
func (o *serveOps) start(ctx context.Context, e *env, f serveOpsFlags, listenHost string, main http.Handler) (http.Handler, func(), error) {
	if f.addr == "" {
		if !isLoopbackAddr(listenHost) {
			fmt.Fprintf(e.stderr, "note: %s, %s and %s are not served (the listener is not loopback); set --ops-addr to serve them to your monitoring\n", opsHealthPath, opsReadyPath, opsMetricsPath)
			return main, func() {}, nil
		}
		mux := http.NewServeMux()
		o.register(mux)
		mux.Handle("/", main)
		return mux, func() {}, nil
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--ops-addr: %w", err)
	}
	srv := newHTTPServer(o.handler())
	srv.BaseContext = func(net.Listener) context.Context { return ctx }
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.logger.Error("ops listener failed", slog.String("error", err.Error()))
		}
	}()
	fmt.Fprintf(e.stdout, "ops endpoints on http://%s (%s, %s, %s)\n", ln.Addr(), opsHealthPath, opsReadyPath, opsMetricsPath)
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}
	return main, stop, nil
}

// opsResourceMetrics implements resource.Metrics with Prometheus
// collectors. It also logs, at Warn and at most once per interval per
// reason, each request refused with 503 because a dependency (keys,
// replay store) is unavailable: unlike other refusals, which any client
// can cause and which are logged at Debug, these mean the service is
// failing.
type opsResourceMetrics struct {
	requests  *prometheus.CounterVec
	nonces    prometheus.Counter
	durations *prometheus.HistogramVec
	warn      opsLimitedLog
}

var _ resource.Metrics = (*opsResourceMetrics)(nil)

func newOpsResourceMetrics(o *serveOps) *opsResourceMetrics {
	m := &opsResourceMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "senderbound_resource_requests_total",
			Help: "Requests decided by the resource server: outcome accepted (binding dpop, mtls or bearer) or refused (reason: the stable refusal reason).",
		}, []string{"outcome", "binding", "reason"}),
		nonces: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "senderbound_resource_nonce_challenges_total",
			Help: "Requests answered with use_dpop_nonce and a fresh DPoP-Nonce.",
		}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "senderbound_resource_operation_duration_seconds",
			Help:    "Duration of access-token verification (token, on a token-cache miss), DPoP proof verification (proof), replay-store calls (replay_store) and issuer key-set fetches (key_fetch); result error counts refused tokens and proofs, replay-store errors and failed fetches.",
			Buckets: opsDurationBuckets,
		}, []string{"operation", "result"}),
		warn: opsLimitedLog{logger: o.logger, every: 10 * time.Second},
	}
	o.reg.MustRegister(m.requests, m.nonces, m.durations)
	return m
}

// Request implements resource.Metrics.
func (m *opsResourceMetrics) Request(b resource.Binding, e *resource.Error) {
	if e == nil {
		m.requests.WithLabelValues("accepted", string(b), "").Inc()
		return
	}
	m.requests.WithLabelValues("refused", "", string(e.Reason)).Inc()
	if e.Code == oautherr.UseDPoPNonce {
		m.nonces.Inc()
	}
	if e.Status == http.StatusServiceUnavailable {
		m.warn.log(string(e.Reason), "request refused: service unavailable", slog.String("reason", string(e.Reason)), slog.Int("status", e.Status))
	}
}

// Observe implements resource.Metrics.
func (m *opsResourceMetrics) Observe(op resource.Operation, d time.Duration, err error) {
	m.durations.WithLabelValues(string(op), opsResult(err)).Observe(d.Seconds())
}

func opsResult(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// opsIssuerMetrics implements issuer.Metrics with Prometheus collectors.
type opsIssuerMetrics struct {
	issued    *prometheus.CounterVec
	refused   *prometheus.CounterVec
	nonces    prometheus.Counter
	durations *prometheus.HistogramVec
}

var _ issuer.Metrics = (*opsIssuerMetrics)(nil)

func newOpsIssuerMetrics(o *serveOps) *opsIssuerMetrics {
	m := &opsIssuerMetrics{
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "senderbound_issuer_tokens_issued_total",
			Help: "Access tokens issued, by grant type and binding (dpop, mtls or bearer).",
		}, []string{"grant", "binding"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "senderbound_issuer_requests_refused_total",
			Help: "Requests refused, by endpoint (token, introspection, certificate) and OAuth error code.",
		}, []string{"endpoint", "error"}),
		nonces: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "senderbound_issuer_nonce_challenges_total",
			Help: "Token requests answered with use_dpop_nonce and a fresh DPoP-Nonce.",
		}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "senderbound_issuer_operation_duration_seconds",
			Help:    "Duration of replay-store calls (replay_store); result error counts store failures.",
			Buckets: opsDurationBuckets,
		}, []string{"operation", "result"}),
	}
	o.reg.MustRegister(m.issued, m.refused, m.nonces, m.durations)
	return m
}

// TokenIssued implements issuer.Metrics.
func (m *opsIssuerMetrics) TokenIssued(grant, binding string) {
	m.issued.WithLabelValues(grant, binding).Inc()
}

// Refused implements issuer.Metrics.
func (m *opsIssuerMetrics) Refused(endpoint string, e *issuer.Error) {
	m.refused.WithLabelValues(endpoint, e.Code).Inc()
	if e.Code == oautherr.UseDPoPNonce {
		m.nonces.Inc()
	}
}

// Observe implements issuer.Metrics.
func (m *opsIssuerMetrics) Observe(op issuer.Operation, d time.Duration, err error) {
	m.durations.WithLabelValues(string(op), opsResult(err)).Observe(d.Seconds())
}

// opsLimitedLog writes at most one Warn record per key and interval, so
// that a dependency failing under load does not flood the log; the next
// record says how many were left out.
type opsLimitedLog struct {
	logger *slog.Logger
	every  time.Duration
	mu     sync.Mutex
	last   map[string]time.Time
	left   map[string]int
}

func (l *opsLimitedLog) log(key, msg string, attrs ...slog.Attr) {
	now := time.Now()
	l.mu.Lock()
	if l.last == nil {
		l.last, l.left = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		l.left[key]++
		l.mu.Unlock()
		return
	}
	left := l.left[key]
	l.last[key], l.left[key] = now, 0
	l.mu.Unlock()
	if left > 0 {
		attrs = append(attrs, slog.Int("similar_left_out", left))
	}
	l.logger.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}

// opsRedisLogger receives go-redis's own log lines (installed once with
// redis.SetLogger, whose setting is global to the process) and writes
// each as a Warn record to the logger of every running server that uses
// Redis, at most one per interval and server, instead of unstructured
// lines on the process's stderr. go-redis does not say which client a
// line is about, so with several servers in one process each gets them
// all.
type opsRedisLogger struct {
	mu    sync.Mutex
	sinks map[*opsLimitedLog]struct{}
}

var (
	opsRedisLog     = &opsRedisLogger{sinks: map[*opsLimitedLog]struct{}{}}
	opsRedisLogOnce sync.Once
)

// Printf implements go-redis's logging interface.
func (l *opsRedisLogger) Printf(_ context.Context, format string, v ...any) {
	msg := strings.TrimSpace(strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
	l.mu.Lock()
	sinks := make([]*opsLimitedLog, 0, len(l.sinks))
	for s := range l.sinks {
		sinks = append(sinks, s)
	}
	l.mu.Unlock()
	for _, s := range sinks {
		s.log("redis", "redis client", slog.String("detail", msg))
	}
}

// opsQuietRedis routes go-redis's log lines to logger until the returned
// function is called.
func opsQuietRedis(logger *slog.Logger) (stop func()) {
	opsRedisLogOnce.Do(func() { redis.SetLogger(opsRedisLog) })
	sink := &opsLimitedLog{logger: logger, every: 10 * time.Second}
	opsRedisLog.mu.Lock()
	opsRedisLog.sinks[sink] = struct{}{}
	opsRedisLog.mu.Unlock()
	return func() {
		opsRedisLog.mu.Lock()
		delete(opsRedisLog.sinks, sink)
		opsRedisLog.mu.Unlock()
	}
}

// opsRedisCheck is the readiness check of a Redis replay store: PING.
func opsRedisCheck(rdb *redis.Client) func(ctx context.Context) error {
	return func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
}

// opsKeysCheck is the readiness check of the issuer's keys at the
// resource server: they were loaded (stale keys still count: they are in
// use while a refresh runs). It fetches them when none were, no more
// often than the key set's MinRefreshInterval.
func opsKeysCheck(keys *resource.RemoteKeySet) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, err := keys.Keys(ctx)
		return err
	}
}

// opsIssuerKeysCheck is the readiness check of serve-issuer's signing
// keys: the published key set is not empty.
func opsIssuerKeysCheck(keys *issuer.KeySet) func(ctx context.Context) error {
	return func(context.Context) error {
		if len(keys.JWKS(time.Now()).Keys) == 0 {
			return errors.New("no signing key published")
		}
		return nil
	}
}

// opsCRLCheck is the readiness check of the fallback CA's revocation
// list: one was fetched and it is not past its nextUpdate plus grace, the
// rule by which fallback certificates are refused with 503.
func opsCRLCheck(f *fallback.CRLFetcher, grace time.Duration) func(ctx context.Context) error {
	return func(context.Context) error {
		l := f.Current()
		switch {
		case l == nil:
			return errors.New("no CRL fetched yet")
		case time.Now().After(l.NextUpdate().Add(grace)):
			return fmt.Errorf("CRL stale: nextUpdate %s plus grace %s has passed", l.NextUpdate().UTC().Format(time.RFC3339), grace)
		}
		return nil
	}
}

// serveStartupKeys fetches the issuer's keys once before serve-resource
// starts listening and says on stderr whether that worked. On failure the
// server still starts (requests get 503 keys_unavailable until the keys
// load) and a goroutine keeps retrying, every retry interval, until the
// keys load or ctx ends; it says on stderr when they finally load. The
// returned function waits for that goroutine.
func serveStartupKeys(ctx context.Context, e *env, keys *resource.RemoteKeySet, source string, retry time.Duration) func() {
	attempt := func() error {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := keys.Refresh(fctx)
		return err
	}
	err := attempt()
	if err == nil {
		fmt.Fprintf(e.stderr, "keys of the issuer loaded from %s\n", source)
		return func() {}
	}
	fmt.Fprintf(e.stderr, "WARNING cannot load the keys of the issuer from %s: %s\n  serving anyway: requests get 503 until the keys load; retrying every %s\n", source, opsErrorText(err), retry)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(retry)
		defer t.Stop()
		failures := 1
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := attempt(); err != nil {
				failures++
				continue
			}
			fmt.Fprintf(e.stderr, "keys of the issuer loaded from %s after %d failed attempt(s)\n", source, failures)
			return
		}
	}()
	return func() { <-done }
}
