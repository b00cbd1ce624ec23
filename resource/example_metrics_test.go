package resource_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/resource"
)

// counters is a resource.Metrics that counts decisions by outcome and
// reason, and timed operations; a real one would feed Prometheus counters and histograms (see
// examples/prometheus-metrics).
type counters struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counters) Request(b resource.Binding, e *resource.Error) {
	key := "accepted " + string(b)
	if e != nil {
		key = fmt.Sprintf("refused %s (%d)", e.Reason, e.Status)
	}
	c.mu.Lock()
	c.n[key]++
	c.mu.Unlock()
}

// Observe counts timed operations; a real implementation would also put
// d in a histogram labelled with op.
func (c *counters) Observe(op resource.Operation, d time.Duration, err error) {
	c.mu.Lock()
	c.n["timed "+string(op)]++
	c.mu.Unlock()
}

// This example counts requests by outcome and stable reason through
// Config.Metrics. The valid token is verified once and then taken from
// the token cache; the expired one is verified, then refused.
func ExampleConfig_metrics() {
	now := time.Unix(1_900_000_000, 0)
	key := exampleKey()
	keys, _ := resource.NewStaticKeySet(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"},
	}})
	m := &counters{n: map[string]int{}}
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers:    []resource.Issuer{{Identifier: "https://as.example.com", Keys: keys}},
		Audience:   "https://api.example.com",
		Now:        func() time.Time { return now },
		Metrics:    m,
	})
	if err != nil {
		panic(err)
	}
	h := v.Middleware(resource.Policy{Accept: resource.AcceptAny})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	mint := func(exp time.Time) string {
		claims, _ := json.Marshal(map[string]any{
			"iss": "https://as.example.com", "aud": "https://api.example.com", "sub": "alice",
			"client_id": "app", "jti": exp.String(), "iat": now.Add(-time.Hour).Unix(), "exp": exp.Unix(),
		})
		jws, _ := signer.Sign(claims)
		s, _ := jws.CompactSerialize()
		return s
	}
	valid, expired := mint(now.Add(time.Minute)), mint(now.Add(-time.Minute))
	for _, authz := range []string{"", "Bearer " + valid, "Bearer " + valid, "Bearer " + expired} {
		r := httptest.NewRequest("GET", "https://api.example.com/things", nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	var lines []string
	for k, n := range m.n {
		lines = append(lines, fmt.Sprintf("%s: %d", k, n))
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// accepted bearer: 2
	// refused no_credentials (401): 1
	// refused token_expired (401): 1
	// timed token: 2
}
