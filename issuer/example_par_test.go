package issuer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/issuer"
)

// An authorization endpoint validates dpop_jkt before it issues a code,
// and redirects with the error's code when it is malformed.
func ExampleAuthorizationDPoPJKT() {
	q, _ := url.ParseQuery("response_type=code&client_id=app&dpop_jkt=0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
	jkt, err := issuer.AuthorizationDPoPJKT(q)
	fmt.Printf("%q %v\n", jkt, err) // store jkt with the code; return it as Grant.DPoPJKT

	q.Set("dpop_jkt", "not-a-thumbprint")
	_, err = issuer.AuthorizationDPoPJKT(q)
	var e *issuer.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code, e.Reason)
	}
	// Output:
	// "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" <nil>
	// invalid_request dpop_jkt_malformed
}

// A client pushes its authorization request with a DPoP proof; the
// authorization endpoint redeems the request_uri and binds the code to the
// proof's key.
func ExampleServer_PARHandler() {
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ks, _ := issuer.NewKeySet(issuer.SigningKey{Signer: signer})
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	is, err := issuer.New(issuer.Config{Issuer: base, Keys: ks, Audience: []string{"https://api.example.com"}, InsecureAllowHTTP: true})
	if err != nil {
		panic(err)
	}
	clients, _ := issuer.NewMemoryRegistry(issuer.Client{ID: "spa", AuthMethod: issuer.AuthNone})
	replay, _ := issuer.NewMemoryReplayStore(is, 0)
	srv, err := issuer.NewServer(issuer.ServerConfig{
		Issuer: is, Clients: clients, ReplayStore: replay,
		PAR: &issuer.PARConfig{}, // in memory, request_uri valid 60 s
	})
	if err != nil {
		panic(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	defer ts.Close()

	// The client: POST the authorization request with a DPoP proof.
	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	prover, _ := dpop.NewProver(clientKey, nil)
	hc := &http.Client{Transport: &dpop.Transport{Prover: prover}}
	form := url.Values{"client_id": {"spa"}, "response_type": {"code"}, "redirect_uri": {"https://spa.example.com/cb"}}
	resp, err := hc.Post(srv.PARURL(), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		panic(err)
	}
	var pushed struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int    `json:"expires_in"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&pushed)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, pushed.ExpiresIn, strings.HasPrefix(pushed.RequestURI, issuer.RequestURIPrefix))

	// The authorization endpoint: client_id and request_uri come in the query.
	ar, err := srv.AuthorizationRequest(context.Background(), url.Values{"client_id": {"spa"}, "request_uri": {pushed.RequestURI}})
	if err != nil {
		panic(err)
	}
	fmt.Println(ar.Pushed, ar.Params["redirect_uri"], ar.DPoPJKT == prover.Thumbprint())

	// A request_uri is single use.
	_, err = srv.AuthorizationRequest(context.Background(), url.Values{"client_id": {"spa"}, "request_uri": {pushed.RequestURI}})
	fmt.Println(err)
	// Output:
	// 201 60 true
	// true https://spa.example.com/cb true
	// issuer: invalid_request: request_uri is invalid or expired
}
