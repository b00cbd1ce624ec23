package main

import (
	"crypto/x509"
	"strings"

	"github.com/senderbound/senderbound/mtlsbound"
)

// serveMTLSSelectors are the --mtls-client selector prefixes for the SAN
// registrations of RFC 8705 §2.1.2, each setting one mtlsbound.PKIAuth
// field. A value without one of these prefixes is a subject DN.
var serveMTLSSelectors = []struct {
	prefix string // in the flag value
	name   string // the registration metadata name, for messages
	set    func(a *mtlsbound.PKIAuth, v string)
}{
	{"san-dns=", "tls_client_auth_san_dns", func(a *mtlsbound.PKIAuth, v string) { a.SANDNS = v }},
	{"san-uri=", "tls_client_auth_san_uri", func(a *mtlsbound.PKIAuth, v string) { a.SANURI = v }},
	{"san-ip=", "tls_client_auth_san_ip", func(a *mtlsbound.PKIAuth, v string) { a.SANIP = v }},
	{"san-email=", "tls_client_auth_san_email", func(a *mtlsbound.PKIAuth, v string) { a.SANEmail = v }},
}

// serveMTLSClient parses one --mtls-client value, ID:SELECTOR, where
// SELECTOR is san-dns=NAME, san-uri=URI, san-ip=ADDRESS, san-email=ADDRESS
// or else an RFC 4514 subject DN. It returns the client ID and its
// registration without Roots, checked by mtlsbound.PKIAuth.Validate, or a
// usage error.
func serveMTLSClient(e *env, cmd, v string) (string, mtlsbound.PKIAuth, error) {
	id, sel, ok := serveSplitPair(v)
	if !ok {
		return "", mtlsbound.PKIAuth{}, serveUsagef(e, cmd, "--mtls-client needs ID:SUBJECT_DN or ID:san-dns=|san-uri=|san-ip=|san-email=VALUE")
	}
	var a mtlsbound.PKIAuth
	what := "subject DN"
	for _, s := range serveMTLSSelectors {
		if rest, found := strings.CutPrefix(sel, s.prefix); found {
			s.set(&a, rest)
			what = s.name
			break
		}
	}
	if what == "subject DN" {
		if _, err := mtlsbound.ParseDistinguishedName(sel); err != nil {
			return "", mtlsbound.PKIAuth{}, serveUsagef(e, cmd, "--mtls-client %q: invalid subject DN", id)
		}
		a.SubjectDN = sel
	}
	check := a
	check.Roots = x509.NewCertPool()
	if err := check.Validate(); err != nil {
		return "", mtlsbound.PKIAuth{}, serveUsagef(e, cmd, "--mtls-client %q: invalid %s", id, what)
	}
	return id, a, nil
}
