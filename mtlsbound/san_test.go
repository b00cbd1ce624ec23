package mtlsbound

import (
	"context"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net"
	"net/url"
	"testing"

	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// TestPKIAuthSANRules checks the matching rules of each SAN selector
// (RFC 8705 §2.1.2) against certificates carrying look-alike SANs: DNS
// names compared case-insensitively in ASCII only, URIs exactly (the scheme
// excepted), IP addresses in binary form, e-mail addresses with an exact
// local part and a case-insensitive ASCII domain. A registration that
// could only match through Unicode case folding (the Kelvin sign K folds
// to "k", the long s ſ to "s") is refused as configuration.
func TestPKIAuthSANRules(t *testing.T) {
	t.Parallel()
	ca, err := certs.NewCA(certs.Options{CommonName: "SAN CA"})
	if err != nil {
		t.Fatal(err)
	}
	roots := ca.Pool()
	leaf := func(o certs.Options) *certs.Leaf {
		t.Helper()
		o.CommonName, o.Client = "san client", true
		l, err := ca.Issue(o)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	uri := func(s string) *url.URL {
		t.Helper()
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	const spiffe = "spiffe://example.org/ns/a/sa/b"
	dnsLeaf := leaf(certs.Options{DNSNames: []string{"key.example.test"}})
	sLeaf := leaf(certs.Options{DNSNames: []string{"service.example.test"}})
	spiffeLeaf := leaf(certs.Options{URIs: []*url.URL{uri(spiffe)}})
	ipv4Leaf := leaf(certs.Options{IPAddresses: []net.IP{net.ParseIP("192.0.2.7").To4()}})
	// crypto/x509 writes an IPv4-mapped address in four bytes, so the
	// mapped SAN is written by hand: GeneralNames { [7] 16 bytes }.
	mapped := append([]byte{0x30, 18, 0x87, 16}, net.ParseIP("::ffff:192.0.2.7").To16()...)
	mappedLeaf := leaf(certs.Options{ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: mapped}}})
	if len(mappedLeaf.Cert.IPAddresses) != 1 || len(mappedLeaf.Cert.IPAddresses[0]) != 16 {
		t.Fatalf("mapped SAN parsed as %v", mappedLeaf.Cert.IPAddresses)
	}
	ipv6Leaf := leaf(certs.Options{IPAddresses: []net.IP{net.ParseIP("2001:db8::7")}})
	emailLeaf := leaf(certs.Options{EmailAddresses: []string{"svc@example.test"}})

	tests := []struct {
		name string
		auth PKIAuth
		leaf *certs.Leaf
		want error // nil: authenticated
	}{
		{"dns exact", PKIAuth{SANDNS: "key.example.test"}, dnsLeaf, nil},
		{"dns ASCII case", PKIAuth{SANDNS: "KEY.Example.TEST"}, dnsLeaf, nil},
		{"dns Kelvin sign", PKIAuth{SANDNS: "\u212Aey.example.test"}, dnsLeaf, ErrInvalidConfig},
		{"dns long s", PKIAuth{SANDNS: "\u017Fervice.example.test"}, sLeaf, ErrInvalidConfig},
		{"dns trailing dot", PKIAuth{SANDNS: "key.example.test."}, dnsLeaf, ErrCertificateMismatch},
		{"dns suffix", PKIAuth{SANDNS: "example.test"}, dnsLeaf, ErrCertificateMismatch},
		{"dns wildcard not expanded", PKIAuth{SANDNS: "*.example.test"}, dnsLeaf, ErrCertificateMismatch},

		{"uri exact", PKIAuth{SANURI: spiffe}, spiffeLeaf, nil},
		{"uri trailing slash", PKIAuth{SANURI: spiffe + "/"}, spiffeLeaf, ErrCertificateMismatch},
		{"uri prefix", PKIAuth{SANURI: "spiffe://example.org/ns/a/sa/bb"}, spiffeLeaf, ErrCertificateMismatch},
		{"uri parent", PKIAuth{SANURI: "spiffe://example.org/ns/a/sa"}, spiffeLeaf, ErrCertificateMismatch},
		{"uri host case", PKIAuth{SANURI: "spiffe://EXAMPLE.org/ns/a/sa/b"}, spiffeLeaf, ErrCertificateMismatch},
		{"uri path case", PKIAuth{SANURI: "spiffe://example.org/ns/A/sa/b"}, spiffeLeaf, ErrCertificateMismatch},
		{"uri percent-encoded", PKIAuth{SANURI: "spiffe://example.org/ns/a/sa/%62"}, spiffeLeaf, ErrCertificateMismatch},
		{"uri dot segment", PKIAuth{SANURI: "spiffe://example.org/ns/a/sa/./b"}, spiffeLeaf, ErrCertificateMismatch},
		{"uri empty query", PKIAuth{SANURI: spiffe + "?"}, spiffeLeaf, ErrCertificateMismatch},
		{"uri non-ASCII", PKIAuth{SANURI: "spiffe://example.org/ns/\u00e4"}, spiffeLeaf, ErrInvalidConfig},

		{"ipv4", PKIAuth{SANIP: "192.0.2.7"}, ipv4Leaf, nil},
		{"ipv4 leading zero", PKIAuth{SANIP: "192.0.2.07"}, ipv4Leaf, ErrInvalidConfig},
		{"ipv4 registration, mapped SAN", PKIAuth{SANIP: "192.0.2.7"}, mappedLeaf, ErrCertificateMismatch},
		{"mapped registration, ipv4 SAN", PKIAuth{SANIP: "::ffff:192.0.2.7"}, ipv4Leaf, ErrCertificateMismatch},
		{"ipv6 canonical", PKIAuth{SANIP: "2001:0DB8:0:0:0:0:0:7"}, ipv6Leaf, nil},
		{"ipv6 other", PKIAuth{SANIP: "2001:db8::8"}, ipv6Leaf, ErrCertificateMismatch},

		{"email exact", PKIAuth{SANEmail: "svc@example.test"}, emailLeaf, nil},
		{"email domain case", PKIAuth{SANEmail: "svc@EXAMPLE.test"}, emailLeaf, nil},
		{"email local case", PKIAuth{SANEmail: "SVC@example.test"}, emailLeaf, ErrCertificateMismatch},
		{"email long s in the domain", PKIAuth{SANEmail: "svc@example.te\u017Ft"}, emailLeaf, ErrInvalidConfig},
		{"email subdomain", PKIAuth{SANEmail: "svc@mail.example.test"}, emailLeaf, ErrCertificateMismatch},
		{"email as dns", PKIAuth{SANDNS: "example.test"}, emailLeaf, ErrCertificateMismatch},
		{"dns as email domain", PKIAuth{SANEmail: "key@example.test"}, dnsLeaf, ErrCertificateMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.auth.Roots = roots
			err := tt.auth.Authenticate(context.Background(), tt.leaf.Cert, nil)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("Authenticate: %v, want success", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("Authenticate: %v, want %v", err, tt.want)
			}
			if (tt.auth.Validate() != nil) != errors.Is(tt.want, ErrInvalidConfig) {
				t.Fatalf("Validate: %v", tt.auth.Validate())
			}
		})
	}
}
