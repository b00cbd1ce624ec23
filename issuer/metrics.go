package issuer

import (
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/timedstore"
)

// Metrics receives the measurements of a [Server], for example to export
// them to Prometheus. The package takes no metrics dependency: an
// implementation translates the calls into counters and histograms of its
// choice.
//
// Implementations must be safe for concurrent use and must not block:
// the methods run on the request path. A nil Metrics (the default) costs
// nothing.
type Metrics interface {
	// TokenIssued is called once per token response: grant is the
	// grant_type (a built-in one or one registered in
	// ServerConfig.Grants, never an unregistered value a client sent)
	// and binding is "dpop" (cnf.jkt), "mtls" (cnf.x5t#S256) or "bearer"
	// (unbound).
	TokenIssued(grant, binding string)
	// Refused is called once per refused request: endpoint is "token",
	// "introspection", "par" (the pushed authorization request endpoint)
	// or "certificate" (the fallback certificate endpoint) and e the error rendered;
	// its Code is the RFC 6749 §5.2 (or RFC 9449) error code, and
	// "use_dpop_nonce" marks a nonce challenge.
	Refused(endpoint string, e *Error)
	// Observe is called once a timed operation ends, with its duration
	// and its error (nil on success).
	Observe(op Operation, d time.Duration, err error)
}

// Operation names an operation whose duration [Metrics.Observe] reports.
// Its values are fixed and suitable as metric label values.
type Operation string

// OpReplayStore is one check-and-store call to the replay store (DPoP
// proofs and client assertion jti values); an error means the store
// failed, not that a value was replayed.
const OpReplayStore Operation = "replay_store"

// OpClientKeyFetch is one fetch of a client's jwks_uri (see
// [ClientJWKSConfig]); an error means the keys could not be fetched or
// the document was refused.
const OpClientKeyFetch Operation = "client_key_fetch"

// bindingKind names b for [Metrics.TokenIssued].
func bindingKind(b Binding) string {
	switch {
	case b.JKT != "":
		return "dpop"
	case b.X5TS256 != "":
		return "mtls"
	}
	return "bearer"
}

// timedReplayStore returns s reporting each call to m as OpReplayStore,
// or s itself when m is nil.
func timedReplayStore(s dpop.ReplayStore, m Metrics) dpop.ReplayStore {
	if m == nil {
		return s
	}
	return timedstore.Wrap(s, func(d time.Duration, err error) { m.Observe(OpReplayStore, d, err) })
}
