package issuer

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/replaycache"
)

// TestPARQuota: one client may push PARConfig.Quota.Limit requests per
// window; the next is 429 temporarily_unavailable with Retry-After (the
// window in whole seconds, rounded up) and reason
// pushed_request_quota_exceeded (RFC 9126 §2.3), stores nothing and spends
// no DPoP proof. Refused pushes do not count, another client is
// unaffected, and the count restarts after the window.
func TestPARQuota(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		quota      replaycache.QuotaConfig
		limit      int
		window     time.Duration
		retryAfter string
	}{
		{"default window is the lifetime", replaycache.QuotaConfig{Limit: 3}, 3, DefaultPARLifetime, "60"},
		{"window rounded up to whole seconds", replaycache.QuotaConfig{Limit: 2, Window: 1500 * time.Millisecond}, 2, 1500 * time.Millisecond, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, rec := parHarness(t, false, PARConfig{Quota: tt.quota})
			c := h.client(nil)
			push := func(client string, form url.Values, hdr map[string]string) result {
				t.Helper()
				if client == "conf" {
					if hdr == nil {
						hdr = map[string]string{}
					}
					hdr["Authorization"] = formatBasic("conf", confSecret)
				} else {
					form.Set("client_id", client)
				}
				r := h.post(c, h.parURL(), form, hdr)
				h.checkPARResponse(r)
				return r
			}
			// A refused push does not count.
			if r := push("public", authzForm(ParamDPoPJKT, "not-a-thumbprint"), nil); r.status != 400 {
				t.Fatalf("malformed dpop_jkt: %d %s", r.status, r.raw)
			}
			for i := range tt.limit {
				if r := push("public", authzForm(), nil); r.status != 201 {
					t.Fatalf("push %d within the quota: %d %s", i+1, r.status, r.raw)
				}
			}
			k := h.prover(nil)
			proof := h.proof(k, h.parURL(), "")
			r := push("public", authzForm(), map[string]string{"DPoP": proof})
			if r.status != 429 || r.str("error") != "temporarily_unavailable" || r.str("request_uri") != "" || r.header.Get("Retry-After") != tt.retryAfter {
				t.Fatalf("push beyond the quota: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.raw)
			}
			if end, reason := rec.take(); end != "par" || reason != oautherr.ReasonPushedRequestQuotaExceeded {
				t.Fatalf("refusal at %q with reason %q", end, reason)
			}
			// Another client is unaffected.
			if r := push("conf", authzForm(), nil); r.status != 201 {
				t.Fatalf("another client: %d %s", r.status, r.raw)
			}
			// After the window the count restarts, and the proof sent
			// with the refused push was not spent.
			h.clock.Advance(tt.window)
			if r := push("public", authzForm(), map[string]string{"DPoP": proof}); r.status != 201 {
				t.Fatalf("push after the window with the refused push's proof: %d %s", r.status, r.raw)
			}
		})
	}
}

func TestPARQuotaConfig(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	for _, q := range []replaycache.QuotaConfig{{Limit: -1}, {Window: -time.Second}, {Owners: -1}} {
		_, err := NewServer(ServerConfig{Issuer: h.is, Clients: h.server.cfg.Clients, ReplayStore: testReplay(t, h.is), PAR: &PARConfig{Quota: q}})
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("quota %+v: %v, want ErrInvalidConfig", q, err)
		}
	}
}
