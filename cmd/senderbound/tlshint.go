package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// The causes transportDiagnosis tells apart, each with the one thing to do
// about it.
const (
	hintUnknownCA   = "trust the CA that issued the server's certificate with --ca-file"
	hintWrongName   = "use a host name the certificate names, or reissue it for this host with senderbound cert issue --dns NAME or --ip ADDR"
	hintInvalidCert = "issue the server a current certificate for serverAuth, e.g. with senderbound cert issue --server"
	hintPlainHTTP   = "the server speaks plain HTTP on this port: use an http:// URL"
	hintHTTPS       = "the server speaks HTTPS on this port: use an https:// URL"
	hintRefusedTLS  = "the server wants a client certificate it trusts: give --cert and --key, issued by a CA the server trusts"
)

// plainHTTPToTLSBody is the body of the 400 answer a Go TLS server gives
// when a client sends plain HTTP to its port.
const plainHTTPToTLSBody = "Client sent an HTTP request to an HTTPS server."

// transportDiagnosis names the cause of a failed HTTP(S) exchange when it
// is a TLS problem a user can fix, with one hint: the server's certificate
// names another host, is signed by an unknown CA, or is not valid for a
// server; the server does not speak TLS; the server refused the handshake
// (no or an untrusted client certificate). ok is false for any other
// error. The cause never quotes the server's certificate beyond its names,
// made printable.
func transportDiagnosis(err error) (cause, hint string, ok bool) {
	var hostErr x509.HostnameError
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	msg := err.Error()
	switch {
	case errors.As(err, &hostErr):
		cause = fmt.Sprintf("the server's TLS certificate is not valid for %s", printable(hostErr.Host, 100))
		if names := certNames(hostErr.Certificate); names != "" {
			cause += " (it names " + names + ")"
		} else {
			cause += " (it names no host in its SANs)"
		}
		return cause, hintWrongName, true
	case errors.As(err, &unknown):
		return "the server's TLS certificate is signed by an unknown certificate authority", hintUnknownCA, true
	case errors.As(err, &invalid):
		what := "is not valid"
		switch invalid.Reason {
		case x509.Expired:
			what = "has expired or is not yet valid"
		case x509.IncompatibleUsage:
			what = "is not for a server (no serverAuth usage)"
		}
		return "the server's TLS certificate " + what, hintInvalidCert, true
	case errors.As(err, &record), strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		// net/http replaces the tls.RecordHeaderError by its own error.
		return "the server answered a TLS handshake with plain HTTP", hintPlainHTTP, true
	case strings.Contains(msg, "remote error: tls: certificate required"),
		strings.Contains(msg, "remote error: tls: bad certificate"),
		strings.Contains(msg, "remote error: tls: unknown certificate authority"):
		// crypto/tls reports the server's alert with an unexported type.
		return "the server refused the TLS handshake over the client certificate", hintRefusedTLS, true
	}
	return "", "", false
}

// plainHTTPToTLS reports whether resp is a Go TLS server's answer to plain
// HTTP sent to its port: 400 with a fixed body.
func plainHTTPToTLS(resp *http.Response, body []byte) bool {
	return resp.StatusCode == http.StatusBadRequest && strings.HasPrefix(string(body), plainHTTPToTLSBody)
}

// certNames lists up to four of c's DNS and IP SANs, made printable.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	var names []string
	for _, d := range c.DNSNames {
		names = append(names, "DNS:"+printable(d, 80))
	}
	for _, ip := range c.IPAddresses {
		names = append(names, "IP:"+ip.String())
	}
	if len(names) > 4 {
		names = append(names[:4], "…")
	}
	return strings.Join(names, ", ")
}

// hintedError is a failure with the cause named in the user's terms and
// one hint; it wraps the original error for errors.Is and errors.As.
type hintedError struct {
	msg string
	err error
}

func (h *hintedError) Error() string { return h.msg }
func (h *hintedError) Unwrap() error { return h.err }

// withTransportHint returns err unchanged, or, when transportDiagnosis
// recognises it, an error that reads "where: cause (hint)".
func withTransportHint(err error, where string) error {
	cause, hint, ok := transportDiagnosis(err)
	if !ok {
		return err
	}
	return &hintedError{msg: fmt.Sprintf("%s: %s (%s)", where, cause, hint), err: err}
}
