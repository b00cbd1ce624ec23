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
