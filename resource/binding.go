package resource

import (
	"net/http"
)

// ext holds the sender-constraint wiring (DPoP proof verification and
// client certificates).
type ext struct{}

func (v *Verifier) initExt(Config) error { return nil }

// dpopEnabled reports whether DPoP proofs can be verified.
func (v *Verifier) dpopEnabled() bool { return false }

// dpopAlgs returns the proof algorithms for the DPoP challenge.
func (v *Verifier) dpopAlgs() []string { return nil }

// checkTransport refuses DPoP over plain HTTP (RFC 9449 §2).
func (v *Verifier) checkTransport(r *http.Request) error {
	if r.TLS == nil {
		return fail(ErrInvalidRequest, "dpop_over_http", "DPoP requires HTTPS")
	}
	return nil
}

// nonceFailure carries a freshly minted nonce to send with the error.
type nonceFailure struct {
	*failure
	nonce string
}

// checkBinding enforces the token's cnf against the request: the scheme
// must fit the binding (no downgrade), the proof or certificate must match.
func (v *Verifier) checkBinding(r *http.Request, p Policy, cred credentials, tok *token, pr *Principal) error {
	switch cred.scheme {
	case schemeDPoP:
		return fail(ErrInvalidToken, "dpop_unsupported", "DPoP is not supported")
	default: // Bearer
		if tok.hasJKT {
			return fail(ErrInvalidToken, "bearer_downgrade", "a DPoP-bound token requires the DPoP scheme")
		}
		if tok.hasX5T {
			return fail(ErrInvalidToken, "certificate_missing", "a certificate-bound token requires the client certificate")
		}
		if p.Accept != AcceptAny {
			return fail(ErrInvalidToken, "token_unbound", "this resource requires a sender-constrained token")
		}
		pr.Binding = BindingBearer
		return nil
	}
}
