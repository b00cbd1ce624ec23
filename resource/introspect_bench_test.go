package resource_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

// BenchmarkCheckIntrospected is a DPoP request with an opaque token whose
// introspection answer is cached: the cost of a protected request once the
// authorization server has answered (one proof verification), to compare
// with BenchmarkCheck/dpop-token-cache.
func BenchmarkCheckIntrospected(b *testing.B) {
	store, err := replaycache.NewLRU(replaycache.Config{Capacity: 2*b.N + 1000})
	if err != nil {
		b.Fatal(err)
	}
	e := newIntroEnv(b, func(c *resource.Config, _ *resource.Introspection) { c.DPoP.ReplayStore = store })
	tok := opaque(b)
	e.as.set(tok, e.answer(b, nil))
	proofs := make([][]string, b.N)
	for i := range proofs {
		p, err := e.k1.Proof(http.MethodGet, introURL, dpop.ProofOptions{AccessToken: tok})
		if err != nil {
			b.Fatal(err)
		}
		proofs[i] = []string{p}
	}
	r := httptest.NewRequest(http.MethodGet, introURL, nil)
	r.Header.Set("Authorization", "DPoP "+tok)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Header["Dpop"] = proofs[i]
		if _, err := e.v.Check(r, resource.Policy{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := e.as.n.Load(); n != 1 {
		b.Fatalf("%d introspection calls, want 1", n)
	}
}
