package refserver

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func randomID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("refserver: crypto/rand failed")
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

const maxToken = 8 << 10

// verifyToken checks an access token's signature and claims. audience ""
// skips the audience check (introspection).
func (s *Servers) verifyToken(tok, audience string) (map[string]any, error) {
	if len(tok) > maxToken || strings.Count(tok, ".") != 2 {
		return nil, errors.New("malformed")
	}
	parts := strings.Split(tok, ".")
	hb, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	if err != nil {
		return nil, errors.New("malformed")
	}
	var hdr map[string]any
	if (noDuplicates(hb) != nil && !s.has(NoDuplicateCheck)) || json.Unmarshal(hb, &hdr) != nil {
		return nil, errors.New("malformed header")
	}
	if _, ok := hdr["crit"]; ok && !s.has(NoCritCheck) {
		return nil, errors.New("crit")
	}
	typ, _ := hdr["typ"].(string)
	if !s.has(NoTokenTypCheck) && !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, errors.New("typ")
	}
	var payload []byte
	_, hasCrit := hdr["crit"]
	switch {
	case s.has(NoTokenSignatureCheck):
		payload, err = base64.RawURLEncoding.DecodeString(parts[1])
	case hasCrit && s.has(NoCritCheck):
		if alg, _ := hdr["alg"].(string); alg != "ES256" {
			return nil, errors.New("alg")
		}
		pub := s.IssuerKey.Public()
		payload, err = verifyES256Raw(parts, pub.Key)
	default:
		var obj *jose.JSONWebSignature
		obj, err = jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err == nil {
			payload, err = obj.Verify(s.IssuerKey.Public())
		}
	}
	if err != nil {
		return nil, errors.New("signature")
	}
	if err := noDuplicates(payload); err != nil && !s.has(NoDuplicateCheck) {
		return nil, errors.New("claims JSON")
	}
	var cl map[string]any
	if err := json.Unmarshal(payload, &cl); err != nil {
		return nil, errors.New("claims JSON")
	}
	now := float64(time.Now().Unix())
	if iss, _ := cl["iss"].(string); iss != s.issuer && !s.has(NoIssCheck) {
		return nil, errors.New("iss")
	}
	if audience != "" && !s.has(NoAudCheck) && !hasAudience(cl["aud"], audience) {
		return nil, errors.New("aud")
	}
	exp, ok := cl["exp"].(float64)
	if s.has(ExpLeeway) {
		exp += 60
	}
	if !s.has(NoExpCheck) && (!ok || now >= exp) {
		return nil, errors.New("exp")
	}
	if nbf, ok := cl["nbf"]; ok && !s.has(NoNbfCheck) {
		n, isNum := nbf.(float64)
		if !isNum || now+5 < n {
			return nil, errors.New("nbf")
		}
	}
	if !s.has(NoRequiredClaims) {
		for _, k := range []string{"sub", "client_id", "jti"} {
			if v, ok := cl[k].(string); !ok || v == "" {
				return nil, errors.New("missing " + k)
			}
		}
		if _, ok := cl["iat"].(float64); !ok {
			return nil, errors.New("missing iat")
		}
	}
	if c, ok := cl["cnf"]; ok {
		m, isObj := c.(map[string]any)
		if !isObj {
			return nil, errors.New("cnf")
		}
		if s.has(UnknownCnfMemberRejected) {
			for k := range m {
				if k != "jkt" && k != "x5t#S256" {
					return nil, errors.New("cnf member")
				}
			}
		}
	}
	return cl, nil
}

func hasAudience(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// resourceServer serves /resource.
type resourceServer struct {
	s            *Servers
	audience     string
	replay       *replay
	trustedProxy bool
}

var algsParam = `algs="ES256 PS256 RS256"`

type rsFailure struct {
	status int
	scheme string // DPoP or Bearer: the scheme whose challenge carries the error
	code   string
	desc   string
	nonce  bool
}

func (rs *resourceServer) fail(w http.ResponseWriter, f rsFailure, presented string) {
	desc := f.desc
	if rs.s.has(EchoCredential) && presented != "" {
		desc += ": " + presented
	}
	algs := algsParam
	if rs.s.has(AdvertiseES512) {
		algs = `algs="ES256 PS256 RS256 ES512"`
	}
	dpop := "DPoP " + algs
	if rs.s.has(NoAlgsParam) {
		dpop = "DPoP realm=\"refserver\""
	}
	bearer := `Bearer realm="refserver"`
	if rs.s.has(BareBearerChallenge) {
		bearer = "Bearer"
	}
	if f.code == "" && rs.s.has(ErrorOnUnauthenticated) {
		bearer += `, error="invalid_token"`
	}
	if f.code != "" {
		p := `error="` + f.code + `", error_description="` + strings.ReplaceAll(desc, `"`, "'") + `"`
		if f.code == "insufficient_scope" {
			p += `, scope="read"`
		}
		if f.scheme == "DPoP" {
			dpop = "DPoP " + p + ", " + algs
		} else if bearer == "Bearer" {
			bearer += " " + p
		} else {
			bearer += ", " + p
		}
	}
	if !(rs.s.has(NoChallenge) && f.code == "") {
		if !rs.s.has(DPoPOnlyResource) {
			w.Header().Add("WWW-Authenticate", bearer)
		}
		w.Header().Add("WWW-Authenticate", dpop)
	}
	if f.nonce {
		w.Header().Set("DPoP-Nonce", rs.s.issueNonce(rs.s.rsNonce, time.Now()))
		if rs.s.has(DuplicateNonceHeader) {
			w.Header().Add("DPoP-Nonce", rs.s.issueNonce(rs.s.rsNonce, time.Now()))
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	if rs.s.has(ProofErrorsAs400) && f.scheme == "DPoP" && (f.code == "invalid_dpop_proof" || f.code == "invalid_request") {
		f.status = http.StatusBadRequest
	}
	w.WriteHeader(f.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": f.code})
}

func isToken68(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	for i < len(s) {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			break
		}
		i++
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

// peerCert returns the client certificate: from the TLS layer when present
// (authoritative), else from Client-Cert when the peer is the trusted proxy.
func (rs *resourceServer) peerCert(r *http.Request) ([]byte, error) {
	override := rs.s.has(HeaderCertOverridesTLS) && r.Header.Get("Client-Cert") != ""
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && !override {
		return r.TLS.PeerCertificates[0].Raw, nil
	}
	if !rs.trustedProxy && !rs.s.has(ForwardedCertFromAnyone) && !override {
		return nil, nil
	}
	vs := r.Header.Values("Client-Cert")
	if len(vs) == 0 && rs.s.has(ChainUsedAsCert) {
		vs = r.Header.Values("Client-Cert-Chain")
	}
	if len(vs) == 0 {
		return nil, nil
	}
	if rs.s.has(ClientCertListFirst) {
		vs = []string{strings.TrimSpace(strings.Split(vs[0], ",")[0])}
	}
	if len(vs) > 1 || len(vs[0]) > 16<<10 {
		return nil, errors.New("malformed Client-Cert")
	}
	v := strings.TrimSpace(vs[0])
	if len(v) < 2 || v[0] != ':' || v[len(v)-1] != ':' || strings.Contains(v[1:len(v)-1], ":") {
		return nil, errors.New("malformed Client-Cert")
	}
	der, err := base64.StdEncoding.DecodeString(v[1 : len(v)-1])
	if err != nil {
		return nil, errors.New("malformed Client-Cert")
	}
	c, err := x509.ParseCertificate(der)
	if err != nil || c.IsCA {
		return nil, errors.New("malformed Client-Cert")
	}
	if rs.s.has(ForwardedCertExpiryChecked) && time.Now().After(c.NotAfter) {
		return nil, nil
	}
	return der, nil
}

func (rs *resourceServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/resource" {
		http.NotFound(w, r)
		return
	}
	if v := r.Header.Get("DPoP-Nonce"); v != "" && rs.s.has(AdoptClientNonce) {
		w.Header().Set("DPoP-Nonce", v)
	}
	if v := r.Header.Get("Client-Cert"); v != "" && rs.s.has(EchoClientCertHeader) {
		w.Header().Set("Client-Cert", v)
	}
	if o := r.Header.Get("Origin"); o != "" && rs.s.has(CORSWithoutExpose) {
		w.Header().Set("Access-Control-Allow-Origin", o)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.TLS == nil && !rs.s.has(DPoPOverHTTP) {
		http.Error(w, "TLS required", http.StatusBadRequest)
		return
	}
	authz := r.Header.Values("Authorization")
	if len(authz) == 0 && rs.s.has(ProxyAuthorizationUsed) {
		authz = r.Header.Values("Proxy-Authorization")
	}
	if !rs.s.has(NoMultipleCredentialCheck) && (len(authz) > 1 || (len(authz) == 1 && r.URL.Query().Has("access_token"))) {
		rs.fail(w, rsFailure{status: http.StatusBadRequest, scheme: "Bearer", code: "invalid_request", desc: "more than one credential"}, "")
		return
	}
	if len(authz) == 0 && rs.s.has(QueryTokenAccepted) && r.URL.Query().Has("access_token") {
		scheme := "Bearer "
		if r.Header.Get("DPoP") != "" {
			scheme = "DPoP "
		}
		authz = []string{scheme + r.URL.Query().Get("access_token")}
	}
	if len(authz) == 0 {
		rs.fail(w, rsFailure{status: http.StatusUnauthorized}, "")
		return
	}
	if _, err := rs.peerCert(r); err != nil {
		http.Error(w, "malformed Client-Cert", http.StatusBadRequest)
		return
	}
	scheme, tok, _ := strings.Cut(authz[0], " ")
	eq := strings.EqualFold
	if rs.s.has(SchemeCaseSensitive) {
		eq = func(a, b string) bool { return a == b }
	}
	switch {
	case eq(scheme, "DPoP"):
		rs.serveDPoP(w, r, tok)
	case eq(scheme, "Bearer") && rs.s.has(DPoPOnlyResource):
		rs.fail(w, rsFailure{status: http.StatusUnauthorized}, "")
	case eq(scheme, "Bearer"):
		rs.serveBearer(w, r, tok)
	default:
		rs.fail(w, rsFailure{status: http.StatusUnauthorized}, "")
	}
}

func (rs *resourceServer) serveDPoP(w http.ResponseWriter, r *http.Request, tok string) {
	s := rs.s
	invalid := rsFailure{status: http.StatusUnauthorized, scheme: "DPoP", code: "invalid_token", desc: "invalid token"}
	if !isToken68(tok) {
		rs.fail(w, invalid, tok)
		return
	}
	claims, err := s.verifyToken(tok, rs.audience)
	if err != nil {
		rs.fail(w, invalid, tok)
		return
	}
	jkt, bound := cnfString(claims, "jkt")
	if !bound && !s.has(UnboundUnderDPoP) {
		rs.fail(w, invalid, tok)
		return
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) == 0 && s.has(DPoPSchemeWithoutProof) {
		rs.ok(w, r, claims)
		return
	}
	if len(proofs) == 0 && s.has(ProofErrorsAs400) {
		rs.fail(w, rsFailure{status: http.StatusBadRequest, scheme: "DPoP", code: "invalid_request", desc: "DPoP proof required"}, tok)
		return
	}
	if s.has(BindingCheckedFirst) && len(proofs) == 1 && bound && unverifiedJKT(proofs[0]) != jkt {
		rs.fail(w, rsFailure{status: http.StatusUnauthorized, scheme: "DPoP", code: "invalid_token", desc: "invalid DPoP key binding"}, tok)
		return
	}
	if len(proofs) == 0 || (len(proofs) > 1 && !s.has(FirstOfManyProofs)) {
		rs.fail(w, rsFailure{status: http.StatusUnauthorized, scheme: "DPoP", code: "invalid_dpop_proof", desc: "exactly one DPoP proof required"}, tok)
		return
	}
	now := time.Now()
	var nonce func(string) bool
	if s.cfg.RequireNonce {
		nonce = func(n string) bool {
			if n == "" {
				return false
			}
			return s.checkNonce(s.rsNonce, n, now) || (s.has(NonceNotBound) && s.checkNonce(s.asNonce, n, now))
		}
	}
	scheme := "https://"
	if r.TLS == nil {
		scheme = "http://"
	}
	got, perr := s.verifyProof(proofs[0], proofCheck{method: r.Method, url: scheme + r.Host + r.URL.RequestURI(), token: tok, nonce: nonce, replay: rs.replay})
	if perr != nil && perr.code == "server_error" {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if perr != nil {
		rs.fail(w, rsFailure{status: http.StatusUnauthorized, scheme: "DPoP", code: perr.code, desc: "invalid DPoP proof", nonce: perr.code == "use_dpop_nonce"}, tok)
		return
	}
	match := subtle.ConstantTimeCompare([]byte(got), []byte(jkt)) == 1 ||
		(s.has(JKTCaseInsensitive) && strings.EqualFold(got, jkt)) || (s.has(UnboundUnderDPoP) && !bound)
	if !s.has(NoJktCompare) && !match {
		rs.fail(w, rsFailure{status: http.StatusUnauthorized, scheme: "DPoP", code: "invalid_token", desc: "invalid DPoP key binding"}, tok)
		return
	}
	if x5t, ok := cnfString(claims, "x5t#S256"); ok && !rs.certMatches(r, x5t) {
		rs.fail(w, invalid, tok)
		return
	}
	rs.ok(w, r, claims)
}

func (rs *resourceServer) certMatches(r *http.Request, x5t string) bool {
	der, err := rs.peerCert(r)
	if err != nil || der == nil {
		return rs.s.has(NoX5tCompare)
	}
	if rs.s.has(X5tPaddingTolerated) {
		x5t = strings.TrimRight(x5t, "=")
	}
	return rs.s.has(NoX5tCompare) || subtle.ConstantTimeCompare([]byte(clientCertThumbprint(der)), []byte(x5t)) == 1
}

func (rs *resourceServer) serveBearer(w http.ResponseWriter, r *http.Request, tok string) {
	s := rs.s
	invalid := rsFailure{status: http.StatusUnauthorized, scheme: "Bearer", code: "invalid_token", desc: "invalid token"}
	if !isToken68(tok) {
		rs.fail(w, invalid, tok)
		return
	}
	claims, err := s.verifyToken(tok, rs.audience)
	if err != nil {
		rs.fail(w, invalid, tok)
		return
	}
	_, dpopBound := cnfString(claims, "jkt")
	x5t, certBound := cnfString(claims, "x5t#S256")
	switch {
	case dpopBound && !s.has(BearerDowngrade):
		rs.fail(w, invalid, tok)
		return
	case certBound:
		if !rs.certMatches(r, x5t) {
			rs.fail(w, invalid, tok)
			return
		}
	case !dpopBound:
		// Unbound bearer tokens are not accepted by this resource.
		rs.fail(w, invalid, tok)
		return
	}
	rs.ok(w, r, claims)
}

func cnfString(claims map[string]any, name string) (string, bool) {
	cnf, ok := claims["cnf"].(map[string]any)
	if !ok {
		return "", false
	}
	v, ok := cnf[name].(string)
	return v, ok
}

func (rs *resourceServer) ok(w http.ResponseWriter, r *http.Request, claims map[string]any) {
	scope, _ := claims["scope"].(string)
	need := "read"
	if r.Method == http.MethodPost {
		need = "write"
	}
	if !strings.Contains(" "+scope+" ", " "+need+" ") {
		scheme := "Bearer"
		if strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "dpop ") {
			scheme = "DPoP"
		}
		rs.fail(w, rsFailure{status: http.StatusForbidden, scheme: scheme, code: "insufficient_scope", desc: "scope " + need + " required"}, "")
		return
	}
	if rs.s.has(NonceOnCacheableSuccess) && rs.s.cfg.RequireNonce {
		w.Header().Set("DPoP-Nonce", rs.s.issueNonce(rs.s.rsNonce, time.Now()))
	} else if !(rs.trustedProxy && rs.s.has(CacheableForwarded)) {
		w.Header().Set("Cache-Control", "no-store")
		if rs.trustedProxy {
			w.Header().Set("Vary", "Client-Cert")
		}
	}
	w.Header().Set("Content-Type", "application/json")
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(map[string]any{"ok": true, "sub": claims["sub"]})
	_, _ = w.Write(buf.Bytes())
}

// unverifiedJKT is the thumbprint of a proof's jwk, read before any check
// of the proof ("" when there is none to read).
func unverifiedJKT(proof string) string {
	h, _, ok := strings.Cut(proof, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return ""
	}
	var hdr struct {
		JWK jose.JSONWebKey `json:"jwk"`
	}
	if json.Unmarshal(b, &hdr) != nil || hdr.JWK.Key == nil {
		return ""
	}
	tp, err := hdr.JWK.Thumbprint(crypto.SHA256)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}
