package issuer

import (
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxFormBytes caps a token or introspection request body.
const maxFormBytes = 64 << 10

// maxParamBytes caps any single parameter value.
const maxParamBytes = 8 << 10

// form is a parsed application/x-www-form-urlencoded request body in which
// every parameter appears at most once (RFC 6749 §3.1, §3.2).
type form map[string]string

func (f form) get(name string) string { return f[name] }

// parseFormBody parses an RFC 6749 form body. Parameters sent without a
// value are treated as omitted; a repeated parameter, a non-UTF-8 or
// oversized value, or a body that is not form-encoded is ErrInvalidRequest.
func parseFormBody(contentType string, body io.Reader) (form, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, newError(ErrInvalidRequest, "body must be application/x-www-form-urlencoded")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, newError(ErrInvalidRequest, "body must be UTF-8")
	}
	raw, err := io.ReadAll(io.LimitReader(body, maxFormBytes+1))
	if err != nil {
		return nil, newError(ErrInvalidRequest, "unreadable body")
	}
	if len(raw) > maxFormBytes {
		return nil, newError(ErrInvalidRequest, "body too large")
	}
	vals, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, newError(ErrInvalidRequest, "malformed form body")
	}
	f := make(form, len(vals))
	for k, vs := range vals {
		if len(vs) != 1 {
			return nil, newError(ErrInvalidRequest, "repeated parameter")
		}
		if !validText(k) || !validText(vs[0]) || len(vs[0]) > maxParamBytes {
			return nil, newError(ErrInvalidRequest, "malformed parameter")
		}
		if vs[0] != "" {
			f[k] = vs[0]
		}
	}
	return f, nil
}

// validText reports whether s is valid UTF-8 without control characters.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7F {
			return false
		}
	}
	return true
}

// readForm checks method and parses r's body. Query parameters are never
// read: credentials in a URL are refused (RFC 6749 §2.3.1).
func readForm(w http.ResponseWriter, r *http.Request) (form, error) {
	if r.URL.RawQuery != "" {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil || q.Has("client_secret") || q.Has("refresh_token") || q.Has("token") || q.Has("code") {
			return nil, newError(ErrInvalidRequest, "credentials in the query string")
		}
	}
	return parseFormBody(r.Header.Get("Content-Type"), http.MaxBytesReader(w, r.Body, maxFormBytes+1))
}

var errNoBasic = errors.New("issuer: no Basic credentials")

// parseBasic decodes an RFC 6749 §2.3.1 client_secret_basic header value:
// "Basic base64(urlencode(id) ":" urlencode(secret))". It returns
// errNoBasic when the header uses another scheme or is absent, and
// ErrInvalidClient when it is a malformed Basic header.
func parseBasic(header string) (id, secret string, err error) {
	scheme, cred, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", errNoBasic
	}
	cred = strings.TrimLeft(cred, " ")
	if len(cred) > 4096 {
		return "", "", newError(ErrInvalidClient, "malformed Basic credentials")
	}
	dec, err := base64.StdEncoding.Strict().DecodeString(cred)
	if err != nil {
		return "", "", newError(ErrInvalidClient, "malformed Basic credentials")
	}
	rawID, rawSecret, ok := strings.Cut(string(dec), ":")
	if !ok {
		return "", "", newError(ErrInvalidClient, "malformed Basic credentials")
	}
	id, err1 := url.QueryUnescape(rawID)
	secret, err2 := url.QueryUnescape(rawSecret)
	if err1 != nil || err2 != nil || id == "" || secret == "" || !validText(id) || !validText(secret) {
		return "", "", newError(ErrInvalidClient, "malformed Basic credentials")
	}
	return id, secret, nil
}

// formatBasic is the inverse of parseBasic, for clients and tests.
func formatBasic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}
