package fallback

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/replaycache"
)

const reqURL = "https://rs.example.test/resource"

var counter struct {
	sync.Mutex
	n int
}

func nextJTI() string {
	counter.Lock()
	defer counter.Unlock()
	counter.n++
	return fmt.Sprintf("jti-%d", counter.n)
}

// handProof signs a proof with go-jose, with any x5c value, so that tests
// can send what a Prover refuses to make.
func handProof(tb testing.TB, key crypto.Signer, alg jose.SignatureAlgorithm, x5c any) string {
	tb.Helper()
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	if x5c != nil {
		opts = opts.WithHeader("x5c", x5c)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{"jti": nextJTI(), "htm": "GET", "htu": reqURL, "iat": testNow.Unix()})
	jws, err := s.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func b64s(certs ...*x509.Certificate) []string {
	out := make([]string, len(certs))
	for i, c := range certs {
		out[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	return out
}

func proverFor(tb testing.TB, key crypto.Signer, chain []*x509.Certificate) *dpop.Prover {
	tb.Helper()
	p, err := NewProver(key, chain, &dpop.ProverOptions{Now: fixedClock(testNow)})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestVerifyRequest(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	k := keys(t)
	chains := map[string][]*x509.Certificate{}
	for _, name := range []string{"P256", "P384", "Ed25519", "RSA2048"} {
		chains[name] = w.issue(t, k[name], "c-"+strings.ToLower(name))
	}
	other := w.issue(t, k["P256b"], "other")
	foreign, err := certs.NewCA(certs.Options{CommonName: "foreign CA"})
	if err != nil {
		t.Fatal(err)
	}
	foreignLeaf := craft(t, foreign.Cert, foreign.Key, k["P256"].Public(), nil)
	revoked := w.issue(t, k["P256"], "revoked")
	if err := w.ca.Revoke(context.Background(), revoked[0].SerialNumber); err != nil {
		t.Fatal(err)
	}
	w.refreshCRL(t)
	good := func(name string) string {
		p, err := proverFor(t, k[name], chains[name]).Proof("GET", reqURL, dpop.ProofOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	expect := dpop.Expect{Method: "GET", URL: reqURL}
	replayed := good("P256")
	if _, err := w.v.VerifyRequest(context.Background(), replayed, expect); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		proof    string
		expect   dpop.Expect
		want     error
		reason   oautherr.Reason
		clientID string
	}{
		{name: "ES256", proof: good("P256"), clientID: "c-p256"},
		{name: "ES384", proof: good("P384"), clientID: "c-p384"},
		{name: "EdDSA", proof: good("Ed25519"), clientID: "c-ed25519"},
		{name: "PS256", proof: good("RSA2048"), clientID: "c-rsa2048"},
		{name: "leaf alone in x5c", proof: handProof(t, k["P256"], jose.ES256, b64s(chains["P256"][0])), clientID: "c-p256"},
		{name: "x5c leaf key differs from jwk", proof: handProof(t, k["P256"], jose.ES256, b64s(other...)), want: ErrKeyMismatch, reason: oautherr.ReasonFallbackKeyMismatch},
		{name: "chain longer than the bound", proof: handProof(t, k["P256"], jose.ES256, b64s(chains["P256"][0], w.root.Cert, w.root.Cert, w.root.Cert)), want: ErrUntrustedChain, reason: oautherr.ReasonFallbackChainTooLong},
		{name: "garbage base64", proof: handProof(t, k["P256"], jose.ES256, []string{"!!not base64!!"}), want: dpop.ErrInvalidProof},
		{name: "base64url instead of base64", proof: handProof(t, k["P256"], jose.ES256, []string{base64.RawURLEncoding.EncodeToString(chains["P256"][0].Raw)}), want: dpop.ErrInvalidProof},
		{name: "not a certificate", proof: handProof(t, k["P256"], jose.ES256, []string{base64.StdEncoding.EncodeToString([]byte("not a certificate"))}), want: ErrUntrustedChain, reason: oautherr.ReasonFallbackCertificateMalformed},
		{name: "x5c not an array", proof: handProof(t, k["P256"], jose.ES256, b64s(chains["P256"][0])[0]), want: dpop.ErrInvalidProof},
		{name: "foreign-CA chain", proof: handProof(t, k["P256"], jose.ES256, b64s(foreignLeaf, foreign.Cert)), want: ErrUntrustedChain, reason: oautherr.ReasonFallbackUntrustedChain},
		{name: "revoked", proof: proofOf(t, proverFor(t, k["P256"], revoked)), want: ErrRevoked, reason: oautherr.ReasonFallbackRevoked},
		{name: "replayed", proof: replayed, want: dpop.ErrReplay},
		{name: "plain DPoP proof without x5c", proof: handProof(t, k["P256"], jose.ES256, nil), want: dpop.ErrInvalidProof},
		{name: "htm mismatch", proof: good("P256"), expect: dpop.Expect{Method: "POST", URL: reqURL}, want: dpop.ErrInvalidProof},
		{name: "htu mismatch", proof: good("P256"), expect: dpop.Expect{Method: "GET", URL: "https://rs.example.test/other"}, want: dpop.ErrInvalidProof},
		{name: "no proof", proof: "", want: dpop.ErrMissingProof},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := tc.expect
			if want.Method == "" {
				want = expect
			}
			id, err := w.v.VerifyRequest(context.Background(), tc.proof, want)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if id.ClientID != tc.clientID || !slices.Equal(id.Scopes, registered) {
					t.Fatalf("identity %+v", id)
				}
				return
			}
			if !errors.Is(err, tc.want) || id != nil {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.reason != "" && ReasonOf(err) != tc.reason {
				t.Fatalf("reason %q, want %q", ReasonOf(err), tc.reason)
			}
			if tc.proof != "" && strings.Contains(err.Error(), tc.proof[:20]) {
				t.Fatal("error echoes the proof")
			}
		})
	}
}

func proofOf(tb testing.TB, p *dpop.Prover) string {
	tb.Helper()
	s, err := p.Proof("GET", reqURL, dpop.ProofOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestVerifyRequestConfig(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	chain := w.issue(t, keys(t)["P256"], "c1")
	proof := proofOf(t, proverFor(t, keys(t)["P256"], chain))
	noProofs, err := NewVerifier(Config{CAs: []*x509.Certificate{w.root.Cert}, CRL: w.crl, Now: fixedClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noProofs.VerifyRequest(context.Background(), proof, dpop.Expect{Method: "GET", URL: reqURL}); ReasonOf(err) != oautherr.ReasonFallbackSignedRequestsOff {
		t.Fatalf("without Config.Proofs: %v", err)
	}
	for _, want := range []dpop.Expect{
		{Method: "GET", URL: reqURL, AccessToken: "t"},
		{Method: "GET", URL: reqURL, JKT: "x"},
	} {
		if _, err := w.v.VerifyRequest(context.Background(), proof, want); err == nil {
			t.Fatalf("accepted with %+v", want)
		}
	}
	if _, err := NewProver(keys(t)["P256b"], chain, nil); err == nil {
		t.Fatal("NewProver accepted a chain for another key")
	}
	if _, err := NewProver(keys(t)["P256"], nil, nil); err == nil {
		t.Fatal("NewProver accepted an empty chain")
	}
}

// TestSignedRequestOverHTTP runs the signed-request form end to end over
// HTTP on loopback: a client with dpop.Transport and a fallback Prover,
// a server that verifies with VerifyRequest, a server nonce that the
// transport answers once, and a replay of a captured request refused.
func TestSignedRequestOverHTTP(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	k := keys(t)["P256"]
	chain := w.issue(t, k, "c1")
	nonces, err := dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, Label: "rs", Now: fixedClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	store, err := replaycache.NewLRU(replaycache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	proofs, err := dpop.NewVerifier(dpop.Config{Algorithms: []string{"ES256"}, ReplayStore: store, Nonces: nonces, Now: fixedClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(Config{CAs: []*x509.Certificate{w.root.Cert}, CRL: w.crl, Proofs: proofs, Now: fixedClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	var captured sync.Map
	var base string
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		proof, err := dpop.ProofFromHeader(r.Header)
		if err == nil {
			captured.Store(r.URL.Path, proof)
		}
		id, err := v.VerifyRequest(r.Context(), proof, dpop.Expect{Method: r.Method, URL: base + r.URL.Path})
		switch {
		case errors.Is(err, dpop.ErrUseNonce):
			n, _ := nonces.NewNonce()
			dpop.SetNonce(rw.Header(), n)
			rw.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
			rw.WriteHeader(http.StatusUnauthorized)
		case err != nil:
			rw.Header().Set("WWW-Authenticate", `DPoP error="invalid_token"`)
			rw.WriteHeader(http.StatusUnauthorized)
		default:
			fmt.Fprintf(rw, "%s %s", id.ClientID, strings.Join(id.Scopes, " "))
		}
	}))
	defer srv.Close()
	base = srv.URL
	client := &http.Client{Transport: &dpop.Transport{Base: srv.Client().Transport, Prover: proverFor(t, k, chain)}}
	resp, err := client.Get(srv.URL + "/resource")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "c1 read write admin:all" {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
	proof, ok := captured.Load("/resource")
	if !ok {
		t.Fatal("no proof captured")
	}
	req, _ := http.NewRequest("GET", srv.URL+"/resource", nil)
	req.Header.Set("DPoP", proof.(string))
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed request: status %d", resp.StatusCode)
	}
}
