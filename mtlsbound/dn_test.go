package mtlsbound

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/mtlsbound/certs"
)

func rawName(t testing.TB, seq pkix.RDNSequence) []byte {
	t.Helper()
	der, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

var (
	oidCN    = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO     = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidUID   = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
)

func subjectCert(t testing.TB, o certs.Options) *x509.Certificate {
	t.Helper()
	l, err := certs.SelfSigned(o)
	if err != nil {
		t.Fatal(err)
	}
	return l.Cert
}

func TestDistinguishedNameMatch(t *testing.T) {
	t.Parallel()
	std := subjectCert(t, certs.Options{Subject: pkix.Name{CommonName: "client1", Organization: []string{"Example Corp"}}})
	spaced := subjectCert(t, certs.Options{Subject: pkix.Name{CommonName: " client1", Organization: []string{"Example   CORP "}}})
	comma := subjectCert(t, certs.Options{Subject: pkix.Name{CommonName: "client1", Organization: []string{"Example, Inc."}}})
	multi := subjectCert(t, certs.Options{RawSubject: rawName(t, pkix.RDNSequence{
		{{Type: oidO, Value: "Example Corp"}},
		{{Type: oidCN, Value: "a"}, {Type: oidUID, Value: "b"}},
	})})
	email := subjectCert(t, certs.Options{RawSubject: rawName(t, pkix.RDNSequence{
		{{Type: oidEmail, Value: "Ops@Example.TEST"}},
	})})
	tests := []struct {
		name string
		dn   string
		cert *x509.Certificate
		want bool
	}{
		{"MTLS-CA-06/exact", "CN=client1,O=Example Corp", std, true},
		{"MTLS-CA-06/spacing and type case", "cn = client1 ,  o=Example   Corp", std, true},
		{"MTLS-CA-06/value case", "CN=CLIENT1,O=example corp", std, true},
		{"MTLS-CA-06/long names", "commonName=client1,organizationName=Example Corp", std, true},
		{"MTLS-CA-06/numeric OIDs", "2.5.4.3=client1,OID.2.5.4.10=Example Corp", std, true},
		{"MTLS-CA-06/cert with odd spacing", "CN=client1,O=Example Corp", spaced, true},
		{"MTLS-CA-06/other organization", "CN=client1,O=Example Corp2", std, false},
		{"MTLS-CA-06/prefix of value", "CN=client1,O=Example", std, false},
		{"RDN order matters", "O=Example Corp,CN=client1", std, false},
		{"missing RDN", "CN=client1", std, false},
		{"extra RDN", "CN=client1,O=Example Corp,C=US", std, false},
		{"other attribute type", "UID=client1,O=Example Corp", std, false},
		{"escaped comma", `CN=client1,O=Example\, Inc.`, comma, true},
		{"hex-escaped comma", `CN=client1,O=Example\2C Inc.`, comma, true},
		{"hex string value", "CN=#0c07636c69656e7431,O=Example Corp", std, true},
		{"hex string value differs", "CN=#0c07636c69656e7432,O=Example Corp", std, false},
		{"hex non-string value", "CN=#020101,O=Example Corp", std, false},
		{"multi-valued RDN", "UID=b+CN=a,O=Example Corp", multi, true},
		{"multi-valued RDN any order", "CN=a+UID=b,O=Example Corp", multi, true},
		{"multi-valued RDN split", "CN=a,UID=b,O=Example Corp", multi, false},
		{"multi-valued RDN partial", "CN=a,O=Example Corp", multi, false},
		{"email attribute case", "EMAIL=ops@example.test", email, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dn, err := ParseDistinguishedName(tt.dn)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := dn.Match(tt.cert); got != tt.want {
				t.Fatalf("Match = %v, want %v (canonical %q)", got, tt.want, dn.String())
			}
			again, err := ParseDistinguishedName(dn.String())
			if err != nil || !again.Equal(dn) || again.Match(tt.cert) != tt.want {
				t.Fatalf("canonical form %q does not round-trip: %v", dn.String(), err)
			}
		})
	}
	var zero DistinguishedName
	if zero.Match(std) || zero.MatchRaw(std.RawSubject) {
		t.Fatal("zero DistinguishedName matched")
	}
	dn, _ := ParseDistinguishedName("CN=client1,O=Example Corp")
	if dn.Match(nil) || dn.MatchRaw([]byte{0x30, 0x03}) || dn.MatchRaw(nil) {
		t.Fatal("matched nil or garbage")
	}
}

func TestParseDistinguishedNameRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "CN", "CN=", "CN= ", "=x", "FOO=bar", "CN=a;O=b", "CN=a,", ",CN=a", "CN=a+", `CN=a\`, `CN=a\zz`,
		`CN="quoted"`, "CN=a<b", "CN=#zz", "CN=#0c07", "CN=#", "CN=#0c0161 x", "1=a", "1.02=a", "1..2=a", "OID.x=a",
		"CN=a+CN=a", "CN=client1,O=Example, Inc.", "CN=\xff", "CN=a\x00", "CN=" + strings.Repeat("a", MaxDNLength),
	} {
		if dn, err := ParseDistinguishedName(s); err == nil {
			t.Errorf("%q accepted as %q", s, dn.String())
		}
	}
}

func TestDistinguishedNameString(t *testing.T) {
	t.Parallel()
	dn, err := ParseDistinguishedName(`cn=  A  B ,o=x\+y\,z,oid.1.2.3=#020101+C=US`)
	if err != nil {
		t.Fatal(err)
	}
	want := `CN=a b,O=x\+y\,z,1.2.3=#020101+C=us`
	if got := dn.String(); got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}
