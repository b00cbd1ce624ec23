package fullstack_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/internal/fullstack"
	"github.com/senderbound/senderbound/resource"
)

func start(t *testing.T, o fullstack.Options) *fullstack.Stack {
	t.Helper()
	st, err := fullstack.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestStackPasses runs cases that need each variation against a stack
// with it, and checks that the target describes exactly what runs.
func TestStackPasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		opts  fullstack.Options
		cases []string
	}{
		{"default", fullstack.Options{}, []string{"DPOP-RS-01", "ERR-13", "MTLS-CA-01", "CCERT-01"}},
		{"nonces", fullstack.Options{Nonces: true}, []string{"DPOP-AS-14", "DPOP-RS-20"}},
		{"plain listener", fullstack.Options{Plain: true}, []string{"DPOP-RS-25"}},
		{"test grant", fullstack.Options{TestGrant: "urn:fullstack:test"}, []string{"DPOP-AS-06", "MTLS-CB-06"}},
		{"DPoP only", fullstack.Options{Accept: resource.AcceptDPoP}, []string{"ERR-13", "ADV-64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := start(t, tc.opts)
			target := st.Target()
			if (target.PlainResource != "") != tc.opts.Plain {
				t.Errorf("PlainResource %q with Plain %v", target.PlainResource, tc.opts.Plain)
			}
			if (target.RefreshGrant != nil) != (tc.opts.TestGrant != "") {
				t.Errorf("RefreshGrant %v with TestGrant %q", target.RefreshGrant, tc.opts.TestGrant)
			}
			if target.NonceRequired != tc.opts.Nonces || target.TokenEndpointNonceRequired != tc.opts.Nonces {
				t.Errorf("nonces required %v/%v, want %v", target.NonceRequired, target.TokenEndpointNonceRequired, tc.opts.Nonces)
			}
			target.Timeout = 30 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rep, err := conformance.Run(ctx, target, conformance.Options{Cases: tc.cases})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Results) != len(tc.cases) {
				t.Errorf("%d results, want %d", len(rep.Results), len(tc.cases))
			}
			for _, r := range rep.Results {
				if r.Status != conformance.StatusPass {
					t.Errorf("%s: %s: %s", r.ID, r.Status, r.Reason)
				}
			}
		})
	}
}

// TestStackOptions checks the named options: the wrapper applies to the
// first resource's own listener only, and given secrets and names are
// used.
func TestStackOptions(t *testing.T) {
	t.Parallel()
	st := start(t, fullstack.Options{
		ClientID:     "client-x",
		ClientSecret: "secret-x-0123456789abcdef",
		Audience:     "https://a.test",
		WrapResource: func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
		},
	})
	target := st.Target()
	if target.ClientID != "client-x" || target.ClientSecret != "secret-x-0123456789abcdef" || target.Audience != "https://a.test" {
		t.Errorf("target %s/%s/%s, want the options' client and audience", target.ClientID, target.ClientSecret, target.Audience)
	}
	if st.IntrospectionSecret == "" || st.IntrospectionSecret == st.ClientSecret {
		t.Errorf("introspection secret %q, want a random one of its own", st.IntrospectionSecret)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: st.Roots}}, Timeout: 10 * time.Second}
	for _, tc := range []struct {
		url  string
		want int
	}{
		{st.ResourceURL + fullstack.ResourcePath, http.StatusTeapot},
		{st.ProxyURL + fullstack.ResourcePath, http.StatusUnauthorized},
		{st.SecondResourceURL + fullstack.ResourcePath, http.StatusUnauthorized},
		{st.ResourceURL + resource.MetadataPath, http.StatusTeapot},
		{st.ProxyURL + resource.MetadataPath, http.StatusOK},
	} {
		resp, err := c.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.url, resp.StatusCode, tc.want)
		}
	}
}

// TestStackClose: after Close no listener answers.
func TestStackClose(t *testing.T) {
	t.Parallel()
	st, err := fullstack.Start(fullstack.Options{Plain: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: st.Roots}}, Timeout: 5 * time.Second}
	for _, u := range []string{st.IssuerURL, st.ResourceURL, st.SecondResourceURL, st.ProxyURL, st.PlainURL} {
		if resp, err := c.Get(u + fullstack.ResourcePath); err == nil {
			resp.Body.Close()
			t.Errorf("GET %s after Close: %d, want a refused connection", u, resp.StatusCode)
		}
	}
}
