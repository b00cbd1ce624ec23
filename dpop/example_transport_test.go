package dpop_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/senderbound/senderbound/dpop"
)

// ExampleTransport shows the client side of a protected-resource call: a
// Prover holds the client's key, and a Transport signs a fresh proof for
// every request (with ath for the DPoP access token), answers the server's
// use_dpop_nonce challenge once with the nonce it was sent, and returns the
// server's final answer. The server here is a minimal resource that
// requires a nonce.
func ExampleTransport() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	prover, err := dpop.NewProver(key, nil)
	if err != nil {
		panic(err)
	}

	// The resource server: a proof bound to the token's key, with a valid
	// server nonce, accepted once.
	nonces, err := dpop.NewNonces(dpop.NonceConfig{
		Secrets: [][]byte{[]byte("example nonce secret, 32 bytes!!")},
		Label:   "https://rs.example.test",
	})
	if err != nil {
		panic(err)
	}
	verifier, err := dpop.NewVerifier(dpop.Config{
		Algorithms:  []string{"ES256"},
		ReplayStore: &mapStore{},
		Nonces:      nonces,
	})
	if err != nil {
		panic(err)
	}
	var requests atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, err := verifier.Verify(r.Context(), r.Header.Get("DPoP"), dpop.Expect{
			Method:      r.Method,
			URL:         "https://" + r.Host + r.URL.Path,
			AccessToken: "token-bound-to-the-key",
			JKT:         prover.Thumbprint(), // the token's cnf.jkt
		})
		if err != nil {
			n, _ := nonces.NewNonce()
			dpop.SetNonce(w.Header(), n)
			w.Header().Set("WWW-Authenticate", dpop.Challenge{Error: dpop.Code(err), Algs: verifier.Algorithms()}.String())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "hello")
	}))
	defer srv.Close()

	// The client: every request through the Transport gets its own proof.
	client := &http.Client{Transport: &dpop.Transport{Base: srv.Client().Transport, Prover: prover}}
	req, err := http.NewRequest("GET", srv.URL+"/resource", nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "DPoP token-bound-to-the-key")
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body), "after", requests.Load(), "requests")
	// Output:
	// 200 hello after 2 requests
}

// ExampleProver shows one proof for a token request (no access token, so
// no ath) and one for a resource request (with ath). Proofs are single
// use: make a new one for every request.
func ExampleProver() {
	prover, err := dpop.NewProver(rfc7517Key(), nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(prover.Algorithm(), prover.Thumbprint())

	tokenProof, err := prover.Proof("POST", "https://as.example.test/token", dpop.ProofOptions{})
	if err != nil {
		panic(err)
	}
	resourceProof, err := prover.Proof("GET", "https://rs.example.test/resource", dpop.ProofOptions{AccessToken: "AT1"})
	if err != nil {
		panic(err)
	}
	fmt.Println(tokenProof != resourceProof)
	// Output:
	// ES256 cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s
	// true
}
