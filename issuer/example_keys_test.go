package issuer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/senderbound/senderbound/issuer"
)

// ExampleKeySet shows a signing-key rotation that never breaks a resource
// server caching the JWKS: the next key is published first, becomes the
// signing key only after the JWKS cache lifetime, and the retired key stays
// published until every token it signed has expired.
func ExampleKeySet() {
	now := time.Unix(1767225600, 0)
	clock := func() time.Time { return now }
	oldKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: oldKey, KeyID: "2026-01"})
	if err != nil {
		panic(err)
	}
	is, err := issuer.New(issuer.Config{Issuer: "https://as.example.com", Keys: ks, Audience: []string{"https://api.example.com"}, Now: clock})
	if err != nil {
		panic(err)
	}
	kids := func() string {
		var ids []string
		for _, k := range ks.JWKS(now).Keys {
			ids = append(ids, k.KeyID)
		}
		sort.Strings(ids)
		return strings.Join(ids, " ")
	}
	mint := func() {
		if _, err := is.Mint(context.Background(), issuer.MintRequest{Subject: "svc", ClientID: "svc", Binding: issuer.Binding{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}); err != nil {
			panic(err)
		}
	}
	// Step 1: publish the next key; tokens are still signed by the old one.
	if err := ks.AddNext(issuer.SigningKey{Signer: newKey, KeyID: "2026-07"}); err != nil {
		panic(err)
	}
	fmt.Println("published:", kids(), "signing:", ks.ActiveKeyID())

	// Step 2: after the JWKS cache lifetime, sign with the new key.
	now = now.Add(time.Hour)
	mint() // the old key's last token, valid for the default 5 minutes
	if err := ks.Rotate(); err != nil {
		panic(err)
	}
	mint()
	fmt.Println("published:", kids(), "signing:", ks.ActiveKeyID())

	// Step 3: once the old key's last token has expired, it leaves the JWKS.
	now = now.Add(10 * time.Minute)
	fmt.Println("published:", kids(), "signing:", ks.ActiveKeyID())
	// Output:
	// published: 2026-01 2026-07 signing: 2026-01
	// published: 2026-01 2026-07 signing: 2026-07
	// published: 2026-07 signing: 2026-07
}
