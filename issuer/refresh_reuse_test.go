package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"
)

// revokeFailStore is a memory store whose Revoke fails.
type revokeFailStore struct{ *MemoryRefreshStore }

func (revokeFailStore) Revoke(context.Context, string, time.Time) error {
	return errors.New("refresh store down")
}

// warnRecords returns the Warn records of a JSON log.
func warnRecords(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["level"] == "WARN" {
			out = append(out, m)
		}
	}
	return out
}

// TestRefreshTokenReuse: a redeemed refresh token presented again is
// reuse (RFC 9700 §4.14.2, RFC 6749 §10.4): 400 invalid_grant with reason
// refresh_token_reused, one Warn record per presentation with the client
// and a short hash of the family (never a token), and the whole family is
// revoked, so its live token is refused too; another family is unaffected.
// A replay by another client is reuse as well; a record stored without a
// family is single use without reuse detection; a store that cannot revoke
// makes the request fail closed (503).
func TestRefreshTokenReuse(t *testing.T) {
	t.Parallel()
	type env struct {
		h     *harness
		store *MemoryRefreshStore
		logs  *syncBuffer
	}
	setup := func(t *testing.T, failRevoke bool) env {
		e := env{logs: &syncBuffer{}}
		e.h = newHarness(t, harnessOpts{edit: func(cfg *ServerConfig) {
			e.store = NewMemoryRefreshStore(nil)
			cfg.RefreshTokens = e.store
			if failRevoke {
				cfg.RefreshTokens = revokeFailStore{e.store}
			}
			cfg.Logger = slog.New(slog.NewJSONHandler(e.logs, nil))
			if err := cfg.Clients.(*MemoryRegistry).Register(Client{ID: "other", AuthMethod: AuthSecretBasic, SecretHash: HashSecret(confSecret),
				Scopes: []string{"read"}, GrantTypes: []string{GrantRefreshToken}}); err != nil {
				t.Fatal(err)
			}
		}})
		return e
	}
	grant := func(t *testing.T, e env, sub string) string {
		t.Helper()
		r := e.h.post(e.h.client(nil), e.h.tokenURL(), url.Values{"grant_type": {testGrant}, "subject": {sub}, "scope": {"read"}}, basic("conf", confSecret))
		if r.status != 200 || r.str("refresh_token") == "" {
			t.Fatalf("grant: %d %s", r.status, r.raw)
		}
		return r.str("refresh_token")
	}
	refresh := func(t *testing.T, e env, client, rt string) result {
		t.Helper()
		r := e.h.post(e.h.client(nil), e.h.tokenURL(), url.Values{"grant_type": {GrantRefreshToken}, "refresh_token": {rt}}, basic(client, confSecret))
		e.h.checkTokenResponse(r)
		return r
	}
	wantReused := func(t *testing.T, r result) {
		t.Helper()
		if r.status != 400 || r.str("error") != "invalid_grant" || r.str("error_description") != "refresh token was already used" || r.str("access_token") != "" {
			t.Fatalf("reuse: %d %s, want 400 invalid_grant", r.status, r.raw)
		}
	}
	wantInvalid := func(t *testing.T, r result) {
		t.Helper()
		if r.status != 400 || r.str("error") != "invalid_grant" || r.str("error_description") != "refresh token is invalid or expired" || r.str("access_token") != "" {
			t.Fatalf("%d %s, want 400 invalid_grant (invalid or expired)", r.status, r.raw)
		}
	}

	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"reuse revokes the family", func(t *testing.T) {
			e := setup(t, false)
			rt1 := grant(t, e, "alice")
			rec, err := e.store.Get(context.Background(), refreshID(rt1))
			if err != nil || rec.Family == "" {
				t.Fatalf("the first refresh token has no family: %+v, %v", rec, err)
			}
			family := rec.Family
			r := refresh(t, e, "conf", rt1)
			rt2 := r.str("refresh_token")
			if r.status != 200 || rt2 == "" {
				t.Fatalf("redemption: %d %s", r.status, r.raw)
			}
			if next, err := e.store.Get(context.Background(), refreshID(rt2)); err != nil || next.Family != family {
				t.Fatalf("the successor is not in the family: %+v, %v", next, err)
			}
			other := grant(t, e, "bob")
			if len(warnRecords(t, e.logs.String())) != 0 {
				t.Fatalf("Warn before any reuse: %s", e.logs.String())
			}
			wantReused(t, refresh(t, e, "conf", rt1))
			warns := warnRecords(t, e.logs.String())
			if len(warns) != 1 || warns[0]["client_id"] != "conf" || warns[0]["family"] != familyHash(family) || warns[0]["reason"] != "refresh_token_reused" {
				t.Fatalf("Warn records %v, want one naming conf and family %s", warns, familyHash(family))
			}
			if len(familyHash(family)) != 16 {
				t.Fatalf("family hash %q, want 16 hex digits", familyHash(family))
			}
			wantInvalid(t, refresh(t, e, "conf", rt2))
			wantReused(t, refresh(t, e, "conf", rt1))
			if n := len(warnRecords(t, e.logs.String())); n != 2 {
				t.Fatalf("%d Warn records after two reuses, want 2", n)
			}
			if r := refresh(t, e, "conf", other); r.status != 200 || r.str("refresh_token") == "" {
				t.Fatalf("another family after the revocation: %d %s", r.status, r.raw)
			}
			logs := e.logs.String()
			for _, tok := range []string{rt1, rt2, other, family} {
				if strings.Contains(logs, tok) {
					t.Fatalf("the log holds a token or family id: %s", logs)
				}
			}
			if !strings.Contains(logs, `"reason":"refresh_token_reused"`) {
				t.Fatalf("no refusal logged with reason refresh_token_reused: %s", logs)
			}
		}},
		{"replay by another client revokes the family", func(t *testing.T) {
			e := setup(t, false)
			rt1 := grant(t, e, "alice")
			rt2 := refresh(t, e, "conf", rt1).str("refresh_token")
			if rt2 == "" {
				t.Fatal("no successor")
			}
			wantReused(t, refresh(t, e, "other", rt1))
			wantInvalid(t, refresh(t, e, "conf", rt2))
			if warns := warnRecords(t, e.logs.String()); len(warns) != 1 || warns[0]["client_id"] != "conf" {
				t.Fatalf("Warn records %v, want one naming the family's client", warns)
			}
		}},
		{"a record without a family is single use without reuse detection", func(t *testing.T) {
			e := setup(t, false)
			if err := e.store.Put(context.Background(), refreshID("legacy-token"), RefreshRecord{ClientID: "conf", Subject: "a", Scope: "read", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if r := refresh(t, e, "conf", "legacy-token"); r.status != 200 {
				t.Fatalf("legacy redemption: %d %s", r.status, r.raw)
			}
			wantInvalid(t, refresh(t, e, "conf", "legacy-token"))
			if warns := warnRecords(t, e.logs.String()); len(warns) != 0 {
				t.Fatalf("Warn records %v for a token without a family", warns)
			}
		}},
		{"a store that cannot revoke fails closed", func(t *testing.T) {
			e := setup(t, true)
			rt1 := grant(t, e, "alice")
			if r := refresh(t, e, "conf", rt1); r.status != 200 {
				t.Fatalf("redemption: %d %s", r.status, r.raw)
			}
			if r := refresh(t, e, "conf", rt1); r.status != 503 || r.str("error") != "temporarily_unavailable" || r.str("access_token") != "" {
				t.Fatalf("reuse with a failing Revoke: %d %s, want 503", r.status, r.raw)
			}
			if !strings.Contains(e.logs.String(), `"reason":"refresh_store_unavailable"`) || len(warnRecords(t, e.logs.String())) != 1 {
				t.Fatalf("logs: %s", e.logs.String())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t)
		})
	}
}
