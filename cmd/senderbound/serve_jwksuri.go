package main

import (
	"net/url"
	"strings"

	"github.com/senderbound/senderbound/issuer"
)

// serveJWKSURIClient parses one --client-jwks-uri value, ID:METHOD=URL,
// where METHOD is private_key_jwt or self_signed_tls_client_auth (which
// needs TLS) and URL an https URL without user information or fragment.
// It returns the client without scopes, or a usage error.
func serveJWKSURIClient(e *env, cmd, v string, tlsEnabled bool) (issuer.Client, error) {
	id, rest, ok := serveSplitPair(v)
	method, uri, ok2 := strings.Cut(rest, "=")
	if !ok || !ok2 || id == "" {
		return issuer.Client{}, serveUsagef(e, cmd, "--client-jwks-uri needs ID:METHOD=URL")
	}
	c := issuer.Client{ID: id, AuthMethod: issuer.AuthMethod(method), JWKSURI: uri}
	switch c.AuthMethod {
	case issuer.AuthPrivateKeyJWT:
	case issuer.AuthSelfSignedTLSClient:
		if !tlsEnabled {
			return issuer.Client{}, serveUsagef(e, cmd, "--client-jwks-uri %q: self_signed_tls_client_auth requires --tls-cert and --tls-key", id)
		}
	default:
		return issuer.Client{}, serveUsagef(e, cmd, "--client-jwks-uri %q: METHOD must be private_key_jwt or self_signed_tls_client_auth", id)
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.User != nil || u.Fragment != "" {
		return issuer.Client{}, serveUsagef(e, cmd, "--client-jwks-uri %q: the jwks_uri must be an https URL without user information or fragment", id)
	}
	return c, nil
}
