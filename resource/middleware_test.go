package resource_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/senderbound/senderbound/resource/internal/restest"
)

func TestMiddlewareCases(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{})
	srv := httptest.NewServer(e.NetHTTPHandler())
	t.Cleanup(srv.Close)
	restest.Run(t, e, map[string]restest.Target{
		"http": {URL: srv.URL, Client: srv.Client()},
	}, restest.BearerCases())
	t.Cleanup(func() {
		if n := e.CanaryHits.Load(); n != 0 {
			t.Errorf("canary contacted %d times (ATV-22)", n)
		}
	})
}

func TestMiddlewareBoundCases(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true})
	targets := restest.StartServers(t, e, e.NetHTTPHandler())
	restest.Run(t, e, targets, append(restest.BearerCases(), restest.BoundCases()...))
}

func TestMiddlewareNonceCases(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true, Nonces: true})
	targets := restest.StartServers(t, e, e.NetHTTPHandler())
	restest.Run(t, e, targets, restest.NonceCases())
}

func TestMiddlewareInsecureHTTPCases(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true, InsecureHTTP: true})
	targets := restest.StartServers(t, e, e.NetHTTPHandler())
	restest.Run(t, e, targets, restest.InsecureHTTPCases())
}

// TestConcurrentReplay sends one valid DPoP request 16 times at once over
// real TLS: exactly one is admitted (ADV-107).
func TestConcurrentReplay(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true})
	tg := restest.StartServers(t, e, e.NetHTTPHandler())["tls"]
	req, err := http.NewRequest(http.MethodGet, tg.URL+"/any", nil)
	if err != nil {
		t.Fatal(err)
	}
	restest.DPoPRequest("DPoP", restest.K1Token, nil)(t, e, req)
	const n = 16
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := tg.Client.Do(req.Clone(req.Context()))
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	ok := 0
	for c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized:
		default:
			t.Errorf("status %d", c)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d identical requests admitted, want 1", ok, n)
	}
}

// TestMiddlewarePolicyCases sends every fault to every route policy
// through net/http: the error code follows the fault, not the policy.
func TestMiddlewarePolicyCases(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true})
	targets := restest.StartServers(t, e, e.NetHTTPHandler())
	restest.Run(t, e, targets, restest.PolicyCases())
}

// TestMiddlewareSlowBody: a request refused by Check is answered without
// reading its body, and its connection is closed rather than drained, so
// an unauthenticated client cannot hold a handler or a connection by
// trickling a body.
func TestMiddlewareSlowBody(t *testing.T) {
	t.Parallel()
	e := restest.NewEnv(t, restest.Options{DPoP: true})
	srv := httptest.NewServer(e.NetHTTPHandler())
	t.Cleanup(srv.Close)
	restest.RunSlowBody(t, e, srv.URL)
}
