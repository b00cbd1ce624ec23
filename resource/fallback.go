package resource

import (
	"crypto/x509"
	"errors"
	"net/http"
	"strings"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/oautherr"
)

// checkFallback authorizes a request without an access token on a route
// with Policy.Fallback: a signed request when it carries a DPoP header,
// else the client certificate of the connection or of a trusted proxy.
func (v *Verifier) checkFallback(r *http.Request, p Policy) (*Principal, error) {
	n := 0
	for k, vs := range r.Header {
		if strings.EqualFold(k, "DPoP") {
			n += len(vs)
		}
	}
	var (
		id        *fallback.Identity
		err       error
		forwarded bool
		pr        = &Principal{}
	)
	switch {
	case n > 1:
		return nil, fail(ErrInvalidRequest, oautherr.ReasonMultipleDPoPFields, "more than one DPoP field")
	case n == 1:
		if err := v.checkTransport(r); err != nil {
			return nil, err
		}
		proof, perr := dpop.ProofFromHeader(r.Header)
		if perr != nil {
			return nil, failCause(ErrInvalidProof, proofReason(perr), "DPoP proof invalid", perr)
		}
		if v.target == nil {
			return nil, fail(ErrInvalidRequest, oautherr.ReasonTargetURI, "cannot determine the request URI")
		}
		htu, terr := v.target.URL(r)
		if terr != nil {
			return nil, fail(ErrInvalidRequest, oautherr.ReasonTargetURI, "cannot determine the request URI")
		}
		id, err = v.fallback.VerifyRequest(r.Context(), proof, dpop.Expect{Method: r.Method, URL: htu})
		if err != nil {
			if f := v.signedRequestError(err); f != nil {
				return nil, f
			}
		}
	default:
		cert, fwd, cerr := v.certs.Extract(r)
		if cerr != nil {
			return nil, fail(ErrInvalidRequest, oautherr.ReasonClientCertHeaderInvalid, "malformed forwarded client certificate")
		}
		if cert == nil {
			return nil, fail(ErrNoCredentials, oautherr.ReasonNoCredentials, "")
		}
		chain := []*x509.Certificate{cert}
		if !fwd && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && r.TLS.PeerCertificates[0] == cert {
			chain = r.TLS.PeerCertificates
		}
		forwarded = fwd
		id, err = v.fallback.VerifyChain(r.Context(), chain)
	}
	if err != nil {
		return nil, fallbackError(err)
	}
	pr.Subject, pr.ClientID, pr.Scopes = id.ClientID, id.ClientID, id.Scopes
	pr.Binding, pr.BindingValue, pr.CertThumbprint = BindingFallback, id.CertThumbprint, id.CertThumbprint
	pr.ExpiresAt = id.NotAfter
	pr.forwarded = forwarded
	for _, s := range p.Scopes {
		if !contains(id.Scopes, s) {
			return nil, &scopeFailure{fail(ErrInsufficientScope, oautherr.ReasonInsufficientScope, "the client certificate lacks a required scope"), strings.Join(p.Scopes, " "), pr.nonce}
		}
	}
	return pr, nil
}

// signedRequestError maps a refusal of the signed request's proof, as
// for DPoP; it returns nil for a refusal of the certificate chain.
func (v *Verifier) signedRequestError(err error) error {
	var fe *fallback.Error
	if errors.As(err, &fe) {
		return nil
	}
	switch {
	case errors.Is(err, dpop.ErrStoreUnavailable):
		return failCause(ErrUnavailable, oautherr.ReasonReplayStoreUnavailable, "service temporarily unavailable", err)
	case errors.Is(err, dpop.ErrUseNonce) && v.nonces != nil:
		nonce, nerr := v.nonces.NewNonce()
		if nerr != nil {
			return failCause(ErrUnavailable, oautherr.ReasonNonceUnavailable, "service temporarily unavailable", err)
		}
		return &nonceFailure{failCause(ErrUseNonce, proofReason(err), "a fresh DPoP nonce is required", err), nonce}
	}
	// ErrReplay and every other refusal of the proof: one code and one
	// description for the client, the failed check in the log.
	return failCause(ErrInvalidProof, proofReason(err), "DPoP proof invalid", err)
}

// fallbackError maps a refused fallback certificate. The reason is the
// fallback package's own (an oautherr.ReasonFallback… constant); the
// description sent to the client is fixed.
func fallbackError(err error) error {
	const desc = "the client certificate is not acceptable"
	reason := fallback.ReasonOf(err)
	if reason == "" {
		reason = oautherr.ReasonFallbackUntrustedChain
	}
	switch {
	case errors.Is(err, fallback.ErrCRLUnavailable):
		return failCause(ErrUnavailable, reason, "certificate revocation status unavailable", err)
	case errors.Is(err, fallback.ErrKeyMismatch):
		return failCause(ErrInvalidProof, reason, "DPoP proof invalid", err)
	}
	return failCause(ErrInvalidToken, reason, desc, err)
}
