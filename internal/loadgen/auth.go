package loadgen

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// Authorizer gives each worker the credentials of its requests. One
// implementation per mode: [NoAuth], [Bearer] (which, over a client
// certificate set in the HTTP client, is also the mTLS-bound mode) and
// [DPoP]. A new mode (for example a certificate-signed request) is one
// more Authorizer; the engine needs nothing else. An Authorizer serves one
// run at a time. The engine also uses two optional methods, found by type
// assertion: Run(ctx context.Context), background work for the length of
// the run (the DPoP proof pool, token refresh), and Warnings() []string,
// added to the result.
type Authorizer interface {
	// Mode names the mode in reports, e.g. "dpop".
	Mode() string
	// NewSession returns the state of one worker. Each worker calls it
	// once and uses the session from its own goroutine only.
	NewSession() Session
}

// Session authorizes the requests of one worker.
type Session interface {
	// Authorize adds the request's credentials (header fields) to req.
	// An error ends the run.
	Authorize(req *http.Request) error
	// Retry sees every response to a request that Authorize prepared and
	// reports whether the server asked for one more attempt with new
	// credentials (a DPoP nonce challenge). The engine retries at most
	// once per request.
	Retry(resp *http.Response) bool
}

// NoAuth sends requests without credentials, as the baseline of an
// unprotected handler.
type NoAuth struct{}

var _ Authorizer = NoAuth{}

// Mode returns "none".
func (NoAuth) Mode() string { return "none" }

// NewSession returns a session that adds nothing.
func (NoAuth) NewSession() Session { return noSession{} }

type noSession struct{}

func (noSession) Authorize(*http.Request) error { return nil }
func (noSession) Retry(*http.Response) bool     { return false }

// Bearer sends "Authorization: Bearer <token>" (RFC 6750 §2.1). With a
// client certificate in the HTTP client's TLS configuration it is the
// mTLS-bound token mode (RFC 8705 §3); set Name to "mtls" then. Do not
// change its fields after the run has started.
type Bearer struct {
	// Name is what Mode returns; "" means "bearer".
	Name string
	// Token is the access token. Required.
	Token string
	// Lifetime is how long Token stays valid; with Refresh set, a new
	// token is requested at three quarters of it, and 1.5 s before its
	// end at the latest. 0 means it is not refreshed.
	Lifetime time.Duration
	// Refresh, when set, supplies the next token.
	Refresh TokenSource

	value atomic.Pointer[string] // "Bearer <token>" once refreshed
	keep  refresher
}

var _ Authorizer = (*Bearer)(nil)

// Mode returns Name, or "bearer".
func (b *Bearer) Mode() string {
	if b.Name == "" {
		return "bearer"
	}
	return b.Name
}

// Run refreshes the token, when Refresh and Lifetime are set, until ctx
// ends.
func (b *Bearer) Run(ctx context.Context) {
	b.keep.source = b.Refresh
	b.keep.set = func(tok string) {
		v := "Bearer " + tok
		b.value.Store(&v)
	}
	b.keep.run(ctx, b.Lifetime)
}

// Warnings reports failed token refreshes.
func (b *Bearer) Warnings() []string { return b.keep.warnings() }

// NewSession returns a session that sets the Authorization field.
func (b *Bearer) NewSession() Session { return &bearerSession{b: b, value: "Bearer " + b.Token} }

type bearerSession struct {
	b     *Bearer
	value string // before any refresh
}

func (s *bearerSession) Authorize(req *http.Request) error {
	v := s.value
	if p := s.b.value.Load(); p != nil {
		v = *p
	}
	req.Header.Set("Authorization", v)
	return nil
}

func (s *bearerSession) Retry(*http.Response) bool { return false }
