package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxBody caps how much of a response body the suite reads.
const maxBody = 1 << 20

// exchange is one HTTP request and what came back.
type exchange struct {
	method, url string
	status      int
	header      http.Header
	body        []byte
	err         error
	// secrets are the credentials the request carried; none may come back.
	secrets    []string
	challenges []Challenge
	chErr      error
	json       map[string]any
	// hygiene is set when the response echoed a credential or carried a
	// Client-Cert header.
	hygiene string
	// closed is set when the server closed the connection on an oversized
	// request without a response (see doOversized).
	closed bool
}

// wwwAuth returns the raw WWW-Authenticate values joined for display.
func (x *exchange) wwwAuth() string {
	if x == nil || x.header == nil {
		return ""
	}
	return strings.Join(x.header.Values("WWW-Authenticate"), "; ")
}

// errorCode returns the error code of the challenge with the scheme, or of
// the JSON body when scheme is "json".
func (x *exchange) errorCode(scheme string) string {
	if x == nil {
		return ""
	}
	if scheme == "json" {
		if v, ok := x.json["error"].(string); ok {
			return v
		}
		return ""
	}
	if c, ok := findChallenge(x.challenges, scheme); ok {
		v, _ := c.Param("error")
		return v
	}
	return ""
}

// anyErrorCode returns the first error code found in any challenge or the body.
func (x *exchange) anyErrorCode() string {
	if x == nil {
		return ""
	}
	for _, c := range x.challenges {
		if v, ok := c.Param("error"); ok {
			return v
		}
	}
	return x.errorCode("json")
}

func (x *exchange) describe() string {
	if x == nil {
		return "no request sent"
	}
	if x.err != nil {
		return "transport error: " + sanitizeErr(x.err)
	}
	s := fmt.Sprintf("status %d", x.status)
	if c := x.anyErrorCode(); c != "" {
		s += " error=" + safeToken(c)
	}
	return s
}

// safeToken shortens and cleans a server-chosen string for a report line.
func safeToken(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 60 {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func sanitizeErr(err error) string {
	s := err.Error()
	// url.Error repeats the URL; keep the cause only.
	var ue *url.Error
	if errors.As(err, &ue) {
		s = ue.Err.Error()
	}
	return safeToken(s)
}

type session struct {
	t     Target
	caps  Capability
	now   func() time.Time
	plain *http.Client
	cert1 *http.Client
	cert2 *http.Client
	tlsc  *tls.Config
	k1    *clientKey
	k2    *clientKey

	at1    *issued
	at1Err error
	atc    *issued
	atcErr error

	nonces map[string]string
	log    []*exchange

	// dpopOnlyResource is set by the preflight when no profile was given
	// and the resource offers DPoP only.
	dpopOnlyResource bool

	// bound holds DPoP tokens bound to keys other than K1.
	bound map[*clientKey]*issued

	rsaOnce sync.Once
	rsa     *clientKey
	rsaErr  error

	// proxy is the recording introspection proxy, or nil.
	proxy *introProxy
}

// issued is a token response.
type issued struct {
	access    string
	tokenType string
	refresh   string
	expiresIn float64
	scope     string
	obtained  time.Time
	header    map[string]any
	claims    map[string]any
	key       *clientKey
	x         *exchange
}

func newSession(t Target, now func() time.Time) (*session, error) {
	s := &session{t: t, caps: t.Capabilities(), now: now, nonces: map[string]string{}}
	s.tlsc = &tls.Config{RootCAs: t.RootCAs, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	s.plain = s.clientWith(nil)
	if t.ClientCert != nil {
		s.cert1 = s.clientWith(t.ClientCert)
	}
	if t.SecondClientCert != nil {
		s.cert2 = s.clientWith(t.SecondClientCert)
	}
	var err error
	if s.k1, err = generateECKey(); err != nil {
		return nil, err
	}
	if s.k2, err = generateECKey(); err != nil {
		return nil, err
	}
	if t.IntrospectionProxy != nil && t.IntrospectionEndpoint != "" {
		s.proxy = startIntroProxy(t.IntrospectionProxy, t.IntrospectionEndpoint, s.plain)
	}
	return s, nil
}

// clientWith returns an HTTP client that presents cert (if any) whatever the
// server's CertificateRequest says, never follows redirects, and keeps no
// cookies.
func (s *session) clientWith(cert *tls.Certificate) *http.Client {
	cfg := s.tlsc.Clone()
	if cert != nil {
		c := cert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c, nil }
	}
	tr := &http.Transport{
		TLSClientConfig:       cfg,
		ForceAttemptHTTP2:     false,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       5 * time.Second,
		ResponseHeaderTimeout: s.t.timeout(),
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       s.t.timeout(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (s *session) close() {
	if s.proxy != nil {
		s.proxy.close()
	}
	for _, c := range []*http.Client{s.plain, s.cert1, s.cert2} {
		if c != nil {
			c.CloseIdleConnections()
		}
	}
}

// do sends req and records the exchange in the session log.
func (s *session) do(client *http.Client, req *http.Request, secrets []string) *exchange {
	x := doUnlogged(client, req, secrets)
	s.log = append(s.log, x)
	return x
}

// doUnlogged sends req; safe for concurrent use.
func doUnlogged(client *http.Client, req *http.Request, secrets []string) *exchange {
	x := &exchange{method: req.Method, url: req.URL.String(), secrets: secrets}
	resp, err := client.Do(req)
	if err != nil {
		x.err = err
		return x
	}
	defer resp.Body.Close()
	readResponse(x, resp)
	return x
}

// readResponse fills x from resp.
func readResponse(x *exchange, resp *http.Response) {
	x.status = resp.StatusCode
	x.header = resp.Header
	x.body, _ = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if vs := resp.Header.Values("WWW-Authenticate"); len(vs) > 0 {
		x.challenges, x.chErr = ParseChallenges(vs)
	}
	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "json") || bytes.HasPrefix(bytes.TrimSpace(x.body), []byte("{")) {
		var m map[string]any
		if json.Unmarshal(x.body, &m) == nil {
			x.json = m
		}
	}
	x.hygiene = hygiene(x)
}

// doOversized sends an oversized request on a connection of its own and
// reads the response while the request is still being written: a server
// that answers early (431, 413, 400) and closes the connection has
// refused the request, even if the rest of it then cannot be written. A
// connection closed (or reset) before any response is also a refusal,
// marked by closed. The exchange is recorded in the session log.
func (s *session) doOversized(ctx context.Context, req *http.Request, secrets []string) *exchange {
	x := &exchange{method: req.Method, url: req.URL.String(), secrets: secrets}
	s.log = append(s.log, x)
	host := req.URL.Host
	if req.URL.Port() == "" {
		if req.URL.Scheme == "https" {
			host += ":443"
		} else {
			host += ":80"
		}
	}
	d := &net.Dialer{Timeout: s.t.timeout()}
	var conn net.Conn
	var err error
	if req.URL.Scheme == "https" {
		cfg := s.tlsc.Clone()
		cfg.ServerName = req.URL.Hostname()
		conn, err = (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", host)
	} else {
		conn, err = d.DialContext(ctx, "tcp", host)
	}
	if err != nil {
		x.err = err
		return x
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(s.t.timeout()))
	req.Close = true
	go func() {
		// A write error means the server stopped reading; what it
		// answered, if anything, is read below.
		_ = req.Write(conn)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		x.err = err
		x.closed = closedByPeer(err)
		return x
	}
	defer resp.Body.Close()
	readResponse(x, resp)
	return x
}

// closedByPeer reports whether err is the server closing or resetting the
// connection (not a timeout, not a TLS or DNS failure).
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// hygiene reports a response that echoes a credential the request carried
// (whole, or the signature segment of a JWS) or carries Client-Cert fields.
func hygiene(x *exchange) string {
	var hay bytes.Buffer
	hay.Write(x.body)
	for k, vs := range x.header {
		if strings.EqualFold(k, "Client-Cert") || strings.EqualFold(k, "Client-Cert-Chain") {
			return "response carries a " + k + " header"
		}
		for _, v := range vs {
			hay.WriteString("\n")
			hay.WriteString(v)
		}
	}
	h := hay.Bytes()
	for _, sec := range x.secrets {
		if len(sec) < 16 {
			continue
		}
		if bytes.Contains(h, []byte(sec)) {
			return "response echoes a credential from the request"
		}
		if i := strings.LastIndexByte(sec, '.'); i > 0 && len(sec)-i > 20 {
			if bytes.Contains(h, []byte(sec[i+1:])) {
				return "response echoes a credential's signature"
			}
		}
	}
	return ""
}

func origin(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return strings.ToLower(p.Scheme + "://" + p.Host)
}

// htuOf strips query and fragment.
func htuOf(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}

func (s *session) proofClaims(method, target string) map[string]any {
	return map[string]any{
		"jti": randomID(),
		"htm": method,
		"htu": htuOf(target),
		"iat": s.now().Unix(),
	}
}

// proofFn builds a DPoP proof given the current server nonce ("" for none).
type proofFn func(nonce string) (string, error)

// proof returns a proofFn for a request by key to method/target carrying
// token (ath is set when token is non-empty), with mutate applied last.
func (s *session) proof(key *clientKey, method, target, token string, mutate func(*jws)) proofFn {
	return func(nonce string) (string, error) {
		j := &jws{
			key:    key,
			header: map[string]any{"typ": "dpop+jwt", "jwk": json.RawMessage(key.pubJSON)},
			claims: s.proofClaims(method, target),
		}
		if token != "" {
			j.claims["ath"] = tokenHash(token)
		}
		if nonce != "" {
			j.claims["nonce"] = nonce
		}
		if mutate != nil {
			mutate(j)
		}
		return j.compact()
	}
}

// header is one raw request header line; the name is sent exactly as given.
type header struct{ name, value string }

// rsReq is a request to a resource server.
type rsReq struct {
	method  string
	url     string // default Target.Resource
	query   string // appended as ?query
	scheme  string // Authorization scheme; "" sends no Authorization
	token   string
	proof   proofFn // nil: no DPoP header
	headers []header
	client  *http.Client
	body    string
	// noRetry disables the nonce retry.
	noRetry bool
	// proofHeader overrides the DPoP header name (default "DPoP").
	proofHeader string
	// extra adds more proof header lines, built with the same nonce.
	extra []namedProof
	// oversized sends the request with doOversized.
	oversized bool
}

// namedProof is an additional proof line sent under the given header name.
type namedProof struct {
	name string
	fn   proofFn
}

func (s *session) resource(ctx context.Context, q rsReq) (*exchange, error) {
	if q.method == "" {
		q.method = s.t.method()
	}
	if q.url == "" {
		q.url = s.t.Resource
	}
	if q.client == nil {
		q.client = s.plain
	}
	full := q.url
	if q.query != "" {
		full += "?" + q.query
	}
	org := origin(q.url)
	var x *exchange
	for attempt := 0; attempt < 2; attempt++ {
		var body io.Reader
		if q.body != "" {
			body = strings.NewReader(q.body)
		}
		req, err := http.NewRequestWithContext(ctx, q.method, full, body)
		if err != nil {
			return nil, fmt.Errorf("building request: %w", err)
		}
		if q.body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		var secrets []string
		if q.scheme != "" {
			req.Header["Authorization"] = []string{q.scheme + " " + q.token}
			secrets = append(secrets, q.token)
		}
		if q.proof != nil {
			p, err := q.proof(s.nonces[org])
			if err != nil {
				return nil, fmt.Errorf("building proof: %w", err)
			}
			name := q.proofHeader
			if name == "" {
				name = "DPoP"
			}
			req.Header[name] = append(req.Header[name], p)
			secrets = append(secrets, p)
			for _, e := range q.extra {
				p, err := e.fn(s.nonces[org])
				if err != nil {
					return nil, fmt.Errorf("building proof: %w", err)
				}
				req.Header[e.name] = append(req.Header[e.name], p)
				secrets = append(secrets, p)
			}
		}
		for _, h := range q.headers {
			req.Header[h.name] = append(req.Header[h.name], h.value)
			if len(h.value) >= 16 {
				secrets = append(secrets, h.value)
			}
		}
		if q.oversized {
			return s.doOversized(ctx, req, secrets), nil
		}
		x = s.do(q.client, req, secrets)
		if x.err != nil {
			return x, nil
		}
		if n := x.header.Get("DPoP-Nonce"); n != "" {
			s.nonces[org] = n
		}
		if q.noRetry || q.proof == nil || attempt > 0 {
			break
		}
		if x.status == http.StatusUnauthorized && x.errorCode("DPoP") == "use_dpop_nonce" && x.header.Get("DPoP-Nonce") != "" {
			continue
		}
		break
	}
	return x, nil
}

// tokReq is a request to the token endpoint.
type tokReq struct {
	url      string // default Target.TokenEndpoint
	form     url.Values
	clientID string // "" means Target.ClientID; "-" sends none
	secret   bool   // use client_secret_basic with Target.ClientSecret
	client   *http.Client
	proof    proofFn
	headers  []header
	noRetry  bool
}

func (s *session) token(ctx context.Context, q tokReq) (*exchange, error) {
	if q.url == "" {
		q.url = s.t.TokenEndpoint
	}
	if q.client == nil {
		q.client = s.plain
	}
	form := url.Values{}
	for k, v := range q.form {
		form[k] = v
	}
	if form.Get("grant_type") == "" {
		form.Set("grant_type", "client_credentials")
	}
	if s.t.Scope != "" && form.Get("scope") == "" {
		form.Set("scope", s.t.Scope)
	}
	id := q.clientID
	if id == "" {
		id = s.t.ClientID
	}
	if id != "-" && !q.secret {
		form.Set("client_id", id)
	}
	org := origin(q.url)
	var x *exchange
	for attempt := 0; attempt < 2; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.url, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, fmt.Errorf("building token request: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		var secrets []string
		if q.secret {
			req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(s.t.ClientSecret))
		}
		if s.t.ClientSecret != "" {
			secrets = append(secrets, s.t.ClientSecret)
		}
		if q.proof != nil {
			p, err := q.proof(s.nonces[org])
			if err != nil {
				return nil, fmt.Errorf("building proof: %w", err)
			}
			req.Header["DPoP"] = []string{p}
			secrets = append(secrets, p)
		}
		for _, h := range q.headers {
			req.Header[h.name] = append(req.Header[h.name], h.value)
		}
		x = s.do(q.client, req, secrets)
		if x.err != nil {
			return x, nil
		}
		if n := x.header.Get("DPoP-Nonce"); n != "" {
			s.nonces[org] = n
		}
		if q.noRetry || q.proof == nil || attempt > 0 {
			break
		}
		if x.status == http.StatusBadRequest && x.errorCode("json") == "use_dpop_nonce" && x.header.Get("DPoP-Nonce") != "" {
			continue
		}
		break
	}
	return x, nil
}

// parseIssued reads a successful token response.
func parseIssued(x *exchange, key *clientKey) (*issued, error) {
	if x.err != nil {
		return nil, errors.New(x.describe())
	}
	if x.status != http.StatusOK {
		return nil, fmt.Errorf("token endpoint answered %s", x.describe())
	}
	if x.json == nil {
		return nil, errors.New("token response is not a JSON object")
	}
	it := &issued{key: key, x: x, obtained: time.Now()}
	it.access, _ = x.json["access_token"].(string)
	it.tokenType, _ = x.json["token_type"].(string)
	it.refresh, _ = x.json["refresh_token"].(string)
	it.expiresIn, _ = x.json["expires_in"].(float64)
	it.scope, _ = x.json["scope"].(string)
	if it.access == "" {
		return nil, errors.New("token response has no access_token")
	}
	if h, c, err := decodeJWT(it.access); err == nil {
		it.header, it.claims = h, c
	}
	return it, nil
}

// dpopTokenRequest returns a token request bound to key.
func (s *session) dpopTokenRequest(key *clientKey, mutate func(*jws)) tokReq {
	return tokReq{
		secret: s.t.ClientSecret != "",
		proof:  s.proof(key, http.MethodPost, s.t.TokenEndpoint, "", mutate),
	}
}

// newDPoPToken obtains a fresh DPoP-bound token for key.
func (s *session) newDPoPToken(ctx context.Context, key *clientKey) (*issued, error) {
	if s.caps&CapDPoP == 0 {
		return nil, errors.New("DPoP disabled for this target")
	}
	x, err := s.token(ctx, s.dpopTokenRequest(key, nil))
	if err != nil {
		return nil, err
	}
	it, err := parseIssued(x, key)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(it.tokenType, "DPoP") {
		return nil, fmt.Errorf("token_type is %q, not DPoP", safeToken(it.tokenType))
	}
	return it, nil
}

// stale reports whether a cached token has used up half its lifetime (long
// runs against slow targets would otherwise outlive it).
func (it *issued) stale() bool {
	life := time.Duration(it.expiresIn) * time.Second
	if life <= 0 {
		life = 5 * time.Minute
	}
	return time.Since(it.obtained) > life/2
}

// dpopToken returns the session's AT1 (bound to K1), obtained once and
// renewed when half its lifetime has passed.
func (s *session) dpopToken(ctx context.Context) (*issued, error) {
	if s.at1 != nil && s.at1.stale() {
		s.at1 = nil
	}
	if s.at1 == nil && s.at1Err == nil {
		s.at1, s.at1Err = s.newDPoPToken(ctx, s.k1)
	}
	return s.at1, s.at1Err
}

// mtlsToken returns the session's ATC (bound to the client certificate).
func (s *session) mtlsToken(ctx context.Context) (*issued, error) {
	if s.atc != nil && s.atc.stale() {
		s.atc = nil
	}
	if s.atc == nil && s.atcErr == nil {
		s.atc, s.atcErr = s.newMTLSToken(ctx, s.cert1)
	}
	return s.atc, s.atcErr
}

func (s *session) newMTLSToken(ctx context.Context, client *http.Client) (*issued, error) {
	if client == nil {
		return nil, errors.New("no client certificate configured")
	}
	x, err := s.token(ctx, tokReq{client: client, clientID: s.t.mtlsClientID()})
	if err != nil {
		return nil, err
	}
	it, err := parseIssued(x, nil)
	if err != nil {
		return nil, err
	}
	return it, nil
}

// refreshGrantRequest returns a request of Target.RefreshGrant by its
// public client, with a proof by key (nil sends none) over client (nil
// presents no certificate). With confidential, Target.ClientID sends it
// instead, authenticated with Target.ClientSecret (DPOP-AS-08).
func (s *session) refreshGrantRequest(key *clientKey, client *http.Client, confidential bool) tokReq {
	g := s.t.RefreshGrant
	q := tokReq{form: url.Values{}, client: client, clientID: g.ClientID}
	for k, vs := range g.Params {
		q.form[k] = append([]string(nil), vs...)
	}
	q.form.Set("grant_type", g.GrantType)
	if confidential {
		q.clientID, q.secret = "", true
	}
	if key != nil {
		q.proof = s.proof(key, http.MethodPost, s.t.TokenEndpoint, "", nil)
	}
	return q
}

// refreshRequest returns a refresh_token request for rt by the refresh
// grant's public client, with a proof by key (nil sends none) over client
// (nil presents no certificate).
func (s *session) refreshRequest(rt string, key *clientKey, client *http.Client) tokReq {
	q := tokReq{form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, client: client, clientID: s.t.RefreshGrant.ClientID}
	if key != nil {
		q.proof = s.proof(key, http.MethodPost, s.t.TokenEndpoint, "", nil)
	}
	return q
}

// forge signs a token with the issuer key, starting from a real token's
// header and claims (fresh jti, iat and exp) so that the forgery differs
// from an issued token only where mutate says so.
func (s *session) forge(base *issued, mutate func(j *jws)) (string, error) {
	if s.t.IssuerKey == nil {
		return "", errors.New("no issuer key")
	}
	ik, err := s.issuerKey()
	if err != nil {
		return "", err
	}
	now := s.now().Unix()
	h := map[string]any{"typ": "at+jwt"}
	var c map[string]any
	if base != nil && base.claims != nil {
		h = cloneMap(base.header)
		c = cloneMap(base.claims)
	} else {
		c = map[string]any{"iss": s.t.Issuer, "aud": s.t.Audience, "sub": "conformance", "client_id": s.t.ClientID}
		if sc := s.t.ResourceScope; sc != "" {
			c["scope"] = sc
		} else if s.t.Scope != "" {
			c["scope"] = s.t.Scope
		}
	}
	delete(h, "alg")
	c["jti"] = randomID()
	c["iat"] = now
	c["exp"] = now + 300
	if _, ok := c["nbf"]; ok {
		c["nbf"] = now - 5
	}
	if s.t.IssuerKey.KeyID != "" {
		h["kid"] = s.t.IssuerKey.KeyID
	}
	j := &jws{key: ik, header: h, claims: c}
	if mutate != nil {
		mutate(j)
	}
	return j.compact()
}

// issuerKey wraps Target.IssuerKey as a signing key.
func (s *session) issuerKey() (*clientKey, error) {
	k := s.t.IssuerKey
	signer, ok := k.Key.(crypto.Signer)
	if !ok {
		return nil, errors.New("issuer key is not a private signing key")
	}
	alg := jose.SignatureAlgorithm(k.Algorithm)
	if alg == "" {
		switch pk := signer.(type) {
		case *ecdsa.PrivateKey:
			switch pk.Curve.Params().BitSize {
			case 384:
				alg = jose.ES384
			case 521:
				alg = jose.ES512
			default:
				alg = jose.ES256
			}
		case *rsa.PrivateKey:
			alg = jose.RS256
		case ed25519.PrivateKey:
			alg = jose.EdDSA
		default:
			return nil, errors.New("unsupported issuer key type")
		}
	}
	return newClientKey(signer, alg)
}
