package issuer

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/pubkey"
	"github.com/senderbound/senderbound/oautherr"
)

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// TokenHandler returns the RFC 6749 token endpoint. Every response carries
// "Cache-Control: no-store" (RFC 6749 §5.1) and errors use the §5.2 JSON
// shape without echoing any request input.
func (s *Server) TokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		resp, nonce, err := s.token(r.Context(), w, r)
		if nonce != "" {
			dpop.SetNonce(w.Header(), nonce)
		}
		if err != nil {
			s.writeError(w, "token", err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

// token runs one token request; nonce is a fresh DPoP-Nonce to send, if any.
func (s *Server) token(ctx context.Context, w http.ResponseWriter, r *http.Request) (_ *tokenResponse, nonce string, _ error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, "", &Error{Code: oautherr.InvalidRequest, Description: "the token endpoint accepts POST only", Status: http.StatusMethodNotAllowed, Reason: oautherr.ReasonRequestMalformed, Err: ErrInvalidRequest}
	}
	f, err := readForm(w, r)
	if err != nil {
		return nil, "", err
	}
	client, err := s.authenticate(ctx, r, f, TokenPath)
	if err != nil {
		return nil, "", err
	}
	gt := f.get("grant_type")
	if gt == "" {
		return nil, "", newError(ErrInvalidRequest, "grant_type is required")
	}
	var handler GrantHandler
	switch gt {
	case GrantClientCredentials:
		handler = GrantHandlerFunc(s.clientCredentials)
	case GrantRefreshToken:
		handler = GrantHandlerFunc(s.refreshGrant)
	default:
		handler = s.cfg.Grants[gt]
	}
	if handler == nil {
		return nil, "", newError(ErrUnsupportedGrantType, "grant type not supported")
	}
	if !client.allowsGrant(gt) {
		return nil, "", newError(ErrUnauthorizedClient, "client may not use this grant type")
	}

	// The proof is checked here but recorded only after the grant, just
	// before minting (see claimProof), so that refused requests occupy no
	// replay entry.
	var jkt string
	dproof, nonce, err := s.checkProof(r, TokenPath)
	if err != nil {
		return nil, "", err
	}
	if dproof != nil {
		jkt = dproof.JKT
	}
	cert, err := s.certs.ClientCertificate(r)
	if err != nil {
		return nil, nonce, refuse(ErrInvalidRequest, oautherr.ReasonClientCertHeaderInvalid, "malformed forwarded client certificate", err)
	}

	params := make(map[string]string, len(f))
	for k, v := range f {
		if k != "client_secret" && k != "client_assertion" {
			params[k] = v
		}
	}
	g, err := handler.Grant(ctx, &GrantRequest{GrantType: gt, Client: client, Params: params, JKT: jkt, Certificate: cert})
	if err != nil {
		return nil, nonce, err
	}
	if g == nil || g.Subject == "" {
		return nil, nonce, errors.New("issuer: grant handler returned no subject")
	}
	if g.DPoPJKT != "" && g.DPoPJKT != jkt {
		return nil, nonce, refuse(ErrInvalidGrant, oautherr.ReasonProofKeyMismatch, "DPoP key does not match the authorization request", nil)
	}
	binding, err := bindingFor(client, jkt, cert)
	if err != nil {
		return nil, nonce, err
	}
	if dproof != nil {
		if err := s.claimProof(ctx, client, dproof); err != nil {
			return nil, nonce, err
		}
	}
	// A refresh token is single use: of concurrent redemptions (at any
	// instance sharing the store) only the one whose Take gets the record
	// goes on; the others are refused as invalid (a request that reads the
	// token after it was redeemed is reuse, see refreshGrant).
	if g.redeem != nil {
		if _, err := s.refresh.Take(ctx, g.redeem.id); errors.Is(err, ErrTokenNotFound) {
			return nil, nonce, newError(ErrInvalidGrant, "refresh token is invalid or expired")
		} else if err != nil {
			return nil, nonce, refuse(ErrUnavailable, oautherr.ReasonRefreshStoreUnavailable, "refresh store unavailable", err)
		}
	}
	aud := g.Audience
	if len(aud) == 0 && len(client.Audiences) > 0 {
		aud = client.Audiences[:1]
	}
	tok, err := s.is.Mint(ctx, MintRequest{
		Subject: g.Subject, ClientID: client.ID, Audience: aud, Scope: g.Scope,
		TTL: g.TTL, Binding: binding, Claims: g.Claims,
	})
	if err != nil {
		return nil, nonce, err
	}
	resp := &tokenResponse{
		AccessToken: tok.Raw, TokenType: tok.Type, Scope: tok.Scope,
		ExpiresIn: int64(tok.ExpiresAt.Sub(tok.IssuedAt) / time.Second),
	}
	var rec *RefreshRecord
	switch {
	case g.redeem != nil:
		// The successor carries the redeemed grant unchanged (RFC 6749 §6:
		// the same scope), its binding and its expiry, so rotation never
		// extends a grant.
		rec = &g.redeem.rec
	case g.RefreshToken && gt != GrantRefreshToken && gt != GrantClientCredentials && (!client.Public() || binding.Bound()):
		family, err := newFamily(s.is.rand())
		if err != nil {
			return nil, nonce, err
		}
		rec = &RefreshRecord{
			ClientID: client.ID, Subject: g.Subject, Scope: g.Scope, Audience: tok.Audience,
			Claims: g.Claims, ExpiresAt: s.is.now().Add(s.cfg.RefreshTokenTTL), Family: family,
		}
		if client.Public() {
			rec.Binding = binding
		}
	}
	if rec != nil {
		rt, id, err := newRefreshToken(s.is.rand())
		if err != nil {
			return nil, nonce, err
		}
		if err := s.refresh.Put(ctx, id, *rec); err != nil {
			return nil, nonce, refuse(ErrUnavailable, oautherr.ReasonRefreshStoreUnavailable, "temporarily unavailable", err)
		}
		resp.RefreshToken = rt
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.TokenIssued(gt, bindingKind(binding))
	}
	return resp, nonce, nil
}

// checkProof verifies the DPoP header of a POST to the endpoint at path
// (TokenPath or PARPath) per RFC 9449 §4.3, with htu the URL the request
// was sent to (see endpointURL) and the server's nonces; it does not
// claim the proof (see claimProof). It returns a nil proof when the
// request carries none, and nonce, a fresh DPoP-Nonce to send when the
// proof's nonce is due for renewal.
func (s *Server) checkProof(r *http.Request, path string) (_ *dpop.Proof, nonce string, _ error) {
	proof, err := dpop.ProofFromHeader(r.Header)
	switch {
	case errors.Is(err, dpop.ErrMissingProof):
		return nil, "", nil
	case err != nil:
		return nil, "", refuse(ErrInvalidDPoPProof, oautherr.ReasonProofMalformed, "malformed DPoP header", err)
	}
	p, err := s.verifier.Check(proof, dpop.Expect{Method: http.MethodPost, URL: s.endpointURL(r, path)})
	if err != nil {
		return nil, "", s.proofError(err)
	}
	if due, ok := s.nonces.(interface{ Due(string) bool }); ok && due.Due(p.Nonce) {
		if n, err := s.nonces.NewNonce(); err == nil {
			nonce = n
		}
	}
	return p, nonce, nil
}

// bindingFor chooses the access token's binding: for a client registered
// for certificate-bound tokens, the certificate proven on the connection
// (RFC 8705 §3) and nothing else; otherwise the DPoP key when a proof was
// verified (RFC 9449 §5, also with mTLS client authentication), else the
// client certificate, else none. A client registered for bound tokens
// never gets an unbound one.
func bindingFor(c *Client, jkt string, cert *x509.Certificate) (Binding, error) {
	if c.TLSClientCertificateBoundAccessTokens {
		// Certificate-bound, and only that: a DPoP-bound token would be
		// refused by resource servers that expect this client's tokens to
		// carry cnf.x5t#S256.
		switch {
		case cert == nil:
			return Binding{}, newError(ErrInvalidRequest, "client requires certificate-bound access tokens")
		case jkt != "":
			return Binding{}, newError(ErrInvalidRequest, "client requires certificate-bound access tokens, not DPoP-bound ones")
		}
		return certBinding(cert)
	}
	if jkt != "" {
		return Binding{JKT: jkt}, nil
	}
	if c.DPoPBoundAccessTokens {
		return Binding{}, refuse(ErrInvalidDPoPProof, oautherr.ReasonProofMissing, "client requires DPoP-bound access tokens", nil)
	}
	if cert != nil {
		return certBinding(cert)
	}
	return Binding{}, nil
}

// claimProof records a checked proof in the replay store, within the
// client's quota (confidential clients) and the proof key's quota. It runs
// after every other check of the token request and before the token is
// minted: the claim is one atomic check-and-insert, so among concurrent
// requests that carry the same proof and all pass the grant, exactly one
// gets a token.
func (s *Server) claimProof(ctx context.Context, c *Client, p *dpop.Proof) error {
	if !c.Public() && !s.quota.Allow(clientQuotaOwner(c.ID)) {
		return refuse(ErrInvalidDPoPProof, oautherr.ReasonProofKeyQuota, "too many DPoP proofs from this client", nil)
	}
	if err := s.verifier.Claim(ctx, p); err != nil {
		return s.proofError(err)
	}
	return nil
}

// clientQuotaOwner is the replay-quota owner of a client. Proof keys are
// owners under their thumbprint, which never contains ':'.
func clientQuotaOwner(id string) string { return "client:" + id }

// certBinding binds a token to cert when its key meets the client key
// rules of internal/pubkey: the TLS handshake does not tie a certificate
// for a small-order Ed25519 key to anyone in particular.
func certBinding(cert *x509.Certificate) (Binding, error) {
	if pubkey.Check(cert.PublicKey) != nil {
		return Binding{}, newError(ErrInvalidRequest, "client certificate key not accepted")
	}
	return CertificateBinding(cert), nil
}

// proofError maps a dpop verification error to the token endpoint error,
// keeping the dpop error as the cause and its reason.
func (s *Server) proofError(err error) error {
	var de *dpop.Error
	desc, reason := "invalid DPoP proof", oautherr.ReasonProofInvalid
	if errors.As(err, &de) {
		if de.Description != "" {
			desc = de.Description
		}
		if de.Reason != "" {
			reason = de.Reason
		}
	}
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		e := refuse(ErrUseDPoPNonce, reason, "authorization server requires nonce in DPoP proof", err)
		if s.nonces != nil {
			if n, nerr := s.nonces.NewNonce(); nerr == nil {
				e.nonce = n
			}
		}
		return e
	case errors.Is(err, dpop.ErrStoreUnavailable):
		return refuse(ErrUnavailable, oautherr.ReasonReplayStoreUnavailable, "replay store unavailable", err)
	}
	return refuse(ErrInvalidDPoPProof, reason, desc, err)
}
