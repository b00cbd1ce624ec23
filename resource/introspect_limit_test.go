package resource_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/resource"
)

// gateAS is a slow introspection endpoint on a real loopback server: each
// call is counted on arrival and answered body only once open is closed.
type gateAS struct {
	srv     *httptest.Server
	arrived atomic.Int64
	open    chan struct{}
	body    atomic.Value // string
}

func newGateAS(t *testing.T) *gateAS {
	t.Helper()
	g := &gateAS{open: make(chan struct{})}
	g.body.Store(`{"active":false}`)
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.arrived.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-g.open:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, g.body.Load().(string))
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// waitArrived waits until n calls have reached g.
func (g *gateAS) waitArrived(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.arrived.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d introspection calls arrived, want %d", g.arrived.Load(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestIntrospectionMaxConcurrent: N+1 concurrent requests with distinct
// opaque tokens against an endpoint that does not answer yet: exactly N
// calls reach it, the extra request is refused at once with 503
// introspection_busy (no error code, one rate-limited Warn that holds no
// token), and once the calls end the N requests are accepted and a new
// token reaches the endpoint again.
func TestIntrospectionMaxConcurrent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		limit int // Introspection.MaxConcurrent
		want  int // calls allowed at once
	}{
		{"limit 1", 1, 1},
		{"limit 3", 3, 3},
		{"default 64", 0, 64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newGateAS(t)
			var logs bytes.Buffer
			e := newIntroEnv(t, func(c *resource.Config, in *resource.Introspection) {
				c.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: &logs, mu: &sync.Mutex{}}, &slog.HandlerOptions{Level: slog.LevelWarn}))
				in.Endpoint = g.srv.URL + "/introspect"
				in.MaxConcurrent = tc.limit
				in.Timeout = 30 * time.Second
			})
			g.body.Store(e.answer(t, nil))

			n := tc.want + 1
			toks := make([]string, n)
			reqs := make([]*http.Request, n)
			for i := range reqs {
				toks[i] = opaque(t)
				reqs[i] = dpopReq(t, e.k1, toks[i])
			}
			type result struct {
				i   int
				err error
			}
			results := make(chan result, n)
			var wg sync.WaitGroup
			for i, r := range reqs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := e.v.Check(r, resource.Policy{})
					results <- result{i, err}
				}()
			}
			// The extra request is refused while the others are held at
			// the endpoint.
			var busy result
			select {
			case busy = <-results:
			case <-time.After(10 * time.Second):
				t.Fatal("no request was refused while the endpoint held the limit")
			}
			var re *resource.Error
			if !errors.As(busy.err, &re) || !errors.Is(busy.err, resource.ErrUnavailable) || re.Status != http.StatusServiceUnavailable ||
				re.Reason != oautherr.ReasonIntrospectionBusy || re.Code != "" {
				t.Fatalf("request over the limit: %v %+v", busy.err, re)
			}
			g.waitArrived(t, int64(tc.want))
			// A request that joins a call under way (any token but the
			// refused one's) is not refused by the limit: it waits for
			// that call.
			joinTok := toks[(busy.i+1)%n]
			joined := make(chan error, 1)
			go func() {
				_, err := e.v.Check(dpopReq(t, e.k1, joinTok), resource.Policy{})
				joined <- err
			}()
			// Another distinct token is still refused without a call.
			_, err := e.v.Check(dpopReq(t, e.k1, opaque(t)), resource.Policy{})
			if !errors.As(err, &re) || re.Reason != oautherr.ReasonIntrospectionBusy {
				t.Fatalf("second request over the limit: %v", err)
			}
			if a := g.arrived.Load(); a != int64(tc.want) {
				t.Fatalf("%d calls reached the endpoint, want exactly %d", a, tc.want)
			}
			// Time for the joining request to reach the shared call.
			time.Sleep(50 * time.Millisecond)
			close(g.open)
			wg.Wait()
			close(results)
			for r := range results {
				if r.err != nil {
					t.Fatalf("request within the limit: %v", r.err)
				}
			}
			if err := <-joined; err != nil {
				t.Fatalf("request that joined a call under way: %v", err)
			}
			if a := g.arrived.Load(); a != int64(tc.want) {
				t.Fatalf("%d calls after the burst, want %d", a, tc.want)
			}
			// The slots are free again.
			if _, err := e.v.Check(dpopReq(t, e.k1, opaque(t)), resource.Policy{}); err != nil {
				t.Fatalf("after the calls ended: %v", err)
			}
			if a := g.arrived.Load(); a != int64(tc.want)+1 {
				t.Fatalf("%d calls, want %d", a, tc.want+1)
			}
			out := logs.String()
			if c := strings.Count(out, "introspection_busy"); c != 1 {
				t.Fatalf("%d Warn records for the refusals within the interval, want 1:\n%s", c, out)
			}
			for _, tok := range toks {
				if strings.Contains(out, tok) {
					t.Fatal("the log holds a token")
				}
			}
		})
	}
}

// TestIntrospectionMaxConcurrentCached: a cached token is served while the
// calls under way fill the limit.
func TestIntrospectionMaxConcurrentCached(t *testing.T) {
	t.Parallel()
	e := newIntroEnv(t, func(_ *resource.Config, in *resource.Introspection) { in.MaxConcurrent = 1 })
	cached := opaque(t)
	e.as.set(cached, e.answer(t, nil))
	if _, err := e.v.Check(dpopReq(t, e.k1, cached), resource.Policy{}); err != nil {
		t.Fatal(err)
	}
	slow := opaque(t)
	e.as.set(slow, e.answer(t, nil))
	e.as.fail(0, 300*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := e.v.Check(dpopReq(t, e.k1, slow), resource.Policy{})
		done <- err
	}()
	for e.as.n.Load() < 2 {
		time.Sleep(2 * time.Millisecond)
	}
	if _, err := e.v.Check(dpopReq(t, e.k1, cached), resource.Policy{}); err != nil {
		t.Fatalf("cached token while the limit is held: %v", err)
	}
	_, err := e.v.Check(dpopReq(t, e.k1, opaque(t)), resource.Policy{})
	var re *resource.Error
	if !errors.As(err, &re) || re.Reason != oautherr.ReasonIntrospectionBusy {
		t.Fatalf("new token while the limit is held: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := e.as.n.Load(); n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}
}

// panicOnce is a RoundTripper whose first round trip panics.
type panicOnce struct {
	done atomic.Bool
	next http.RoundTripper
}

func (p *panicOnce) RoundTrip(r *http.Request) (*http.Response, error) {
	if p.done.CompareAndSwap(false, true) {
		panic("round trip failed")
	}
	return p.next.RoundTrip(r)
}

// TestIntrospectionPanicReleasesCall: an introspection call that panics
// frees its slot and its entry, so the next requests are neither refused
// as busy nor left waiting for it.
func TestIntrospectionPanicReleasesCall(t *testing.T) {
	t.Parallel()
	e := newIntroEnv(t, func(_ *resource.Config, in *resource.Introspection) {
		in.MaxConcurrent = 1
		in.HTTPClient = &http.Client{Transport: &panicOnce{next: http.DefaultTransport}}
	})
	tok := opaque(t)
	e.as.set(tok, e.answer(t, nil))
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the first call did not panic")
			}
		}()
		_, _ = e.v.Check(dpopReq(t, e.k1, tok), resource.Policy{})
	}()
	done := make(chan error, 1)
	go func() {
		_, err := e.v.Check(dpopReq(t, e.k1, tok), resource.Policy{})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("request after the panic: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request after the panic is still waiting")
	}
}
