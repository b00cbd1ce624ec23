package mtlsbound

import (
	"bytes"
	"crypto/x509"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// fuzzCert is a fixed-shape certificate made once per fuzz process.
func fuzzCert(f *testing.F) *x509.Certificate {
	l, err := certs.SelfSigned(certs.Options{CommonName: "fuzz", Client: true})
	if err != nil {
		f.Fatal(err)
	}
	return l.Cert
}

// FuzzParseClientCertHeader: no panic; nil certificate and ErrInvalidHeader
// on error; a parsed certificate re-formats to a value that parses to the
// same DER (Format→Parse round trip).
func FuzzParseClientCertHeader(f *testing.F) {
	c := fuzzCert(f)
	f.Add(kat12Header)
	f.Add(FormatClientCertHeader(c))
	f.Add(":" + kat12Header[1:40] + ":")
	f.Add("::")
	f.Add(":YQ:")
	f.Add(kat12Header + ", " + kat12Header)
	f.Add(kat12Header + ";a=1")
	f.Add("-----BEGIN CERTIFICATE-----")
	f.Fuzz(func(t *testing.T, v string) {
		cert, err := ParseClientCertHeader(v)
		if err != nil {
			if cert != nil || !errors.Is(err, ErrInvalidHeader) {
				t.Fatalf("error %v with cert %v", err, cert != nil)
			}
			return
		}
		if cert == nil || isCA(cert) {
			t.Fatal("nil or CA certificate without error")
		}
		again, err := ParseClientCertHeader(FormatClientCertHeader(cert))
		if err != nil || !bytes.Equal(again.Raw, cert.Raw) {
			t.Fatalf("round trip failed: %v", err)
		}
		if Thumbprint(again) != Thumbprint(cert) || len(Thumbprint(cert)) != 43 {
			t.Fatal("thumbprint unstable")
		}
	})
}

// FuzzXFCC: the Envoy header parser never panics and returns a nil
// certificate with ErrInvalidHeader on error.
func FuzzXFCC(f *testing.F) {
	c := fuzzCert(f)
	f.Add(`Hash=00;Cert="` + escapedPEM(c.Raw) + `"`)
	f.Add(`Cert=` + escapedPEM(c.Raw))
	f.Add(`By=spiffe://a;Subject="CN=a\"b,c";URI=,Cert="x"`)
	f.Add(`a=b;c="d`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, v string) {
		cert, err := parseXFCC(v)
		if (err == nil) == (cert == nil) {
			t.Fatalf("err %v with cert %v", err, cert != nil)
		}
		if err != nil && !errors.Is(err, ErrInvalidHeader) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

// FuzzEscapedPEM: the nginx URL-encoded PEM parser never panics; on success
// the DER round-trips through the RFC 9440 codec.
func FuzzEscapedPEM(f *testing.F) {
	c := fuzzCert(f)
	f.Add(escapedPEM(c.Raw))
	f.Add("%zz")
	f.Add("-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----%0A")
	f.Fuzz(func(t *testing.T, v string) {
		cert, err := parsePEMCert(v)
		if (err == nil) == (cert == nil) {
			t.Fatalf("err %v with cert %v", err, cert != nil)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidHeader) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		again, err := ParseClientCertHeader(FormatClientCertHeader(cert))
		if err != nil && !errors.Is(err, ErrHeaderTooLarge) {
			t.Fatalf("round trip: %v", err)
		}
		if err == nil && !bytes.Equal(again.Raw, cert.Raw) {
			t.Fatal("round trip changed the DER")
		}
	})
}

// FuzzDistinguishedName: parsing never panics; a parsed DN's canonical
// string re-parses to an equal DN with the same canonical string, and
// matching against a certificate's subject and arbitrary DER never panics
// and agrees between the DN and its re-parse.
func FuzzDistinguishedName(f *testing.F) {
	c := fuzzCert(f)
	f.Add("CN=client1,O=Example Corp", c.RawSubject)
	f.Add("cn = CLIENT1 ,  o=example   corp", []byte{0x30, 0x00})
	f.Add(`UID=b+CN=a,O=x\+y\,z,1.2.3=#020101`, []byte{0x30, 0x03, 0x31, 0x01, 0x00})
	f.Add(`CN=#0c07636c69656e7431`, c.RawSubject)
	f.Add(`CN=a\00b\ `, []byte(nil))
	f.Add("CN=fuzz", c.RawSubject)
	f.Add("CN=service", []byte("0\x141\x120\x10\x06\x03U\x04\x03\f\tservice\u00a0"))
	f.Fuzz(func(t *testing.T, s string, der []byte) {
		dn, err := ParseDistinguishedName(s)
		if err != nil {
			if dn.matchRaw(der) || dn.Match(c) {
				t.Fatal("zero DN matched")
			}
			return
		}
		canon := dn.String()
		again, err := ParseDistinguishedName(canon)
		if err != nil {
			t.Fatalf("canonical %q does not parse: %v", canon, err)
		}
		if !again.Equal(dn) || again.String() != canon {
			t.Fatalf("canonical form unstable: %q vs %q", canon, again.String())
		}
		if dn.matchRaw(der) != again.matchRaw(der) || dn.Match(c) != again.Match(c) {
			t.Fatal("match differs after round trip")
		}
	})
}

// FuzzPrepareValue: preparing an attribute value never panics; a prepared
// value keeps every non-ASCII character of the input as a non-ASCII
// character (nothing folds onto ASCII, nothing is dropped or trimmed), and
// preparing it again changes nothing.
func FuzzPrepareValue(f *testing.F) {
	f.Add("\u017fERVICE")
	f.Add(" \t a \u00a0 b\u2003 ")
	f.Add("\u212aey\u0130\u0131")
	f.Add("ser\u200bvice")
	f.Add("e\u0301\uff53")
	f.Fuzz(func(t *testing.T, v string) {
		norm, ok := prepareValue(v)
		if !ok {
			if norm != "" {
				t.Fatalf("refused value prepared to %q", norm)
			}
			return
		}
		if !utf8.ValidString(v) {
			// Invalid bytes decode to U+FFFD, which is refused.
			t.Fatal("invalid UTF-8 accepted")
		}
		if got, want := nonASCII(norm), nonASCII(v); got != want {
			t.Fatalf("%d non-ASCII characters prepared to %d", want, got)
		}
		if again, ok := prepareValue(norm); !ok || again != norm {
			t.Fatalf("not idempotent: %q then %q (%v)", norm, again, ok)
		}
	})
}

func nonASCII(s string) int {
	n := 0
	for _, r := range s {
		if r >= utf8.RuneSelf {
			n++
		}
	}
	return n
}
