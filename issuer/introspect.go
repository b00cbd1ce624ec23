package issuer

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/senderbound/senderbound/oautherr"
)

var inactive = []byte(`{"active":false}`)

// IntrospectionHandler returns the RFC 7662 introspection endpoint. The
// caller must authenticate as a registered client with Introspect set
// (ATV-29); introspection needs no DPoP proof (RFC 9449 §6.2). An active
// access token, JWT or opaque (FormatOpaque), is answered with its claims, "token_type" ("DPoP" for a
// jkt-bound token, else "Bearer") and its "cnf", but only to the client it
// was issued to, to a client registered for one of its audiences, and to a
// client with IntrospectAll; a refresh token is active only for the client
// it was issued to. Anything else (unknown, expired, not yet valid, signed
// by an unpublished key, or not visible to the caller) is exactly
// {"active":false}, so a caller cannot tell another client's token from
// an invalid one. When the store of opaque access tokens fails, the answer
// is 503 temporarily_unavailable, not {"active":false}.
func (s *Server) IntrospectionHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			s.writeError(w, "introspection", &Error{Code: oautherr.InvalidRequest, Description: "introspection accepts POST only", Status: http.StatusMethodNotAllowed, Reason: oautherr.ReasonRequestMalformed, Err: ErrInvalidRequest})
			return
		}
		f, err := readForm(w, r)
		if err != nil {
			s.writeError(w, "introspection", err)
			return
		}
		client, err := s.authenticate(r.Context(), r, f, IntrospectionPath)
		if err == nil && !client.Introspect {
			err = newError(ErrInvalidClient, "client may not introspect")
		}
		if err != nil {
			var e *Error
			if errors.As(err, &e) && e.Code == oautherr.InvalidClient {
				// RFC 7662 §2.3: an unauthenticated caller gets 401.
				err = basicError(e)
			}
			s.writeError(w, "introspection", err)
			return
		}
		tok := f.get("token")
		if tok == "" {
			s.writeError(w, "introspection", newError(ErrInvalidRequest, "token is required"))
			return
		}
		resp, err := s.introspect(r.Context(), client, tok, f.get("token_type_hint"))
		if err != nil {
			s.writeError(w, "introspection", err)
			return
		}
		if resp == nil {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_, _ = w.Write(inactive)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

// introspect returns the response members of an active token, or nil. A
// token without dots is a refresh token or an opaque access token, never a
// JWT; a JWS-shaped one is a JWT access token or, with the hint, looked up
// as a refresh token first. An error means a store failed.
func (s *Server) introspect(ctx context.Context, caller *Client, tok, hint string) (map[string]any, error) {
	if hint == GrantRefreshToken || strings.Count(tok, ".") != 2 {
		if m := s.introspectRefresh(ctx, caller, tok); m != nil {
			return m, nil
		}
	}
	if noDots(tok) {
		return s.introspectOpaque(ctx, caller, tok)
	}
	if strings.Count(tok, ".") == 2 {
		return s.introspectAccess(caller, tok), nil
	}
	return nil, nil
}

func (s *Server) introspectAccess(caller *Client, raw string) map[string]any {
	ks := s.is.cfg.Keys
	algs := []jose.SignatureAlgorithm{}
	for _, a := range ks.algorithms() {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	t, err := jwt.ParseSigned(raw, algs)
	if err != nil || len(t.Headers) != 1 {
		return nil
	}
	h := t.Headers[0]
	if typ, _ := h.ExtraHeaders["typ"].(string); typ != "at+jwt" {
		return nil
	}
	now := s.is.now()
	k, ok := ks.lookup(h.KeyID, now)
	if !ok || k.alg != h.Algorithm {
		return nil
	}
	var std jwt.Claims
	all := map[string]any{}
	if err := t.Claims(k.signer.Public(), &std, &all); err != nil {
		return nil
	}
	if std.Expiry == nil || std.IssuedAt == nil {
		return nil
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: s.is.ID(), Time: now}, 0); err != nil {
		return nil
	}
	if !now.Before(std.Expiry.Time()) {
		return nil
	}
	clientID, _ := all["client_id"].(string)
	if !caller.mayIntrospect(clientID, std.Audience) {
		if s.cfg.Logger != nil {
			s.cfg.Logger.Info("issuer: introspection answered inactive",
				slog.String("reason", string(oautherr.ReasonTokenNotVisible)),
				slog.String("description", "token not visible to the caller"))
		}
		return nil
	}
	all["active"] = true
	all["token_type"] = "Bearer"
	if cnf, ok := all["cnf"].(map[string]any); ok {
		if _, ok := cnf["jkt"]; ok {
			all["token_type"] = "DPoP"
		}
	}
	return all
}

func (s *Server) introspectRefresh(ctx context.Context, caller *Client, tok string) map[string]any {
	rec, err := s.refresh.Get(ctx, refreshID(tok))
	if err != nil || rec.Used || rec.ID != "" || rec.ClientID != caller.ID || !s.is.now().Before(rec.ExpiresAt) {
		return nil
	}
	m := map[string]any{
		"active": true, "client_id": rec.ClientID, "sub": rec.Subject,
		"exp": rec.ExpiresAt.Unix(), "iss": s.is.ID(), "token_type": "refresh_token",
	}
	if rec.Scope != "" {
		m["scope"] = rec.Scope
	}
	if rec.Binding.Bound() {
		m["cnf"] = cnfClaim{JKT: rec.Binding.JKT, X5TS256: rec.Binding.X5TS256}
	}
	return m
}
