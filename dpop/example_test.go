package dpop_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// mapStore is a minimal ReplayStore for the examples. Production code uses
// the replaycache package (in memory or Redis).
type mapStore struct {
	mu   sync.Mutex
	seen map[[32]byte]time.Time
}

func (s *mapStore) CheckAndStore(_ context.Context, key [32]byte, exp time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[[32]byte]time.Time{}
	}
	if _, ok := s.seen[key]; ok {
		return false, nil
	}
	s.seen[key] = exp
	return true, nil
}

// rfc7517Key is the RFC 7517 Appendix A.2 P-256 key, whose private part is
// published; never use it outside examples.
func rfc7517Key() crypto.Signer {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON([]byte(`{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}`)); err != nil {
		panic(err)
	}
	return k.Key.(crypto.Signer)
}

func Example() {
	now := func() time.Time { return time.Unix(1_800_000_000, 0) }

	// Client: one Prover per key.
	prover, err := dpop.NewProver(rfc7517Key(), &dpop.ProverOptions{Now: now})
	if err != nil {
		panic(err)
	}
	proof, err := prover.Proof("GET", "https://rs.example.test/resource?page=2", dpop.ProofOptions{AccessToken: "AT1"})
	if err != nil {
		panic(err)
	}

	// Server: one Verifier, shared by all requests.
	v, err := dpop.NewVerifier(dpop.Config{
		Algorithms:  []string{"ES256", "EdDSA", "PS256"},
		ReplayStore: &mapStore{},
		Now:         now,
	})
	if err != nil {
		panic(err)
	}
	want := dpop.Expect{
		Method:      "GET",
		URL:         "https://RS.example.test:443/resource?page=2",
		AccessToken: "AT1",
		JKT:         "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s", // the token's cnf.jkt
	}
	p, err := v.Verify(context.Background(), proof, want)
	if err != nil {
		panic(err)
	}
	fmt.Println("accepted:", p.Algorithm, p.JKT, p.URL)

	// The same proof again is a replay.
	_, err = v.Verify(context.Background(), proof, want)
	fmt.Println("again:", errors.Is(err, dpop.ErrReplay), dpop.Code(err))

	// Render the challenge for the 401.
	fmt.Println(dpop.Challenge{Error: dpop.Code(err), ErrorDescription: "proof replayed", Algs: v.Algorithms()})
	// Output:
	// accepted: ES256 cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s https://rs.example.test/resource
	// again: true invalid_dpop_proof
	// DPoP error="invalid_dpop_proof", error_description="proof replayed", algs="ES256 EdDSA PS256"
}

func ExampleThumbprint() {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON([]byte(`{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`)); err != nil {
		panic(err)
	}
	jkt, err := dpop.Thumbprint(&k)
	fmt.Println(jkt, err)
	fmt.Println(dpop.AccessTokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"))
	// Output:
	// 0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I <nil>
	// fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo
}

func ExampleParseChallenges() {
	cs, err := dpop.ParseChallenges(`Bearer error="invalid_token", error_description="Invalid token", DPoP algs="ES256 PS256"`)
	if err != nil {
		panic(err)
	}
	for _, c := range cs {
		fmt.Printf("%s error=%q algs=%v\n", c.Scheme, c.Error, c.Algs)
	}
	// Output:
	// Bearer error="invalid_token" algs=[]
	// DPoP error="" algs=[ES256 PS256]
}

func ExampleNonces() {
	now := time.Unix(1_800_000_000, 0)
	nonces, err := dpop.NewNonces(dpop.NonceConfig{
		Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")},
		Label:   "https://rs.example.test",
		Now:     func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	n, err := nonces.NewNonce()
	if err != nil {
		panic(err)
	}
	fmt.Println(nonces.CheckNonce(n) == nil, nonces.Due(n))
	fmt.Println(errors.Is(nonces.CheckNonce("made-up"), dpop.ErrUseNonce))
	// Output:
	// true false
	// true
}

func ExampleTargetURI() {
	t, err := dpop.NewTargetURI(dpop.TargetURIConfig{PublicURL: "https://rs.example.test"})
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest(http.MethodGet, "http://10.0.0.7:8080/a/b?q=1", nil)
	u, err := t.URL(r) // in a handler: want.URL = u
	fmt.Println(u, err)
	// Output:
	// https://rs.example.test/a/b <nil>
}

// A verifier that caches what it learns from x5c chains asks for the
// strings as sent, looks them up, and decodes them only when they are new.
func ExampleDecodeX5C() {
	now := func() time.Time { return time.Unix(1_800_000_000, 0) }
	ca, err := certs.NewCA(certs.Options{})
	if err != nil {
		panic(err)
	}
	key := rfc7517Key()
	leaf, err := ca.Issue(certs.Options{CommonName: "client", Client: true, Key: key})
	if err != nil {
		panic(err)
	}
	prover, err := dpop.NewProver(key, &dpop.ProverOptions{Now: now, X5C: [][]byte{leaf.Cert.Raw, ca.Cert.Raw}})
	if err != nil {
		panic(err)
	}
	proof, err := prover.Proof("GET", "https://rs.example.test/resource", dpop.ProofOptions{})
	if err != nil {
		panic(err)
	}
	v, err := dpop.NewVerifier(dpop.Config{Algorithms: []string{"ES256"}, ReplayStore: &mapStore{}, Now: now})
	if err != nil {
		panic(err)
	}
	p, err := v.Check(proof, dpop.Expect{Method: "GET", URL: "https://rs.example.test/resource", X5C: true, X5CEncoded: true})
	if err != nil {
		panic(err)
	}
	fmt.Println("strings:", len(p.X5CEncoded), "decoded by Check:", p.X5C != nil)
	// A cache miss: decode, refuse on error, then claim the proof.
	ders, err := dpop.DecodeX5C(p.X5CEncoded)
	if err != nil {
		panic(err)
	}
	fmt.Println("leaf as sent:", bytes.Equal(ders[0], leaf.Cert.Raw))
	fmt.Println("claimed:", v.Claim(context.Background(), p) == nil)

	_, err = dpop.DecodeX5C([]string{"AQ\nID=="})
	fmt.Println(errors.Is(err, dpop.ErrInvalidProof))
	// Output:
	// strings: 2 decoded by Check: false
	// leaf as sent: true
	// claimed: true
	// true
}
