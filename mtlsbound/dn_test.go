package mtlsbound

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

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
	if zero.Match(std) || zero.matchRaw(std.RawSubject) {
		t.Fatal("zero DistinguishedName matched")
	}
	dn, _ := ParseDistinguishedName("CN=client1,O=Example Corp")
	if dn.Match(nil) || dn.matchRaw([]byte{0x30, 0x03}) || dn.matchRaw(nil) {
		t.Fatal("matched nil or garbage")
	}
}

func TestParseDistinguishedNameRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "CN", "CN=", "CN= ", "=x", "FOO=bar", "CN=a;O=b", "CN=a,", ",CN=a", "CN=a+", `CN=a\`, `CN=a\zz`,
		`CN="quoted"`, "CN=a<b", "CN=#zz", "CN=#0c07", "CN=#", "C=#0C00", "CN=#130120", "CN=#0c0161 x", "1=a", "1.02=a", "1..2=a", "OID.x=a",
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

// cnCert returns a self-signed certificate whose subject is one RDN holding
// CN=cn, encoded as a UTF8String when cn is not printable.
func cnCert(t testing.TB, cn string) *x509.Certificate {
	t.Helper()
	return subjectCert(t, certs.Options{RawSubject: rawName(t, pkix.RDNSequence{{{Type: oidCN, Value: cn}}})})
}

// TestDistinguishedNameLookalikes pins the comparison rule of
// ParseDistinguishedName (MTLS-CA-06): ASCII letters match without regard to
// case and ASCII spaces are insignificant at the ends and in runs, but no
// non-ASCII character folds onto ASCII, no Unicode space is trimmed or
// collapsed, no character is mapped to nothing, and no compatibility or
// canonical normalization is applied.
func TestDistinguishedNameLookalikes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dn   string // registered
		cn   string // certificate CN
		want bool
	}{
		// ASCII rules that hold.
		{"ASCII case", "CN=service", "SeRvIcE", true},
		{"ASCII spaces at the ends", "CN=service", "  service  ", true},
		{"ASCII tab and newline are spaces", "CN=my service", "\tmy\r\n service\n", true},
		{"ASCII space runs", "CN=my service", "my   service", true},
		// Non-ASCII look-alikes of ASCII (the finding and relatives).
		{"long s U+017F", "CN=service", "\u017fervice", false},
		{"trailing no-break space", "CN=service", "service\u00a0", false},
		{"leading em space", "CN=service", "\u2003service", false},
		{"no-break space inside", "CN=my service", "my\u00a0service", false},
		{"ideographic space", "CN=service", "service\u3000", false},
		{"line separator", "CN=service", "\u2028service", false},
		{"next line control", "CN=service", "service\u0085", false},
		{"Kelvin sign U+212A", "CN=key", "\u212aey", false},
		{"Kelvin sign, upper-case registration", "CN=KEY", "\u212aEY", false},
		{"dotted capital I U+0130", "CN=id", "\u0130d", false},
		{"dotless i U+0131", "CN=ID", "\u0131D", false},
		{"fullwidth letters", "CN=service", "\uff53\uff45\uff52\uff56\uff49\uff43\uff45", false},
		{"fullwidth capitals", "CN=service", "\uff33\uff25\uff32\uff36\uff29\uff23\uff25", false},
		{"ligature fi", "CN=file", "\ufb01le", false},
		{"mathematical bold s", "CN=service", "\U0001d42cervice", false},
		{"superscript two", "CN=service2", "service\u00b2", false},
		{"roman numeral nine", "CN=ix", "\u2178", false},
		{"combining acute", "CN=service", "service\u0301", false},
		{"combining cedilla inside", "CN=service", "servi\u0327ce", false},
		{"combining grapheme joiner", "CN=service", "serv\u034fice", false},
		{"variation selector", "CN=service", "service\ufe0f", false},
		{"zero width space", "CN=service", "ser\u200bvice", false},
		{"zero width joiner", "CN=service", "service\u200d", false},
		{"soft hyphen", "CN=service", "ser\u00advice", false},
		{"byte order mark", "CN=service", "\ufeffservice", false},
		{"right-to-left override", "CN=service", "\u202eservice", false},
		{"ASCII control", "CN=service", "ser\x01vice", false},
		{"private use", "CN=service", "service\ue000", false},
		{"replacement character", "CN=service", "service\ufffd", false},
		{"unassigned", "CN=service", "service\u0378", false},
		// Registrations with non-ASCII characters match only themselves
		// (and their non-ASCII case variants).
		{"registered long s vs s", "CN=\u017fervice", "service", false},
		{"registered long s vs itself", "CN=\u017fervice", "\u017fERVICE", true},
		{"registered Kelvin sign vs itself", "CN=\u212aey", "\u212aey", true},
		{"registered Kelvin sign vs k", "CN=\u212aey", "key", false},
		{"registered no-break space vs itself", "CN=my\u00a0service", "my\u00a0service", true},
		{"registered no-break space vs space", "CN=my\u00a0service", "my service", false},
		{"registered no-break space is not trimmed", "CN=\u00a0service", "service", false},
		{"non-ASCII case folds onto non-ASCII", "CN=\u00c9cole", "\u00e9COLE", true},
		{"Greek final sigma", "CN=\u03a3\u0399\u03a3\u03a5\u03a6\u039f\u03a3", "\u03c3\u03b9\u03c3\u03c5\u03c6\u03bf\u03c2", true},
		{"Angstrom sign folds onto a-ring", "CN=\u212b", "\u00e5", true},
		{"no full case folding", "CN=stra\u00dfe", "STRASSE", false},
		{"no canonical composition", "CN=\u00e9cole", "e\u0301cole", false},
		{"combining characters compared exactly", "CN=e\u0301cole", "E\u0301COLE", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dn, err := ParseDistinguishedName(tt.dn)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			cert := cnCert(t, tt.cn)
			if got := dn.Match(cert); got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
			// The canonical form compares the same way.
			again, err := ParseDistinguishedName(dn.String())
			if err != nil || !again.Equal(dn) || again.Match(cert) != tt.want {
				t.Fatalf("canonical form %q does not round-trip: %v", dn.String(), err)
			}
			// So does a registration in "#hex" form of the same CN.
			der, err := asn1.MarshalWithParams(tt.cn, "utf8")
			if err != nil {
				t.Fatal(err)
			}
			hexDN, err := ParseDistinguishedName("CN=#" + hex.EncodeToString(der))
			switch {
			case err != nil && tt.want:
				t.Fatalf("hex registration of the certificate's CN refused: %v", err)
			case err == nil && (!hexDN.Match(cert) || hexDN.Equal(dn) != tt.want):
				t.Fatalf("hex registration of the certificate's CN: Match %v, Equal %v", hexDN.Match(cert), hexDN.Equal(dn))
			}
		})
	}
}

// TestParseDistinguishedNameRefusesUncomparable: a registered value holding
// a character that RFC 4518 maps to nothing or prohibits is refused, in
// every spelling, rather than stored as something that looks like another
// name.
func TestParseDistinguishedNameRefusesUncomparable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, dn string }{
		{"zero width space", "CN=ser\u200bvice"},
		{"zero width space, escaped", `CN=ser\e2\80\8bvice`},
		{"zero width space, hex value", "CN=#0c0a736572e2808b76696365"},
		{"soft hyphen", "CN=ser\u00advice"},
		{"byte order mark", "CN=\ufeffservice"},
		{"bidi override", "CN=\u202eservice"},
		{"combining grapheme joiner", "CN=serv\u034fice"},
		{"variation selector", "CN=service\ufe0f"},
		{"Mongolian free variation selector", "CN=service\u180b"},
		{"object replacement character", "CN=service\ufffc"},
		{"replacement character", "CN=service\ufffd"},
		{"private use", "CN=service\ue000"},
		{"noncharacter", "CN=service\ufdd0"},
		{"noncharacter at plane end", "CN=service\U0001fffe"},
		{"unassigned", "CN=service\u0378"},
		{"escaped control", `CN=ser\01vice`},
		{"escaped NUL", `CN=a\00b`},
		{"DEL", "CN=ser\x7fvice"},
		{"next line", "CN=service\u0085"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if dn, err := ParseDistinguishedName(tt.dn); err == nil {
				t.Fatalf("accepted as %q", dn.String())
			}
		})
	}
}

// TestPrepareValueNeverFoldsOntoASCII checks every code point: a non-ASCII
// character that may appear in a compared value prepares to non-ASCII, and
// preparation is idempotent (the canonical form is stable).
func TestPrepareValueNeverFoldsOntoASCII(t *testing.T) {
	t.Parallel()
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		s := string(r)
		p, ok := prepareValue(s)
		if !ok {
			continue
		}
		for i := 0; i < len(p); i++ {
			if p[i] < utf8.RuneSelf {
				t.Fatalf("%U prepares to %q, which holds ASCII", r, p)
			}
		}
		if q, ok := prepareValue(p); !ok || q != p {
			t.Fatalf("%U: preparation not idempotent: %q then %q (%v)", r, p, q, ok)
		}
	}
}

// TestPKIAuthLookalikeSubjectOverTLS: a certificate from the trusted CA
// whose CN only looks like the registered one does not authenticate the
// client over real TLS (MTLS-CA-06), while an ASCII case and spacing variant
// still does.
func TestPKIAuthLookalikeSubjectOverTLS(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	srv := tokenEndpoint(t, map[string]authenticator{
		"svc": pki(PKIAuth{Roots: f.ca1.Pool(), SubjectDN: "CN=service,O=Example Corp"}),
	})
	for _, tt := range []struct {
		name      string
		cn        string
		wantClass string
	}{
		{"MTLS-CA-06/ASCII case and spacing", " SERVICE ", ""},
		{"MTLS-CA-06/long s", "\u017fervice", "mismatch"},
		{"MTLS-CA-06/trailing no-break space", "service\u00a0", "mismatch"},
		{"MTLS-CA-06/leading em space", "\u2003service", "mismatch"},
		{"MTLS-CA-06/fullwidth s", "\uff53ervice", "mismatch"},
		{"MTLS-CA-06/zero width space", "ser\u200bvice", "mismatch"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			subject := rawName(t, pkix.RDNSequence{
				{{Type: oidO, Value: "Example Corp"}},
				{{Type: oidCN, Value: tt.cn}},
			})
			leaf, err := f.ca1.Issue(certs.Options{RawSubject: subject, Client: true})
			if err != nil {
				t.Fatal(err)
			}
			cert := leaf.TLSCertificate()
			client := NewClient(&cert, f.ca1.Pool())
			defer client.CloseIdleConnections()
			resp, err := client.Get(srv.URL + "/token?client_id=svc")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("X-Error-Class"); got != tt.wantClass {
				t.Fatalf("status %d class %q, want %q", resp.StatusCode, got, tt.wantClass)
			}
		})
	}
}
