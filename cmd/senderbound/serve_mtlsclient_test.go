package main

import (
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// TestServeMTLSClientSAN registers tls_client_auth clients by SAN (RFC 8705
// §2.1.2) on the command line, one per SAN type plus one by subject DN,
// and requests tokens over real TLS with certificates from the client CA
// carrying the registered SAN or a look-alike: only the registered value,
// by each type's matching rule, authenticates (MTLS-CA-07: a SAN selector
// matches only its own SAN type; MTLS-CA-08: IP addresses in binary form).
func TestServeMTLSClientSAN(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, err := certs.NewCA(certs.Options{CommonName: "mesh CA"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue(certs.Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := srv.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	const spiffe = "spiffe://example.org/ns/a/sa/b"
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0",
		"--tls-cert", filepath.Join(dir, certs.LeafCertFile), "--tls-key", filepath.Join(dir, certs.LeafKeyFile),
		"--client-ca", filepath.Join(dir, certs.CACertFile),
		"--mtls-client", "workload:san-uri="+spiffe,
		"--mtls-client", "svc:san-dns=svc.example.test",
		"--mtls-client", "ip:san-ip=2001:db8::7",
		"--mtls-client", "mail:san-email=svc@example.test",
		"--mtls-client", "dn:CN=svc.example.test,O=Example")

	type sans struct {
		dns, email []string
		uris       []string
		ips        []net.IP
		cn         string
	}
	leaf := func(t *testing.T, s sans) *http.Client {
		t.Helper()
		var uris []*url.URL
		for _, u := range s.uris {
			p, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			uris = append(uris, p)
		}
		cn := s.cn
		if cn == "" {
			cn = "client"
		}
		l, err := ca.Issue(certs.Options{CommonName: cn, DNSNames: s.dns, URIs: uris, IPAddresses: s.ips, EmailAddresses: s.email, Client: true})
		if err != nil {
			t.Fatal(err)
		}
		tc := l.TLSCertificate()
		return mtlsbound.NewClient(&tc, ca.Pool())
	}
	tests := []struct {
		name, client string
		sans         sans
		ok           bool
	}{
		{"SPIFFE ID", "workload", sans{uris: []string{spiffe}}, true},
		{"SPIFFE ID among other SANs", "workload", sans{dns: []string{"svc.example.test"}, uris: []string{"https://example.org/", spiffe}}, true},
		{"SPIFFE ID with a trailing slash", "workload", sans{uris: []string{spiffe + "/"}}, false},
		{"SPIFFE ID of another service account", "workload", sans{uris: []string{"spiffe://example.org/ns/a/sa/bb"}}, false},
		{"SPIFFE ID in upper-case host", "workload", sans{uris: []string{"spiffe://EXAMPLE.org/ns/a/sa/b"}}, false},
		{"SPIFFE ID as a DNS SAN", "workload", sans{dns: []string{"example.org"}}, false},
		{"SPIFFE ID in the subject CN", "workload", sans{cn: spiffe}, false},
		{"DNS name", "svc", sans{dns: []string{"svc.example.test"}}, true},
		{"DNS name in upper case", "svc", sans{dns: []string{"SVC.Example.Test"}}, true},
		{"DNS name under it", "svc", sans{dns: []string{"x.svc.example.test"}}, false},
		{"DNS name as a URI SAN", "svc", sans{uris: []string{"dns:svc.example.test"}}, false},
		{"DNS name in the subject CN only", "svc", sans{cn: "svc.example.test"}, false},
		{"IPv6 address", "ip", sans{ips: []net.IP{net.ParseIP("2001:0db8:0:0::7")}}, true},
		{"other IPv6 address", "ip", sans{ips: []net.IP{net.ParseIP("2001:db8::70")}}, false},
		{"e-mail address, domain in upper case", "mail", sans{email: []string{"svc@EXAMPLE.test"}}, true},
		{"e-mail address, local part in upper case", "mail", sans{email: []string{"SVC@example.test"}}, false},
		{"subject DN", "dn", sans{cn: "svc.example.test"}, false}, // O missing
	}
	tokenURL := as.URL + issuer.TokenPath
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, _, tok := serveRequestToken(t, leaf(t, tt.sans), tokenURL, url.Values{"client_id": {tt.client}}, false)
			switch {
			case tt.ok && (status != http.StatusOK || tok.TokenType != "Bearer"):
				t.Fatalf("token request = %d %+v, want 200 Bearer", status, tok)
			case !tt.ok && (status == http.StatusOK || tok.Error != "invalid_client"):
				t.Fatalf("token request = %d %+v, want invalid_client", status, tok)
			}
		})
	}
}

// TestServeMTLSClientErrors: malformed --mtls-client values are usage
// errors on one line.
func TestServeMTLSClientErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, err := certs.NewCA(certs.Options{CommonName: "CA"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ value, want string }{
		{"workload:san-uri=example.org/ns/a", "invalid tls_client_auth_san_uri"},
		{"workload:san-uri=", "invalid tls_client_auth_san_uri"},
		{"svc:san-dns=svc example.test", "invalid tls_client_auth_san_dns"},
		{"svc:san-dns=\u212Aey.example.test", "invalid tls_client_auth_san_dns"},
		{"ip:san-ip=192.0.2.07", "invalid tls_client_auth_san_ip"},
		{"ip:san-ip=fe80::1%eth0", "invalid tls_client_auth_san_ip"},
		{"mail:san-email=nobody", "invalid tls_client_auth_san_email"},
		{"dn:CN=a;O=b", "invalid subject DN"},
		{"dn", "--mtls-client needs ID:SUBJECT_DN or ID:san-dns="},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			t.Parallel()
			code, stderr := serveRunFails(t, serveTestEnv(t, nil), "serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key",
				"--tls-cert", filepath.Join(dir, certs.CACertFile), "--tls-key", filepath.Join(dir, certs.CACertFile),
				"--client-ca", filepath.Join(dir, certs.CACertFile), "--mtls-client", tt.value)
			if code != 2 || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("exit %d, stderr %q; want 2 and %q on one line", code, stderr, tt.want)
			}
		})
	}
}
