// Command prometheus-metrics is a protected API whose resource.Verifier
// and key set report to Prometheus through the resource.Metrics hook: the
// library has no metrics dependency, and this program shows the few
// lines that connect it to client_golang. Metrics are served on their own
// listener, for the monitoring network only.
//
// Its defaults chain to the senderbound CLI's issuer on loopback. From the
// repository root, start the issuer, this API, and a DPoP client calling
// it:
//
//	export SENDERBOUND_CLIENT_SECRET_APP=example-secret-0123456789
//	go run ./cmd/senderbound serve-issuer --addr 127.0.0.1:9000 --client app &
//	go run ./examples/prometheus-metrics &
//	CLIENT_SECRET=$SENDERBOUND_CLIENT_SECRET_APP go run ./examples/oauth2-client -url http://127.0.0.1:8446/resource
//
// then read the counters (three accepted DPoP requests) with
// "curl http://127.0.0.1:9090/metrics".
//
// It listens on loopback over plain HTTP (a local demo: DPoP over plain
// HTTP is accepted only there) and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

// promMetrics implements resource.Metrics with three collectors.
type promMetrics struct {
	requests  *prometheus.CounterVec   // by outcome, binding, reason
	nonces    prometheus.Counter       // use_dpop_nonce challenges
	durations *prometheus.HistogramVec // token, proof, replay_store, key_fetch
}

var _ resource.Metrics = (*promMetrics)(nil)

func newPromMetrics(reg prometheus.Registerer) *promMetrics {
	m := &promMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "api_auth_requests_total", Help: "Requests decided by the verifier.",
		}, []string{"outcome", "binding", "reason"}),
		nonces: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "api_auth_nonce_challenges_total", Help: "use_dpop_nonce challenges sent.",
		}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "api_auth_operation_duration_seconds", Help: "Token and proof checks, replay-store calls, key fetches.",
			Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10},
		}, []string{"operation", "result"}),
	}
	reg.MustRegister(m.requests, m.nonces, m.durations)
	return m
}

// Request counts one decision; e.Reason is the stable refusal reason, a
// bounded set of values suitable as a label.
func (m *promMetrics) Request(b resource.Binding, e *resource.Error) {
	if e == nil {
		m.requests.WithLabelValues("accepted", string(b), "").Inc()
		return
	}
	m.requests.WithLabelValues("refused", "", string(e.Reason)).Inc()
	if e.Code == oautherr.UseDPoPNonce {
		m.nonces.Inc()
	}
}

// Observe records one timed operation.
func (m *promMetrics) Observe(op resource.Operation, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.durations.WithLabelValues(string(op), result).Observe(d.Seconds())
}

type options struct {
	Issuer, Audience, PublicURL string
	HTTPClient                  *http.Client // for discovery and JWKS; nil = 10 s timeout, system roots
}

func main() {
	var o options
	flag.StringVar(&o.Issuer, "issuer", "http://127.0.0.1:9000", "trusted issuer identifier (exact)")
	flag.StringVar(&o.Audience, "audience", "https://resource.senderbound.test", "this API's identifier (token aud)")
	addr := flag.String("addr", "127.0.0.1:8446", "API listen address (loopback: plain HTTP)")
	metricsAddr := flag.String("metrics-addr", "127.0.0.1:9090", "listen address of /metrics")
	flag.Parse()
	if host, _, err := net.SplitHostPort(*addr); err != nil || !isLoopback(host) {
		log.Fatal("-addr must be a loopback HOST:PORT: this demo serves DPoP over plain HTTP")
	}
	o.PublicURL = "http://" + *addr

	reg := prometheus.NewRegistry() // this server's own, not the global one
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	api, err := newHandler(o, newPromMetrics(reg))
	if err != nil {
		log.Fatal(err)
	}
	ops := http.NewServeMux()
	ops.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	servers := []*http.Server{
		{Handler: api, ReadHeaderTimeout: 10 * time.Second},
		{Handler: ops, ReadHeaderTimeout: 10 * time.Second},
	}
	var lns []net.Listener
	for _, a := range []string{*addr, *metricsAddr} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			log.Fatal(err)
		}
		lns = append(lns, ln)
	}
	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func() { errc <- s.Serve(lns[i]) }()
	}
	log.Printf("listening on http://%s/resource (metrics on http://%s/metrics)", lns[0].Addr(), lns[1].Addr())
	select {
	case err := <-errc:
		log.Fatal(err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}
	log.Print("shut down")
}

// isLoopback reports whether host is a loopback IP address. A name, even
// "localhost", is not: the hosts file or DNS can point it elsewhere.
func isLoopback(host string) bool {
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// newHandler builds the API; m receives the verifier's and the key set's
// measurements.
func newHandler(o options, m resource.Metrics) (http.Handler, error) {
	keys, err := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{Issuer: o.Issuer, HTTPClient: o.HTTPClient, Metrics: m})
	if err != nil {
		return nil, err
	}
	replay, err := replaycache.NewLRU(replaycache.Config{Capacity: 1 << 20})
	if err != nil {
		return nil, err
	}
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers:    []resource.Issuer{{Identifier: o.Issuer, Keys: keys}},
		Audience:   o.Audience,
		PublicURL:  o.PublicURL,
		DPoP:       &resource.DPoPConfig{Algorithms: []string{"ES256", "EdDSA", "PS256"}, ReplayStore: replay},
		// Loopback demo only: DPoP requires TLS everywhere else.
		InsecureAllowDPoPOverHTTP: true,
		Metrics:                   m,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /resource", v.Middleware(resource.Policy{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := resource.PrincipalFromContext(r.Context())
		_, _ = w.Write([]byte("hello " + p.Subject + " (" + string(p.Binding) + "-bound)\n"))
	})))
	return mux, nil
}
