package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/internal/keyfetch"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// jwksHost is a client's key set host: a real TLS server on loopback
// whose document, status and headers the test changes between requests.
type jwksHost struct {
	srv  *httptest.Server
	hits atomic.Int32

	mu           sync.Mutex
	body         []byte
	status       int
	cacheControl string
	contentType  string
	location     string        // when set, answer 302 to it
	delay        time.Duration // when set, wait this long before answering
}

func newJWKSHost(t testing.TB) *jwksHost {
	t.Helper()
	j := &jwksHost{status: http.StatusOK, contentType: "application/jwk-set+json"}
	j.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.hits.Add(1)
		j.mu.Lock()
		body, status, cc, ct, loc, delay := j.body, j.status, j.cacheControl, j.contentType, j.location, j.delay
		j.mu.Unlock()
		time.Sleep(delay)
		if loc != "" {
			w.Header().Set("Location", loc)
			w.WriteHeader(http.StatusFound)
			return
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(j.srv.Close)
	return j
}

// publish serves body with status 200 and the Cache-Control value cc.
func (j *jwksHost) publish(body []byte, cc string) {
	j.mu.Lock()
	j.body, j.status, j.cacheControl = body, http.StatusOK, cc
	j.mu.Unlock()
}

func (j *jwksHost) fail(status int) {
	j.mu.Lock()
	j.status = status
	j.mu.Unlock()
}

func (j *jwksHost) url() string { return j.srv.URL + "/jwks" }

func (j *jwksHost) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(j.srv.Certificate())
	return p
}

// jwksJSON marshals a key set of keys.
func jwksJSON(tb testing.TB, keys ...jose.JSONWebKey) []byte {
	tb.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func pubJWK(key crypto.Signer, kid string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: key.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}
}

func certJWK(l *certs.Leaf, kid string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: l.Cert.PublicKey, KeyID: kid, Certificates: []*x509.Certificate{l.Cert}}
}

// jwksHarness is a harness whose server fetches client key sets from host
// (on loopback, hence the opt-in), logging refusals to logs.
func jwksHarness(t testing.TB, host *jwksHost, logs *syncBuffer, edit func(*ClientJWKSConfig)) *harness {
	t.Helper()
	return newHarness(t, harnessOpts{edit: func(cfg *ServerConfig) {
		cfg.ClientJWKS = ClientJWKSConfig{RootCAs: host.pool(), InsecureAllowPrivateAddresses: true}
		if edit != nil {
			edit(&cfg.ClientJWKS)
		}
		if logs != nil {
			cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
		}
	}})
}

func (h *harness) register(c Client) {
	h.t.Helper()
	if err := h.server.cfg.Clients.(*MemoryRegistry).Register(c); err != nil {
		h.t.Fatal(err)
	}
}

// waitKeys waits until no fetch of client c's key set is under way.
func (h *harness) waitKeys(c Client) { h.server.clientKeys.cache(&c).WaitIdle() }

var assertionSeq atomic.Int64

// assertionForm is a client_credentials request authenticated by a fresh
// private_key_jwt assertion of client id signed by key with kid.
func (h *harness) assertionForm(id string, key crypto.Signer, kid string) url.Values {
	h.t.Helper()
	now := h.clock.Now()
	a := assertion(h.t, key, jose.ES256, kid, map[string]any{"iss": id, "sub": id, "aud": h.tokenURL(),
		"jti": fmt.Sprintf("jwks-uri-%d", assertionSeq.Add(1)), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
	return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {ClientAssertionType}, "client_assertion": {a}}
}

// TestClientJWKSURIRotation: keys come from the client's jwks_uri over
// real TLS; a key or certificate published there is accepted after a
// refetch (the unknown key triggers it), one removed is refused after the
// scheduled refresh (MTLS-CA-11, and its private_key_jwt analogue).
func TestClientJWKSURIRotation(t *testing.T) {
	t.Parallel()
	t.Run("private_key_jwt", func(t *testing.T) {
		t.Parallel()
		host := newJWKSHost(t)
		h := jwksHarness(t, host, nil, nil)
		cl := Client{ID: "uri-jwt", AuthMethod: AuthPrivateKeyJWT, JWKSURI: host.url(), Scopes: []string{"read"}}
		h.register(cl)
		k1, k2 := newES256(t), newES256(t)
		host.publish(jwksJSON(t, pubJWK(k1, "k1")), "max-age=300")
		c := h.client(nil)
		try := func(step string, key crypto.Signer, kid string, want int) {
			t.Helper()
			r := h.post(c, h.tokenURL(), h.assertionForm(cl.ID, key, kid), nil)
			h.checkTokenResponse(r)
			if r.status != want {
				t.Fatalf("%s: status %d, want %d: %s", step, r.status, want, r.raw)
			}
		}
		try("k1 published", k1, "k1", 200)
		try("k2 not yet published", k2, "k2", 400)
		host.publish(jwksJSON(t, pubJWK(k1, "k1"), pubJWK(k2, "k2")), "max-age=300")
		try("k2 published, refetch rate-limited", k2, "k2", 400)
		h.clock.Advance(DefaultClientJWKSMinRefresh)
		try("k2 published, refetched", k2, "k2", 200)
		host.publish(jwksJSON(t, pubJWK(k2, "k2")), "max-age=300")
		try("k1 removed, cached set still fresh", k1, "k1", 200)
		h.clock.Advance(300 * time.Second)
		try("k1 removed, stale set revalidated in the background", k1, "k1", 200)
		h.waitKeys(cl)
		try("k1 removed, after refresh", k1, "k1", 400)
		try("k2 after refresh", k2, "k2", 200)
		if n := host.hits.Load(); n != 3 {
			t.Errorf("%d fetches, want 3 (first use, unknown key, scheduled refresh)", n)
		}
	})
	t.Run("MTLS-CA-11 self_signed_tls_client_auth", func(t *testing.T) {
		t.Parallel()
		host := newJWKSHost(t)
		h := jwksHarness(t, host, nil, nil)
		cl := Client{ID: "uri-self", AuthMethod: AuthSelfSignedTLSClient, JWKSURI: host.url(), Scopes: []string{"read"}}
		h.register(cl)
		s3, err := certs.SelfSigned(certs.Options{CommonName: "self", Client: true})
		if err != nil {
			t.Fatal(err)
		}
		plain := jose.JSONWebKey{Key: newES256(t).Public(), KeyID: "no-x5c"}
		host.publish(jwksJSON(t, certJWK(h.s1, "s1"), plain), "max-age=60")
		try := func(step string, leaf *certs.Leaf, want int) {
			t.Helper()
			r := h.post(h.client(leaf), h.aliasTokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {cl.ID}}, nil)
			h.checkTokenResponse(r)
			if r.status != want {
				t.Fatalf("%s: status %d, want %d: %s", step, r.status, want, r.raw)
			}
			if want == 200 {
				claims := h.verify(r.str("access_token"))
				cnf, _ := claims["cnf"].(map[string]any)
				if cnf["x5t#S256"] == nil {
					t.Fatalf("%s: token not certificate-bound: %v", step, claims)
				}
			}
		}
		try("S1 published", h.s1, 200)
		try("S2 never published", h.s2, 400)
		h.clock.Advance(DefaultClientJWKSMinRefresh)
		host.publish(jwksJSON(t, certJWK(h.s1, "s1"), certJWK(s3, "s3")), "max-age=60")
		try("S3 published, refetched on the unknown certificate", s3, 200)
		host.publish(jwksJSON(t, certJWK(s3, "s3")), "max-age=60")
		try("S1 removed, cached set still fresh", h.s1, 200)
		h.clock.Advance(61 * time.Second)
		try("S1 removed, stale set revalidated in the background", h.s1, 200)
		h.waitKeys(cl)
		try("S1 removed, after refresh", h.s1, 400)
		try("S3 after refresh", s3, 200)
	})
}

// TestClientJWKSRefetchRateLimit: assertions signed by keys the set does
// not hold make the server refetch at most once per MinRefreshInterval,
// however many arrive, so that an attacker cannot make it hammer the
// client's jwks_uri.
func TestClientJWKSRefetchRateLimit(t *testing.T) {
	t.Parallel()
	host := newJWKSHost(t)
	h := jwksHarness(t, host, nil, nil)
	cl := Client{ID: "uri-jwt", AuthMethod: AuthPrivateKeyJWT, JWKSURI: host.url()}
	h.register(cl)
	k1 := newES256(t)
	host.publish(jwksJSON(t, pubJWK(k1, "k1")), "no-cache")
	c := h.client(nil)
	if r := h.post(c, h.tokenURL(), h.assertionForm(cl.ID, k1, "k1"), nil); r.status != 200 {
		t.Fatalf("known key: %d %s", r.status, r.raw)
	}
	for round, want := range []int32{1, 2, 3} {
		for i := range 8 {
			r := h.post(c, h.tokenURL(), h.assertionForm(cl.ID, newES256(t), fmt.Sprintf("made-up-%d", i)), nil)
			if r.status != 400 || r.str("error") != "invalid_client" {
				t.Fatalf("unknown key: %d %s", r.status, r.raw)
			}
		}
		h.waitKeys(cl)
		if n := host.hits.Load(); n != want {
			t.Fatalf("round %d: %d fetches, want %d", round, n, want)
		}
		h.clock.Advance(DefaultClientJWKSMinRefresh)
	}
}

// TestClientJWKSLastGood: when refetches fail, the last good set stays in
// use up to MaxStale past its lifetime; after that the client is refused
// (client_keys_unavailable) until a fetch succeeds again. Each fetch is
// reported to Metrics, and none is made while refetches are rate-limited.
func TestClientJWKSLastGood(t *testing.T) {
	t.Parallel()
	host := newJWKSHost(t)
	var logs syncBuffer
	metrics := &metricsRecorder{}
	h := newHarness(t, harnessOpts{edit: func(cfg *ServerConfig) {
		cfg.ClientJWKS = ClientJWKSConfig{RootCAs: host.pool(), InsecureAllowPrivateAddresses: true, MaxStale: 2 * time.Minute}
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		cfg.Metrics = metrics
	}})
	cl := Client{ID: "uri-jwt", AuthMethod: AuthPrivateKeyJWT, JWKSURI: host.url()}
	h.register(cl)
	k1 := newES256(t)
	host.publish(jwksJSON(t, pubJWK(k1, "k1")), "max-age=60")
	c := h.client(nil)
	steps := []struct {
		name    string
		advance time.Duration
		before  func()
		want    int
	}{
		{"fresh", 0, nil, 200},
		{"host fails, set still fresh", 0, func() { host.fail(http.StatusInternalServerError) }, 200},
		{"expired, refetch fails, last good used", 61 * time.Second, nil, 200},
		{"within MaxStale", 90 * time.Second, nil, 200},
		{"past MaxStale", 31 * time.Second, nil, 400},
		{"host back, refetch still rate-limited", 0, func() { host.publish(jwksJSON(t, pubJWK(k1, "k1")), "max-age=60") }, 400},
		{"host back, refetched", DefaultClientJWKSMinRefresh, nil, 200},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		h.clock.Advance(s.advance)
		r := h.post(c, h.tokenURL(), h.assertionForm(cl.ID, k1, "k1"), nil)
		h.checkTokenResponse(r)
		if r.status != s.want {
			t.Fatalf("%s: %d, want %d: %s", s.name, r.status, s.want, r.raw)
		}
		h.waitKeys(cl)
	}
	line := `msg="issuer: request refused" endpoint=token error=invalid_client status=400 reason=client_keys_unavailable description="client authentication failed"`
	if !strings.Contains(logs.String(), line) {
		t.Errorf("no log line %s in\n%s", line, logs.String())
	}
	var fetches []string
	for _, c := range metrics.take() {
		if strings.HasPrefix(c, string(OpClientKeyFetch)) {
			fetches = append(fetches, c)
		}
	}
	wantFetches := "client_key_fetch failed=false,client_key_fetch failed=true,client_key_fetch failed=true,client_key_fetch failed=true,client_key_fetch failed=false"
	if got := strings.Join(fetches, ","); got != wantFetches {
		t.Errorf("fetches reported %s, want %s", got, wantFetches)
	}
	if !strings.Contains(logs.String(), "HTTP status 500") {
		t.Errorf("the cause is not logged:\n%s", logs.String())
	}
}

// TestClientJWKSFetchRefusals: every document or answer that is not a
// strict public key set served directly with 200 is refused, and a
// refused set is not cached.
func TestClientJWKSFetchRefusals(t *testing.T) {
	t.Parallel()
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := jwksJSON(t, pubJWK(ecKey, "k1"))
	self, err := certs.SelfSigned(certs.Options{CommonName: "self", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallOrder := make([]byte, ed25519.PublicKeySize)
	smallOrder[0] = 1 // the identity point
	many := make([]jose.JSONWebKey, maxClientJWKSKeys+1)
	for i := range many {
		many[i] = pubJWK(ecKey, fmt.Sprint(i))
	}
	ecJSON := strings.TrimSuffix(strings.TrimPrefix(string(good), `{"keys":[`), `]}`)
	tests := []struct {
		name   string
		method AuthMethod
		setup  func(t testing.TB, j *jwksHost)
		uri    func(j *jwksHost) string
		cfg    func(c *ClientJWKSConfig)
		isErr  error
	}{
		{name: "control: public key set", setup: func(t testing.TB, j *jwksHost) { j.publish(good, "") }},
		{name: "control: self-signed set with x5c", method: AuthSelfSignedTLSClient, setup: func(t testing.TB, j *jwksHost) { j.publish(jwksJSON(t, certJWK(self, "s")), "") }},
		{name: "http URI", setup: func(t testing.TB, j *jwksHost) { j.publish(good, "") }, uri: func(j *jwksHost) string { return strings.Replace(j.url(), "https:", "http:", 1) }},
		{name: "redirect not followed", setup: func(t testing.TB, j *jwksHost) { j.publish(good, ""); j.location = j.srv.URL + "/elsewhere" }},
		{name: "redirect to a private address", setup: func(t testing.TB, j *jwksHost) { j.publish(good, ""); j.location = "https://10.0.0.1/jwks" }},
		{name: "oversize body", setup: func(t testing.TB, j *jwksHost) {
			j.publish([]byte(`{"pad":"`+strings.Repeat("a", DefaultClientJWKSMaxBytes)+`","keys":[`+ecJSON+`]}`), "")
		}, isErr: keyfetch.ErrTooLarge},
		{name: "private EC member d", setup: func(t testing.TB, j *jwksHost) {
			j.publish(jwksJSON(t, jose.JSONWebKey{Key: ecKey, KeyID: "k1"}), "")
		}},
		{name: "private member after public ones", setup: func(t testing.TB, j *jwksHost) {
			j.publish([]byte(`{"keys":[`+strings.TrimSuffix(ecJSON, "}")+`,"d":"AAAA"}]}`), "")
		}},
		{name: "symmetric key", setup: func(t testing.TB, j *jwksHost) {
			j.publish([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]}`), "")
		}},
		{name: "RSA 1024 bits", setup: func(t testing.TB, j *jwksHost) {
			j.publish(jwksJSON(t, jose.JSONWebKey{Key: &rsa1024.PublicKey, KeyID: "r"}), "")
		}},
		{name: "Ed25519 of small order", setup: func(t testing.TB, j *jwksHost) {
			j.publish([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"`+base64.RawURLEncoding.EncodeToString(smallOrder)+`"}]}`), "")
		}},
		{name: "unknown key type", setup: func(t testing.TB, j *jwksHost) { j.publish([]byte(`{"keys":[`+ecJSON+`,{"kty":"XYZ","x":"AA"}]}`), "") }},
		{name: "duplicate keys member", setup: func(t testing.TB, j *jwksHost) { j.publish([]byte(`{"keys":[],"keys":[`+ecJSON+`]}`), "") }},
		{name: "case-folded member in a key", setup: func(t testing.TB, j *jwksHost) {
			j.publish([]byte(`{"keys":[`+strings.TrimSuffix(ecJSON, "}")+`,"KID":"other"}]}`), "")
		}},
		{name: "no keys", setup: func(t testing.TB, j *jwksHost) { j.publish([]byte(`{"keys":[]}`), "") }},
		{name: "keys not an array", setup: func(t testing.TB, j *jwksHost) { j.publish([]byte(`{"keys":{}}`), "") }},
		{name: "trailing data", setup: func(t testing.TB, j *jwksHost) { j.publish(append(append([]byte{}, good...), " x"...), "") }},
		{name: "too many keys", setup: func(t testing.TB, j *jwksHost) { j.publish(jwksJSON(t, many...), "") }},
		{name: "x5c of another key", method: AuthSelfSignedTLSClient, setup: func(t testing.TB, j *jwksHost) {
			k := certJWK(self, "s")
			b := jwksJSON(t, k)
			var doc map[string][]map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			oj, _ := json.Marshal(jose.JSONWebKey{Key: other.Public()})
			var om map[string]any
			_ = json.Unmarshal(oj, &om)
			doc["keys"][0]["x"], doc["keys"][0]["y"] = om["x"], om["y"]
			b, _ = json.Marshal(doc)
			j.publish(b, "")
		}},
		{name: "self-signed set without x5c", method: AuthSelfSignedTLSClient, setup: func(t testing.TB, j *jwksHost) { j.publish(good, "") }},
		{name: "host slower than the timeout", setup: func(t testing.TB, j *jwksHost) { j.publish(good, ""); j.delay = time.Second },
			cfg: func(c *ClientJWKSConfig) { c.Timeout = 100 * time.Millisecond }},
		{name: "HTTP 500", setup: func(t testing.TB, j *jwksHost) { j.publish(good, ""); j.status = 500 }},
		{name: "not JSON", setup: func(t testing.TB, j *jwksHost) { j.publish(good, ""); j.contentType = "text/html" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := newJWKSHost(t)
			tt.setup(t, j)
			cfg := ClientJWKSConfig{RootCAs: j.pool(), InsecureAllowPrivateAddresses: true}
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			m := newClientKeySets(cfg, time.Now, nil)
			method := tt.method
			if method == "" {
				method = AuthPrivateKeyJWT
			}
			uri := j.url()
			if tt.uri != nil {
				uri = tt.uri(j)
			}
			ck, err := m.get(context.Background(), &Client{ID: "c", AuthMethod: method, JWKSURI: uri})
			if strings.HasPrefix(tt.name, "control") {
				if err != nil || ck == nil {
					t.Fatalf("control refused: %v", err)
				}
				return
			}
			if err == nil || ck != nil || !errors.Is(err, errClientKeys) {
				t.Fatalf("accepted: %v %v", ck, err)
			}
			if tt.isErr != nil && !errors.Is(err, tt.isErr) {
				t.Fatalf("error %v, want %v", err, tt.isErr)
			}
		})
	}
}

// TestClientJWKSDialCheck: the fetcher connects only to public unicast
// addresses unless the opt-in allows private ones, and the check applies
// to the address it dials after resolution: "localhost" is refused
// without the opt-in although the URL names no address.
func TestClientJWKSDialCheck(t *testing.T) {
	t.Parallel()
	addrs := []struct {
		addr          string
		public, optIn bool
	}{
		{"93.184.215.14", true, true},
		{"2606:4700:4700::1111", true, true},
		{"127.0.0.1", false, true},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, true},
		{"10.1.2.3", false, true},
		{"172.16.0.1", false, true},
		{"192.168.1.1", false, true},
		{"169.254.169.254", false, true},
		{"100.64.0.1", false, true},
		{"192.0.2.1", false, true},
		{"198.18.0.1", false, true},
		{"240.0.0.1", false, true},
		{"255.255.255.255", false, true},
		{"fc00::1", false, true},
		{"fd12:3456::1", false, true},
		{"fe80::1", false, true},
		{"2001:db8::1", false, true},
		{"2002:7f00:1::1", false, true},
		{"64:ff9b::7f00:1", false, true},
		{"0.0.0.0", false, false},
		{"::", false, false},
		{"224.0.0.1", false, false},
		{"ff02::1", false, false},
	}
	for _, a := range addrs {
		ip := netip.MustParseAddr(a.addr)
		if got := dialAllowed(ip, false); got != a.public {
			t.Errorf("%s without opt-in: allowed=%v, want %v", a.addr, got, a.public)
		}
		if got := dialAllowed(ip, true); got != a.optIn {
			t.Errorf("%s with opt-in: allowed=%v, want %v", a.addr, got, a.optIn)
		}
		ctl := dialControl(false)
		if err := ctl("tcp", netip.AddrPortFrom(ip, 443).String(), nil); (err == nil) != a.public {
			t.Errorf("%s: dial control %v", a.addr, err)
		}
	}

	if tr := newJWKSHTTPClient(ClientJWKSConfig{}.withDefaults()).Transport.(*http.Transport); tr.Proxy != nil {
		t.Error("the fetcher uses a proxy, which would dial on its behalf")
	}
	j := newJWKSHost(t)
	j.publish(jwksJSON(t, pubJWK(newES256(t), "k")), "")
	port := j.srv.Listener.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndexByte(port, ':')+1:]
	tests := []struct {
		name  string
		uri   string
		optIn bool
		ok    bool
	}{
		{"name resolving to loopback", "https://localhost:" + port + "/jwks", false, false},
		{"loopback address", "https://127.0.0.1:" + port + "/jwks", false, false},
		{"loopback address with the opt-in", "https://127.0.0.1:" + port + "/jwks", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := j.hits.Load()
			m := newClientKeySets(ClientJWKSConfig{RootCAs: j.pool(), InsecureAllowPrivateAddresses: tt.optIn}, time.Now, nil)
			_, err := m.get(context.Background(), &Client{ID: "c", AuthMethod: AuthPrivateKeyJWT, JWKSURI: tt.uri})
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, errAddressNotAllowed) {
				t.Fatalf("error %v, want the address refusal", err)
			}
			if j.hits.Load() != before {
				t.Fatal("the host was reached")
			}
		})
	}
}

// fakeDNS answers every A query with addr and every other query with no
// answer, on a real UDP socket on loopback, and counts the A queries.
type fakeDNS struct {
	conn    net.PacketConn
	addr    [4]byte
	queries atomic.Int32
}

func newFakeDNS(t testing.TB, addr netip.Addr) *fakeDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDNS{conn: pc, addr: addr.As4()}
	t.Cleanup(func() { _ = pc.Close() })
	go d.serve()
	return d
}

func (d *fakeDNS) serve() {
	buf := make([]byte, 512)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		q := buf[:n]
		if n < 12 {
			continue
		}
		// The question: QNAME labels, then QTYPE and QCLASS.
		i := 12
		for i < n && q[i] != 0 {
			i += int(q[i]) + 1
		}
		if i+5 > n {
			continue
		}
		qtype := binary.BigEndian.Uint16(q[i+1:])
		resp := append([]byte{}, q[:i+5]...)
		resp[2], resp[3] = 0x81, 0x80 // response, recursion desired and available, NOERROR
		binary.BigEndian.PutUint16(resp[6:], 0)
		binary.BigEndian.PutUint16(resp[8:], 0)
		binary.BigEndian.PutUint16(resp[10:], 0)
		if qtype == 1 {
			d.queries.Add(1)
			binary.BigEndian.PutUint16(resp[6:], 1)
			resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
			resp = append(resp, d.addr[:]...)
		}
		_, _ = d.conn.WriteTo(resp, from)
	}
}

// resolver returns a resolver that asks only d.
func (d *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
}

// TestClientJWKSDialCheckAfterDNS: a jwks_uri whose host name a DNS
// server resolves to a loopback address is refused at dial time without
// the opt-in, although the URL holds no address (the case of DNS
// rebinding: whatever the name resolves to when the fetch happens is what
// is checked); with the opt-in the same name is fetched.
func TestClientJWKSDialCheckAfterDNS(t *testing.T) {
	t.Parallel()
	j := newJWKSHost(t)
	j.publish(jwksJSON(t, pubJWK(newES256(t), "k")), "")
	_, port, err := net.SplitHostPort(j.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	uri := "https://keys.rebind.example:" + port + "/jwks"
	for _, optIn := range []bool{false, true} {
		dns := newFakeDNS(t, netip.MustParseAddr("127.0.0.1"))
		cfg := ClientJWKSConfig{RootCAs: j.pool(), InsecureAllowPrivateAddresses: optIn, resolver: dns.resolver()}
		m := newClientKeySets(cfg, time.Now, nil)
		// The test server's certificate does not name the made-up host:
		// verify it as 127.0.0.1, which it does name.
		m.http.Transport.(*http.Transport).TLSClientConfig.ServerName = "127.0.0.1"
		before := j.hits.Load()
		_, err := m.get(context.Background(), &Client{ID: "c", AuthMethod: AuthPrivateKeyJWT, JWKSURI: uri})
		if dns.queries.Load() == 0 {
			t.Fatalf("opt-in %v: the name was never resolved", optIn)
		}
		switch {
		case optIn && err != nil:
			t.Fatalf("with the opt-in: %v", err)
		case !optIn && !errors.Is(err, errAddressNotAllowed):
			t.Fatalf("without the opt-in: %v, want the address refusal", err)
		case !optIn && j.hits.Load() != before:
			t.Fatal("without the opt-in the host was reached")
		}
	}
}

// TestClientJWKSURIRegistration: exactly one of the inline credential and
// jwks_uri, for the two methods that use keys, and an https URL.
func TestClientJWKSURIRegistration(t *testing.T) {
	t.Parallel()
	k := newES256(t)
	set := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pubJWK(k, "k")}}
	const u = "https://client.example.com/jwks"
	tests := []struct {
		name string
		c    Client
		ok   bool
	}{
		{"private_key_jwt with jwks_uri", Client{ID: "a", AuthMethod: AuthPrivateKeyJWT, JWKSURI: u}, true},
		{"self-signed with jwks_uri", Client{ID: "a", AuthMethod: AuthSelfSignedTLSClient, JWKSURI: u}, true},
		{"private_key_jwt with both", Client{ID: "a", AuthMethod: AuthPrivateKeyJWT, JWKSURI: u, JWKS: set}, false},
		{"self-signed with both", Client{ID: "a", AuthMethod: AuthSelfSignedTLSClient, JWKSURI: u, Certificate: SelfSigned(func(context.Context, *x509.Certificate) error { return nil })}, false},
		{"tls_client_auth with jwks_uri", Client{ID: "a", AuthMethod: AuthTLSClient, JWKSURI: u}, false},
		{"secret client with jwks_uri", Client{ID: "a", AuthMethod: AuthSecretBasic, SecretHash: HashSecret("s"), JWKSURI: u}, false},
		{"public client with jwks_uri", Client{ID: "a", AuthMethod: AuthNone, JWKSURI: u}, false},
		{"http", Client{ID: "a", AuthMethod: AuthPrivateKeyJWT, JWKSURI: "http://client.example.com/jwks"}, false},
		{"relative", Client{ID: "a", AuthMethod: AuthPrivateKeyJWT, JWKSURI: "/jwks"}, false},
		{"user information", Client{ID: "a", AuthMethod: AuthPrivateKeyJWT, JWKSURI: "https://u:p@client.example.com/jwks"}, false},
		{"fragment", Client{ID: "a", AuthMethod: AuthPrivateKeyJWT, JWKSURI: u + "#x"}, false},
		{"no host", Client{ID: "a", AuthMethod: AuthPrivateKeyJWT, JWKSURI: "https:///jwks"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewMemoryRegistry(tt.c)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
}
