package resource_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

// ExampleIntrospection validates an opaque, DPoP-bound access token at the
// issuer's introspection endpoint. The resource server authenticates with
// client_secret_basic and sends only the token; the DPoP proof is checked
// here against the cnf.jkt of the answer, so the same token under the
// Bearer scheme is refused.
func ExampleIntrospection() {
	now := time.Unix(1_900_000_000, 0)
	prover, _ := dpop.NewProver(exampleKey(), &dpop.ProverOptions{Now: func() time.Time { return now }})
	const token = "2YotnFZFEjr1zCsicMWpAA"

	as := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, _ := r.BasicAuth(); id != "api" || secret != "api-secret" || r.PostFormValue("token") != token {
			fmt.Fprint(w, `{"active":false}`)
			return
		}
		fmt.Fprintf(w, `{"active":true,"iss":"https://as.example.com","aud":"https://api.example.com",`+
			`"sub":"alice","scope":"read","exp":%d,"token_type":"DPoP","cnf":{"jkt":%q}}`, now.Unix()+300, prover.Thumbprint())
	}))
	defer as.Close()

	store, _ := replaycache.NewLRU(replaycache.Config{})
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers: []resource.Issuer{{Identifier: "https://as.example.com", Introspection: &resource.Introspection{
			Endpoint:     as.URL + "/introspect",
			ClientID:     "api",
			Auth:         resource.AuthClientSecretBasic,
			ClientSecret: "api-secret",
			HTTPClient:   as.Client(), // trusts the test server's certificate
		}}},
		Audience:  "https://api.example.com",
		PublicURL: "https://api.example.com",
		Now:       func() time.Time { return now },
		DPoP:      &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: store},
	})
	if err != nil {
		panic(err)
	}

	r := httptest.NewRequest(http.MethodGet, "https://api.example.com/orders", nil)
	r.Header.Set("Authorization", "DPoP "+token)
	proof, _ := prover.Proof(http.MethodGet, "https://api.example.com/orders", dpop.ProofOptions{AccessToken: token})
	r.Header.Set("DPoP", proof)
	p, err := v.Check(r, resource.Policy{Scopes: []string{"read"}})
	fmt.Println(p.Subject, p.Binding, err)

	r = httptest.NewRequest(http.MethodGet, "https://api.example.com/orders", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	_, err = v.Check(r, resource.Policy{})
	fmt.Println(err.(*resource.Error).Reason)
	// Output:
	// alice dpop <nil>
	// bearer_downgrade
}

// ExampleIntrospection_maxConcurrent bounds the introspection calls under
// way: with MaxConcurrent 1 and one call held at the authorization server,
// a request with another token that is not cached is refused at once with
// 503 introspection_busy, and the authorization server is not called.
func ExampleIntrospection_maxConcurrent() {
	now := time.Unix(1_900_000_000, 0)
	prover, _ := dpop.NewProver(exampleKey(), &dpop.ProverOptions{Now: func() time.Time { return now }})
	arrived, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	as := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		arrived <- struct{}{}
		<-release
		fmt.Fprintf(w, `{"active":true,"iss":"https://as.example.com","aud":"https://api.example.com",`+
			`"sub":"alice","exp":%d,"token_type":"DPoP","cnf":{"jkt":%q}}`, now.Unix()+300, prover.Thumbprint())
	}))
	defer as.Close()

	store, _ := replaycache.NewLRU(replaycache.Config{})
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers: []resource.Issuer{{Identifier: "https://as.example.com", Introspection: &resource.Introspection{
			Endpoint:      as.URL + "/introspect",
			ClientID:      "api",
			Auth:          resource.AuthClientSecretBasic,
			ClientSecret:  "api-secret",
			HTTPClient:    as.Client(),
			MaxConcurrent: 1, // default 64; there is no unlimited setting
		}}},
		Audience:  "https://api.example.com",
		PublicURL: "https://api.example.com",
		Now:       func() time.Time { return now },
		DPoP:      &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: store},
	})
	if err != nil {
		panic(err)
	}
	request := func(token string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "https://api.example.com/orders", nil)
		r.Header.Set("Authorization", "DPoP "+token)
		proof, _ := prover.Proof(http.MethodGet, "https://api.example.com/orders", dpop.ProofOptions{AccessToken: token})
		r.Header.Set("DPoP", proof)
		return r
	}

	first := make(chan error)
	go func() {
		_, err := v.Check(request("first-token-0123456789"), resource.Policy{})
		first <- err
	}()
	<-arrived // the one call allowed is under way
	_, err = v.Check(request("second-token-0123456789"), resource.Policy{})
	e := err.(*resource.Error)
	fmt.Println(e.Status, e.Reason)
	close(release)
	fmt.Println(<-first, calls.Load())
	// Output:
	// 503 introspection_busy
	// <nil> 1
}
