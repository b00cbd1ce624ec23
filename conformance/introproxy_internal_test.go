package conformance

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestIntroProxyRecords: the proxy forwards a call unchanged, answers
// with the endpoint's answer, and records a DPoP header or proof, which
// DPOP-RS-24 then fails.
func TestIntroProxyRecords(t *testing.T) {
	t.Parallel()
	var gotAuth, gotBody string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotAuth, gotBody = r.Header.Get("Authorization"), string(b)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"active":false}`)
	}))
	t.Cleanup(upstream.Close)
	l := listenLoopback(t)
	p := startIntroProxy(l, upstream.URL, upstream.Client())
	t.Cleanup(p.close)
	k, err := generateECKey()
	if err != nil {
		t.Fatal(err)
	}
	s := &session{now: time.Now}
	proof, err := s.proof(k, http.MethodGet, "https://rs.example.test/r", "", nil)("")
	if err != nil {
		t.Fatal(err)
	}
	send := func(tok string, form url.Values, dpopHeader bool) {
		t.Helper()
		form.Set("token", tok)
		req, err := http.NewRequest(http.MethodPost, "http://"+l.Addr().String()+"/introspect", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("rs", "secret")
		if dpopHeader {
			req.Header.Set("DPoP", proof)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != `{"active":false}` {
			t.Fatalf("proxy answered %d %s", resp.StatusCode, b)
		}
	}
	tests := []struct {
		name   string
		form   url.Values
		header bool
		want   Status
	}{
		{"clean", url.Values{"token_type_hint": {"access_token"}}, false, StatusPass},
		{"DPoP header", url.Values{}, true, StatusFail},
		{"proof in the form", url.Values{"assertion": {proof}}, false, StatusFail},
		{"dpop parameter", url.Values{"dpop": {"x"}}, false, StatusFail},
	}
	for i, tc := range tests {
		tok := "opaque-token-" + string(rune('a'+i))
		send(tok, tc.form, tc.header)
		if v := introspectionVerdict(p.callsFor(tok)); v.status != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.name, v.status, v.reason, tc.want)
		}
	}
	if !strings.HasPrefix(gotAuth, "Basic ") || !strings.Contains(gotBody, "token=opaque-token-") {
		t.Fatalf("not forwarded unchanged: %q %q", gotAuth, gotBody)
	}
	if v := introspectionVerdict(p.callsFor("never-sent")); v.status != StatusSkip {
		t.Fatalf("no call: %s", v.status)
	}
}

// TestKAT7Introspection runs the introspection form of RFC 9449's
// protected-resource example (CHECKLIST KAT-7) against resource.Verifier:
// the suite's proxy answers Figure 11 for the Figure 10 token, the
// verifier's clock is the RFC's, and the Figure 13 request is accepted
// once; its resend, the Bearer scheme and a clock past the proof window
// are refused. The introspection call carried no DPoP header or proof.
func TestKAT7Introspection(t *testing.T) {
	t.Parallel()
	const (
		clock = 1562262618
		proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
	)
	l := listenLoopback(t)
	p := startIntroProxy(l, "", nil)
	t.Cleanup(p.close)
	verifier := func(now int64) *resource.Verifier {
		store, err := replaycache.NewLRU(replaycache.Config{Capacity: 100})
		if err != nil {
			t.Fatal(err)
		}
		v, err := resource.New(resource.Config{
			Issuers: []resource.Issuer{{Identifier: "https://server.example.com", Introspection: &resource.Introspection{
				Endpoint: "http://" + l.Addr().String() + "/as/introspect.oauth2", ClientID: "rs", Auth: resource.AuthClientSecretBasic,
				ClientSecret: "rs:Mku-6g_lCzKIdz4fsN7kYcya+Ti", InsecureAllowMissingAudience: true,
			}}},
			Audience:   "https://resource.example.org",
			Algorithms: resource.DefaultAlgorithms(),
			Now:        func() time.Time { return time.Unix(now, 0) },
			PublicURL:  "https://resource.example.org",
			DPoP:       &resource.DPoPConfig{Algorithms: []string{"ES256"}, ReplayStore: store},
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	req := func(scheme string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "https://resource.example.org/protectedresource", nil)
		r.Header.Set("Authorization", scheme+" "+kat7Token)
		r.Header.Set("DPoP", proof)
		return r
	}
	v := verifier(clock)
	if _, err := v.Check(req("DPoP"), resource.Policy{}); err != nil {
		t.Fatalf("Figure 13 at the RFC's clock: %v", err)
	}
	if _, err := v.Check(req("DPoP"), resource.Policy{}); err == nil {
		t.Fatal("DPOP-RS-15: the identical resend was accepted")
	}
	if _, err := verifier(clock).Check(req("Bearer"), resource.Policy{}); err == nil {
		t.Fatal("ERR-13: the token was accepted under Bearer")
	}
	if _, err := verifier(clock+60+60).Check(req("DPoP"), resource.Policy{}); err == nil {
		t.Fatal("DPOP-RS-13: the proof was accepted past its window")
	}
	if v := introspectionVerdict(p.callsFor(kat7Token)); v.status != StatusPass {
		t.Fatalf("DPOP-RS-24 on the vector: %s %s", v.status, v.reason)
	}
}
