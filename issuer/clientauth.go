package issuer

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"

	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/oautherr"
)

// authenticate identifies and authenticates the client of a token or
// introspection request with exactly one method, the one it is registered
// for (RFC 6749 §2.3, RFC 8705 §2).
func (s *Server) authenticate(ctx context.Context, r *http.Request, f form, path string) (*Client, error) {
	authz := r.Header.Values("Authorization")
	if len(authz) > 1 {
		return nil, newError(ErrInvalidRequest, "more than one Authorization header")
	}
	var (
		id, secret string
		method     AuthMethod
	)
	if len(authz) == 1 {
		bid, bsecret, err := parseBasic(authz[0])
		if errors.Is(err, errNoBasic) {
			e := refuse(ErrInvalidClient, oautherr.ReasonClientAuthMethod, "unsupported authentication scheme", nil)
			e.basic = true
			return nil, e
		}
		if err != nil {
			return nil, basicError(newError(err, "client authentication failed"))
		}
		if f.get("client_secret") != "" || f.get("client_assertion") != "" || f.get("client_assertion_type") != "" || (f.get("client_id") != "" && f.get("client_id") != bid) {
			return nil, newError(ErrInvalidRequest, "more than one client authentication method")
		}
		id, secret, method = bid, bsecret, AuthSecretBasic
	} else {
		id = f.get("client_id")
		if secret = f.get("client_secret"); secret != "" {
			method = AuthSecretPost
		}
	}
	assertion := f.get("client_assertion")
	if method == "" && (assertion != "" || f.get("client_assertion_type") != "") {
		if secret != "" {
			return nil, newError(ErrInvalidRequest, "more than one client authentication method")
		}
		if f.get("client_assertion_type") != ClientAssertionType || assertion == "" {
			return nil, newError(ErrInvalidClient, "unsupported client assertion")
		}
		method = AuthPrivateKeyJWT
		if id == "" {
			id = unverifiedAssertionSubject(assertion, s.assertionAlgs)
		}
	} else if method == AuthSecretPost && (assertion != "" || f.get("client_assertion_type") != "") {
		return nil, newError(ErrInvalidRequest, "more than one client authentication method")
	}
	// fail refuses with one code and one description whatever the cause,
	// so a client learns nothing about which check failed; the reason and
	// the cause go to the server log only.
	fail := func(reason oautherr.Reason, cause error) (*Client, error) {
		e := refuse(ErrInvalidClient, reason, "client authentication failed", cause)
		if method == AuthSecretBasic {
			return nil, basicError(e)
		}
		return nil, e
	}
	if id == "" {
		return fail(oautherr.ReasonClientIDMissing, nil)
	}
	c, err := s.cfg.Clients.Client(ctx, id)
	if errors.Is(err, ErrUnknownClient) {
		secretMatches(&Client{SecretHash: make([]byte, 32)}, secret) // same work as a known client
		return fail(oautherr.ReasonClientUnknown, nil)
	}
	if err != nil {
		return nil, refuse(ErrUnavailable, oautherr.ReasonClientRegistryUnavailable, "client registry unavailable", err)
	}
	switch c.AuthMethod {
	case AuthSecretBasic, AuthSecretPost:
		if method != c.AuthMethod {
			return fail(oautherr.ReasonClientAuthMethod, nil)
		}
		if !secretMatches(c, secret) {
			return fail(oautherr.ReasonClientSecret, nil)
		}
	case AuthPrivateKeyJWT:
		if method != AuthPrivateKeyJWT {
			return fail(oautherr.ReasonClientAuthMethod, nil)
		}
		err := s.verifyClientAssertion(ctx, c, assertion, []string{s.is.ID(), s.endpointURL(r, path)})
		if errAssertionUnavailable(err) {
			return nil, refuse(ErrUnavailable, oautherr.ReasonReplayStoreUnavailable, "replay store unavailable", err)
		}
		if errors.Is(err, errClientKeys) {
			return fail(oautherr.ReasonClientKeysUnavailable, err)
		}
		if err != nil {
			return fail(oautherr.ReasonClientAssertion, nil)
		}
	case AuthNone, AuthTLSClient, AuthSelfSignedTLSClient:
		if method != "" {
			return fail(oautherr.ReasonClientAuthMethod, nil)
		}
	default:
		return fail(oautherr.ReasonClientAuthMethod, nil)
	}
	if c.AuthMethod == AuthTLSClient || c.AuthMethod == AuthSelfSignedTLSClient {
		cert, err := s.certs.ClientCertificate(r)
		if err != nil {
			return fail(oautherr.ReasonClientCertHeaderInvalid, err)
		}
		if cert == nil {
			return fail(oautherr.ReasonCertificateMissing, nil)
		}
		var chain []*x509.Certificate
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 1 && r.TLS.PeerCertificates[0] == cert {
			chain = r.TLS.PeerCertificates[1:]
		}
		if c.AuthMethod == AuthSelfSignedTLSClient && c.JWKSURI != "" && c.Certificate == nil {
			err := s.clientKeys.authenticateCertificate(ctx, c, cert)
			if errors.Is(err, errClientKeys) {
				return fail(oautherr.ReasonClientKeysUnavailable, err)
			}
			if err != nil {
				return fail(mtlsbound.Reason(err), err)
			}
		} else if err := c.Certificate.Authenticate(ctx, cert, chain); err != nil {
			return fail(mtlsbound.Reason(err), err)
		}
	}
	return c, nil
}
