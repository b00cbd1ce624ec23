package issuer

import (
	"context"
	"crypto"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// gatedSigner blocks its first Sign call until released, like a KMS key
// whose signature is still in flight.
type gatedSigner struct {
	crypto.Signer
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gatedSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.Signer.Sign(r, digest, opts)
}

// TestRotationDuringSign rotates the key set while a token is being signed
// by the key that is being retired, and serves the JWKS in between. The
// token comes out signed by the retired key, so that key must still be
// published through the JWKS until the token expires.
func TestRotationDuringSign(t *testing.T) {
	t.Parallel()
	clock := &fixedClock{t: time.Unix(1700000000, 0)}
	g := &gatedSigner{Signer: newES256(t), entered: make(chan struct{}), release: make(chan struct{})}
	is := newTestIssuer(t, SigningKey{Signer: g, Algorithm: "ES256", KeyID: "k1"}, clock.Now)
	srv := httptest.NewServer(is.JWKSHandler(time.Minute))
	t.Cleanup(srv.Close)
	fetch := func() jose.JSONWebKeySet {
		t.Helper()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		return set
	}

	type minted struct {
		tok *Token
		err error
	}
	done := make(chan minted, 1)
	go func() {
		tok, err := is.Mint(context.Background(), MintRequest{Subject: "s", ClientID: "c", TTL: 5 * time.Minute})
		done <- minted{tok, err}
	}()
	<-g.entered // Mint has picked k1 and is signing

	ks := is.Keys()
	if err := ks.AddNext(SigningKey{Signer: newES256(t), KeyID: "k2"}); err != nil {
		t.Fatal(err)
	}
	if err := ks.Rotate(); err != nil {
		t.Fatal(err)
	}
	fetch() // a resource server refreshes its JWKS cache right now
	close(g.release)
	m := <-done
	if m.err != nil {
		t.Fatal(m.err)
	}

	set := fetch()
	jt, err := jwt.ParseSigned(m.tok.Raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	kid := jt.Headers[0].KeyID
	keys := set.Key(kid)
	if len(keys) != 1 {
		t.Fatalf("token signed by %q, which the JWKS no longer publishes (token valid until %v)", kid, m.tok.ExpiresAt)
	}
	var claims map[string]any
	if err := jt.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("token does not verify with the published key: %v", err)
	}
}
