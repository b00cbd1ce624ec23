package fallback

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/oautherr"
)

func TestMarshalScopes(t *testing.T) {
	t.Parallel()
	many := make([]string, MaxScopes+1)
	for i := range many {
		many[i] = "s" + big.NewInt(int64(i)).String()
	}
	tests := []struct {
		name    string
		scopes  []string
		wantErr bool
	}{
		{name: "empty", scopes: []string{}},
		{name: "one", scopes: []string{"read"}},
		{name: "NQCHAR edges", scopes: []string{"!", "#[", "]~", "a:b/c.d"}},
		{name: "longest", scopes: []string{strings.Repeat("x", MaxScopeLen)}},
		{name: "MaxScopes", scopes: many[:MaxScopes]},
		{name: "too long", scopes: []string{strings.Repeat("x", MaxScopeLen+1)}, wantErr: true},
		{name: "too many", scopes: many, wantErr: true},
		{name: "empty scope", scopes: []string{""}, wantErr: true},
		{name: "space", scopes: []string{"read write"}, wantErr: true},
		{name: "quote", scopes: []string{`a"b`}, wantErr: true},
		{name: "backslash", scopes: []string{`a\b`}, wantErr: true},
		{name: "control", scopes: []string{"a\x00"}, wantErr: true},
		{name: "DEL", scopes: []string{"a\x7f"}, wantErr: true},
		{name: "UTF-8", scopes: []string{"l\u00e9ire"}, wantErr: true},
		{name: "duplicate", scopes: []string{"read", "write", "read"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			der, err := MarshalScopes(tc.scopes)
			if tc.wantErr {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseScopes(der)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.scopes) {
				t.Fatalf("round trip: got %q, want %q", got, tc.scopes)
			}
		})
	}
}

// TestParseScopesRefuses feeds encodings other than the one DER SEQUENCE
// OF UTF8String of scope-tokens.
func TestParseScopesRefuses(t *testing.T) {
	t.Parallel()
	utf8 := func(s string) []byte { return append([]byte{0x0c, byte(len(s))}, s...) }
	seq := func(parts ...[]byte) []byte {
		b := slices.Concat(parts...)
		return append([]byte{0x30, byte(len(b))}, b...)
	}
	good := seq(utf8("read"), utf8("write"))
	if _, err := ParseScopes(good); err != nil {
		t.Fatalf("the reference encoding is refused: %v", err)
	}
	tests := []struct {
		name string
		der  []byte
	}{
		{name: "empty input", der: nil},
		{name: "trailing byte", der: append(slices.Clone(good), 0)},
		{name: "truncated", der: good[:len(good)-1]},
		{name: "SET instead of SEQUENCE", der: append([]byte{0x31}, good[1:]...)},
		{name: "PrintableString element", der: seq([]byte{0x13, 4, 'r', 'e', 'a', 'd'})},
		{name: "IA5String element", der: seq([]byte{0x16, 4, 'r', 'e', 'a', 'd'})},
		{name: "OCTET STRING element", der: seq([]byte{0x04, 4, 'r', 'e', 'a', 'd'})},
		{name: "context-tagged element", der: seq([]byte{0x8c, 4, 'r', 'e', 'a', 'd'})},
		{name: "nested SEQUENCE", der: seq(seq(utf8("read")))},
		{name: "long-form length", der: []byte{0x30, 0x81, 6, 0x0c, 4, 'r', 'e', 'a', 'd'}},
		{name: "long-form inner length", der: seq([]byte{0x0c, 0x81, 4, 'r', 'e', 'a', 'd'})},
		{name: "indefinite length", der: []byte{0x30, 0x80, 0x0c, 4, 'r', 'e', 'a', 'd', 0, 0}},
		{name: "duplicate scope", der: seq(utf8("read"), utf8("read"))},
		{name: "space in scope", der: seq(utf8("re ad"))},
		{name: "empty scope", der: seq(utf8(""))},
		{name: "invalid UTF-8", der: seq(utf8("r\xffd"))},
		{name: "NUL in scope", der: seq(utf8("r\x00d"))},
		{name: "huge input", der: make([]byte, 1<<20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseScopes(tc.der)
			if !errors.Is(err, ErrScopesMalformed) {
				t.Fatalf("got %v, want ErrScopesMalformed", err)
			}
			if got != nil {
				t.Fatal("scopes returned with an error")
			}
			if ReasonOf(err) != oautherr.ReasonFallbackScopesMalformed {
				t.Fatalf("reason %q", ReasonOf(err))
			}
		})
	}
}

// TestDefaultScopesOIDReadableByGo shows that Go's crypto/x509 reads a
// certificate carrying DefaultScopesOID, and why the default avoids a
// 2.25 UUID OID: an arc of 2^31 or more makes the certificate unreadable.
func TestDefaultScopesOIDReadableByGo(t *testing.T) {
	t.Parallel()
	k := keys(t)["P256"]
	val, err := MarshalScopes([]string{"read"})
	if err != nil {
		t.Fatal(err)
	}
	for _, arc := range DefaultScopesOID {
		if int64(arc) >= 1<<31 {
			t.Fatalf("arc %d of the default OID is not below 2^31", arc)
		}
	}
	tests := []struct {
		name      string
		oid       asn1.ObjectIdentifier
		wantParse bool
	}{
		{name: "default", oid: DefaultScopesOID, wantParse: true},
		{name: "2.25 UUID arc", oid: asn1.ObjectIdentifier{2, 25, 1 << 62}, wantParse: false},
		{name: "arc 2^31", oid: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 1 << 31}, wantParse: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(1), NotBefore: testNow, NotAfter: testNow.Add(time.Hour),
				ExtraExtensions: []pkix.Extension{{Id: tc.oid, Value: val}},
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
			if err != nil {
				if !tc.wantParse {
					return // refused already when creating
				}
				t.Fatal(err)
			}
			c, err := x509.ParseCertificate(der)
			if (err == nil) != tc.wantParse {
				t.Fatalf("parse error %v, want parse %v", err, tc.wantParse)
			}
			if err == nil {
				got, err := ScopesFromCertificate(c, tc.oid)
				if err != nil || !slices.Equal(got, []string{"read"}) {
					t.Fatalf("scopes %q, %v", got, err)
				}
			}
		})
	}
	if _, err := NewCA(CAConfig{Certificate: newWorld(t, "P256").root.Cert, Signer: k, ScopesOID: asn1.ObjectIdentifier{2, 25, 1 << 40}}); err == nil {
		t.Fatal("NewCA accepted a scopes OID with an arc above 2^31")
	}
}

func TestScopesFromCertificate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	k := keys(t)["P256b"]
	val, _ := MarshalScopes([]string{"read"})
	other := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 9, 9}
	tests := []struct {
		name   string
		edit   func(*x509.Certificate)
		want   error
		reason oautherr.Reason
	}{
		{name: "present once", edit: nil},
		{name: "missing", edit: func(c *x509.Certificate) { c.ExtraExtensions = nil }, want: ErrScopesMalformed, reason: oautherr.ReasonFallbackScopesMissing},
		{name: "malformed value", edit: func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{{Id: DefaultScopesOID, Value: []byte("read write")}}
		}, want: ErrScopesMalformed, reason: oautherr.ReasonFallbackScopesMalformed},
		{name: "marked critical", edit: func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{{Id: DefaultScopesOID, Critical: true, Value: val}}
		}, want: ErrUntrustedChain, reason: oautherr.ReasonFallbackCriticalExtension},
		{name: "other critical extension", edit: func(c *x509.Certificate) {
			c.ExtraExtensions = append(c.ExtraExtensions, pkix.Extension{Id: other, Critical: true, Value: []byte{5, 0}})
		}, want: ErrUntrustedChain, reason: oautherr.ReasonFallbackCriticalExtension},
		{name: "other non-critical extension", edit: func(c *x509.Certificate) {
			c.ExtraExtensions = append(c.ExtraExtensions, pkix.Extension{Id: other, Value: []byte{5, 0}})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := craft(t, w.root.Cert, w.root.Key, k.Public(), tc.edit)
			got, err := ScopesFromCertificate(c, nil)
			if tc.want == nil {
				if err != nil || !slices.Equal(got, []string{"read"}) {
					t.Fatalf("got %q, %v", got, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || ReasonOf(err) != tc.reason {
				t.Fatalf("got %v, want %v (%s)", err, tc.want, tc.reason)
			}
		})
	}
	// The extension twice: Go refuses such a certificate when creating or
	// parsing it; the check is kept for certificates parsed otherwise.
	tmpl := func(c *x509.Certificate) {
		c.ExtraExtensions = []pkix.Extension{{Id: DefaultScopesOID, Value: val}, {Id: DefaultScopesOID, Value: val}}
	}
	c := &x509.Certificate{Extensions: []pkix.Extension{{Id: DefaultScopesOID, Value: val}, {Id: DefaultScopesOID, Value: val}}}
	if _, err := ScopesFromCertificate(c, nil); !errors.Is(err, ErrScopesMalformed) || ReasonOf(err) != oautherr.ReasonFallbackScopesDuplicate {
		t.Fatalf("duplicate: got %v", err)
	}
	probe := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: testNow, NotAfter: testNow.Add(time.Hour)}
	tmpl(probe)
	if der, err := x509.CreateCertificate(rand.Reader, probe, w.root.Cert, k.Public(), w.root.Key); err == nil {
		if _, err := x509.ParseCertificate(der); err == nil {
			t.Fatal("crypto/x509 parses a certificate with the scopes extension twice")
		}
	}
}
