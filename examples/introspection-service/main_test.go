package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

const (
	testAudience = "https://api.example.com"
	testClientID = "orders-api"
	testSecret   = "introspection-secret-0123456789"
)

// testAS is a stand-in authorization server's introspection endpoint over
// TLS: it checks this service's client_secret_basic credentials and
// answers each token with the answer registered for it.
type testAS struct {
	*httptest.Server
	mu      sync.Mutex
	answers map[string]map[string]any
	dpopHdr bool // a call carried a DPoP header
	badAuth bool // a call carried other credentials
}

func startAS(t *testing.T) *testAS {
	as := &testAS{answers: map[string]map[string]any{}}
	as.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		as.mu.Lock()
		defer as.mu.Unlock()
		if r.Header.Get("DPoP") != "" {
			as.dpopHdr = true
		}
		if !ok || id != testClientID || secret != testSecret || r.URL.Path != "/introspect" || r.Method != http.MethodPost {
			as.badAuth = true
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		a, found := as.answers[r.PostFormValue("token")]
		if !found {
			a = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a)
	}))
	t.Cleanup(as.Close)
	return as
}

// opaque registers a new opaque token bound by cnf and returns it.
func (as *testAS) opaque(t *testing.T, tokenType string, cnf map[string]string) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	now := time.Now()
	as.mu.Lock()
	as.answers[tok] = map[string]any{
		"active": true, "iss": as.URL, "aud": testAudience, "sub": "alice", "client_id": "shop-app",
		"scope": "read", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"token_type": tokenType, "cnf": cnf,
	}
	as.mu.Unlock()
	return tok
}

// TestService runs the service over real TLS on loopback against a stub
// introspection endpoint: opaque DPoP- and certificate-bound tokens are
// accepted with their proof or certificate and refused without, under the
// wrong key or certificate, or under the Bearer scheme; the endpoint's
// failure is 503. No call to the endpoint carries a DPoP header.
func TestService(t *testing.T) {
	as := startAS(t)
	ca, err := certs.NewCA(certs.Options{CommonName: "test CA"})
	if err != nil {
		t.Fatal(err)
	}
	serverLeaf, err := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	clientLeaf, err := ca.Issue(certs.Options{CommonName: "shop-app", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	otherLeaf, err := ca.Issue(certs.Options{CommonName: "thief", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	// A second service whose introspection endpoint is down.
	down := httptest.NewTLSServer(http.NotFoundHandler())
	downURL := down.URL + "/introspect"
	down.Close()

	start := func(endpoint string) *httptest.Server {
		ts := httptest.NewUnstartedServer(nil)
		h, err := newHandler(options{
			Issuer: as.URL, Audience: testAudience, PublicURL: "https://" + ts.Listener.Addr().String(),
			Endpoint: endpoint, ClientID: testClientID, ClientSecret: testSecret, HTTPClient: as.Client(),
		})
		if err != nil {
			t.Fatal(err)
		}
		ts.Config.Handler = h
		ts.TLS = mtlsbound.ServerTLSConfig(serverLeaf.TLSCertificate())
		ts.StartTLS()
		t.Cleanup(ts.Close)
		return ts
	}
	ts := start(as.URL + "/introspect")
	tsDown := start(downURL)

	prover := func() *dpop.Prover {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p, err := dpop.NewProver(key, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	k1, k2 := prover(), prover()
	dpopClient := func(p *dpop.Prover) *http.Client {
		return &http.Client{Transport: &dpop.Transport{Base: mtlsbound.NewClient(nil, ca.Pool()).Transport, Prover: p}}
	}
	cc, oc := clientLeaf.TLSCertificate(), otherLeaf.TLSCertificate()
	mtlsClient, otherClient := mtlsbound.NewClient(&cc, ca.Pool()), mtlsbound.NewClient(&oc, ca.Pool())
	plainClient := mtlsbound.NewClient((*tls.Certificate)(nil), ca.Pool())

	dpopTok := as.opaque(t, "DPoP", map[string]string{"jkt": k1.Thumbprint()})
	certTok := as.opaque(t, "Bearer", map[string]string{"x5t#S256": mtlsbound.Thumbprint(clientLeaf.Cert)})
	tests := []struct {
		name, authz string
		srv         *httptest.Server
		client      *http.Client
		want        int
		body        string // in the body and the WWW-Authenticate header
	}{
		{"DPoP-bound opaque token with its key's proof", "DPoP " + dpopTok, ts, dpopClient(k1), 200, "orders of alice (client shop-app, dpop-bound)"},
		{"proof by another key", "DPoP " + dpopTok, ts, dpopClient(k2), 401, `DPoP error="invalid_token"`},
		{"Bearer downgrade of a DPoP-bound token", "Bearer " + dpopTok, ts, plainClient, 401, `"error":"invalid_token"`},
		{"DPoP token without a proof", "DPoP " + dpopTok, ts, plainClient, 401, `error="invalid_dpop_proof"`},
		{"certificate-bound opaque token with its certificate", "Bearer " + certTok, ts, mtlsClient, 200, "orders of alice (client shop-app, mtls-bound)"},
		{"certificate-bound token with another certificate", "Bearer " + certTok, ts, otherClient, 401, `"error":"invalid_token"`},
		{"unknown token", "DPoP " + "made-up-token-0123456789", ts, dpopClient(k1), 401, `error="invalid_token"`},
		{"introspection endpoint down", "DPoP " + dpopTok, tsDown, dpopClient(k1), 503, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, tc.srv.URL+"/orders", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", tc.authz)
			resp, err := tc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			got := string(b) + resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != tc.want || !strings.Contains(got, tc.body) {
				t.Fatalf("%d %q, want %d containing %q", resp.StatusCode, got, tc.want, tc.body)
			}
			if strings.Contains(got, dpopTok) || strings.Contains(got, certTok) {
				t.Fatal("the answer echoes the token")
			}
		})
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.dpopHdr {
		t.Error("a DPoP header was sent to the introspection endpoint")
	}
	if as.badAuth {
		t.Error("an introspection call had wrong credentials")
	}
}

// TestNeedsSecret: newHandler refuses an empty client secret (the
// resource package's rule for client_secret_basic).
func TestNeedsSecret(t *testing.T) {
	_, err := newHandler(options{Issuer: "https://as.example.test", Audience: testAudience, PublicURL: "https://127.0.0.1:1",
		Endpoint: "https://as.example.test/introspect", ClientID: testClientID})
	if err == nil {
		t.Fatal("no error for an empty client secret")
	}
}
