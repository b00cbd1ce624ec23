package issuer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/replaycache"
)

// A refresh token's family at work in a store: the redeemed token leaves a
// used marker, which Get reports as Used, and revoking the family refuses
// its live successor. The token endpoint does this on its own when a
// redeemed token is presented again.
func ExampleMemoryRefreshStore_Revoke() {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	store := issuer.NewMemoryRefreshStore(func() time.Time { return now })
	first, next := sha256.Sum256([]byte("first-token")), sha256.Sum256([]byte("next-token"))
	rec := issuer.RefreshRecord{ClientID: "app", Subject: "alice", Family: "f1", ExpiresAt: now.Add(24 * time.Hour)}
	_ = store.Put(ctx, first, rec)

	taken, _ := store.Take(ctx, first) // redeemed: its successor joins the family
	_ = store.Put(ctx, next, *taken)

	again, _ := store.Get(ctx, first) // presented again: reuse
	fmt.Println("used:", again.Used, "family:", again.Family)
	_ = store.Revoke(ctx, again.Family, again.ExpiresAt)

	_, err := store.Get(ctx, next)
	fmt.Println("successor refused:", errors.Is(err, issuer.ErrTokenNotFound))
	// Output:
	// used: true family: f1
	// successor refused: true
}

// PARConfig.Quota bounds the requests one client may push: here one per
// minute, so the second push is refused with 429 and Retry-After.
func ExamplePARConfig_quota() {
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
		PAR: &issuer.PARConfig{Quota: replaycache.QuotaConfig{Limit: 1, Window: time.Minute}},
	})
	if err != nil {
		panic(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	defer ts.Close()

	form := url.Values{"client_id": {"spa"}, "response_type": {"code"}, "redirect_uri": {"https://spa.example.com/cb"}}
	for range 2 {
		resp, err := http.Post(srv.PARURL(), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Printf("%d Retry-After=%q\n", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Output:
	// 201 Retry-After=""
	// 429 Retry-After="60"
}
