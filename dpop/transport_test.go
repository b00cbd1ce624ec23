package dpop

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/senderbound/senderbound/oautherr"
)

// dpopServer is a small token endpoint and resource server pair that
// verify proofs with this package and demand nonces.
type dpopServer struct {
	t          *testing.T
	srv        *httptest.Server
	tokenHits  atomic.Int32
	rsHits     atomic.Int32
	asNonces   *Nonces
	rsNonces   *Nonces
	verifier   *Verifier
	mu         sync.Mutex
	jkt        string
	bodies     []string
	clientCert bool
}

func newDPoPServer(t *testing.T) *dpopServer {
	t.Helper()
	d := &dpopServer{t: t}
	var err error
	d.asNonces, err = NewNonces(NonceConfig{Secrets: [][]byte{secret(7)}, Label: "as"})
	if err != nil {
		t.Fatal(err)
	}
	d.rsNonces, err = NewNonces(NonceConfig{Secrets: [][]byte{secret(7)}, Label: "rs"})
	if err != nil {
		t.Fatal(err)
	}
	d.verifier, err = NewVerifier(Config{Algorithms: []string{"ES256", "EdDSA"}, ReplayStore: newMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", d.token)
	mux.HandleFunc("GET /resource", d.resource)
	d.srv = httptest.NewServer(mux)
	t.Cleanup(d.srv.Close)
	return d
}

func (d *dpopServer) sawClientCert(r *http.Request) {
	if r.Header.Get("Client-Cert") != "" {
		d.mu.Lock()
		d.clientCert = true
		d.mu.Unlock()
	}
}

func (d *dpopServer) token(w http.ResponseWriter, r *http.Request) {
	d.tokenHits.Add(1)
	d.sawClientCert(r)
	body, _ := io.ReadAll(r.Body)
	d.mu.Lock()
	d.bodies = append(d.bodies, string(body))
	d.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	proof, err := ProofFromHeader(r.Header)
	var p *Proof
	if err == nil {
		p, err = d.verifier.Verify(r.Context(), proof, Expect{Method: r.Method, URL: d.srv.URL + r.URL.Path})
	}
	if err == nil {
		if p.Nonce == "" || d.asNonces.CheckNonce(p.Nonce) != nil {
			err = newError(ErrUseNonce, oautherr.ReasonNonceRequired, "nonce required")
		}
	}
	if err != nil {
		if errors.Is(err, ErrUseNonce) {
			n, _ := d.asNonces.NewNonce()
			w.Header().Set("DPoP-Nonce", n)
		}
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": Code(err), "error_description": "Authorization server requires nonce in DPoP proof"})
		return
	}
	d.mu.Lock()
	d.jkt = p.JKT
	d.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-" + p.JKT[:8], "token_type": "DPoP", "expires_in": 300})
}

func (d *dpopServer) resource(w http.ResponseWriter, r *http.Request) {
	d.rsHits.Add(1)
	d.sawClientCert(r)
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	d.mu.Lock()
	jkt := d.jkt
	d.mu.Unlock()
	fail := func(c Challenge) {
		w.Header().Set("WWW-Authenticate", c.String())
		w.WriteHeader(http.StatusUnauthorized)
	}
	if !strings.EqualFold(scheme, "DPoP") || tok == "" || jkt == "" || tok != "tok-"+jkt[:8] {
		fail(Challenge{Error: oautherr.InvalidToken, Algs: d.verifier.Algorithms()})
		return
	}
	proof, err := ProofFromHeader(r.Header)
	var p *Proof
	if err == nil {
		p, err = d.verifier.Verify(r.Context(), proof, Expect{Method: r.Method, URL: d.srv.URL + r.URL.RequestURI(), AccessToken: tok, JKT: jkt})
	}
	if err == nil && (p.Nonce == "" || d.rsNonces.CheckNonce(p.Nonce) != nil) {
		err = newError(ErrUseNonce, oautherr.ReasonNonceRequired, "nonce required")
	}
	if err != nil {
		if errors.Is(err, ErrUseNonce) {
			n, _ := d.rsNonces.NewNonce()
			w.Header().Set("DPoP-Nonce", n)
		}
		fail(Challenge{Error: Code(err), ErrorDescription: "proof refused", Algs: d.verifier.Algorithms()})
		return
	}
	io.WriteString(w, "hello "+p.JKT)
}

func TestTransportWithOAuth2(t *testing.T) {
	t.Parallel()
	d := newDPoPServer(t)
	prover, err := NewProver(keys(t)["ES256"], nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &Transport{Base: d.srv.Client().Transport, Prover: prover}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: tr})
	cc := clientcredentials.Config{ClientID: "c1", ClientSecret: "s1", TokenURL: d.srv.URL + "/token", AuthStyle: oauth2.AuthStyleInParams}
	client := cc.Client(ctx)
	resp, err := client.Get(d.srv.URL + "/resource?x=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello "+prover.Thumbprint() {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if got := d.tokenHits.Load(); got != 2 {
		t.Fatalf("token endpoint hit %d times, want 2 (use_dpop_nonce then success)", got)
	}
	if got := d.rsHits.Load(); got != 2 {
		t.Fatalf("resource hit %d times, want 2 (use_dpop_nonce then success)", got)
	}
	d.mu.Lock()
	bodies, clientCert := d.bodies, d.clientCert
	d.mu.Unlock()
	if len(bodies) != 2 || bodies[0] != bodies[1] || !strings.Contains(bodies[0], "grant_type=client_credentials") {
		t.Fatalf("retried token request body differs: %q", bodies)
	}
	if clientCert {
		t.Fatal("CCERT-12: transport sent Client-Cert")
	}
	// The remembered nonce is reused: a second call needs one round trip.
	resp, err = client.Get(d.srv.URL + "/resource")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || d.rsHits.Load() != 3 {
		t.Fatalf("second request: status %d, hits %d", resp.StatusCode, d.rsHits.Load())
	}
}

// nonceLoop always answers use_dpop_nonce with a fresh nonce.
func nonceLoop(hits *atomic.Int32, status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("DPoP-Nonce", "nonce-"+strings.Repeat("x", int(n)))
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="x", DPoP error="use_dpop_nonce"`)
			w.WriteHeader(status)
			return
		}
		w.WriteHeader(status)
		io.WriteString(w, `{"error":"use_dpop_nonce"}`)
	}
}

func TestTransportRetry(t *testing.T) {
	t.Parallel()
	prover, err := NewProver(keys(t)["EdDSA"], nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		status   int
		body     func() (io.Reader, bool) // reader, whether GetBody is kept
		wantHits int32
	}{
		{"401 retried once", http.StatusUnauthorized, nil, 2},
		{"400 JSON retried once", http.StatusBadRequest, func() (io.Reader, bool) { return strings.NewReader("a=b"), true }, 2},
		{"body without GetBody not retried", http.StatusBadRequest, func() (io.Reader, bool) { return strings.NewReader("a=b"), false }, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			srv := httptest.NewServer(nonceLoop(&hits, tc.status))
			defer srv.Close()
			client := &http.Client{Transport: &Transport{Base: srv.Client().Transport, Prover: prover}}
			var req *http.Request
			if tc.body == nil {
				req, _ = http.NewRequest("GET", srv.URL+"/r", nil)
			} else {
				rd, keep := tc.body()
				req, _ = http.NewRequest("POST", srv.URL+"/r", rd)
				if !keep {
					req.GetBody = nil
				}
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if hits.Load() != tc.wantHits {
				t.Fatalf("hits %d, want %d", hits.Load(), tc.wantHits)
			}
			if tc.status == http.StatusBadRequest && string(b) != `{"error":"use_dpop_nonce"}` {
				t.Fatalf("caller cannot read the error body: %q", b)
			}
		})
	}
}

func TestTransportProofContents(t *testing.T) {
	t.Parallel()
	prover, err := NewProver(keys(t)["ES256"], nil)
	if err != nil {
		t.Fatal(err)
	}
	v := testVerifier(t, nil)
	var gotErr atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proof, err := ProofFromHeader(r.Header)
		if err == nil {
			want := Expect{Method: r.Method, URL: "http://" + r.Host + r.URL.RequestURI(), AccessToken: strings.TrimPrefix(r.Header.Get("Authorization"), "DPoP ")}
			v2, _ := NewVerifier(Config{Algorithms: v.Algorithms(), ReplayStore: newMemStore()})
			_, err = v2.Verify(r.Context(), proof, want)
		}
		if err != nil {
			gotErr.Store(err.Error())
		}
	}))
	defer srv.Close()
	client := &http.Client{Transport: &Transport{Base: srv.Client().Transport, Prover: prover}}
	req, _ := http.NewRequest("PUT", srv.URL+"/a/b?q=1#frag", strings.NewReader("x"))
	req.Header.Set("Authorization", "DPoP tok-123")
	req.Header.Set("DPoP", "stale-proof-from-caller")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if e := gotErr.Load(); e != nil {
		t.Fatalf("server refused the transport's proof: %v", e)
	}
	if req.Header.Get("DPoP") != "stale-proof-from-caller" {
		t.Fatal("transport modified the caller's request")
	}
	if _, err := (&Transport{}).RoundTrip(req); err == nil {
		t.Fatal("nil Prover accepted")
	}
}

// TestOrigin checks the nonce cache key: one entry per RFC 6454 origin,
// whatever the spelling of scheme, host case and default port.
func TestOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ a, b string }{
		{"https://rs.example/x", "HTTPS://RS.example:443/y"},
		{"http://rs.example/", "http://rs.example:80/z"},
		{"https://[::1]:443/", "https://[::1]/"},
	} {
		ra, _ := http.NewRequest(http.MethodGet, tc.a, nil)
		rb, _ := http.NewRequest(http.MethodGet, tc.b, nil)
		if origin(ra) != origin(rb) {
			t.Errorf("origin(%s) = %q, origin(%s) = %q; want equal", tc.a, origin(ra), tc.b, origin(rb))
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"https://rs.example/", "http://rs.example/"},
		{"https://rs.example/", "https://rs.example:8443/"},
		{"http://rs.example:443/", "http://rs.example/"},
		{"https://rs.example/", "https://rs2.example/"},
	} {
		ra, _ := http.NewRequest(http.MethodGet, tc.a, nil)
		rb, _ := http.NewRequest(http.MethodGet, tc.b, nil)
		if origin(ra) == origin(rb) {
			t.Errorf("origin(%s) = origin(%s) = %q; want different", tc.a, tc.b, origin(ra))
		}
	}
}
