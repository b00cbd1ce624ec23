package dpop

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/oautherr"
)

// TestVerifyNoClaimOnFailure is DPOP-RS-22: a proof is accepted only when
// every check passes, and a proof refused by any single check has no side
// effect: its (jkt, jti) is not claimed, so the same proof is still
// accepted once the request matches.
func TestVerifyNoClaimOnFailure(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	n := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(11)}, Label: "https://rs.example.test", Now: fixedClock(testNow)})
	nonce, err := n.NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	b := newPB(t)
	b.cl["nonce"] = nonce
	proof := b.build(t)
	tests := []struct {
		name   string
		cfg    func(*Config)
		expect func(*Expect)
		want   error
		why    reason
	}{
		{name: "DPOP-RS-22/htm", expect: func(e *Expect) { e.Method = "POST" }, want: ErrInvalidProof, why: rHTM},
		{name: "DPOP-RS-22/htu", expect: func(e *Expect) { e.URL = "https://rs.example.test/other" }, want: ErrInvalidProof, why: rHTU},
		{name: "DPOP-RS-22/ath", expect: func(e *Expect) { e.AccessToken = "other-token" }, want: ErrInvalidProof, why: rATH},
		{name: "DPOP-RS-22/bound key", expect: func(e *Expect) { e.JKT = mustThumb(keys(t)["ES256b"]) }, want: ErrKeyMismatch, why: rKeyMismatch},
		{name: "DPOP-RS-22/iat window", cfg: func(c *Config) { c.Now = fixedClock(testNow + 3600) }, want: ErrInvalidProof, why: rIATPast},
		{name: "DPOP-RS-22/alg not allowed", cfg: func(c *Config) { c.Algorithms = []string{"EdDSA"} }, want: ErrInvalidProof, why: rAlgNotAllowed},
		{name: "DPOP-RS-22/nonce of another server", cfg: func(c *Config) {
			c.Nonces = mustNonces(t, NonceConfig{Secrets: [][]byte{secret(11)}, Label: "https://as.example.test", Now: fixedClock(testNow)})
		}, want: ErrUseNonce, why: rNonceStale},
		{name: "DPOP-RS-22/every check passes", cfg: func(c *Config) { c.Nonces = n }},
		{name: "DPOP-RS-15/then a replay", cfg: func(c *Config) { c.Nonces = n }, want: ErrReplay, why: rReplay},
	}
	// The steps share one store and run in order.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := testVerifier(t, func(c *Config) {
				c.ReplayStore = st
				if tc.cfg != nil {
					tc.cfg(c)
				}
			})
			want := defaultExpect()
			want.JKT = mustThumb(keys(t)["ES256"])
			if tc.expect != nil {
				tc.expect(&want)
			}
			p, err := v.Verify(context.Background(), proof, want)
			st.mu.Lock()
			claimed := len(st.m)
			st.mu.Unlock()
			if tc.want == nil {
				if err != nil || p == nil {
					t.Fatalf("want accepted, got %v", err)
				}
				if claimed != 1 {
					t.Fatalf("%d keys claimed after acceptance, want 1", claimed)
				}
				return
			}
			if !errors.Is(err, tc.want) || p != nil {
				t.Fatalf("want %v, got %v (proof %v)", tc.want, err, p)
			}
			if got, _ := reasonOf(err); got != tc.why {
				t.Fatalf("rejected for %q, want %q", got, tc.why)
			}
			if tc.want != ErrReplay && claimed != 0 {
				t.Fatalf("a refused proof claimed %d keys", claimed)
			}
		})
	}
}

// TestChallengeAlgs is ERR-03: the algs of a DPoP challenge are the
// configured algorithms, never none or an HMAC algorithm.
func TestChallengeAlgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		algs    []string
		want    []string // nil: NewVerifier must refuse the configuration
		wantStr string
	}{
		{name: "ERR-03/configured order", algs: []string{"ES256", "PS256"}, want: []string{"ES256", "PS256"}, wantStr: `DPoP algs="ES256 PS256"`},
		{name: "ERR-03/duplicates dropped", algs: []string{"EdDSA", "ES256", "EdDSA"}, want: []string{"EdDSA", "ES256"}, wantStr: `DPoP algs="EdDSA ES256"`},
		{name: "ERR-03/ADV-07 only the configured set", algs: []string{"ES256"}, want: []string{"ES256"}, wantStr: `DPoP algs="ES256"`},
		{name: "ERR-03/ADV-01 none refused", algs: []string{"ES256", "none"}},
		{name: "ERR-03/ADV-03 HS256 refused", algs: []string{"HS256"}},
		{name: "ERR-03/HS512 refused", algs: []string{"ES256", "HS512"}},
		{name: "ERR-03/ADV-02 None refused", algs: []string{"None"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(Config{Algorithms: tc.algs, ReplayStore: newMemStore()})
			if tc.want == nil {
				if err == nil {
					t.Fatalf("NewVerifier accepted %v", tc.algs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := v.Algorithms()
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Algorithms() = %v, want %v", got, tc.want)
			}
			got[0] = "none" // the result is a copy
			s := Challenge{Algs: v.Algorithms()}.String()
			if s != tc.wantStr {
				t.Fatalf("challenge %q, want %q", s, tc.wantStr)
			}
			cs, err := ParseChallenges(s)
			if err != nil || len(cs) != 1 || !slices.Equal(cs[0].Algs, tc.want) {
				t.Fatalf("parsed %+v, %v", cs, err)
			}
			for _, a := range cs[0].Algs {
				if strings.EqualFold(a, "none") || strings.HasPrefix(a, "HS") {
					t.Fatalf("algs lists %s", a)
				}
			}
		})
	}
}

// TestVerifyErrorCodes is ERR-05 and ERR-06: a proof failing RFC 9449 §4.3
// is reported as invalid_dpop_proof, a key-binding mismatch as
// invalid_token, a missing nonce as use_dpop_nonce; the challenge carries
// that code and nothing of the proof.
func TestVerifyErrorCodes(t *testing.T) {
	t.Parallel()
	n := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(12)}, Label: "rs", Now: fixedClock(testNow)})
	replayed := newPB(t).build(t)
	replayStore := newMemStore()
	tests := []struct {
		name   string
		edit   func(*testing.T, *pb)
		proof  string
		cfg    func(*Config)
		expect func(*Expect)
		code   string
	}{
		{name: "ERR-05/bad signature", edit: func(t *testing.T, b *pb) { b.key = keys(t)["ES256b"] }, code: oautherr.InvalidDPoPProof},
		{name: "ERR-05/typ JWT", edit: setHdr("typ", "JWT"), code: oautherr.InvalidDPoPProof},
		{name: "ERR-05/stale iat", edit: setCl("iat", testNow-3600), code: oautherr.InvalidDPoPProof},
		{name: "ERR-05/not a JWS", proof: "not-a-proof", code: oautherr.InvalidDPoPProof},
		{name: "ERR-05/replay", proof: replayed, cfg: func(c *Config) { c.ReplayStore = replayStore }, code: oautherr.InvalidDPoPProof},
		{name: "ERR-06/proof key is not the bound key", expect: func(e *Expect) { e.JKT = mustThumb(keys(t)["ES256b"]) }, code: oautherr.InvalidToken},
		{name: "ERR-14/nonce required", cfg: func(c *Config) { c.Nonces = n }, code: oautherr.UseDPoPNonce},
	}
	// Claim the replayed proof once before the table runs.
	if _, err := testVerifier(t, func(c *Config) { c.ReplayStore = replayStore }).Verify(context.Background(), replayed, defaultExpect()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			proof := tc.proof
			if proof == "" {
				b := newPB(t)
				if tc.edit != nil {
					tc.edit(t, b)
				}
				proof = b.build(t)
			}
			want := defaultExpect()
			if tc.expect != nil {
				tc.expect(&want)
			}
			_, err := testVerifier(t, tc.cfg).Verify(context.Background(), proof, want)
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code || Code(err) != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
			}
			c := Challenge{Error: Code(err), ErrorDescription: e.Description}.String()
			cs, perr := ParseChallenges(c)
			if perr != nil || len(cs) != 1 || cs[0].Error != tc.code {
				t.Fatalf("challenge %q parses to %+v, %v", c, cs, perr)
			}
			if len(proof) > 20 && strings.Contains(c, proof[:20]) {
				t.Fatal("challenge echoes the proof")
			}
		})
	}
}

// TestThumbprintOct is THUMB-05: a symmetric (oct) JWK has no public part,
// so Thumbprint refuses it rather than publish a key-derived digest, and a
// proof carrying one is refused (ADV-22).
func TestThumbprintOct(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		jwk  string
	}{
		{"THUMB-05/oct key", `{"kty":"oct","k":"GawgguFyGrWKav7AX4VKUg"}`},
		{"THUMB-05/oct key with kid and alg", `{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow","kid":"hmac","alg":"HS256"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var k jose.JSONWebKey
			if err := k.UnmarshalJSON([]byte(tc.jwk)); err != nil {
				t.Fatal(err)
			}
			if jkt, err := Thumbprint(&k); err == nil || jkt != "" {
				t.Fatalf("Thumbprint(oct) = %q, %v; want an error", jkt, err)
			}
			proof := signRaw(t, keys(t)["ES256"], "ES256", `{"typ":"dpop+jwt","alg":"ES256","jwk":`+tc.jwk+`}`, okPayloadFixed())
			_, err := testVerifier(t, nil).Verify(context.Background(), proof, defaultExpect())
			if got, _ := reasonOf(err); !errors.Is(err, ErrInvalidProof) || got != rJWKPrivate {
				t.Fatalf("ADV-22: oct jwk: %v", err)
			}
		})
	}
}

// TestVerifyChecklistAdversarial holds adversarial proof cases that need
// a nonce source or a size cap: ADV-78 and ADV-104.
func TestVerifyChecklistAdversarial(t *testing.T) {
	t.Parallel()
	n := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(13)}, Label: "rs", Now: fixedClock(testNow)})
	good, err := n.NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	withNonces := func(c *Config) { c.Nonces = n }
	big := strings.Repeat("p", 100<<10)
	runVerifyCases(t, []verifyCase{
		{name: "ADV-78/nonce issued, proof without nonce", cfg: withNonces, want: ErrUseNonce, why: rNonceMissing},
		{name: "ADV-78/empty nonce", edit: setCl("nonce", ""), cfg: withNonces, want: ErrUseNonce, why: rNonceStale},
		{name: "ADV-78/with the issued nonce", edit: setCl("nonce", good), cfg: withNonces},
		{name: "ADV-104/100 KiB proof, valid signature", edit: setCl("pad", big), want: ErrInvalidProof, why: rSize},
		{name: "ADV-104/100 KiB of base64, size cap before parsing", proof: strings.Repeat("A", 100<<10), want: ErrInvalidProof, why: rSize},
		{name: "ADV-104/100 KiB three segments, size cap before signature", proof: strings.Repeat("A", 50<<10) + "." + strings.Repeat("A", 50<<10) + ".AA", want: ErrInvalidProof, why: rSize},
		{name: "ADV-104/100 KiB allowed by a raised cap", edit: setCl("pad", big), cfg: func(c *Config) { c.MaxProofBytes = 1 << 20 }},
	})
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// proofClaimsOf decodes the claims of a proof without verifying it.
func proofClaimsOf(t *testing.T, proof string) map[string]any {
	t.Helper()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", proof)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTransportAuthorizationScheme is DPOP-RS-20 from the client side: the
// DPoP scheme name is case-insensitive, so ath is added for any spelling of
// it, and only for the DPoP scheme.
func TestTransportAuthorizationScheme(t *testing.T) {
	t.Parallel()
	prover, err := NewProver(keys(t)["ES256"], nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		auth    string
		wantATH string
	}{
		{"DPOP-RS-20/DPoP", "DPoP tok-1", AccessTokenHash("tok-1")},
		{"DPOP-RS-20/dpop", "dpop tok-2", AccessTokenHash("tok-2")},
		{"DPOP-RS-20/DPOP", "DPOP tok-3", AccessTokenHash("tok-3")},
		{"Bearer scheme gets no ath", "Bearer tok-4", ""},
		{"no Authorization gets no ath", "", ""},
		{"scheme without token gets no ath", "DPoP", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seen string
			tr := &Transport{Prover: prover, Base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				seen = r.Header.Get("DPoP")
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
			})}
			req, _ := http.NewRequest(http.MethodGet, "https://rs.example.test/resource", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			ath, _ := proofClaimsOf(t, seen)["ath"].(string)
			if ath != tc.wantATH {
				t.Fatalf("ath = %q, want %q", ath, tc.wantATH)
			}
		})
	}
}

// TestTransportNoncePerOrigin checks that the Transport keeps one nonce per
// origin, learned from any response: a nonce from one server is never sent
// to another (RFC 9449 §8, §9: a nonce is valid only where it was issued).
func TestTransportNoncePerOrigin(t *testing.T) {
	t.Parallel()
	prover, err := NewProver(keys(t)["EdDSA"], nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string][]string{} // server name -> nonce claims received
	record := func(name string, r *http.Request) string {
		proof, err := ProofFromHeader(r.Header)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return ""
		}
		n, _ := proofClaimsOf(t, proof)["nonce"].(string)
		mu.Lock()
		seen[name] = append(seen[name], n)
		mu.Unlock()
		return n
	}
	// A demands its nonce with a 401 challenge; B hands out its nonce on
	// every 200 without demanding it.
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if record("A", r) != "nonce-A" {
			w.Header().Set("DPoP-Nonce", "nonce-A")
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(a.Close)
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record("B", r)
		w.Header().Set("DPoP-Nonce", "nonce-B")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(b.Close)
	client := &http.Client{Transport: &Transport{Prover: prover}}
	steps := []struct {
		name   string
		server string
		url    string
		want   []string // nonce claims the server saw during this step
	}{
		{"A asks for its nonce, one retry", "A", a.URL, []string{"", "nonce-A"}},
		{"B never gets A's nonce", "B", b.URL, []string{""}},
		{"B's nonce from a 200 is used at B", "B", b.URL, []string{"nonce-B"}},
		{"A still gets A's nonce", "A", a.URL, []string{"nonce-A"}},
	}
	for _, st := range steps {
		mu.Lock()
		before := len(seen[st.server])
		mu.Unlock()
		resp, err := client.Get(st.url + "/r")
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", st.name, resp.StatusCode)
		}
		mu.Lock()
		got := slices.Clone(seen[st.server][before:])
		mu.Unlock()
		if !slices.Equal(got, st.want) {
			t.Fatalf("%s: server %s saw nonces %q, want %q", st.name, st.server, got, st.want)
		}
	}
}
