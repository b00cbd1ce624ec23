package dpop

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/oautherr"
)

// TestVerifyX5C covers the x5c header member: refused unless the caller
// opts in with Expect.X5C, then required, bounded, and strict padded
// standard base64.
func TestVerifyX5C(t *testing.T) {
	t.Parallel()
	optIn := func(e *Expect) { e.X5C = true }
	std := base64.StdEncoding.EncodeToString
	manyCerts := make([]string, MaxX5C+1)
	for i := range manyCerts {
		manyCerts[i] = "AQID"
	}
	runVerifyCases(t, []verifyCase{
		{name: "x5c without opt-in", edit: setHdr("x5c", []string{"AQID"}), want: ErrInvalidProof, why: rKeyRef},
		{name: "opt-in without x5c", expect: optIn, want: ErrInvalidProof, why: rX5CMissing},
		{name: "opt-in with x5c accepted", edit: setHdr("x5c", []string{"AQID", std([]byte{0xfb, 0xff})}), expect: optIn},
		{name: "eight certificates accepted", edit: setHdr("x5c", manyCerts[:MaxX5C]), expect: optIn},
		{name: "more than MaxX5C certificates", edit: setHdr("x5c", manyCerts), expect: optIn, want: ErrInvalidProof, why: rX5C},
		{name: "empty array", edit: setHdr("x5c", []string{}), expect: optIn, want: ErrInvalidProof, why: rX5C},
		{name: "empty string", edit: setHdr("x5c", []string{""}), expect: optIn, want: ErrInvalidProof, why: rX5C},
		{name: "string instead of array", edit: setHdr("x5c", "AQID"), expect: optIn, want: ErrInvalidProof, why: rX5C},
		{name: "number element", edit: setHdr("x5c", []any{1}), expect: optIn, want: ErrInvalidProof, why: rX5C},
		{name: "base64url alphabet", edit: setHdr("x5c", []string{"-_-_"}), expect: optIn, want: ErrInvalidProof, why: rX5C},
		{name: "unpadded", edit: setHdr("x5c", []string{"AQI"}), expect: optIn, want: ErrInvalidProof, why: rX5C},
		{name: "non-zero trailing bits", edit: setHdr("x5c", []string{"AQJ="}), expect: optIn, want: ErrInvalidProof, why: rX5C},
		{name: "padding inside", edit: setHdr("x5c", []string{"AQ==AQID"}), expect: optIn, want: ErrInvalidProof, why: rX5C},
		{name: "line feed inside", edit: setHdr("x5c", []string{"AQ\nID=="}), expect: optIn, want: ErrInvalidProof, why: rX5C},
		{name: "CR LF pair inside", edit: setHdr("x5c", []string{"AQ\r\nIDAQ"}), expect: optIn, want: ErrInvalidProof, why: rX5C},
		{name: "space inside", edit: setHdr("x5c", []string{"AQ ID==="}), expect: optIn, want: ErrInvalidProof, why: rX5C},
		{name: "certificate over MaxX5CCertBytes", edit: setHdr("x5c", []string{std(make([]byte, MaxX5CCertBytes+1))}), expect: optIn,
			cfg: func(c *Config) { c.MaxProofBytes = 64 << 10 }, want: ErrInvalidProof, why: rX5C},
		{name: "certificate of MaxX5CCertBytes accepted", edit: setHdr("x5c", []string{std(make([]byte, MaxX5CCertBytes))}), expect: optIn,
			cfg: func(c *Config) { c.MaxProofBytes = 64 << 10 }},
		{name: "x5c twice", edit: raw(`{"typ":"dpop+jwt","alg":"ES256","jwk":$JWK,"x5c":["AQID"],"x5c":["AQID"]}`, okPayload), expect: optIn, want: ErrInvalidProof, why: rDuplicate},
		{name: "x5t still refused with opt-in", edit: func(t *testing.T, b *pb) { b.hdr["x5c"] = []string{"AQID"}; b.hdr["x5t#S256"] = "AAAA" }, expect: optIn, want: ErrInvalidProof, why: rKeyRef},
		{name: "x5u still refused with opt-in", edit: func(t *testing.T, b *pb) {
			b.hdr["x5c"] = []string{"AQID"}
			b.hdr["x5u"] = "https://canary.example.test/c"
		}, expect: optIn, want: ErrInvalidProof, why: rKeyRef},
		{name: "x5c inside jwk refused with opt-in", edit: func(t *testing.T, b *pb) { b.hdr["x5c"] = []string{"AQID"}; setJWK("x5c", []string{"AQID"})(t, b) }, expect: optIn, want: ErrInvalidProof, why: rKeyRef},
	})
}

// TestProverX5C checks that a Prover carries a certificate chain in x5c,
// that the verifier returns it decoded, and that a chain for another key
// is refused when the Prover is built.
func TestProverX5C(t *testing.T) {
	t.Parallel()
	k := keys(t)
	ca, err := certs.NewCA(certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(certs.Options{CommonName: "c1", Client: true, Key: k["ES256"]})
	if err != nil {
		t.Fatal(err)
	}
	chain := [][]byte{leaf.Cert.Raw, ca.Cert.Raw}
	now := time.Unix(testNow, 0)
	tests := []struct {
		name    string
		key     string
		chain   [][]byte
		wantErr bool
	}{
		{name: "leaf and CA", key: "ES256", chain: chain},
		{name: "leaf only", key: "ES256", chain: chain[:1]},
		{name: "leaf for another key", key: "ES256b", chain: chain, wantErr: true},
		{name: "empty chain", key: "ES256", chain: [][]byte{}, wantErr: true},
		{name: "not a certificate", key: "ES256", chain: [][]byte{{0x30, 0x00}}, wantErr: true},
		{name: "too many", key: "ES256", chain: make([][]byte, MaxX5C+1), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := NewProver(k[tc.key], &ProverOptions{Now: func() time.Time { return now }, X5C: tc.chain})
			if tc.wantErr {
				if err == nil {
					t.Fatal("NewProver accepted the chain")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			proof, err := p.Proof("GET", testURL, ProofOptions{})
			if err != nil {
				t.Fatal(err)
			}
			v := testVerifier(t, nil)
			if _, err := v.Verify(context.Background(), proof, Expect{Method: "GET", URL: testURL}); !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("without Expect.X5C: got %v, want ErrInvalidProof", err)
			}
			got, err := v.Verify(context.Background(), proof, Expect{Method: "GET", URL: testURL, X5C: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.X5C) != len(tc.chain) {
				t.Fatalf("x5c has %d values, want %d", len(got.X5C), len(tc.chain))
			}
			for i := range tc.chain {
				if !bytes.Equal(got.X5C[i], tc.chain[i]) {
					t.Fatalf("x5c[%d] differs", i)
				}
			}
			if _, err := x509.ParseCertificate(got.X5C[0]); err != nil {
				t.Fatal(err)
			}
			hdr, _ := base64.RawURLEncoding.DecodeString(proof[:strings.IndexByte(proof, '.')])
			if !strings.Contains(string(hdr), `"x5c":["`+base64.StdEncoding.EncodeToString(chain[0])+`"`) {
				t.Fatal("x5c is not standard base64 in the header")
			}
		})
	}
}

// TestX5CEncoded checks that Expect.X5CEncoded followed by DecodeX5C
// accepts and refuses exactly what Expect.X5C alone does, with the same
// error and the same DER values, and that Check in that mode returns the
// strings as sent (JSON escapes undone) without X5C.
func TestX5CEncoded(t *testing.T) {
	t.Parallel()
	std := base64.StdEncoding.EncodeToString
	many := make([]string, MaxX5C+1)
	for i := range many {
		many[i] = "AQID"
	}
	tests := []struct {
		name string
		x5c  any // nil: no x5c member
		raw  string
	}{
		{name: "missing"},
		{name: "one", x5c: []string{"AQID"}},
		{name: "two", x5c: []string{"AQID", std([]byte{0xfb, 0xff})}},
		{name: "eight", x5c: many[:MaxX5C]},
		{name: "nine", x5c: many},
		{name: "empty array", x5c: []string{}},
		{name: "empty string", x5c: []string{""}},
		{name: "not an array", x5c: "AQID"},
		{name: "base64url", x5c: []string{"-_-_"}},
		{name: "unpadded", x5c: []string{"AQI"}},
		{name: "trailing bits", x5c: []string{"AQJ="}},
		{name: "padding inside", x5c: []string{"AQ==AQID"}},
		{name: "line feed", x5c: []string{"AQ\nID=="}},
		{name: "carriage return", x5c: []string{"AQ\rIDAQ"}},
		{name: "space", x5c: []string{"AQ ID==="}},
		{name: "second bad", x5c: []string{"AQID", "AQJ="}},
		{name: "escaped slash", raw: `{"typ":"dpop+jwt","alg":"ES256","jwk":$JWK,"x5c":["+\/8="]}`},
		{name: "over MaxX5CCertBytes", x5c: []string{std(make([]byte, MaxX5CCertBytes+1))}},
		{name: "MaxX5CCertBytes", x5c: []string{std(make([]byte, MaxX5CCertBytes))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newPB(t)
			if tc.x5c != nil {
				b.hdr["x5c"] = tc.x5c
			}
			b.rawHeader = tc.raw
			proof := b.build(t)
			v := testVerifier(t, func(c *Config) { c.MaxProofBytes = 64 << 10 })
			want := defaultExpect()
			want.X5C = true
			decoded, errDecoded := v.Check(proof, want)
			want.X5CEncoded = true
			p, err := v.Check(proof, want)
			if err == nil {
				if p.X5C != nil {
					t.Fatal("X5C set with X5CEncoded")
				}
				var ders [][]byte
				if ders, err = DecodeX5C(p.X5CEncoded); err == nil {
					for i, s := range p.X5CEncoded {
						if std(ders[i]) != s {
							t.Fatalf("value %d is not the string as sent", i)
						}
					}
					p.X5C = ders
				}
			}
			if (err == nil) != (errDecoded == nil) {
				t.Fatalf("encoded then DecodeX5C: %v; decoded by Check: %v", err, errDecoded)
			}
			if err != nil {
				got, _ := reasonOf(err)
				exp, _ := reasonOf(errDecoded)
				if !errors.Is(err, ErrInvalidProof) || got != exp || err.Error() != errDecoded.Error() {
					t.Fatalf("error %v (%s), want %v (%s)", err, got, errDecoded, exp)
				}
				return
			}
			if len(p.X5C) != len(decoded.X5C) {
				t.Fatalf("%d values, want %d", len(p.X5C), len(decoded.X5C))
			}
			for i := range p.X5C {
				if !bytes.Equal(p.X5C[i], decoded.X5C[i]) {
					t.Fatalf("value %d differs", i)
				}
			}
			if decoded.X5CEncoded != nil {
				t.Fatal("X5CEncoded set without the opt-in")
			}
		})
	}
	for _, in := range [][]string{nil, many, {"AQID", ""}} {
		if _, err := DecodeX5C(in); !errors.Is(err, ErrInvalidProof) || !isReason(err, oautherr.ReasonProofX5C) {
			t.Fatalf("DecodeX5C of %d strings = %v", len(in), err)
		}
	}
}

// isReason reports whether err is an *Error with reason r.
func isReason(err error, r oautherr.Reason) bool {
	var e *Error
	return errors.As(err, &e) && e.Reason == r
}
