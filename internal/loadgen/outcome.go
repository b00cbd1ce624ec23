package loadgen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/senderbound/senderbound/dpop"
)

// maxOutcomes bounds the distinct outcomes a worker keeps, so that a
// server answering ever new error codes cannot grow the generator's
// memory; the rest are counted as "other".
const maxOutcomes = 32

// maxErrorCode bounds an error code taken from a response.
const maxErrorCode = 40

// outcomeKey is the class of one request's result: the final status with
// the WWW-Authenticate error code, or (Status 0) the cause of a transport
// failure.
type outcomeKey struct {
	status int
	code   string
}

// String renders k as in reports: "200", "401 invalid_token", or the
// transport failure's cause.
func (k outcomeKey) String() string {
	switch {
	case k.status == 0:
		return k.code
	case k.code == "":
		return strconv.Itoa(k.status)
	}
	return strconv.Itoa(k.status) + " " + k.code
}

// responseOutcome classifies a response by its status and, when it has
// one, the error code of its first challenge naming an error.
func responseOutcome(resp *http.Response) outcomeKey {
	k := outcomeKey{status: resp.StatusCode}
	if resp.StatusCode/100 == 2 {
		return k
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		cs, err := dpop.ParseChallenges(v)
		if err != nil {
			continue
		}
		for _, c := range cs {
			if c.Error != "" {
				k.code = errorCode(c.Error)
				return k
			}
		}
	}
	return k
}

// errorCode returns code when it is a plausible error code (letters,
// digits, '_', '-' and '.', at most maxErrorCode bytes) and a fixed label
// otherwise: server text never reaches the report unchecked.
func errorCode(code string) string {
	if len(code) > maxErrorCode {
		return "(unreadable error code)"
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return "(unreadable error code)"
		}
	}
	return code
}

// CauseUntrusted is the cause TransportCause gives to a failure to verify the server's TLS
// certificate, as it appears in errors and outcomes.
const CauseUntrusted = "TLS certificate not trusted"

// TransportCause names the cause of a failed HTTP exchange in a few fixed
// words, e.g. "connection refused" or "TLS certificate not trusted", never
// quoting the error's text; "transport error" when it has no name.
func TransportCause(err error) string {
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var verifyErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &dnsErr):
		return "host not found"
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &verifyErr):
		return CauseUntrusted
	case errors.As(err, &recErr):
		return "TLS handshake failed (not a TLS server?)"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case strings.Contains(err.Error(), "malformed HTTP"):
		return "malformed HTTP response (not an HTTP server?)"
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// net/http replaces the tls.RecordHeaderError with a new error.
		return "plain HTTP answer to HTTPS"
	case strings.Contains(err.Error(), "remote error: tls"):
		// crypto/tls reports the peer's alert with an unexported type.
		return "TLS handshake refused (client certificate?)"
	}
	return "transport error"
}
