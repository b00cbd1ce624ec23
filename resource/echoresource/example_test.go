package echoresource_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/echoresource"
)

func Example() {
	now := time.Unix(1_900_000_000, 0)
	// A fixed P-256 key (RFC 7517 Appendix A.2) keeps the output stable.
	d, _ := new(big.Int).SetString("f3bd0c07a81fb932781ed52752f60cc89a6be5e51934fe01938ddb55d8f77801", 16)
	key := &ecdsa.PrivateKey{D: d}
	key.Curve = elliptic.P256()
	key.X, key.Y = elliptic.P256().ScalarBaseMult(d.Bytes())

	keys, _ := resource.NewStaticKeySet(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256"}}})
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers:    []resource.Issuer{{Identifier: "https://as.example.com", Keys: keys}},
		Audience:   "https://api.example.com",
		Now:        func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	e := echo.New()
	api := e.Group("/api", echoresource.WithConfig(echoresource.Config{
		Verifier: v,
		Policy:   resource.Policy{Accept: resource.AcceptAny, Scopes: []string{"profile"}},
	}))
	api.GET("/me", func(c echo.Context) error {
		return c.String(http.StatusOK, "hello "+echoresource.Principal(c).Subject)
	})

	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	claims, _ := json.Marshal(map[string]any{
		"iss": "https://as.example.com", "aud": "https://api.example.com", "sub": "bob", "client_id": "app",
		"jti": "t-1", "scope": "email", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	})
	jws, _ := signer.Sign(claims)
	token, _ := jws.CompactSerialize()

	r := httptest.NewRequest(http.MethodGet, "/api/me", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	// Output:
	// 403 Bearer realm="https://api.example.com", error="insufficient_scope", error_description="the access token lacks a required scope", scope="profile"
}
