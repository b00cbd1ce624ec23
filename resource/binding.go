package resource

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/trustedproxy"
)

// ext holds the sender-constraint wiring: DPoP proof verification, the
// target URI, trusted proxies and client certificates.
type ext struct {
	dpop         *dpop.Verifier
	dpopAlgs     []string
	nonces       dpop.NonceSource
	nonceDue     interface{ Due(string) bool }
	target       *dpop.TargetURI
	proxies      *trustedproxy.Set
	insecureHTTP bool
	certs        *mtlsbound.Source
	fallback     *fallback.Verifier
}

func (v *Verifier) initExt(cfg Config) error {
	var err error
	v.proxies = cfg.TrustedProxies
	v.insecureHTTP = cfg.InsecureAllowDPoPOverHTTP
	v.certs = cfg.ClientCerts
	if v.certs == nil {
		v.certs, err = mtlsbound.NewSource(mtlsbound.SourceConfig{TrustedProxies: cfg.TrustedProxies})
		if err != nil {
			return err
		}
	} else if v.certs.TrustedProxies() != cfg.TrustedProxies {
		// Otherwise a proxy's requests would count as TLS here while its
		// own certificate counted as the client's there, or the reverse.
		return errors.New("resource: ClientCerts must be built with the Config's TrustedProxies")
	}
	v.fallback = cfg.Fallback
	if cfg.DPoP == nil {
		if cfg.Fallback != nil && (cfg.PublicURL != "" || !cfg.TrustedProxies.Empty() || cfg.InsecureHostHeader) {
			// Signed fallback requests need the target URI too.
			v.target, err = dpop.NewTargetURI(dpop.TargetURIConfig{PublicURL: cfg.PublicURL, TrustedProxies: cfg.TrustedProxies, InsecureHostHeader: cfg.InsecureHostHeader})
		}
		return err
	}
	d := cfg.DPoP
	qc := d.KeyQuota
	if qc.Now == nil {
		qc.Now = v.now
	}
	quota, err := replaycache.NewQuota(qc)
	if err != nil {
		return err
	}
	v.dpop, err = dpop.NewVerifier(dpop.Config{
		Algorithms:    d.Algorithms,
		MaxAge:        d.MaxAge,
		FutureSkew:    d.FutureSkew,
		Now:           v.now,
		ReplayStore:   timedReplayStore(d.ReplayStore, cfg.Metrics),
		KeyLimiter:    quota,
		Nonces:        d.Nonces,
		MaxProofBytes: d.MaxProofBytes,
	})
	if err != nil {
		return err
	}
	v.dpopAlgs = v.dpop.Algorithms()
	v.nonces = d.Nonces
	v.nonceDue, _ = d.Nonces.(interface{ Due(string) bool })
	v.target, err = dpop.NewTargetURI(dpop.TargetURIConfig{PublicURL: cfg.PublicURL, TrustedProxies: cfg.TrustedProxies, InsecureHostHeader: cfg.InsecureHostHeader})
	return err
}

// dpopEnabled reports whether DPoP proofs can be verified.
func (v *Verifier) dpopEnabled() bool { return v.dpop != nil }

// checkTransport refuses DPoP over plain HTTP (RFC 9449 §2) unless the
// request came through a trusted TLS-terminating proxy or the insecure
// option is set.
func (v *Verifier) checkTransport(r *http.Request) error {
	if r.TLS == nil && !v.insecureHTTP && !v.proxies.TrustedPeer(r) {
		return fail(ErrInvalidRequest, oautherr.ReasonDPoPOverHTTP, "DPoP requires HTTPS")
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
	if cred.scheme == schemeDPoP {
		if !tok.hasJKT {
			return fail(ErrInvalidToken, oautherr.ReasonTokenNotDPoPBound, "the access token is not DPoP-bound")
		}
		if tok.hasX5T {
			// Bound both ways: both proofs are needed (RFC 7800 §3.1).
			if err := v.checkCertificate(r, tok, pr); err != nil {
				return err
			}
		}
		if err := v.checkProof(r, cred, tok, pr); err != nil {
			return err
		}
		pr.Binding, pr.BindingValue = BindingDPoP, tok.jkt
		return nil
	}
	// Bearer scheme.
	if tok.hasJKT {
		return fail(ErrInvalidToken, oautherr.ReasonBearerDowngrade, "a DPoP-bound token requires the DPoP scheme")
	}
	if tok.hasX5T {
		if err := v.checkCertificate(r, tok, pr); err != nil {
			return err
		}
		pr.Binding, pr.BindingValue = BindingMTLS, tok.x5t
		return nil
	}
	if p.Accept != AcceptAny {
		return fail(ErrInvalidToken, oautherr.ReasonTokenUnbound, "this resource requires a sender-constrained token")
	}
	pr.Binding = BindingBearer
	return nil
}

// checkProof verifies the DPoP proof for this request, token and key.
func (v *Verifier) checkProof(r *http.Request, cred credentials, tok *token, pr *Principal) error {
	n := 0
	for k, vs := range r.Header {
		if strings.EqualFold(k, "DPoP") {
			n += len(vs)
		}
	}
	if n > 1 {
		return fail(ErrInvalidRequest, oautherr.ReasonMultipleDPoPFields, "more than one DPoP field")
	}
	proof, err := dpop.ProofFromHeader(r.Header)
	if err != nil {
		return failCause(ErrInvalidProof, proofReason(err), "DPoP proof invalid", err)
	}
	htu, err := v.target.URL(r)
	switch {
	case errors.Is(err, trustedproxy.ErrUnexpectedHeaders):
		return fail(ErrInvalidRequest, oautherr.ReasonForwardedHeadersUnexpected, "forwarded headers the proxy does not set")
	case errors.Is(err, trustedproxy.ErrMalformedHeader):
		return fail(ErrInvalidRequest, oautherr.ReasonForwardedHeaderMalformed, "malformed Forwarded header")
	}
	if err != nil {
		return fail(ErrInvalidRequest, oautherr.ReasonTargetURI, "cannot determine the request URI")
	}
	var start time.Time
	if v.metrics != nil {
		start = time.Now()
	}
	got, err := v.dpop.Verify(r.Context(), proof, dpop.Expect{
		Method:      r.Method,
		URL:         htu,
		AccessToken: cred.token,
		JKT:         tok.jkt,
	})
	if v.metrics != nil {
		v.metrics.Observe(OpProof, time.Since(start), err)
	}
	switch {
	case err == nil:
	case errors.Is(err, dpop.ErrStoreUnavailable):
		return failCause(ErrUnavailable, oautherr.ReasonReplayStoreUnavailable, "service temporarily unavailable", err)
	case errors.Is(err, dpop.ErrReplayStateLost) && v.nonces != nil:
		// A proof issued before the shared replay store lost its state:
		// the client retries at once with a new proof and nonce.
		nonce, nerr := v.nonces.NewNonce()
		if nerr != nil {
			return failCause(ErrUnavailable, oautherr.ReasonNonceUnavailable, "service temporarily unavailable", err)
		}
		return &nonceFailure{failCause(ErrUseNonce, oautherr.ReasonReplayStateLost, "a fresh DPoP nonce is required", err), nonce}
	case errors.Is(err, dpop.ErrReplayStateLost):
		return failCause(ErrInvalidProof, oautherr.ReasonReplayStateLost, "DPoP proof invalid", err)
	case errors.Is(err, dpop.ErrUseNonce) && v.nonces != nil:
		nonce, nerr := v.nonces.NewNonce()
		if nerr != nil {
			return failCause(ErrUnavailable, oautherr.ReasonNonceUnavailable, "service temporarily unavailable", err)
		}
		return &nonceFailure{failCause(ErrUseNonce, proofReason(err), "a fresh DPoP nonce is required", err), nonce}
	case errors.Is(err, dpop.ErrKeyMismatch):
		return failCause(ErrInvalidToken, oautherr.ReasonProofKeyMismatch, "DPoP proof key does not match the access token", err)
	default:
		// ErrInvalidProof and its members (ErrReplay, ErrKeyQuota), and
		// use_dpop_nonce where this server issues no nonces: the client
		// sees one code and one description, the log the check that failed.
		return failCause(ErrInvalidProof, proofReason(err), "DPoP proof invalid", err)
	}
	if v.nonceDue != nil && v.nonceDue.Due(got.Nonce) {
		if nonce, err := v.nonces.NewNonce(); err == nil {
			pr.nonce = nonce
		}
	}
	return nil
}

// checkCertificate matches cnf.x5t#S256 against the client certificate.
// The certificate comes from the Client-Cert header of a trusted proxy, or
// from the TLS connection of any other peer; the chain is not validated
// (RFC 8705 §6.2).
func (v *Verifier) checkCertificate(r *http.Request, tok *token, pr *Principal) error {
	cert, forwarded, err := v.certs.Extract(r)
	if err != nil {
		return fail(ErrInvalidRequest, oautherr.ReasonClientCertHeaderInvalid, "malformed forwarded client certificate")
	}
	if err := mtlsbound.CheckBinding(cert, tok.x5t); err != nil {
		if errors.Is(err, mtlsbound.ErrNoCertificate) {
			return fail(ErrInvalidToken, oautherr.ReasonCertificateMissing, "the access token requires the client certificate")
		}
		return fail(ErrInvalidToken, oautherr.ReasonCertificateMismatch, "the client certificate does not match the access token")
	}
	pr.CertThumbprint = tok.x5t
	pr.forwarded = pr.forwarded || forwarded
	return nil
}

// proofReason returns the reason the dpop package gave for refusing a
// proof, or oautherr.ReasonProofInvalid when it gave none.
func proofReason(err error) oautherr.Reason {
	var de *dpop.Error
	if errors.As(err, &de) && de.Reason != "" {
		return de.Reason
	}
	if errors.Is(err, dpop.ErrReplay) {
		return oautherr.ReasonProofReplayed
	}
	return oautherr.ReasonProofInvalid
}
