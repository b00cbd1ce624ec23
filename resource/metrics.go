package resource

import (
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/timedstore"
)

// Metrics receives the measurements of a [Verifier] and a [RemoteKeySet],
// for example to export them to Prometheus. The package takes no metrics
// dependency: an implementation translates the calls into counters and
// histograms of its choice.
//
// Implementations must be safe for concurrent use and must not block:
// the methods run on the request path. A nil Metrics (the default) costs
// nothing: no clock is read and no call is made.
type Metrics interface {
	// Request is called once per request that [Verifier.Check] decides.
	// When the request was accepted, e is nil and b says how possession
	// was proven. When it was refused, b is "" and e is the [*Error]
	// returned: e.Reason is the stable reason, e.Status the HTTP status,
	// and e.Code "use_dpop_nonce" marks a nonce challenge.
	Request(b Binding, e *Error)
	// Observe is called once a timed operation ends, with its duration
	// and its error (nil on success). For OpToken and OpProof an error
	// means the token or proof was refused; for OpReplayStore and
	// OpKeyFetch it means the store or the issuer failed.
	Observe(op Operation, d time.Duration, err error)
}

// Operation names an operation whose duration [Metrics.Observe] reports.
// Its values are fixed and suitable as metric label values.
type Operation string

const (
	// OpToken is the verification of an access token not found in the
	// token cache: parsing, signature and static claim checks.
	OpToken Operation = "token"
	// OpProof is the verification of a DPoP proof, including its replay
	// check.
	OpProof Operation = "proof"
	// OpReplayStore is one check-and-store call to the DPoP replay store.
	OpReplayStore Operation = "replay_store"
	// OpKeyFetch is one fetch of a [RemoteKeySet]: discovery, when
	// configured, and the JWK Set.
	OpKeyFetch Operation = "key_fetch"
	// OpIntrospection is one call to an issuer's introspection endpoint;
	// its error is non-nil when the endpoint failed (the request was
	// refused with 503), nil when it answered, active or not.
	OpIntrospection Operation = "introspection"
)

// timedReplayStore returns s reporting each call to m as OpReplayStore,
// or s itself when m is nil.
func timedReplayStore(s dpop.ReplayStore, m Metrics) dpop.ReplayStore {
	if m == nil || s == nil {
		return s
	}
	return timedstore.Wrap(s, func(d time.Duration, err error) { m.Observe(OpReplayStore, d, err) })
}
