package dpop

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/oautherr"
)

// pb builds one test proof. Zero fields take the fixture P: ES256 by K1,
// typ dpop+jwt, jwk = K1 public, fresh jti, htm GET, htu testURL, iat T0,
// ath of testToken.
type pb struct {
	key        crypto.Signer // signing key (default K1)
	alg        string        // signing alg (default header alg or ES256)
	hdr        map[string]any
	cl         map[string]any
	rawHeader  string // replaces the header JSON; $JWK = K1 public JWK
	rawPayload string // replaces the claims JSON; $JTI, $ATH expanded
	post       func(string) string
}

func newPB(tb testing.TB) *pb {
	k := keys(tb)["ES256"]
	return &pb{
		key: k,
		hdr: map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": jwkMap(tb, k)},
		cl: map[string]any{
			"jti": uniqueJTI(), "htm": "GET", "htu": testURL, "iat": testNow,
			"ath": AccessTokenHash(testToken),
		},
	}
}

func (b *pb) build(tb testing.TB) string {
	tb.Helper()
	h := b.rawHeader
	if h == "" {
		h = mustJSON(tb, b.hdr)
	}
	h = strings.ReplaceAll(h, "$JWK", jwkJSON(tb, keys(tb)["ES256"]))
	p := b.rawPayload
	if p == "" {
		p = mustJSON(tb, b.cl)
	}
	p = strings.ReplaceAll(p, "$JTI", uniqueJTI())
	p = strings.ReplaceAll(p, "$ATH", AccessTokenHash(testToken))
	alg := b.alg
	if alg == "" {
		alg, _ = b.hdr["alg"].(string)
		if alg == "" {
			alg = "ES256"
		}
	}
	proof := signRaw(tb, b.key, alg, h, p)
	if b.post != nil {
		proof = b.post(proof)
	}
	return proof
}

func testVerifier(tb testing.TB, edit func(*Config)) *Verifier {
	tb.Helper()
	cfg := Config{
		Algorithms:  []string{"ES256", "EdDSA", "PS256", "RS256"},
		ReplayStore: newMemStore(),
		Now:         fixedClock(testNow),
	}
	if edit != nil {
		edit(&cfg)
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func defaultExpect() Expect {
	return Expect{Method: "GET", URL: testURL, AccessToken: testToken}
}

type verifyCase struct {
	name   string
	edit   func(t *testing.T, b *pb)
	proof  string // used verbatim when non-empty
	expect func(e *Expect)
	cfg    func(c *Config)
	want   error  // nil: accepted
	why    reason // the check expected to fire (rOK: any)
}

func runVerifyCases(t *testing.T, cases []verifyCase) {
	t.Helper()
	for _, tc := range cases {
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
			v := testVerifier(t, tc.cfg)
			p, err := v.Verify(context.Background(), proof, want)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				if p == nil || p.JKT == "" {
					t.Fatal("accepted without a proof result")
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
			if p != nil {
				t.Fatal("non-nil proof on error")
			}
			if tc.why != rOK {
				if got, _ := reasonOf(err); got != tc.why {
					t.Fatalf("rejected for %q, want %q", got, tc.why)
				}
			}
			if strings.Contains(err.Error(), proof) || (len(proof) > 20 && strings.Contains(err.Error(), proof[:20])) {
				t.Fatal("error echoes the proof")
			}
		})
	}
}

func setHdr(k string, v any) func(*testing.T, *pb) {
	return func(_ *testing.T, b *pb) {
		if v == nil {
			delete(b.hdr, k)
		} else {
			b.hdr[k] = v
		}
	}
}

func setCl(k string, v any) func(*testing.T, *pb) {
	return func(_ *testing.T, b *pb) {
		if v == nil {
			delete(b.cl, k)
		} else {
			b.cl[k] = v
		}
	}
}

func setJWK(k string, v any) func(*testing.T, *pb) {
	return func(_ *testing.T, b *pb) {
		j := b.hdr["jwk"].(map[string]any)
		if v == nil {
			delete(j, k)
		} else {
			j[k] = v
		}
	}
}

func useKey(name, alg string) func(*testing.T, *pb) {
	return func(t *testing.T, b *pb) {
		k := keys(t)[name]
		b.key, b.alg = k, alg
		b.hdr["alg"] = alg
		b.hdr["jwk"] = jwkMap(t, k)
	}
}

func post(f func(string) string) func(*testing.T, *pb) {
	return func(_ *testing.T, b *pb) { b.post = f }
}

func raw(header, payload string) func(*testing.T, *pb) {
	return func(_ *testing.T, b *pb) { b.rawHeader, b.rawPayload = header, payload }
}

const (
	okHeader  = `{"typ":"dpop+jwt","alg":"ES256","jwk":$JWK}`
	okPayload = `{"jti":"$JTI","htm":"GET","htu":"https://rs.example.test/resource","iat":1800000000,"ath":"$ATH"}`
)

func TestVerifyGroupA(t *testing.T) {
	t.Parallel()
	runVerifyCases(t, []verifyCase{
		{name: "baseline P accepted"},
		{name: "DPOP-RS-02/x", proof: "x", want: ErrInvalidProof, why: rSegments},
		{name: "DPOP-RS-02/a.b", proof: "a.b", want: ErrInvalidProof, why: rSegments},
		{name: "DPOP-RS-02/five-segment JWE", proof: "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", want: ErrInvalidProof, why: rSegments},
		{name: "DPOP-RS-02/JWS JSON serialization", proof: `{"payload":"e30","protected":"e30","signature":"AA"}`, want: ErrInvalidProof, why: rSegments},
		{name: "DPOP-RS-02/two proofs joined", edit: post(func(p string) string { return p + ", " + p }), want: ErrInvalidProof, why: rSegments},
		{name: "DPOP-RS-04/no typ", edit: setHdr("typ", nil), want: ErrInvalidProof, why: rTyp},
		{name: "DPOP-RS-04/no alg", edit: setHdr("alg", nil), want: ErrInvalidProof, why: rAlgMissing},
		{name: "DPOP-RS-04/no jwk", edit: setHdr("jwk", nil), want: ErrInvalidProof, why: rJWKMissing},
		{name: "DPOP-RS-05/typ JWT", edit: setHdr("typ", "JWT"), want: ErrInvalidProof, why: rTyp},
		{name: "DPOP-RS-05/typ at+jwt", edit: setHdr("typ", "at+jwt"), want: ErrInvalidProof, why: rTyp},
		{name: "DPOP-RS-05/typ application/dpop+jwt refused (record)", edit: setHdr("typ", "application/dpop+jwt"), want: ErrInvalidProof, why: rTyp},
		{name: "DPOP-RS-05/typ DPoP+JWT refused (record)", edit: setHdr("typ", "DPoP+JWT"), want: ErrInvalidProof, why: rTyp},
		{name: "DPOP-RS-05/typ number", edit: setHdr("typ", 1), want: ErrInvalidProof, why: rTyp},
		{name: "DPOP-RS-06/alg none", edit: setHdr("alg", "none"), want: ErrInvalidProof, why: rAlgNotAllowed},
		{name: "DPOP-RS-06/alg HS256", edit: setHdr("alg", "HS256"), want: ErrInvalidProof, why: rAlgNotAllowed},
		{name: "DPOP-RS-06/ES512 not configured", edit: useKey("ES512", "ES512"), want: ErrInvalidProof, why: rAlgNotAllowed},
		{name: "DPOP-RS-06/ES256 with ES256 only", cfg: func(c *Config) { c.Algorithms = []string{"ES256"} }},
		{name: "DPOP-RS-07/flipped signature bit", edit: post(func(p string) string {
			i := strings.LastIndexByte(p, '.')
			sig, _ := base64.RawURLEncoding.DecodeString(p[i+1:])
			sig[10] ^= 1
			return p[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
		}), want: ErrInvalidProof, why: rSignature},
		{name: "DPOP-RS-07/signed by K2 with jwk K1", edit: func(t *testing.T, b *pb) { b.key = keys(t)["ES256b"] }, want: ErrInvalidProof, why: rSignature},
		{name: "DPOP-RS-08/jwk with d", edit: setJWK("d", "870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"), want: ErrInvalidProof, why: rJWKPrivate},
		{name: "DPOP-RS-09/no jti", edit: setCl("jti", nil), want: ErrInvalidProof, why: rClaimMissing},
		{name: "DPOP-RS-09/no htm", edit: setCl("htm", nil), want: ErrInvalidProof, why: rClaimMissing},
		{name: "DPOP-RS-09/no htu", edit: setCl("htu", nil), want: ErrInvalidProof, why: rClaimMissing},
		{name: "DPOP-RS-09/no iat", edit: setCl("iat", nil), want: ErrInvalidProof, why: rClaimMissing},
		{name: "DPOP-RS-10/htm POST on GET", edit: setCl("htm", "POST"), want: ErrInvalidProof, why: rHTM},
		{name: "DPOP-RS-10/htm POST on POST", edit: setCl("htm", "POST"), expect: func(e *Expect) { e.Method = "POST" }},
		{name: "DPOP-RS-11/request with query", expect: func(e *Expect) { e.URL = testURL + "?a=1" }},
		{name: "DPOP-RS-11/request with fragment", expect: func(e *Expect) { e.URL = testURL + "#f" }},
		{name: "DPOP-RS-11/other path", edit: setCl("htu", "https://rs.example.test/other"), want: ErrInvalidProof, why: rHTU},
		{name: "DPOP-RS-12/upper-case scheme host and :443", edit: setCl("htu", "HTTPS://RS.Example.TEST:443/resource")},
		{name: "DPOP-RS-12/path case differs", edit: setCl("htu", "https://rs.example.test/Resource"), want: ErrInvalidProof, why: rHTU},
		{name: "DPOP-RS-12/percent-encoded unreserved", edit: setCl("htu", "https://rs.example.test/%72esource")},
		{name: "DPOP-RS-12/dot segments", edit: setCl("htu", "https://rs.example.test/a/../resource")},
		{name: "DPOP-RS-13/iat T0-(W+60s)", edit: setCl("iat", testNow-120), want: ErrInvalidProof, why: rIATPast},
		{name: "DPOP-RS-13/iat T0-W", edit: setCl("iat", testNow-60)},
		{name: "DPOP-RS-13/iat T0-W-1", edit: setCl("iat", testNow-61), want: ErrInvalidProof, why: rIATPast},
		{name: "DPOP-RS-13/custom MaxAge", edit: setCl("iat", testNow-100), cfg: func(c *Config) { c.MaxAge = 2 * time.Minute }},
		{name: "DPOP-RS-14/iat T0+S/2", edit: setCl("iat", testNow+7)},
		{name: "DPOP-RS-14/iat T0+10s FAPI", edit: setCl("iat", testNow+10)},
		{name: "DPOP-RS-14/iat T0+1h", edit: setCl("iat", testNow+3600), want: ErrInvalidProof, why: rIATFuture},
		{name: "DPOP-RS-14/iat T0+S+1", edit: setCl("iat", testNow+16), want: ErrInvalidProof, why: rIATFuture},
		{name: "DPOP-RS-16/jti 4 KiB", edit: setCl("jti", strings.Repeat("a", 4096)), want: ErrInvalidProof, why: rJTI},
		{name: "DPOP-RS-16/jti 256 bytes", edit: setCl("jti", strings.Repeat("b", 250)+fmt.Sprintf("%06d", jtiCounter.Add(1)))},
		{name: "DPOP-RS-17/no ath", edit: setCl("ath", nil), want: ErrInvalidProof, why: rATH},
		{name: "DPOP-RS-17/ath of another token", edit: setCl("ath", AccessTokenHash("other")), want: ErrInvalidProof, why: rATH},
		{name: "DPOP-RS-17/no token no ath", edit: setCl("ath", nil), expect: func(e *Expect) { e.AccessToken = "" }},
		{name: "DPOP-RS-18/ath of AT1 with AT1'", expect: func(e *Expect) { e.AccessToken = testToken + "-prime" }, want: ErrInvalidProof, why: rATH},
		{name: "DPOP-RS-19/JKT of K2", expect: func(e *Expect) { e.JKT = mustThumb(keys(t)["ES256b"]) }, want: ErrKeyMismatch, why: rKeyMismatch},
		{name: "DPOP-RS-19/JKT of K1", expect: func(e *Expect) { e.JKT = mustThumb(keys(t)["ES256"]) }},
		{name: "THUMB-11/JKT with one letter case flipped", expect: func(e *Expect) { e.JKT = flipCase(mustThumb(keys(t)["ES256"])) }, want: ErrKeyMismatch, why: rKeyMismatch},
		{name: "DPOP-RS-26/extension claim", edit: setCl("ext", "x")},
		{name: "DPOP-RS-26/extension header", edit: setHdr("ext", map[string]any{"a": []any{1, "b", nil, true}})},
	})
}

func mustThumb(k crypto.Signer) string {
	p, err := NewProver(k, nil)
	if err != nil {
		panic(err)
	}
	return p.Thumbprint()
}

func flipCase(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			return s[:i] + string(c-32) + s[i+1:]
		case c >= 'A' && c <= 'Z':
			return s[:i] + string(c+32) + s[i+1:]
		}
	}
	panic("no letter")
}

func TestVerifyReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := testVerifier(t, nil)
	b := newPB(t)
	proof := b.build(t)
	if _, err := v.Verify(ctx, proof, defaultExpect()); err != nil {
		t.Fatalf("DPOP-RS-15/first: %v", err)
	}
	_, err := v.Verify(ctx, proof, defaultExpect())
	if !errors.Is(err, ErrReplay) || !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("DPOP-RS-15/second: %v", err)
	}
	if Code(err) != oautherr.InvalidDPoPProof {
		t.Fatalf("replay code %s", Code(err))
	}
	// KAT-15: the high-s twin verifies cryptographically, yet is a replay.
	_, err = v.Verify(ctx, flipS(t, proof), defaultExpect())
	if !errors.Is(err, ErrReplay) {
		t.Fatalf("KAT-15/high-s twin: %v", err)
	}
	// ADV-46: same jti, other htu and htm, same key → replay.
	b.cl["htu"], b.cl["htm"] = "https://rs.example.test/other", "POST"
	_, err = v.Verify(ctx, b.build(t), Expect{Method: "POST", URL: "https://rs.example.test/other", AccessToken: testToken})
	if !errors.Is(err, ErrReplay) {
		t.Fatalf("ADV-46: %v", err)
	}
	// ADV-47 (record): the same jti from another key is accepted, because
	// the replay key includes the thumbprint.
	b2 := newPB(t)
	b2.cl["jti"] = b.cl["jti"]
	k2 := keys(t)["ES256b"]
	b2.key, b2.hdr["jwk"] = k2, jwkMap(t, k2)
	if _, err := v.Verify(ctx, b2.build(t), defaultExpect()); err != nil {
		t.Fatalf("ADV-47: %v", err)
	}
}

// claimStore records the expiry it is asked to hold a key for.
type claimStore struct {
	memStore
	lastExp time.Time
}

func (s *claimStore) CheckAndStore(ctx context.Context, key [32]byte, exp time.Time) (bool, error) {
	s.lastExp = exp
	return s.memStore.CheckAndStore(ctx, key, exp)
}

func TestVerifyReplayKeyAndExpiry(t *testing.T) {
	t.Parallel()
	st := &claimStore{memStore: *newMemStore()}
	v := testVerifier(t, func(c *Config) { c.ReplayStore = st; c.MaxAge = 30 * time.Second; c.FutureSkew = 5 * time.Second })
	b := newPB(t)
	b.cl["iat"] = testNow - 10
	p, err := v.Verify(context.Background(), b.build(t), defaultExpect())
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(testNow-10+35, 0); !st.lastExp.Equal(want) {
		t.Fatalf("claimed until %v, want iat+MaxAge+FutureSkew %v", st.lastExp, want)
	}
	if _, ok := st.m[replayKey(p.JKT, p.JTI)]; !ok {
		t.Fatal("replay key is not replayKey(jkt, jti)")
	}
	if replayKey("ab", "c") == replayKey("a", "bc") {
		t.Fatal("replay key encoding is ambiguous")
	}
}

func TestVerifyStoreUnavailable(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	st.fail = errors.New("connection refused")
	v := testVerifier(t, func(c *Config) { c.ReplayStore = st })
	_, err := v.Verify(context.Background(), newPB(t).build(t), defaultExpect())
	if !errors.Is(err, ErrStoreUnavailable) || errors.Is(err, ErrInvalidProof) && !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("ADV-108: %v", err)
	}
	if Code(err) != oautherr.ServerError {
		t.Fatalf("code %s", Code(err))
	}
	if strings.Contains(err.Error(), "connection refused") {
		t.Fatal("store error text leaks into the wire error")
	}
}

func TestVerifyMissingProof(t *testing.T) {
	t.Parallel()
	_, err := testVerifier(t, nil).Verify(context.Background(), "", defaultExpect())
	if !errors.Is(err, ErrMissingProof) {
		t.Fatalf("got %v", err)
	}
}

func TestProofFromHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    http.Header
		want error
	}{
		{"DPOP-RS-03/canonical", http.Header{"Dpop": {"a.b.c"}}, nil},
		{"DPOP-RS-03/dpop lower-case", http.Header{"dpop": {"a.b.c"}}, nil},
		{"DPOP-RS-03/DPOP upper-case", http.Header{"DPOP": {"a.b.c"}}, nil},
		{"DPOP-RS-01/two lines", http.Header{"Dpop": {"a.b.c", "a.b.c"}}, ErrInvalidProof},
		{"DPOP-RS-01/DPoP and dpop", http.Header{"Dpop": {"a.b.c"}, "dpop": {"a.b.c"}}, ErrInvalidProof},
		{"DPOP-RS-21/absent", http.Header{"Authorization": {"DPoP x"}}, ErrMissingProof},
		{"empty value", http.Header{"Dpop": {""}}, ErrInvalidProof},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := ProofFromHeader(tc.h)
			if tc.want == nil {
				if err != nil || v != "a.b.c" {
					t.Fatalf("got %q, %v", v, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || v != "" {
				t.Fatalf("got %q, %v; want %v", v, err, tc.want)
			}
		})
	}
}

func TestNewVerifierConfig(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"valid", Config{Algorithms: []string{"ES256"}, ReplayStore: st}, true},
		{"no algorithms", Config{ReplayStore: st}, false},
		{"nil store", Config{Algorithms: []string{"ES256"}}, false},
		{"none", Config{Algorithms: []string{"none"}, ReplayStore: st}, false},
		{"HS256", Config{Algorithms: []string{"HS256"}, ReplayStore: st}, false},
		{"lower-case es256", Config{Algorithms: []string{"es256"}, ReplayStore: st}, false},
		{"negative MaxAge", Config{Algorithms: []string{"ES256"}, ReplayStore: st, MaxAge: -1}, false},
		{"negative FutureSkew", Config{Algorithms: []string{"ES256"}, ReplayStore: st, FutureSkew: -1}, false},
		{"negative MaxProofBytes", Config{Algorithms: []string{"ES256"}, ReplayStore: st, MaxProofBytes: -1}, false},
		{"typed nil store", Config{Algorithms: []string{"ES256"}, ReplayStore: (*memStore)(nil)}, false},
		{"typed nil nonces", Config{Algorithms: []string{"ES256"}, ReplayStore: st, Nonces: (*Nonces)(nil)}, false},
		{"typed nil key limiter", Config{Algorithms: []string{"ES256"}, ReplayStore: st, KeyLimiter: (*testLimiter)(nil)}, false},
		{"nonces and key limiter", Config{Algorithms: []string{"ES256"}, ReplayStore: st, Nonces: testNonces(t), KeyLimiter: &testLimiter{}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewVerifier(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v", err)
			}
		})
	}
	algs := []string{"PS256", "ES256", "PS256"}
	v, err := NewVerifier(Config{Algorithms: algs, ReplayStore: st})
	if err != nil {
		t.Fatal(err)
	}
	algs[0] = "RS256"
	got := v.Algorithms()
	if fmt.Sprint(got) != "[PS256 ES256]" {
		t.Fatalf("Algorithms() = %v (config must be copied, duplicates dropped)", got)
	}
	got[0] = "none"
	if v.Algorithms()[0] != "PS256" {
		t.Fatal("Algorithms() exposes internal state")
	}
}

func TestVerifyConcurrentReplay(t *testing.T) {
	t.Parallel()
	v := testVerifier(t, nil)
	proof := newPB(t).build(t)
	const n = 32
	var wg sync.WaitGroup
	var ok, replay atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(context.Background(), proof, defaultExpect())
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrReplay):
				replay.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || replay.Load() != n-1 {
		t.Fatalf("ADV-107: %d accepted, %d replays", ok.Load(), replay.Load())
	}
}

// testLimiter allows every owner.
type testLimiter struct{}

func (*testLimiter) Allow(string) bool { return true }

func testNonces(t *testing.T) *Nonces {
	t.Helper()
	n, err := NewNonces(NonceConfig{Secrets: [][]byte{make([]byte, 32)}, Label: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
