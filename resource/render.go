package resource

import (
	"errors"
	"net/http"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/oautherr"
)

// WriteError renders err as the HTTP response: status, WWW-Authenticate
// challenges for the schemes in force on 400, 401 and 403 (only the
// attempted scheme's challenge carries error, and none does when the
// request had no credentials; none at all on 503; when the attempted
// scheme is not one the route offers, its challenge with the error follows
// the route's), DPoP-Nonce when one was minted, Cache-Control: no-store,
// and Access-Control-Expose-Headers for WWW-Authenticate and DPoP-Nonce.
// The body is a short JSON object with the error code. Nothing from the
// request is echoed. An error that is not an [*Error] is rendered as 503.
//
// WriteError is the one place responses for rejected requests are built;
// the net/http middleware and the Echo adapter both use it.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusServiceUnavailable, Err: ErrUnavailable, Reason: oautherr.ReasonInternal}
	}
	h := w.Header()
	for _, c := range e.Challenges() {
		h.Add("WWW-Authenticate", c)
	}
	if e.nonce != "" {
		dpop.SetNonce(h, e.nonce)
	}
	h.Set("Cache-Control", "no-store")
	exposeHeaders(h)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	body := `{"error":"` + e.Code + `"}`
	if e.Code == "" {
		if e.Status == http.StatusServiceUnavailable {
			body = `{"error":"` + oautherr.TemporarilyUnavailable + `"}`
		} else {
			body = `{"error":"unauthorized"}`
		}
	}
	_, _ = w.Write([]byte(body + "\n"))
}

// WriteRejection writes the response for a request [Verifier.Check]
// refused, as [WriteError] does, and keeps the client from holding the
// connection with a body nobody will read: Check reads the body only of a
// request it authenticated, and net/http would otherwise read the rest of
// an unread body (up to 256 KiB) before sending the response. So when r is
// HTTP/1.x and has a body, the response says Connection: close and the
// connection's read deadline is set to now, so the server neither waits
// for the body before answering nor drains it afterwards. The middleware
// and the Echo adapter use it; call it from a custom error handler that
// does not read the body either.
func WriteRejection(w http.ResponseWriter, r *http.Request, err error) {
	unread := r.ProtoMajor == 1 && r.Body != nil && r.Body != http.NoBody
	if unread {
		w.Header().Set("Connection", "close")
	}
	WriteError(w, err)
	if unread {
		// Not every ResponseWriter supports deadlines; Connection: close
		// alone already avoids the wait before the response.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
}

// Challenges returns the WWW-Authenticate field values [WriteError] sends
// for e, in order: one challenge per scheme the route offers (only the
// attempted scheme's carries the error code), then, when the client used a
// scheme the server supports but the route does not offer, a challenge of
// that scheme with the error. It returns nil for a 503. Adapters for
// transports other than HTTP responses (gRPC metadata) send these values;
// they contain nothing from the request.
func (e *Error) Challenges() []string {
	if e.Status == http.StatusServiceUnavailable {
		return nil
	}
	cs := make([]string, 0, len(e.schemes)+1)
	offered := false
	for _, s := range e.schemes {
		cs = append(cs, e.challenge(s))
		offered = offered || s == e.scheme
	}
	if !offered && e.scheme != "" && e.Code != "" {
		// The client used a scheme this server supports but this route
		// does not offer: the error goes on a challenge of that scheme,
		// after the route's own, so every route reports the same fault
		// the same way (ERR-11, ERR-13).
		cs = append(cs, e.challenge(e.scheme))
	}
	return cs
}

// DPoPNonce returns the fresh DPoP-Nonce [WriteError] sends with e (after
// use_dpop_nonce, or with insufficient_scope when a nonce was due), or "".
func (e *Error) DPoPNonce() string { return e.nonce }

func exposeHeaders(h http.Header) {
	h.Add("Access-Control-Expose-Headers", "WWW-Authenticate, DPoP-Nonce")
}

// challenge renders one challenge with dpop.Challenge, which filters every
// value to its RFC 6750 §3 character set. All values come from
// configuration or fixed strings in any case.
func (e *Error) challenge(scheme string) string {
	c := dpop.Challenge{Scheme: scheme}
	if scheme == schemeBearer {
		c.Realm = e.realm
	}
	if scheme == e.scheme && e.Code != "" {
		c.Error = e.Code
		c.ErrorDescription = e.Description
		c.Scope = e.scope
	}
	if scheme == schemeDPoP {
		c.Algs = e.algs
	}
	return c.String()
}

// SetResponseHeaders adds what a successful response must carry: a fresh
// DPoP-Nonce when the client's nonce is due for renewal (with
// Cache-Control: no-store, RFC 9449 §8.2), Cache-Control: no-store when a
// forwarded client certificate decided (RFC 9440 §2.4), and the
// Access-Control-Expose-Headers entries. Call it before writing the
// response; the middleware does.
func (p *Principal) SetResponseHeaders(h http.Header) {
	if p.nonce != "" {
		dpop.SetNonce(h, p.nonce)
	}
	if p.forwarded {
		h.Set("Cache-Control", "no-store")
	}
	exposeHeaders(h)
}

// DPoPNonce returns the fresh DPoP-Nonce [Principal.SetResponseHeaders]
// sends because the client's nonce is due for renewal, or "". It is not the
// nonce the client's proof carried. Adapters for transports other than HTTP
// responses (gRPC metadata) send it themselves.
func (p *Principal) DPoPNonce() string { return p.nonce }
