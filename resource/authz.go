package resource

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/senderbound/senderbound/oautherr"
)

// Scheme names as rendered in challenges.
const (
	schemeDPoP   = "DPoP"
	schemeBearer = "Bearer"
)

// credentials is what the Authorization header carried.
type credentials struct {
	scheme string // schemeDPoP, schemeBearer, or "" (none, or a scheme we do not know)
	token  string
}

// maxFormPeek bounds how much of a form-encoded body is inspected for an
// access_token parameter.
const maxFormPeek = 64 << 10

// parseAuthorization parses one Authorization field value of the form
// `scheme SP token68` (RFC 9110 §11.4, RFC 6750 §2.1). The scheme is
// returned as written; compare it case-insensitively. It returns ok=false
// for anything else: empty value, no token, several credentials, bytes
// outside token68, surrounding or repeated whitespace.
func parseAuthorization(value string) (scheme, token string, ok bool) {
	sp := strings.IndexByte(value, ' ')
	if sp <= 0 {
		return "", "", false
	}
	scheme, token = value[:sp], value[sp+1:]
	if !isToken(scheme) || !isToken68(token) {
		return "", "", false
	}
	return scheme, token, true
}

// isToken reports whether s is an RFC 9110 token (tchar+).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// token68Chars marks ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/".
var token68Chars = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/") {
		t[c] = true
	}
	return t
}()

// isToken68 reports whether s matches 1*( ALPHA / DIGIT / "-" / "." / "_" /
// "~" / "+" / "/" ) *"=" (RFC 9110 §11.2).
func isToken68(s string) bool {
	i := 0
	for i < len(s) && token68Chars[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// errTokenInParameter refuses a token in the access_token query or form
// parameter.
func errTokenInParameter() error {
	return fail(ErrInvalidRequest, oautherr.ReasonTokenInParameter, "access token must be sent in the Authorization header only")
}

// readCredentials extracts the access token from r. Proxy-Authorization is
// never consulted (RFC 9449 §7.1). A token in more than one place, or in
// the access_token query parameter at all, is a malformed request (RFC
// 6750 §2, §3.1): this resource accepts the header method only. The body
// is not read here: a form-encoded body is inspected for access_token only
// once the request is authenticated (see [hasAccessTokenForm]).
func (v *Verifier) readCredentials(r *http.Request) (credentials, error) {
	if hasAccessTokenQuery(r) {
		return credentials{}, errTokenInParameter()
	}
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return credentials{}, nil
	case 1:
	default:
		return credentials{}, fail(ErrInvalidRequest, oautherr.ReasonMultipleAuthorization, "more than one Authorization field")
	}
	if len(vals[0]) > v.maxTokenBytes+64 {
		return credentials{}, fail(ErrInvalidRequest, oautherr.ReasonAuthorizationTooLarge, "Authorization field too large")
	}
	scheme, tok, ok := parseAuthorization(vals[0])
	if !ok {
		// A recognised scheme with a malformed value is a malformed request;
		// anything else is a scheme this resource does not use.
		if s, _, _ := strings.Cut(vals[0], " "); strings.EqualFold(s, schemeDPoP) || strings.EqualFold(s, schemeBearer) {
			return credentials{}, fail(ErrInvalidRequest, oautherr.ReasonAuthorizationMalformed, "malformed Authorization field")
		}
		return credentials{}, nil
	}
	switch {
	case strings.EqualFold(scheme, schemeDPoP):
		return credentials{scheme: schemeDPoP, token: tok}, nil
	case strings.EqualFold(scheme, schemeBearer):
		return credentials{scheme: schemeBearer, token: tok}, nil
	}
	return credentials{}, nil
}

// hasAccessTokenQuery reports whether r carries access_token in its query.
func hasAccessTokenQuery(r *http.Request) bool {
	if r.URL.RawQuery == "" {
		return false
	}
	// ParseQuery keeps the pairs it could parse even when it reports an
	// error, so a malformed neighbour cannot hide the parameter.
	q, _ := url.ParseQuery(r.URL.RawQuery)
	return q.Has("access_token")
}

// hasAccessTokenForm reports whether a form-encoded body carries
// access_token in its first maxFormPeek bytes. The body is restored for
// the handler. Check calls it only for an authenticated request, so that a
// client without valid credentials cannot make the server wait for a body.
func hasAccessTokenForm(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return false
	}
	orig := r.Body
	peek, err := io.ReadAll(io.LimitReader(orig, maxFormPeek))
	rest := io.Reader(orig)
	if err != nil || len(peek) < maxFormPeek {
		rest = http.NoBody // the whole body (or all that could be read) is in peek
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(peek), rest), orig}
	if !bytes.Contains(peek, []byte("access_token")) {
		return false
	}
	for _, pair := range bytes.Split(peek, []byte("&")) {
		k, _, _ := bytes.Cut(pair, []byte("="))
		if key, err := url.QueryUnescape(string(k)); err == nil && key == "access_token" {
			return true
		}
	}
	return false
}
