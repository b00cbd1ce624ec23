package mtlsbound

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"regexp"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func kat12Cert(t testing.TB) *x509.Certificate {
	t.Helper()
	c, err := ParseClientCertHeader(kat12Header)
	if err != nil {
		t.Fatalf("KAT-12 header refused: %v", err)
	}
	return c
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestThumbprintKAT12(t *testing.T) {
	t.Parallel()
	c := kat12Cert(t)
	if len(c.Raw) != 428 || c.Subject.CommonName != "BC" {
		t.Fatalf("KAT-12 certificate facts: %d bytes, CN %q", len(c.Raw), c.Subject.CommonName)
	}
	got := Thumbprint(c)
	if got != kat12X5t {
		t.Fatalf("THUMB-12: Thumbprint = %s, want %s", got, kat12X5t)
	}
	if ThumbprintDER(c.Raw) != kat12X5t {
		t.Fatal("ThumbprintDER differs from Thumbprint")
	}
	sum := sha256.Sum256(c.Raw)
	if hex.EncodeToString(sum[:]) != kat12SHA256Hex {
		t.Fatal("KAT-12 SHA-256 hex mismatch")
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(got) {
		t.Fatalf("MTLS-CB-02: %q is not 43 unpadded base64url characters", got)
	}

	// Negatives (ADV-90, THUMB-12, THUMB-14): each wrong computation yields
	// the documented value, and none of them is accepted as the binding.
	s1 := sha1.Sum(c.Raw)
	spki := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	pemText := sha256.Sum256(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	jwk := jose.JSONWebKey{Key: c.PublicKey}
	jkt, err := jwk.Thumbprint(crypto256)
	if err != nil {
		t.Fatal(err)
	}
	negatives := []struct {
		name, computed, documented string
	}{
		{"ADV-90/sha1", b64u(s1[:]), kat12SHA1},
		{"ADV-90/spki", b64u(spki[:]), kat12SPKI},
		{"ADV-90/pem text", b64u(pemText[:]), kat12PEMText},
		{"THUMB-14/jwk thumbprint", b64u(jkt), kat12JKT},
	}
	for _, n := range negatives {
		t.Run(n.name, func(t *testing.T) {
			t.Parallel()
			if n.computed != n.documented {
				t.Fatalf("computed %s, KAT-12 documents %s", n.computed, n.documented)
			}
			if ThumbprintEqual(got, n.computed) {
				t.Fatal("negative thumbprint equals the certificate thumbprint")
			}
			if err := CheckBinding(c, n.computed); err == nil {
				t.Fatal("binding accepted a wrong thumbprint")
			}
		})
	}
}

func TestThumbprintEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"same", kat12X5t, kat12X5t, true},
		{"THUMB-13/padding appended", kat12X5t, kat12X5t + "=", false},
		{"THUMB-13/trailing space", kat12X5t, kat12X5t + " ", false},
		{"THUMB-13/leading newline", kat12X5t, "\n" + kat12X5t, false},
		{"case differs", kat12X5t, "V68ffgcPn6jdYpBfFY2nP4ShE2Yk-6_Mk5PI9yh6aes", false},
		{"std alphabet", kat12X5t, "v68ffgcPn6jdYpBfFY2nP4ShE2Yk+6/Mk5PI9yh6aes", false},
		{"hex form", kat12X5t, kat12SHA256Hex, false},
		{"both empty", "", "", false},
		{"one empty", kat12X5t, "", false},
		{"KAT-11 compared as string", kat11X5t, kat11X5t, true},
		{"KAT-11 canonical re-encoding differs", kat11X5t, kat11X5t[:42] + "0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ThumbprintEqual(tt.a, tt.b); got != tt.want {
				t.Fatalf("ThumbprintEqual = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestThumbprintNil(t *testing.T) {
	t.Parallel()
	if Thumbprint(nil) != "" || Thumbprint(&x509.Certificate{}) != "" || ThumbprintDER(nil) != "" {
		t.Fatal("empty input must give an empty thumbprint")
	}
}

func TestCheckBinding(t *testing.T) {
	t.Parallel()
	c := kat12Cert(t)
	tests := []struct {
		name    string
		cert    *x509.Certificate
		x5t     string
		wantErr error
	}{
		{"MTLS-CB-09/match (expired cert still binds, MTLS-CB-11)", c, kat12X5t, nil},
		{"MTLS-CB-10/no certificate", nil, kat12X5t, ErrNoCertificate},
		{"MTLS-CB-09/other thumbprint", c, kat12SPKI, ErrCertificateMismatch},
		{"THUMB-13/padded binding", c, kat12X5t + "=", ErrCertificateMismatch},
		{"empty binding", c, "", ErrCertificateMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckBinding(tt.cert, tt.x5t)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errorsIs(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
