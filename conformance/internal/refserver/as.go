package refserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *Servers) serveAS(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/token":
		s.serveToken(w, r)
	case "/jwks":
		pub := s.IssuerKey.Public()
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	case "/introspect":
		s.serveIntrospect(w, r)
	case "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration":
		iss := s.issuer
		if s.has(MetadataIssuerMismatch) {
			iss += "/"
		}
		md := map[string]any{
			"issuer":                                     iss,
			"token_endpoint":                             s.issuer + "/token",
			"jwks_uri":                                   s.issuer + "/jwks",
			"introspection_endpoint":                     s.issuer + "/introspect",
			"grant_types_supported":                      []string{"client_credentials"},
			"token_endpoint_auth_methods_supported":      []string{"client_secret_basic", "tls_client_auth"},
			"dpop_signing_alg_values_supported":          []string{"ES256", "PS256", "RS256"},
			"tls_client_certificate_bound_access_tokens": true,
		}
		if s.has(EmptyMetadataArray) {
			md["scopes_supported"] = []string{}
		}
		if s.has(MetadataBoolAsString) {
			md["tls_client_certificate_bound_access_tokens"] = "true"
		}
		if s.has(MetadataNoMTLSMethods) {
			md["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic"}
		}
		if s.has(MetadataNoJWKSURI) {
			delete(md, "jwks_uri")
		}
		if s.has(MetadataNotJSON) {
			b, _ := json.Marshal(md)
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(b)
			return
		}
		writeJSON(w, http.StatusOK, md)
	default:
		http.NotFound(w, r)
	}
}

// rawJWKDigest hashes the proof's jwk member as received, without RFC 7638
// canonicalization (used by the JKTNotCanonical mutant only).
func rawJWKDigest(proof string) string {
	parts := strings.Split(proof, ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var hdr map[string]json.RawMessage
	_ = json.Unmarshal(hb, &hdr)
	return clientCertThumbprint(hdr["jwk"])
}

func clientCertThumbprint(der []byte) string {
	h := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func (s *Servers) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST required")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) > 1 {
		oauthError(w, http.StatusBadRequest, "invalid_dpop_proof", "more than one DPoP header")
		return
	}
	// Client authentication: client_secret_basic, or tls_client_auth by the
	// registered certificate subject.
	clientID := ""
	public := false
	var boundCert []byte
	if id, secret, ok := r.BasicAuth(); ok {
		if id != ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(ClientSecret)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="refserver"`)
			oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
		clientID = id
	} else {
		id := r.PostForm.Get("client_id")
		if id == PublicClientID {
			// A public client: no authentication; a certificate it
			// presents binds its tokens (RFC 8705 §4).
			clientID, public = id, true
			if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
				boundCert = r.TLS.PeerCertificates[0].Raw
			}
			goto authenticated
		}
		if id == "" && s.has(MTLSAuthWithoutClientID) {
			id = MTLSClientID
		}
		if id == ClientID && s.has(CertAuthIgnoresClientID) && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			id = MTLSClientID
		}
		if id == MTLSClientID && (s.has(MTLSClientWithoutCert) || s.has(BindRegisteredCert)) && (r.TLS == nil || len(r.TLS.PeerCertificates) == 0) {
			clientID = id
			if s.has(BindRegisteredCert) {
				// Binds to the certificate on file, not to one the
				// client proved possession of.
				boundCert = s.ClientCert.Certificate[0]
			}
			goto authenticated
		}
		if id != MTLSClientID || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
		leaf := r.TLS.PeerCertificates[0]
		if leaf.Subject.CommonName != MTLSClientID && !s.has(ClientCertNotMatched) {
			oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
		clientID = id
		boundCert = leaf.Raw
	}
authenticated:
	if boundCert == nil && s.has(BindHeaderCertAtAS) {
		if v := r.Header.Get("Client-Cert"); len(v) > 2 {
			if der, err := base64.StdEncoding.DecodeString(strings.Trim(v, ":")); err == nil {
				boundCert = der
			}
		}
	}
	subject := clientID
	issueRefresh := false
	var refreshed *refreshRecord
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		if public {
			oauthError(w, http.StatusBadRequest, "unauthorized_client", "public clients cannot use client_credentials")
			return
		}
	case RefreshGrantType:
		// The test hook standing in for an authorization code grant.
		if r.PostForm.Get("subject") != RefreshGrantSubject {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown test subject")
			return
		}
		subject, issueRefresh = RefreshGrantSubject, true
	case "refresh_token":
		if refreshed = s.refresh.get(r.PostForm.Get("refresh_token"), time.Now()); refreshed == nil || refreshed.clientID != clientID {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token is invalid or expired")
			return
		}
		subject = refreshed.subject
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant type not supported")
		return
	}
	scope := r.PostForm.Get("scope")
	if scope == "" {
		scope = Scope
		if refreshed != nil {
			scope = refreshed.scope
		}
	}
	for _, sc := range strings.Fields(scope) {
		if sc != "read" && sc != "write" || refreshed != nil && !slices.Contains(strings.Fields(refreshed.scope), sc) {
			oauthError(w, http.StatusBadRequest, "invalid_scope", "unknown scope")
			return
		}
	}
	now := time.Now()
	cnf := map[string]string{}
	tokenType := "Bearer"
	if len(proofs) == 1 && s.has(CertClientNoDPoP) && clientID == MTLSClientID {
		oauthError(w, http.StatusBadRequest, "invalid_request", "this client gets certificate-bound tokens only")
		return
	}
	if len(proofs) == 1 {
		var nonce func(string) bool
		if s.cfg.RequireNonce {
			nonce = func(n string) bool { return n != "" && s.checkNonce(s.asNonce, n, now) }
		}
		jkt, perr := s.verifyProof(proofs[0], proofCheck{method: http.MethodPost, url: "https://" + r.Host + r.URL.Path, nonce: nonce, atAS: true, replay: s.asReplay,
			noIatWindow: nonce != nil && s.has(NonceFreshnessOnly)})
		if perr != nil {
			if perr.code == "use_dpop_nonce" {
				w.Header().Set("DPoP-Nonce", s.issueNonce(s.asNonce, now))
				if s.has(DuplicateNonceHeader) {
					w.Header().Add("DPoP-Nonce", s.issueNonce(s.asNonce, now))
				}
				oauthError(w, http.StatusBadRequest, "use_dpop_nonce", "authorization server requires nonce in DPoP proof")
				return
			}
			if perr.code == "server_error" {
				oauthError(w, http.StatusInternalServerError, "server_error", "internal error")
				return
			}
			oauthError(w, http.StatusBadRequest, perr.code, "invalid DPoP proof")
			return
		}
		if s.has(JKTNotCanonical) {
			jkt = rawJWKDigest(proofs[0])
		}
		cnf["jkt"] = jkt
		tokenType = "DPoP"
		if s.has(TokenTypeMislabel) {
			tokenType = "Bearer"
		}
	} else if boundCert != nil {
		cnf["x5t#S256"] = clientCertThumbprint(boundCert)
		if s.has(X5tOverSPKI) {
			if c, err := x509.ParseCertificate(boundCert); err == nil {
				cnf["x5t#S256"] = clientCertThumbprint(c.RawSubjectPublicKeyInfo)
			}
		}
	}
	if refreshed != nil {
		// A public client's refresh token needs the key or certificate it
		// was issued to (RFC 9449 §5, RFC 8705 §4).
		if refreshed.jkt != "" && cnf["jkt"] != refreshed.jkt {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token is bound to another DPoP key")
			return
		}
		if refreshed.x5t != "" && (boundCert == nil || clientCertThumbprint(boundCert) != refreshed.x5t) {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token is bound to another certificate")
			return
		}
	}
	ttl := 5 * time.Minute
	if s.has(LongLivedTokens) {
		ttl = 2 * time.Hour
	}
	claims := map[string]any{
		"iss":       s.issuer,
		"sub":       subject,
		"aud":       []string{Audience, Audience2},
		"client_id": clientID,
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       now.Add(ttl).Unix(),
		"jti":       randomID(),
		"scope":     scope,
	}
	if len(cnf) > 0 {
		claims["cnf"] = cnf
		if s.has(TokenCnfNotObject) {
			claims["cnf"] = []any{cnf}
		}
	}
	if s.has(TokenWithoutClientID) {
		delete(claims, "client_id")
	}
	if s.has(TokenWithoutScope) {
		delete(claims, "scope")
	}
	tok, err := s.sign(claims)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "signing failed")
		return
	}
	resp := map[string]any{"access_token": tok, "token_type": tokenType, "expires_in": int(ttl / time.Second), "scope": scope}
	// A public client gets a refresh token only when its tokens are bound.
	if issueRefresh && (!public || len(cnf) > 0) {
		rec := refreshRecord{clientID: clientID, subject: subject, scope: scope, exp: now.Add(time.Hour)}
		if public && !s.has(RefreshNotKeyBound) {
			if rec.jkt = cnf["jkt"]; rec.jkt == "" {
				rec.x5t = clientCertThumbprint(boundCert)
			}
		}
		resp["refresh_token"] = s.refresh.put(rec)
	}
	if s.has(TokenResponseCacheable) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Servers) sign(claims map[string]any) (string, error) {
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := s.signer.Sign(b)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

func (s *Servers) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST required")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !s.has(IntrospectionUnprotected) && (!ok || id != IntrospectID || subtle.ConstantTimeCompare([]byte(secret), []byte(IntrospectSecret)) != 1) {
		w.Header().Set("WWW-Authenticate", `Basic realm="refserver"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	if s.has(IntrospectionRequiresProof) && r.Header.Get("DPoP") == "" {
		oauthError(w, http.StatusBadRequest, "invalid_dpop_proof", "proof required")
		return
	}
	claims, err := s.verifyToken(r.PostForm.Get("token"), "")
	if err != nil {
		inactive := map[string]any{"active": false}
		if s.has(InactiveLeaks) {
			inactive["error"] = "token rejected"
		}
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	out := map[string]any{"active": true}
	for _, k := range []string{"iss", "sub", "aud", "client_id", "scope", "exp", "iat", "nbf", "jti", "cnf"} {
		if v, ok := claims[k]; ok && !(k == "cnf" && s.has(IntrospectionNoCnf)) {
			out[k] = v
		}
	}
	out["token_type"] = "Bearer"
	if cnf, ok := claims["cnf"].(map[string]any); ok {
		if _, ok := cnf["jkt"]; ok {
			out["token_type"] = "DPoP"
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// refreshRecord is what the AS keeps for one refresh token. A public
// client's record carries the binding of the tokens it was issued with:
// the DPoP key's thumbprint, else the certificate's.
type refreshRecord struct {
	clientID, subject, scope string
	jkt, x5t                 string
	exp                      time.Time
}

// refreshStore keeps refresh tokens in memory.
type refreshStore struct {
	mu   sync.Mutex
	recs map[string]refreshRecord
}

func newRefreshStore() *refreshStore { return &refreshStore{recs: map[string]refreshRecord{}} }

// put stores rec under a new random token and returns the token.
func (rs *refreshStore) put(rec refreshRecord) string {
	tok := randomID()
	rs.mu.Lock()
	rs.recs[tok] = rec
	rs.mu.Unlock()
	return tok
}

// get returns the record of an unexpired token, or nil.
func (rs *refreshStore) get(tok string, now time.Time) *refreshRecord {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rec, ok := rs.recs[tok]
	if !ok || !now.Before(rec.exp) {
		return nil
	}
	return &rec
}
