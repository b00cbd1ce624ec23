package certs

import (
	"bytes"
	"testing"
)

// kat12PEM is the RFC 9440 Appendix A client certificate in PEM form.
const kat12PEM = `-----BEGIN CERTIFICATE-----
MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBB
dXRoZW50aWNhdGUxGzAZBgNVBAMMEkxBIEludGVybWVkaWF0ZSBDQTAeFw0yMDAx
MTQyMjU1MzNaFw0yMTAxMjMyMjU1MzNaMA0xCzAJBgNVBAMMAkJDMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAE8YnXXfaUgmnMtOXU/IncWalRhebrXmckC8vdgJ1p
5Be5F/3YC8OthxM4+k1M6aEAEFcGzkJiNy6J84y7uzo9M6NyMHAwCQYDVR0TBAIw
ADAfBgNVHSMEGDAWgBRm3WjLa38lbEYCuiCPct0ZaSED2DAOBgNVHQ8BAf8EBAMC
BsAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0RAQH/BBMwEYEPYmRjQGV4YW1w
bGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIBHda/r1vaL6G3VliL4/Di6YK0Q6bMje
SkC3dFCOOB8TAiEAx/kHSB4urmiZ0NX5r5XarmPk0wmuydBVoU4hBVZ1yhk=
-----END CERTIFICATE-----
`

// FuzzParseCertificates: certificate files never panic the parser; on
// success every certificate re-encodes and re-parses to the same DER, and on
// error nothing is returned.
func FuzzParseCertificates(f *testing.F) {
	f.Add([]byte(kat12PEM))
	f.Add([]byte(kat12PEM + kat12PEM))
	f.Add([]byte(kat12PEM + "junk"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := ParseCertificates(data)
		if err != nil {
			if cs != nil {
				t.Fatal("certificates returned with an error")
			}
			return
		}
		again, err := ParseCertificates(EncodeCertificates(cs...))
		if err != nil || len(again) != len(cs) {
			t.Fatalf("re-encode: %v", err)
		}
		for i := range cs {
			if !bytes.Equal(again[i].Raw, cs[i].Raw) {
				t.Fatal("DER changed")
			}
		}
	})
}

// FuzzParseKey: key files never panic the parser; a parsed key re-encodes
// and re-parses to an equal key.
func FuzzParseKey(f *testing.F) {
	l, err := SelfSigned(Options{})
	if err != nil {
		f.Fatal(err)
	}
	k, _ := EncodeKey(l.Key)
	f.Add(k)
	f.Add([]byte(kat12PEM))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParseKey(data)
		if err != nil {
			if key != nil {
				t.Fatal("key returned with an error")
			}
			return
		}
		enc, err := EncodeKey(key)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseKey(enc)
		if err != nil || !publicKeyEqual(again.Public(), key.Public()) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}
