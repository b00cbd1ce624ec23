package issuer

import (
	"net/url"
	"sync"
	"testing"
	"time"
)

// TestRefreshTokenSingleUse: a refresh token is redeemed once; the response
// carries its successor for the same grant, which keeps the original
// expiry; a refused refresh (wrong key, wrong client, widened scope) does
// not consume it; a second redemption is reuse and revokes the family.
func TestRefreshTokenSingleUse(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.client(nil)
	k1, k2 := h.prover(nil), h.prover(nil)

	tests := []struct {
		name string
		// grant returns the first refresh token; hdr the headers of every
		// refresh; form the refresh form without the token.
		hdr  func() map[string]string
		form url.Values
	}{
		{
			name: "confidential client",
			hdr:  func() map[string]string { return basic("conf", confSecret) },
			form: url.Values{"grant_type": {GrantRefreshToken}},
		},
		{
			name: "DPOP-AS-06/public client bound to its DPoP key",
			hdr:  func() map[string]string { return map[string]string{"DPoP": h.proof(k1, h.tokenURL(), "")} },
			form: url.Values{"grant_type": {GrantRefreshToken}, "client_id": {"public"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := url.Values{"grant_type": {testGrant}, "subject": {"alice"}, "scope": {"read write"}}
			for k, v := range tt.form {
				if k != "grant_type" {
					first[k] = v
				}
			}
			r := h.post(c, h.tokenURL(), first, tt.hdr())
			rt := r.str("refresh_token")
			if r.status != 200 || rt == "" {
				t.Fatalf("grant: %d %s", r.status, r.raw)
			}
			refresh := func(tok string, hdr map[string]string, extra url.Values) result {
				t.Helper()
				form := url.Values{"refresh_token": {tok}}
				for k, v := range tt.form {
					form[k] = v
				}
				for k, v := range extra {
					form[k] = v
				}
				r := h.post(c, h.tokenURL(), form, hdr)
				h.checkTokenResponse(r)
				return r
			}
			// Refusals that must leave the token redeemable.
			if r := refresh(rt, tt.hdr(), url.Values{"scope": {"admin"}}); r.str("error") != "invalid_scope" {
				t.Fatalf("widened scope: %d %s", r.status, r.raw)
			}
			if tt.form.Get("client_id") == "public" {
				if r := refresh(rt, map[string]string{"DPoP": h.proof(k2, h.tokenURL(), "")}, nil); r.str("error") != "invalid_grant" {
					t.Fatalf("other key: %d %s", r.status, r.raw)
				}
			}

			r = refresh(rt, tt.hdr(), nil)
			next := r.str("refresh_token")
			if r.status != 200 || next == "" || next == rt {
				t.Fatalf("first redemption: %d %s", r.status, r.raw)
			}
			r = refresh(next, tt.hdr(), url.Values{"scope": {"read"}})
			if r.status != 200 || r.str("scope") != "read" || r.str("refresh_token") == "" {
				t.Fatalf("successor: %d %s", r.status, r.raw)
			}
			// The successor of a narrowed refresh still carries the whole
			// grant (RFC 6749 §6: the same scope as the token redeemed).
			r = refresh(r.str("refresh_token"), tt.hdr(), nil)
			live := r.str("refresh_token")
			if r.status != 200 || r.str("scope") != "read write" || live == "" {
				t.Fatalf("successor of a narrowed refresh: %d %s", r.status, r.raw)
			}
			// A second redemption of the first token is reuse: refused,
			// and the family's live token with it (RFC 9700 §4.14.2).
			if r := refresh(rt, tt.hdr(), nil); r.status != 400 || r.str("error") != "invalid_grant" || r.str("error_description") != "refresh token was already used" || r.str("access_token") != "" {
				t.Fatalf("second redemption: %d %s", r.status, r.raw)
			}
			if r := refresh(live, tt.hdr(), nil); r.status != 400 || r.str("error") != "invalid_grant" || r.str("access_token") != "" {
				t.Fatalf("live token after reuse: %d %s", r.status, r.raw)
			}
		})
	}

	t.Run("successor keeps the original expiry", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		c := h.client(nil)
		r := h.post(c, h.tokenURL(), url.Values{"grant_type": {testGrant}, "subject": {"bob"}}, basic("conf", confSecret))
		h.clock.Advance(23 * time.Hour)
		r = h.post(c, h.tokenURL(), url.Values{"grant_type": {GrantRefreshToken}, "refresh_token": {r.str("refresh_token")}}, basic("conf", confSecret))
		if r.status != 200 || r.str("refresh_token") == "" {
			t.Fatalf("refresh: %d %s", r.status, r.raw)
		}
		h.clock.Advance(2 * time.Hour)
		r = h.post(c, h.tokenURL(), url.Values{"grant_type": {GrantRefreshToken}, "refresh_token": {r.str("refresh_token")}}, basic("conf", confSecret))
		if r.status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("successor past the grant's expiry: %d %s", r.status, r.raw)
		}
	})

	t.Run("concurrent redemptions: at most one succeeds", func(t *testing.T) {
		// A request that reads the token after another redeemed it sees a
		// reused token and revokes the family, the winner's successor
		// included: then none succeeds and one refusal names the reuse.
		h := newHarness(t, harnessOpts{})
		c := h.client(nil)
		rt := h.post(c, h.tokenURL(), url.Values{"grant_type": {testGrant}, "subject": {"carol"}}, basic("conf", confSecret)).str("refresh_token")
		const n = 12
		var wg sync.WaitGroup
		answers := make([]result, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i] = h.post(c, h.tokenURL(), url.Values{"grant_type": {GrantRefreshToken}, "refresh_token": {rt}}, basic("conf", confSecret))
			}()
		}
		wg.Wait()
		ok, reused := 0, 0
		for _, r := range answers {
			switch {
			case r.status == 200:
				ok++
			case r.status == 400 && r.str("error") == "invalid_grant":
				if r.str("error_description") == "refresh token was already used" {
					reused++
				}
			default:
				t.Errorf("answer %d %s", r.status, r.raw)
			}
		}
		if ok > 1 || ok == 0 && reused == 0 {
			t.Fatalf("%d of %d concurrent redemptions succeeded, %d refused as reuse; want one success, or none with the family revoked for reuse", ok, n, reused)
		}
	})
}
