package main

import (
	"flag"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/conformance"
)

// TestConformFlags checks that the conform flags build the Target.
func TestConformFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "issuer.jwk")
	if err := os.WriteFile(keyFile, []byte(`{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE","kid":"1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("conform", flag.ContinueOnError)
	tf := registerConformFlags(fs)
	err := fs.Parse([]string{
		"--token-endpoint", "https://as.example.test/token", "--client-id", "app", "--client-secret", "s",
		"--resource", "https://rs.example.test/resource", "--method", "post", "--issuer-key", keyFile,
		"--nonce-required", "--introspection", "https://as.example.test/introspect", "--introspection-client", "rs:secret",
		"--format", "junit", "--cases", "A, ERR-13",
	})
	if err != nil {
		t.Fatal(err)
	}
	target, err := tf.target()
	if err != nil {
		t.Fatal(err)
	}
	caps := target.Capabilities()
	for _, c := range []conformance.Capability{conformance.CapDPoP, conformance.CapIssuerKey, conformance.CapNonce, conformance.CapIntrospection} {
		if caps&c == 0 {
			t.Errorf("capability %s missing", c)
		}
	}
	if caps&conformance.CapMTLS != 0 {
		t.Errorf("mTLS capability without a certificate")
	}
	if target.IntrospectionClientSecret != "secret" || tf.formatName() != "junit" {
		t.Errorf("flags not applied: %+v", target)
	}
	if got := tf.options().Cases; len(got) != 2 || got[1] != "ERR-13" {
		t.Errorf("cases = %v", got)
	}

	bad := registerConformFlags(flag.NewFlagSet("x", flag.ContinueOnError))
	if _, err := bad.target(); err == nil {
		t.Error("empty flags produced a valid target")
	}
}

// required are the flags every target description needs.
var conformRequired = []string{"--token-endpoint", "https://as.example.test/token", "--client-id", "app", "--resource", "https://rs.example.test/resource"}

// TestRefreshGrantFlags checks that --refresh-client-id, --refresh-grant-type
// and --refresh-param build Target.RefreshGrant and unlock CapRefreshGrant,
// and that incomplete or clashing descriptions are refused.
func TestRefreshGrantFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		want     *conformance.RefreshGrant
		parseErr bool   // fs.Parse fails
		err      string // Target fails with an error containing err
	}{
		{name: "none", args: nil},
		{
			name: "complete",
			args: []string{"--refresh-client-id", "public-app", "--refresh-grant-type", "urn:example:test-grant",
				"--refresh-param", "subject=alice", "--refresh-param", "scope=read write", "--refresh-param", "subject=bob",
				"--refresh-param", "code_verifier=a=b", "--refresh-param", "empty="},
			want: &conformance.RefreshGrant{ClientID: "public-app", GrantType: "urn:example:test-grant", Params: url.Values{
				"subject": {"alice", "bob"}, "scope": {"read write"}, "code_verifier": {"a=b"}, "empty": {""},
			}},
		},
		{
			name: "no params",
			args: []string{"--refresh-client-id", "public-app", "--refresh-grant-type", "authorization_code"},
			want: &conformance.RefreshGrant{ClientID: "public-app", GrantType: "authorization_code", Params: url.Values{}},
		},
		{name: "param without value", args: []string{"--refresh-param", "subject"}, parseErr: true},
		{name: "param without name", args: []string{"--refresh-param", "=alice"}, parseErr: true},
		{name: "no client id", args: []string{"--refresh-grant-type", "urn:example:test-grant"}, err: "refresh grant needs a client id"},
		{name: "no grant type", args: []string{"--refresh-client-id", "public-app"}, err: "refresh grant needs a grant type"},
		{name: "params only", args: []string{"--refresh-param", "subject=alice"}, err: "refresh grant needs a client id"},
		{name: "client_credentials", args: []string{"--refresh-client-id", "p", "--refresh-grant-type", "client_credentials"}, err: "cannot be client_credentials"},
		{name: "refresh_token", args: []string{"--refresh-client-id", "p", "--refresh-grant-type", "refresh_token"}, err: "cannot be refresh_token"},
		{name: "reserved grant_type", args: []string{"--refresh-client-id", "p", "--refresh-grant-type", "g", "--refresh-param", "grant_type=x"}, err: "grant_type is set by the suite"},
		{name: "reserved client_id", args: []string{"--refresh-client-id", "p", "--refresh-grant-type", "g", "--refresh-param", "client_id=x"}, err: "client_id is set by the suite"},
		{name: "reserved refresh_token", args: []string{"--refresh-client-id", "p", "--refresh-grant-type", "g", "--refresh-param", "refresh_token=x"}, err: "refresh_token is set by the suite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target, tf := parseConformTarget(t, tt.args, tt.parseErr, tt.err)
			if target == nil {
				return
			}
			if !reflect.DeepEqual(target.RefreshGrant, tt.want) {
				t.Errorf("RefreshGrant = %+v, want %+v", target.RefreshGrant, tt.want)
			}
			if got := target.Capabilities()&conformance.CapRefreshGrant != 0; got != (tt.want != nil) {
				t.Errorf("CapRefreshGrant = %v, want %v", got, tt.want != nil)
			}
			if tt.want == nil {
				return
			}
			// Each Target gets its own parameters.
			target.RefreshGrant.Params.Set("subject", "mallory")
			again, err := tf.target()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again.RefreshGrant, tt.want) {
				t.Errorf("second Target() RefreshGrant = %+v, want %+v", again.RefreshGrant, tt.want)
			}
		})
	}
}

// TestRefreshGrantFlagHelp checks that the refresh flags are registered
// with a usage line each.
func TestRefreshGrantFlagHelp(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("conform", flag.ContinueOnError)
	registerConformFlags(fs)
	for _, name := range []string{"refresh-client-id", "refresh-grant-type", "refresh-param"} {
		f := fs.Lookup(name)
		if f == nil || f.Usage == "" || f.DefValue != "" {
			t.Errorf("--%s: %+v", name, f)
		}
	}
}

// TestAuthorizationFlags checks that --authorization-endpoint,
// --redirect-uri and --authorization-param build Target.Authorization and
// unlock CapAuthorization, and that incomplete or clashing descriptions
// are refused.
func TestAuthorizationFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		want     *conformance.AuthorizationFlow
		parseErr bool
		err      string
	}{
		{name: "none", args: nil},
		{
			name: "complete",
			args: []string{"--authorization-endpoint", "https://as.example.test/authorize", "--redirect-uri", "https://app.example.test/cb",
				"--authorization-param", "login_hint=alice", "--authorization-param", "scope=read write"},
			want: &conformance.AuthorizationFlow{Endpoint: "https://as.example.test/authorize", RedirectURI: "https://app.example.test/cb",
				Params: url.Values{"login_hint": {"alice"}, "scope": {"read write"}}},
		},
		{name: "param without value", args: []string{"--authorization-param", "login_hint"}, parseErr: true},
		{name: "no redirect", args: []string{"--authorization-endpoint", "https://as.example.test/authorize"}, err: "redirect URI"},
		{name: "no endpoint", args: []string{"--redirect-uri", "https://app.example.test/cb"}, err: "authorization endpoint"},
		{name: "endpoint not http", args: []string{"--authorization-endpoint", "ftp://as.example.test/a", "--redirect-uri", "https://app.example.test/cb"}, err: "not an http(s) URL"},
		{name: "redirect with fragment", args: []string{"--authorization-endpoint", "https://as.example.test/a", "--redirect-uri", "https://app.example.test/cb#x"}, err: "redirect URI"},
		{name: "reserved dpop_jkt", args: []string{"--authorization-endpoint", "https://as.example.test/a", "--redirect-uri", "https://app.example.test/cb", "--authorization-param", "dpop_jkt=x"}, err: "set by the suite"},
		{name: "reserved request_uri", args: []string{"--authorization-endpoint", "https://as.example.test/a", "--redirect-uri", "https://app.example.test/cb", "--authorization-param", "request_uri=x"}, err: "set by the suite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target, _ := parseConformTarget(t, tt.args, tt.parseErr, tt.err)
			if target == nil {
				return
			}
			if !reflect.DeepEqual(target.Authorization, tt.want) {
				t.Errorf("Authorization = %+v, want %+v", target.Authorization, tt.want)
			}
			if got := target.Capabilities()&conformance.CapAuthorization != 0; got != (tt.want != nil) {
				t.Errorf("CapAuthorization = %v, want %v", got, tt.want != nil)
			}
		})
	}
}

// TestIntrospectionProxyFlag: --introspection-proxy takes a loopback
// address only, needs --introspection, and once listening unlocks
// DPOP-RS-24's capability.
func TestIntrospectionProxyFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"loopback with an endpoint", []string{"--introspection", "https://as.example.test/introspect", "--introspection-proxy", "127.0.0.1:0"}, ""},
		{"a name is not an address", []string{"--introspection", "https://as.example.test/introspect", "--introspection-proxy", "localhost:0"}, "loopback address"},
		{"another address", []string{"--introspection", "https://as.example.test/introspect", "--introspection-proxy", "192.0.2.1:9000"}, "loopback address"},
		{"no port", []string{"--introspection", "https://as.example.test/introspect", "--introspection-proxy", "127.0.0.1"}, "loopback address"},
		{"without --introspection", []string{"--introspection-proxy", "127.0.0.1:0"}, "needs --introspection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("conform", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			tf := registerConformFlags(fs)
			if err := fs.Parse(append(append([]string(nil), conformRequired...), tt.args...)); err != nil {
				t.Fatal(err)
			}
			target, err := tf.target()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("target() error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tf.listenIntrospectionProxy(&target); err != nil {
				t.Fatal(err)
			}
			defer target.IntrospectionProxy.Close()
			if target.Capabilities()&conformance.CapIntrospectionProxy == 0 {
				t.Fatal("CapIntrospectionProxy not set")
			}
		})
	}
}

// parseConformTarget parses the conform flags conformRequired plus args
// and builds the target. When parseErr, the parse must fail; when wantErr
// is set, building the target must fail with it; either way it returns
// nil, and the target and its flags otherwise.
func parseConformTarget(t *testing.T, args []string, parseErr bool, wantErr string) (*conformance.Target, *conformFlags) {
	t.Helper()
	fs := flag.NewFlagSet("conform", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tf := registerConformFlags(fs)
	err := fs.Parse(append(append([]string(nil), conformRequired...), args...))
	if parseErr {
		if err == nil {
			t.Fatal("Parse accepted the flags")
		}
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	target, err := tf.target()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("Target() error %v, want one containing %q", err, wantErr)
		}
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return &target, tf
}
