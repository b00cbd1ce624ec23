package resource_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/replaycache/redisstore"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// TestSharedRedisReplay runs two resource-server instances sharing one
// real Redis: a proof accepted by one is refused by the other
// (DPOP-RS-15), and with Redis gone requests fail closed with 503
// (ADV-108).
func TestSharedRedisReplay(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	store := func() *redisstore.Store {
		rdb := srv.Client()
		t.Cleanup(func() { _ = rdb.Close() })
		s, err := redisstore.New(rdb, redisstore.Config{Prefix: "rs-test:"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Both instances share the public URL, so one proof's htu is valid at
	// either; only the shared store stops the replay.
	e := restest.NewEnv(t, restest.Options{DPoP: true, InsecureHTTP: true, ReplayStore: store(), Mod: func(_ *restest.Env, c *resource.Config) {
		c.PublicURL = "https://rs.example.test"
	}})
	instance := func() *httptest.Server {
		c := e.Config
		d := *c.DPoP
		d.ReplayStore = store()
		c.DPoP = &d
		v, err := resource.New(c)
		if err != nil {
			t.Fatal(err)
		}
		s := httptest.NewServer(restest.NetHTTPHandler(v))
		t.Cleanup(s.Close)
		return s
	}
	sa, sb := instance(), instance()

	send := func(base string, h http.Header) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/any", nil)
		req.Header = h.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate") + " " + string(b)
	}
	proofFor := func() http.Header {
		req := httptest.NewRequest(http.MethodGet, "https://rs.example.test/any", nil)
		restest.DPoPRequest("DPoP", restest.K1Token, nil)(t, e, req)
		return req.Header
	}

	h := proofFor()
	if code, body := send(sa.URL, h); code != http.StatusOK {
		t.Fatalf("instance A: %d %s", code, body)
	}
	code, body := send(sb.URL, h)
	if code != http.StatusUnauthorized || !strings.Contains(body, `error="invalid_dpop_proof"`) {
		t.Fatalf("cross-instance replay at B: %d %s", code, body)
	}
	h2 := proofFor()
	if code, body := send(sb.URL, h2); code != http.StatusOK {
		t.Fatalf("fresh proof at B: %d %s", code, body)
	}
	if code, _ := send(sa.URL, h2); code != http.StatusUnauthorized {
		t.Fatalf("cross-instance replay at A: %d", code)
	}

	srv.Stop()
	h3 := proofFor()
	code, body = send(sa.URL, h3)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("Redis down: %d %s, want 503 (ADV-108)", code, body)
	}
	tok := strings.TrimPrefix(h3.Get("Authorization"), "DPoP ")
	if strings.Contains(body, tok[:20]) || strings.Contains(body, "invalid_token") {
		t.Fatalf("503 carries token details: %s", body)
	}
}
