package loadgen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

const testAudience = "https://rs.loadgen.test"

// testProver returns a prover with a fresh P-256 key.
func testProver(t testing.TB) *dpop.Prover {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dpop.NewProver(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dpopResource is a real resource server (resource.Verifier with an
// in-memory replay cache) on 127.0.0.1, and a token bound to its prover.
type dpopResource struct {
	URL    string
	Prover *dpop.Prover
	Token  string
}

// startDPoPResource serves /resource protected by DPoP-bound tokens of a
// fresh issuer, requiring a nonce when withNonce is set.
func startDPoPResource(t testing.TB, withNonce bool) *dpopResource {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: key, Algorithm: "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	is, err := issuer.New(issuer.Config{Issuer: "https://as.loadgen.test", Keys: ks, Audience: []string{testAudience}})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := resource.NewStaticKeySet(ks.JWKS(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	store, err := replaycache.NewLRU(replaycache.Config{Capacity: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	dc := &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: store}
	if withNonce {
		n, err := dpop.NewNonces(dpop.NonceConfig{Secrets: [][]byte{make32(t)}, Label: base})
		if err != nil {
			t.Fatal(err)
		}
		dc.Nonces = n
	}
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers:    []resource.Issuer{{Identifier: is.ID(), Keys: keys}},
		Audience:   testAudience, PublicURL: base, DPoP: dc, InsecureAllowDPoPOverHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	ts.Config.Handler = v.Middleware(resource.Policy{Accept: resource.AcceptBound})(ok)
	ts.Start()
	t.Cleanup(ts.Close)

	p := testProver(t)
	tok, err := is.Mint(context.Background(), issuer.MintRequest{Subject: "load", ClientID: "load", Binding: issuer.Binding{JKT: p.Thumbprint()}})
	if err != nil {
		t.Fatal(err)
	}
	return &dpopResource{URL: base + "/resource", Prover: p, Token: tok.Raw}
}

func make32(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// testClient returns a keep-alive client for n workers.
func testClient(n int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = n
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// newDPoP builds a DPoP authorizer for r.
func newDPoP(t testing.TB, r *dpopResource, p *dpop.Prover) *DPoP {
	t.Helper()
	d, err := NewDPoP(DPoPConfig{Prover: p, Token: r.Token, Method: http.MethodGet, URL: r.URL})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// outcomeCounts maps each outcome label of res to its count.
func outcomeCounts(res *Result) map[string]int64 {
	m := map[string]int64{}
	for _, o := range res.Outcomes {
		m[o.Outcome] += o.Count
	}
	return m
}

// osGetpid is this process's id.
func osGetpid() int { return os.Getpid() }
