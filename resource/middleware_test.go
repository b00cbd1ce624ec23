package resource_test

import (
	"net/http/httptest"
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
