package dpop

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/trustedproxy"
)

func TestNormalizeURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string // want "" = error
	}{
		{"https://rs.example.test/resource", "https://rs.example.test/resource"},
		{"HTTPS://RS.Example.TEST:443/resource", "https://rs.example.test/resource"},
		{"http://rs.example.test:80/a", "http://rs.example.test/a"},
		{"http://rs.example.test:443/a", "http://rs.example.test:443/a"},
		{"https://rs.example.test:80/a", "https://rs.example.test:80/a"},
		{"https://rs.example.test:/a", "https://rs.example.test/a"},
		{"https://rs.example.test:0443/a", "https://rs.example.test/a"},
		{"https://rs.example.test:8443/a", "https://rs.example.test:8443/a"},
		{"https://rs.example.test", "https://rs.example.test/"},
		{"https://rs.example.test?x=1", "https://rs.example.test/"},
		{"https://rs.example.test/a?x=1#f", "https://rs.example.test/a"},
		{"https://rs.example.test/%7euser/%2f%41", "https://rs.example.test/~user/%2FA"},
		{"https://rs.example.test/a/./b/../c", "https://rs.example.test/a/c"},
		{"https://rs.example.test/a/%2E%2E/c", "https://rs.example.test/c"},
		{"https://rs.example.test/..", "https://rs.example.test/"},
		{"https://rs.example.test/a.b/c.", "https://rs.example.test/a.b/c."},
		{"https://rs.example.test/Resource", "https://rs.example.test/Resource"},
		{"https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"},
		{"https://rs.example.test/a;b=c,d@e:f", "https://rs.example.test/a;b=c,d@e:f"},
		{"https://u:p@rs.example.test/", ""},
		{"https://rs.example.test%2e/", ""},
		{"/resource", ""},
		{"", ""},
		{"ftp://rs.example.test/", ""},
		{"https:///x", ""},
		{"https://rs.example.test:abc/", ""},
		{"https://rs.example.test:123456/", ""},
		{"https://rs.example.test/a b", ""},
		{"https://rs.example.test/a%2", ""},
		{"https://rs.example.test/a%zz", ""},
		{"https://rs.example.test/\u00e9", ""},
		{"https://[::1/x", ""},
		{"https://[zz]/x", ""},
		{"https://[::1]x/", ""},
		{"https://rs.example.test/" + strings.Repeat("a", maxURL), ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := normalizeURL(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("accepted as %q", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			// Idempotent.
			if again, err := normalizeURL(got); err != nil || again != got {
				t.Fatalf("not idempotent: %q", again)
			}
		})
	}
	// An htu claim must not carry a query or fragment (ADV-58).
	for _, s := range []string{"https://rs.example.test/a?x", "https://rs.example.test/a#f"} {
		if _, err := appendNormalizedURL(nil, s, false); err == nil {
			t.Errorf("claim %q accepted", s)
		}
	}
}

func TestTargetURI(t *testing.T) {
	t.Parallel()
	fixed, err := NewTargetURI(TargetURIConfig{PublicURL: "https://rs.example.test/"})
	if err != nil {
		t.Fatal(err)
	}
	proxies := func(h trustedproxy.Headers, peers ...string) *trustedproxy.Set {
		s, err := trustedproxy.New(trustedproxy.Config{Peers: peers, Headers: h})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	loopback := proxies(trustedproxy.HeadersXForwarded, "127.0.0.1/32")
	tenNet := proxies(trustedproxy.HeadersXForwarded, "10.0.0.0/8")
	fixedBehindProxy, err := NewTargetURI(TargetURIConfig{PublicURL: "https://rs.example.test", TrustedProxies: loopback})
	if err != nil {
		t.Fatal(err)
	}
	proxied, err := NewTargetURI(TargetURIConfig{TrustedProxies: loopback})
	if err != nil {
		t.Fatal(err)
	}
	proxiedRFC7239, err := NewTargetURI(TargetURIConfig{TrustedProxies: proxies(trustedproxy.HeadersForwarded, "127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	proxiedNone, err := NewTargetURI(TargetURIConfig{TrustedProxies: proxies(trustedproxy.HeadersNone, "127.0.0.1"), InsecureHostHeader: true})
	if err != nil {
		t.Fatal(err)
	}
	untrusted, err := NewTargetURI(TargetURIConfig{TrustedProxies: tenNet})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := NewTargetURI(TargetURIConfig{InsecureHostHeader: true})
	if err != nil {
		t.Fatal(err)
	}
	untrustedOnly, err := NewTargetURI(TargetURIConfig{TrustedProxies: tenNet, InsecureHostHeader: false})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		t    *TargetURI
		h    http.Header
		tls  bool
		want string // "" = error, "unexpected" = error wrapping trustedproxy.ErrUnexpectedHeaders
	}{
		{"public URL wins over forwarded headers", fixed, http.Header{"X-Forwarded-Host": {"evil.example"}}, false, "https://rs.example.test/resource"},
		{"trusted proxy X-Forwarded", proxied, http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"rs.example.test"}}, false, "https://rs.example.test/resource"},
		{"trusted proxy takes last list value", proxied, http.Header{"X-Forwarded-Proto": {"http, https"}, "X-Forwarded-Host": {"evil.example, rs.example.test"}}, false, "https://rs.example.test/resource"},
		{"trusted proxy RFC 7239", proxiedRFC7239, http.Header{"Forwarded": {`for=192.0.2.1;proto=https;host="rs.example.test"`}}, false, "https://rs.example.test/resource"},
		{"public URL behind a proxy: neither family read nor checked", fixedBehindProxy, http.Header{"Forwarded": {"host=evil.example"}, "X-Forwarded-Host": {"evil.example"}}, false, "https://rs.example.test/resource"},
		{"ADV-51/both families from a trusted proxy refused", proxied, http.Header{"Forwarded": {`proto=https;host=rs.example.test`}, "X-Forwarded-Host": {"evil.example"}}, false, "unexpected"},
		{"ADV-51/client's Forwarded through an X-Forwarded proxy refused", proxied, http.Header{"Forwarded": {"host=evil.example"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"rs.example.test"}}, false, "unexpected"},
		{"ADV-51/no fall back to Forwarded", proxied, http.Header{"Forwarded": {"proto=https;host=evil.example"}}, false, "unexpected"},
		{"RFC 7239 family", proxiedRFC7239, http.Header{"Forwarded": {"for=192.0.2.1, proto=https;host=rs.example.test"}}, false, "https://rs.example.test/resource"},
		{"RFC 7239 family, no Forwarded: the request as the proxy sent it", proxiedRFC7239, nil, false, "http://HOST/resource"},
		{"ADV-51/client's X-Forwarded-Host through a Forwarded proxy refused", proxiedRFC7239, http.Header{"Forwarded": {"proto=https;host=rs.example.test"}, "X-Forwarded-Host": {"evil.example"}}, false, "unexpected"},
		{"ADV-51/no fall back to X-Forwarded", proxiedRFC7239, http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.example"}}, false, "unexpected"},
		{"malformed Forwarded", proxiedRFC7239, http.Header{"Forwarded": {"host=a;host=b"}}, false, ""},
		{"family none: the request as the proxy sent it", proxiedNone, nil, false, "http://HOST/resource"},
		{"ADV-51/family none refuses forwarded fields", proxiedNone, http.Header{"X-Forwarded-Host": {"evil.example"}}, false, "unexpected"},
		{"untrusted peer: no target without InsecureHostHeader", untrusted, http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.example"}, "Forwarded": {"host=evil.example"}}, false, ""},
		{"untrusted peer: Host header not used", untrustedOnly, nil, true, ""},
		{"InsecureHostHeader: forwarded headers still ignored", plain, http.Header{"X-Forwarded-Host": {"evil.example"}}, false, "http://HOST/resource"},
		{"InsecureHostHeader: TLS connection", plain, nil, true, "https://HOST/resource"},
		{"bad forwarded proto", proxied, http.Header{"X-Forwarded-Proto": {"gopher"}}, false, ""},
		{"bad forwarded host", proxied, http.Header{"X-Forwarded-Host": {"a b"}}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan string, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				u, err := tc.t.URL(r)
				switch {
				case errors.Is(err, trustedproxy.ErrUnexpectedHeaders):
					u = "unexpected"
				case err != nil:
					u = ""
				}
				got <- strings.Replace(u, r.Host, "HOST", 1)
			})
			var srv *httptest.Server
			if tc.tls {
				srv = httptest.NewTLSServer(h)
			} else {
				srv = httptest.NewServer(h)
			}
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL+"/resource?q=1", nil)
			for k, vs := range tc.h {
				req.Header[k] = vs
			}
			client := srv.Client()
			if tc.tls {
				client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if g := <-got; g != tc.want {
				t.Fatalf("got %q, want %q", g, tc.want)
			}
		})
	}
	for _, bad := range []TargetURIConfig{
		{PublicURL: "rs.example.test"},
		{PublicURL: "https://rs.example.test/?q"},
		{TrustedProxies: proxies(trustedproxy.HeadersNone, "10.0.0.0/8")}, // the proxies forward no host
		{TrustedProxies: &trustedproxy.Set{}},                             // the zero Set trusts no one
		{},                                                                // nothing says what the target URI is
	} {
		if _, err := NewTargetURI(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
