package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/oautherr"
)

func basicError(e *Error) *Error {
	cp := *e
	cp.basic = true
	cp.Status = http.StatusUnauthorized
	return &cp
}

type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// writeError renders err as an RFC 6749 §5.2 error and logs the refusal at
// endpoint ("token", "introspection", "par", ...). Only the fixed code and
// description reach the client and the log.
func (s *Server) writeError(w http.ResponseWriter, endpoint string, err error) {
	var e *Error
	if !errors.As(err, &e) {
		code, status := codeFor(err)
		desc := ""
		if code == oautherr.ServerError {
			desc = "internal error"
		}
		e = &Error{Code: code, Status: status, Description: desc, Reason: defaultReason(code)}
		if desc == "" {
			e.Description = defaultDescription(code)
		}
	}
	status := e.Status
	if status == 0 {
		_, status = codeFor(e.Err)
	}
	if e.Code == oautherr.InvalidClient {
		if e.basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+s.realm()+`"`)
			status = http.StatusUnauthorized
		} else if status == http.StatusUnauthorized {
			// A 401 must carry a challenge (RFC 9110 §15.5.2); without a
			// Basic attempt the RFC 6749 answer is 400.
			status = http.StatusBadRequest
		}
	}
	if e.nonce != "" {
		dpop.SetNonce(w.Header(), e.nonce)
	}
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(e.retryAfter, 10))
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.Refused(endpoint, e)
	}
	if s.cfg.Logger != nil {
		attrs := []slog.Attr{
			slog.String("endpoint", endpoint),
			slog.String("error", e.Code),
			slog.Int("status", status),
			slog.String("reason", string(e.Reason)),
			slog.String("description", e.Description),
		}
		if e.cause != nil {
			// Causes come from this module's lower layers (dpop, mtlsbound,
			// the stores), whose messages never contain request data.
			attrs = append(attrs, slog.String("cause", e.cause.Error()))
		}
		s.cfg.Logger.LogAttrs(context.Background(), slog.LevelInfo, "issuer: request refused", attrs...)
	}
	writeJSON(w, status, errorBody{Error: e.Code, ErrorDescription: e.Description})
}

func (s *Server) realm() string {
	// The issuer identifier is configuration, never request input; strip
	// characters that cannot appear in a quoted-string.
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7E {
			return -1
		}
		return r
	}, s.is.ID())
}

func defaultDescription(code string) string {
	switch code {
	case oautherr.InvalidClient:
		return "client authentication failed"
	case oautherr.InvalidGrant:
		return "invalid grant"
	case oautherr.InvalidScope:
		return "invalid scope"
	case oautherr.InvalidDPoPProof:
		return "invalid DPoP proof"
	case oautherr.TemporarilyUnavailable:
		return "temporarily unavailable"
	}
	return "invalid request"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":"` + oautherr.ServerError + `"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
