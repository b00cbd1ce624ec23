package fallback

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/oauth2"
)

// Defaults applied by [NewTransport] for zero TransportConfig fields.
const (
	// DefaultFailureThreshold is the number of consecutive token-endpoint
	// failures that open the circuit.
	DefaultFailureThreshold = 3
	// DefaultOpenTimeout is how long the circuit stays open before the
	// issuer is probed, and the interval between probes while it is down.
	DefaultOpenTimeout = 30 * time.Second
	// DefaultProbeTimeout bounds one probe.
	DefaultProbeTimeout = 10 * time.Second
)

// TransportConfig configures a [Transport]. NewTransport copies it.
type TransportConfig struct {
	// Tokens is the token path: a RoundTripper that adds access tokens to
	// the requests, for example an oauth2.Transport (clientcredentials)
	// over a dpop.Transport, or over an http.Transport presenting the
	// client certificate the tokens are bound to. Required.
	Tokens http.RoundTripper
	// Fallback is the fallback path: a RoundTripper that presents the
	// fallback certificate, over mTLS (an http.Transport whose TLS
	// configuration uses [CertificateSource.GetClientCertificate]) or as
	// signed requests ([CertificateSource.SignedTransport]). It must not
	// add access tokens. Required.
	Fallback http.RoundTripper
	// Probe asks the issuer whether it answers again, for example
	// [ProbeURL] on its metadata or token endpoint: nil error means it
	// does. It is called in the background while the circuit is not
	// closed, at most once per OpenTimeout, with a context bounded by
	// ProbeTimeout. Required.
	Probe func(ctx context.Context) error
	// IsTokenFailure tells which errors of the token path are failures
	// of the token endpoint (counted towards opening the circuit). nil
	// means [IsTokenEndpointFailure].
	IsTokenFailure func(err error) bool
	// FailureThreshold is the number of consecutive token-endpoint
	// failures that open the circuit. 0 means DefaultFailureThreshold.
	FailureThreshold uint32
	// OpenTimeout is how long the circuit stays open before the first
	// probe, and the interval between probes. 0 means DefaultOpenTimeout.
	OpenTimeout time.Duration
	// ProbeTimeout bounds one probe. 0 means DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// OnStateChange, when set, is called on every change of the circuit's
	// state (closed, open, half-open). It is called with the breaker's
	// lock held: it must not block and must not call the Transport.
	OnStateChange func(from, to gobreaker.State)
	// Logger receives one record per state change (Warn when the circuit
	// opens, Info otherwise). nil means slog.Default().
	Logger *slog.Logger
	// Name names the circuit in logs. "" means "fallback".
	Name string
}

// Transport is an http.RoundTripper that sends requests with access
// tokens and switches to the fallback certificate while the token
// endpoint is down. It wraps a gobreaker circuit breaker:
//
//   - closed (normal): every request goes through the token path. When
//     the token path fails because the token endpoint failed (see
//     [IsTokenEndpointFailure]: connection errors, timeouts, 5xx answers;
//     never 4xx), the failure is counted and the request is sent again
//     through the fallback path, provided its body can be sent again (no
//     body, or GetBody set); otherwise the error is returned. After
//     FailureThreshold consecutive failures the circuit opens.
//   - open: every request goes through the fallback path, at once. In the
//     background, after OpenTimeout and then every OpenTimeout, Probe asks
//     the issuer whether it answers (the circuit is half-open meanwhile,
//     requests still take the fallback path); the first successful probe
//     closes the circuit.
//
// A resource server's own answer (any status) is returned unchanged and
// never counts, nor does a transport error on the way to the resource:
// only token-endpoint failures do. Token requests themselves must not go
// through a Transport.
//
// State changes are logged and passed to OnStateChange. A Transport is
// safe for concurrent use; Close stops its background prober.
type Transport struct {
	tokens, fallback http.RoundTripper
	probe            func(context.Context) error
	isFailure        func(error) bool
	openTimeout      time.Duration
	probeTimeout     time.Duration
	onChange         func(from, to gobreaker.State)
	logger           *slog.Logger
	cb               *gobreaker.CircuitBreaker[*http.Response]

	kick      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport validates cfg, builds the circuit breaker and starts the
// background prober (idle while the circuit is closed). Call Close when
// the Transport is no longer used.
func NewTransport(cfg TransportConfig) (*Transport, error) {
	if cfg.Tokens == nil || cfg.Fallback == nil || cfg.Probe == nil {
		return nil, errors.New("fallback: TransportConfig.Tokens, Fallback and Probe are required")
	}
	if cfg.OpenTimeout < 0 || cfg.ProbeTimeout < 0 {
		return nil, errors.New("fallback: negative duration in TransportConfig")
	}
	t := &Transport{
		tokens: cfg.Tokens, fallback: cfg.Fallback, probe: cfg.Probe, isFailure: cfg.IsTokenFailure,
		openTimeout: cfg.OpenTimeout, probeTimeout: cfg.ProbeTimeout, onChange: cfg.OnStateChange, logger: cfg.Logger,
		kick: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if t.isFailure == nil {
		t.isFailure = IsTokenEndpointFailure
	}
	if t.openTimeout == 0 {
		t.openTimeout = DefaultOpenTimeout
	}
	if t.probeTimeout == 0 {
		t.probeTimeout = DefaultProbeTimeout
	}
	if t.logger == nil {
		t.logger = slog.Default()
	}
	threshold := cfg.FailureThreshold
	if threshold == 0 {
		threshold = DefaultFailureThreshold
	}
	name := cfg.Name
	if name == "" {
		name = "fallback"
	}
	t.cb = gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     t.openTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
		IsSuccessful: func(err error) bool {
			return err == nil || !t.counts(err)
		},
		// An error on the way to the resource says nothing about the
		// issuer; a 4xx from the token endpoint says it answers.
		IsExcluded: func(err error) bool {
			return err != nil && !t.counts(err) && !tokenEndpointAnswered(err)
		},
		OnStateChange: t.stateChanged,
	})
	t.wg.Add(1)
	go t.prober()
	return t, nil
}

// State returns the circuit's current state.
func (t *Transport) State() gobreaker.State { return t.cb.State() }

// Close stops the background prober and waits for it. It does not close
// the token or fallback paths. It is safe to call more than once.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() { close(t.done) })
	t.wg.Wait()
	return nil
}

// stateChanged runs under the breaker's lock: it only logs, notifies and
// wakes the prober.
func (t *Transport) stateChanged(name string, from, to gobreaker.State) {
	level := slog.LevelInfo
	if to == gobreaker.StateOpen {
		level = slog.LevelWarn
	}
	t.logger.Log(context.Background(), level, "fallback circuit state changed",
		slog.String("circuit", name), slog.String("from", from.String()), slog.String("to", to.String()))
	if t.onChange != nil {
		t.onChange(from, to)
	}
	if to == gobreaker.StateOpen {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	}
}

// prober waits for the circuit to open, then probes the issuer every
// openTimeout until a probe closes the circuit.
func (t *Transport) prober() {
	defer t.wg.Done()
	for {
		select {
		case <-t.done:
			return
		case <-t.kick:
		}
		for t.cb.State() != gobreaker.StateClosed {
			timer := time.NewTimer(t.openTimeout)
			select {
			case <-t.done:
				timer.Stop()
				return
			case <-timer.C:
			}
			// Half-open now: the probe is the one request let through,
			// and its success closes the circuit.
			_, _ = t.cb.Execute(func() (*http.Response, error) {
				ctx, cancel := context.WithTimeout(context.Background(), t.probeTimeout)
				defer cancel()
				if err := t.probe(ctx); err != nil {
					return nil, errProbe{err}
				}
				return nil, nil
			})
		}
	}
}

// counts reports whether err counts as a failure of the issuer: a failed
// probe, or a token-endpoint failure.
func (t *Transport) counts(err error) bool {
	var p errProbe
	return errors.As(err, &p) || t.isFailure(err)
}

// errProbe marks a failed probe, which always counts as a failure.
type errProbe struct{ err error }

func (e errProbe) Error() string { return "fallback: issuer probe failed: " + e.err.Error() }
func (e errProbe) Unwrap() error { return e.err }

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.cb.State() != gobreaker.StateClosed {
		return t.fallback.RoundTrip(req)
	}
	// The token path may consume or close the body before it fails; a
	// second attempt needs a fresh one.
	replay := req
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			replay = nil
		}
	}
	resp, err := t.cb.Execute(func() (*http.Response, error) { return t.tokens.RoundTrip(req) })
	switch {
	case err == nil:
		return resp, nil
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		// Opened (or half-open) since the check above; nothing was sent.
		return t.fallback.RoundTrip(req)
	case !t.isFailure(err) || replay == nil:
		return nil, err
	}
	r2 := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		body, gerr := req.GetBody()
		if gerr != nil {
			return nil, err
		}
		r2.Body = body
	}
	return t.fallback.RoundTrip(r2)
}

// IsTokenEndpointFailure is the default classification of token-path
// errors. It reports true for:
//
//   - an *oauth2.RetrieveError whose response status is 5xx (the token
//     endpoint answered, but failed);
//   - a *url.Error, unless it wraps context.Canceled: the error of the
//     token source's own http.Client (connection refused or reset, DNS,
//     TLS handshake, timeout), which golang.org/x/oauth2 returns from
//     Transport.RoundTrip before sending anything to the resource.
//
// It reports false for everything else, in particular an
// *oauth2.RetrieveError with a 4xx status (invalid_client,
// invalid_scope, ...: the issuer answers, and a certificate would only
// hide a configuration error), and errors of the RoundTripper that sends
// the request to the resource: an http.Transport never returns a
// *url.Error (only http.Client wraps errors in one), so a resource that is
// down never opens the circuit. A resource's answer is not an error and
// never counts.
func IsTokenEndpointFailure(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.Response != nil && re.Response.StatusCode >= 500
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// tokenEndpointAnswered reports whether err is the token endpoint's own
// answer (a RetrieveError other than 5xx).
func tokenEndpointAnswered(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && (re.Response == nil || re.Response.StatusCode < 500)
}

// ProbeURL returns a probe for [TransportConfig.Probe]: a GET of u (the
// issuer's metadata or JWKS URL, say) with client (nil means a client with
// default settings) that succeeds when the issuer answers with a status
// below 500. The answer's body is discarded.
func ProbeURL(client *http.Client, u string) func(ctx context.Context) error {
	if client == nil {
		client = &http.Client{}
	}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return errors.New("fallback: issuer probe answered " + resp.Status)
		}
		return nil
	}
}
