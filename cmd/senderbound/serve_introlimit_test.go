package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeIntrospectionMaxConcurrent: serve-resource with
// --introspection-max-concurrent 1 against an introspection endpoint that
// holds its first call: a second opaque token is answered 503 at once and
// never reaches the endpoint; once the call ends, the next token does.
func TestServeIntrospectionMaxConcurrent(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	arrived, release := make(chan struct{}, 4), make(chan struct{})
	var as *httptest.Server
	as = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": as.URL, "jwks_uri": as.URL + "/jwks", "introspection_endpoint": as.URL + "/introspect"})
		case "/jwks":
			_, _ = io.WriteString(w, `{"keys":[]}`)
		case "/introspect":
			calls.Add(1)
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			_, _ = io.WriteString(w, `{"active":false}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(as.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL,
		"--introspection-endpoint", as.URL+"/introspect", "--introspection-client", "rs:"+serveTestRSSecret,
		"--introspection-max-concurrent", "1", "--require", "any", "--allow-bearer")
	get := func(tok string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, rs.URL+"/resource", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, rs.URL+"/resource", nil)
		req.Header.Set("Authorization", "Bearer first-opaque-token-0123456789")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the first token's introspection call did not arrive")
	}
	start := time.Now()
	if resp := get("second-opaque-token-0123456789"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second token while the one call allowed is under way: %d, want 503", resp.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the refusal took %s: it waited instead of answering at once", d)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d introspection calls, want 1: the second token reached the endpoint", n)
	}
	close(release)
	if code := <-first; code != http.StatusUnauthorized {
		t.Fatalf("first token (inactive): %d, want 401", code)
	}
	if resp := get("third-opaque-token-0123456789"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("third token after the call ended: %d, want 401 (inactive)", resp.StatusCode)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d introspection calls, want 2", n)
	}
}
