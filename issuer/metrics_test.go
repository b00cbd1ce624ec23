package issuer

import (
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// metricsRecorder is a Metrics that records each call as one line, in
// order.
type metricsRecorder struct {
	mu    sync.Mutex
	calls []string
}

func (m *metricsRecorder) add(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, s)
}

func (m *metricsRecorder) TokenIssued(grant, binding string) {
	m.add("issued " + grant + " " + binding)
}

func (m *metricsRecorder) Refused(endpoint string, e *Error) {
	m.add(fmt.Sprintf("refused %s %s", endpoint, e.Code))
}

func (m *metricsRecorder) Observe(op Operation, d time.Duration, err error) {
	if d < 0 {
		m.add("negative duration " + string(op))
		return
	}
	m.add(fmt.Sprintf("%s failed=%t", op, err != nil))
}

func (m *metricsRecorder) take() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.calls
	m.calls = nil
	return c
}

// TestMetrics checks what a Server reports to ServerConfig.Metrics for
// token and introspection requests over real HTTP: issued tokens by grant
// and binding (never an unregistered grant_type a client sent), refusals
// by endpoint and error code, nonce challenges as use_dpop_nonce, and
// each replay-store call.
func TestMetrics(t *testing.T) {
	t.Parallel()
	cc := url.Values{"grant_type": {"client_credentials"}}
	tests := []struct {
		name   string
		nonces bool
		send   func(h *harness) result
		want   []string
	}{
		{"bearer token", false, func(h *harness) result {
			return h.post(h.client(nil), h.tokenURL(), cc, basic("conf", confSecret))
		}, []string{"issued client_credentials bearer"}},
		{"DPoP-bound token", false, func(h *harness) result {
			return h.post(h.client(nil), h.tokenURL(), cc, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": h.proof(h.prover(nil), h.tokenURL(), "")})
		}, []string{"replay_store failed=false", "issued client_credentials dpop"}},
		{"certificate-bound token", false, func(h *harness) result {
			return h.post(h.client(h.c1), h.aliasTokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"pki"}}, nil)
		}, []string{"issued client_credentials mtls"}},
		{"registered grant", false, func(h *harness) result {
			return h.post(h.client(nil), h.tokenURL(), url.Values{"grant_type": {testGrant}, "subject": {"alice"}}, basic("conf", confSecret))
		}, []string{"issued " + testGrant + " bearer"}},
		{"unregistered grant", false, func(h *harness) result {
			return h.post(h.client(nil), h.tokenURL(), url.Values{"grant_type": {attackMarker}}, basic("conf", confSecret))
		}, []string{"refused token unsupported_grant_type"}},
		{"wrong secret", false, func(h *harness) result {
			return h.post(h.client(nil), h.tokenURL(), cc, basic("conf", "wrong-secret-0123456789"))
		}, []string{"refused token invalid_client"}},
		{"nonce challenge", true, func(h *harness) result {
			return h.post(h.client(nil), h.tokenURL(), cc, map[string]string{"Authorization": formatBasic("conf", confSecret), "DPoP": h.proof(h.prover(nil), h.tokenURL(), "")})
		}, []string{"refused token use_dpop_nonce"}},
		{"introspection refused", false, func(h *harness) result {
			return h.post(h.client(nil), h.is.ID()+IntrospectionPath, url.Values{}, basic("conf", confSecret))
		}, []string{"refused introspection invalid_request"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &metricsRecorder{}
			h := newHarness(t, harnessOpts{nonces: tt.nonces, edit: func(c *ServerConfig) { c.Metrics = rec }})
			r := tt.send(h)
			if got := rec.take(); !slices.Equal(got, tt.want) {
				t.Fatalf("status %d %s: calls\n%q\nwant\n%q", r.status, r.raw, got, tt.want)
			}
		})
	}
}
