package issuer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/senderbound/senderbound/issuer"
)

// An issuer configured for opaque access tokens hands out random handles
// and keeps their claims, cnf included, in a store; resource servers learn
// them from the introspection endpoint.
func ExampleFormatOpaque() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ks, _ := issuer.NewKeySet(issuer.SigningKey{Signer: key})
	now := func() time.Time { return time.Unix(1767225600, 0) }
	is, err := issuer.New(issuer.Config{
		Issuer:            "https://as.example.com",
		Keys:              ks,
		Audience:          []string{"https://api.example.com"},
		Now:               now,
		AccessTokenFormat: issuer.FormatOpaque,
		// One instance; issuer/redisrefresh with its own Prefix for several.
		AccessTokens: issuer.NewMemoryRefreshStore(now),
	})
	if err != nil {
		panic(err)
	}
	tok, err := is.Mint(context.Background(), issuer.MintRequest{
		Subject: "alice", ClientID: "app", Scope: "orders",
		Binding: issuer.Binding{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(tok.Raw), strings.Contains(tok.Raw, "."), tok.Type, tok.ExpiresAt.Sub(tok.IssuedAt))
	// Output: 43 false DPoP 5m0s
}
