package conformance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
)

// PreflightError is returned by [Run] when the target does not match its
// description before any case runs: the token endpoint or the resource is
// unreachable, TLS trust is wrong, the client credentials are refused, the
// resource refuses a valid request, or a nonce-requiring server was not
// declared as such. Cause names the problem on one line, without
// credentials.
type PreflightError struct {
	// Cause is the one-line reason, e.g. "invalid_client at the token
	// endpoint" or "connection refused at the resource".
	Cause string
}

func (e *PreflightError) Error() string { return "conformance: preflight: " + e.Cause }

func preflightf(format string, a ...any) error {
	return &PreflightError{Cause: fmt.Sprintf(format, a...)}
}

// preflight checks what the target description promises, with the
// session's own token requests (whose tokens the cases then reuse):
//   - per binding in the profile, the token endpoint answers a token
//     request with the configured credentials;
//   - the resource accepts the positive control (a valid DPoP request;
//     with ProfileMTLS or ProfileBoth, a valid certificate-bound request).
//     Without a profile, a resource that answers a valid
//     certificate-bound request with a DPoP challenge only is taken as
//     DPoP-only, and its resource-side mTLS cases are skipped;
//   - a server that answered use_dpop_nonce was declared to require nonces.
//
// Anything else the target does wrong is left to the cases.
func (s *session) preflight(ctx context.Context) error {
	start := len(s.log)
	if s.caps&CapDPoP != 0 {
		it, err := s.dpopToken(ctx)
		if cause := tokenCause(s.log[start:], "the token endpoint"); cause != "" {
			return preflightf("%s", cause)
		}
		if err := s.nonceDeclared(start); err != nil {
			return err
		}
		if err == nil {
			mark := len(s.log)
			m := s.t.method()
			x, err := s.resource(ctx, rsReq{method: m, scheme: "DPoP", token: it.access, proof: s.proof(s.k1, m, s.t.Resource, it.access, nil)})
			if err != nil {
				return preflightf("building the positive control: %s", sanitizeErr(err))
			}
			if err := s.nonceDeclared(mark); err != nil {
				return err
			}
			// A refusal of a token the suite can see is defective is the
			// cases' finding about the issuer, not a misdescription.
			if cause := controlCause(x, "the resource", "a valid DPoP request"); cause != "" && s.tokenDefect(it) == "" {
				return preflightf("%s", cause)
			}
		}
	}
	if s.caps&CapMTLS != 0 {
		mark := len(s.log)
		it, err := s.mtlsToken(ctx)
		if cause := tokenCause(s.log[mark:], fmt.Sprintf("the token endpoint (mTLS client %s)", safeToken(s.t.mtlsClientID()))); cause != "" {
			return preflightf("%s", cause)
		}
		if err == nil {
			x := s.do(s.cert1, mustRequest(ctx, s.t.method(), s.t.Resource, "Bearer "+it.access), []string{it.access})
			cause := controlCause(x, "the resource", "a valid certificate-bound request")
			_, bearer := findChallenge(x.challenges, "Bearer")
			_, dpop := findChallenge(x.challenges, "DPoP")
			switch {
			case cause == "":
			case s.t.Profile == ProfileMTLS || s.t.Profile == ProfileBoth:
				return preflightf("%s", cause)
			case x.err == nil && x.status == http.StatusUnauthorized && dpop && !bearer:
				// No profile was given and the resource offers DPoP
				// only: a client certificate does not make it an mTLS
				// resource.
				s.dpopOnlyResource = true
			}
		}
	}
	return nil
}

// tokenDefect names a defect the suite can see in a DPoP token from the
// issuer (RFC 9068 profile, RFC 9449 binding to K1), or "" when it sees
// none or cannot decode the token.
func (s *session) tokenDefect(it *issued) string {
	if it.claims == nil {
		return ""
	}
	if typ, _ := it.header["typ"].(string); !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return "typ"
	}
	for _, c := range []string{"iss", "exp", "aud", "sub", "client_id", "iat", "jti"} {
		if _, ok := it.claims[c]; !ok {
			return c
		}
	}
	if _, ok := it.claims["scope"]; !ok && s.t.Scope != "" {
		return "scope"
	}
	if jkt, ok := cnfMember(it.claims, "jkt"); !ok || jkt != s.k1.jkt {
		return "cnf.jkt"
	}
	return ""
}

// mustRequest builds a request with an Authorization value; the URL was
// validated with the target.
func mustRequest(ctx context.Context, method, u, authz string) *http.Request {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", authz)
	return req
}

// nonceDeclared fails when a response logged after mark demanded a nonce
// from a server the target description says requires none.
func (s *session) nonceDeclared(mark int) error {
	for _, x := range s.log[mark:] {
		if x.err != nil {
			continue
		}
		switch {
		case x.status == http.StatusBadRequest && x.errorCode("json") == "use_dpop_nonce" && !s.t.TokenEndpointNonceRequired:
			return preflightf("the token endpoint requires DPoP nonces — pass --token-nonce-required")
		case x.status == http.StatusUnauthorized && x.errorCode("DPoP") == "use_dpop_nonce" && !s.t.NonceRequired:
			return preflightf("the resource requires DPoP nonces — pass --nonce-required")
		}
	}
	return nil
}

// tokenCause names why the token requests in xs failed, or "" when the
// last one was answered with 200 (what the token response holds is the
// cases' business).
func tokenCause(xs []*exchange, where string) string {
	if len(xs) == 0 {
		return ""
	}
	x := xs[len(xs)-1]
	if x.err != nil {
		return transportCause(x.err, where)
	}
	if x.status == http.StatusOK {
		return ""
	}
	switch code := x.errorCode("json"); code {
	case "invalid_client":
		return "invalid_client at " + where + " (check the client id, secret or certificate)"
	case "unauthorized_client":
		return "unauthorized_client at " + where + " (the client may not use this grant)"
	case "invalid_scope":
		return "invalid_scope at " + where + " (check --scope)"
	case "":
		return fmt.Sprintf("%s answered status %d (check the URL)", where, x.status)
	default:
		return fmt.Sprintf("%s at %s (status %d)", safeToken(code), where, x.status)
	}
}

// controlCause names why a positive control failed, or "".
func controlCause(x *exchange, where, what string) string {
	if x.err != nil {
		return transportCause(x.err, where)
	}
	if x.status >= 200 && x.status < 300 {
		return ""
	}
	return fmt.Sprintf("%s refused %s: %s (check the resource URL, the audience and scope the resource expects, and that it trusts the issuer)", where, what, x.describe())
}

// transportCause names a transport failure in the words a user acts on.
func transportCause(err error, where string) string {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &ua):
		return "TLS: unknown authority at " + where + " — pass --ca-file"
	case errors.As(err, &he):
		return "TLS: the certificate of " + where + " does not name its host"
	case errors.As(err, &ci):
		return "TLS: the certificate of " + where + " is not valid (expired, not yet valid or not for a server)"
	case errors.As(err, &rh) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "TLS: " + where + " does not speak TLS (an http:// URL?)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused at " + where
	case errors.As(err, &dns):
		return "host not found: " + where
	case errors.As(err, &ne) && ne.Timeout():
		return "no answer from " + where + " in time (--timeout)"
	}
	var ue *url.Error
	if errors.As(err, &ue) && strings.Contains(ue.Err.Error(), "tls:") {
		return "TLS: " + where + ": " + safeToken(ue.Err.Error())
	}
	return where + ": " + sanitizeErr(err)
}
