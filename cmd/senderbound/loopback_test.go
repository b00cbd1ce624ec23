package main

import (
	"net/url"
	"strings"
	"testing"
)

// TestIsLoopbackAddr: a loopback IP address in any of its spellings counts;
// a name, "localhost" included, never does, since the hosts file or DNS can
// point it anywhere.
func TestIsLoopbackAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"::1", true},
		{"0:0:0:0:0:0:0:1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:7f00:1", true},
		{"::1%lo", true},
		{"localhost", false},
		{"LOCALHOST", false},
		{"localhost.", false},
		{"app.localhost", false},
		{"", false},
		{"[::1]", false},
		{"127.0.0.1:80", false},
		{"0177.0.0.1", false},
		{"127.000.000.001", false},
		{"10.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"fe80::1%lo", false},
		{"192.0.2.1", false},
	} {
		if got := isLoopbackAddr(tc.host); got != tc.want {
			t.Errorf("isLoopbackAddr(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

// TestLoopbackRuleEverywhere: every command that allows plain HTTP only on
// loopback applies the one rule, by address.
func TestLoopbackRuleEverywhere(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url string
		ok        bool
	}{
		{"IPv4", "http://127.0.0.1:8080/x", true},
		{"IPv6", "http://[::1]:8080/x", true},
		{"IPv4-mapped", "http://[::ffff:127.0.0.1]:8080/x", true},
		{"localhost", "http://localhost:8080/x", false},
		{"Localhost", "http://LocalHost:8080/x", false},
		{"other address", "http://192.0.2.1/x", false},
		{"https anywhere", "https://as.example.test/x", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := checkTokenEndpoint(tc.url); (err == nil) != tc.ok {
				t.Errorf("checkTokenEndpoint(%s) = %v, want ok %v", tc.url, err, tc.ok)
			}
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkCredentialURL(u); (err == nil) != tc.ok {
				t.Errorf("checkCredentialURL(%s) = %v, want ok %v", tc.url, err, tc.ok)
			}
			err = serveCheckIssuerURL(strings.TrimSuffix(tc.url, "/x"), "127.0.0.1", false)
			if (err == nil) != tc.ok {
				t.Errorf("serveCheckIssuerURL(%s) = %v, want ok %v", tc.url, err, tc.ok)
			}
		})
	}
}

// TestServeLocalhostListener: a plain-HTTP server refuses to listen on a
// name, even "localhost", or another non-loopback address, with a usage
// error (exit 2) before it binds; a name gets the hint why.
func TestServeLocalhostListener(t *testing.T) {
	t.Parallel()
	const hint = "a name, even localhost, can resolve elsewhere"
	for _, tc := range []struct {
		args     []string
		want     string
		wantHint bool
	}{
		{[]string{"serve-resource", "--addr", "localhost:0", "--issuer", "https://as.example.test"}, "serve-resource listens only on loopback, or behind a --trusted-proxy", true},
		{[]string{"serve-resource", "--addr", "LOCALHOST:0", "--issuer", "https://as.example.test"}, "serve-resource listens only on loopback, or behind a --trusted-proxy", true},
		{[]string{"serve-resource", "--addr", "192.0.2.1:0", "--issuer", "https://as.example.test"}, "serve-resource listens only on loopback, or behind a --trusted-proxy (run", false},
		{[]string{"serve-issuer", "--addr", "localhost:0", "--ephemeral-key"}, "the default issuer http://ADDR is allowed only on loopback", true},
		{[]string{"serve-issuer", "--addr", "192.0.2.1:0", "--ephemeral-key"}, "give --tls-cert and --tls-key, or an https --issuer (run", false},
		{[]string{"serve-issuer", "--addr", "127.0.0.1:0", "--issuer", "http://localhost:8080", "--ephemeral-key"}, "an http --issuer is allowed only on loopback", false},
	} {
		code, errOut := serveRunFails(t, serveTestEnv(t, nil), tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, hint) != tc.wantHint || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line with %q (hint %v)", tc.args, code, errOut, tc.want, tc.wantHint)
		}
	}
}
