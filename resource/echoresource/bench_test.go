package echoresource_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/echoresource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// BenchmarkEchoEndToEnd sends sequential requests over real loopback HTTP
// (keep-alive) to an Echo handler, unprotected and behind the middleware,
// and reports requests per second. DPoP requests carry pre-signed proofs
// so client-side signing stays out of the timing; the token cache is on.
// Run with a bounded -benchtime (e.g. 1s or 2000x).
func BenchmarkEchoEndToEnd(b *testing.B) {
	env := restest.NewEnv(b, restest.Options{DPoP: true, InsecureHTTP: true})
	e := echo.New()
	h := func(c echo.Context) error { return c.String(http.StatusOK, "ok") }
	e.GET("/open", h)
	e.GET("/bearer", h, echoresource.WithConfig(echoresource.Config{Verifier: env.Verifier, Policy: resource.Policy{Accept: resource.AcceptAny}}))
	e.GET("/dpop", h, echoresource.WithConfig(echoresource.Config{Verifier: env.Verifier, Policy: resource.Policy{Accept: resource.AcceptDPoP}}))
	srv := httptest.NewServer(e)
	defer srv.Close()
	client := srv.Client()
	bearer := "Bearer " + env.Token(b, nil)
	k1 := restest.K1Token(b, env)

	run := func(b *testing.B, path string, prepare func(r *http.Request)) {
		reqs := make([]*http.Request, b.N)
		for i := range reqs {
			reqs[i], _ = http.NewRequest(http.MethodGet, srv.URL+path, nil)
			prepare(reqs[i])
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			resp, err := client.Do(reqs[i])
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	}
	b.Run("unprotected", func(b *testing.B) { run(b, "/open", func(*http.Request) {}) })
	b.Run("bearer", func(b *testing.B) {
		run(b, "/bearer", func(r *http.Request) { r.Header.Set("Authorization", bearer) })
	})
	b.Run("dpop", func(b *testing.B) {
		run(b, "/dpop", func(r *http.Request) {
			restest.DPoPRequest("DPoP", func(testing.TB, *restest.Env) string { return k1 }, nil)(b, env, r)
		})
	})
}
