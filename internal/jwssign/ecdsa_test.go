package jwssign

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
	"testing"
)

// asn1Sig is an independent decoding of an ECDSA-Sig-Value with
// encoding/asn1, used as the oracle for DERToRawECDSA.
func asn1Sig(der []byte, size int) ([]byte, bool) {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &rs)
	if err != nil || len(rest) != 0 || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 8*size || rs.S.BitLen() > 8*size {
		return nil, false
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, true
}

func TestDERToRawECDSA(t *testing.T) {
	t.Parallel()
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		size := (c.Params().BitSize + 7) / 8
		for i := range 200 { // covers short r/s values and P-521's long-form length
			d := sha256.Sum256([]byte{byte(i)})
			der, err := ecdsa.SignASN1(rand.Reader, k, d[:])
			if err != nil {
				t.Fatal(err)
			}
			got, err := DERToRawECDSA(der, size)
			want, _ := asn1Sig(der, size)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: %x -> %x, %v; want %x", c.Params().Name, der, got, err, want)
			}
			// The appending form leaves a prefix alone.
			got, err = appendRawECDSA([]byte("ab"), der, size)
			if err != nil || string(got[:2]) != "ab" || !bytes.Equal(got[2:], want) {
				t.Fatalf("append: %x, %v", got, err)
			}
		}
	}
	bad := map[string][]byte{
		"empty":                   {},
		"not a sequence":          {0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		"length mismatch":         {0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		"trailing byte":           {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00},
		"negative r":              {0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01},
		"zero s":                  {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00},
		"non-minimal r":           {0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01},
		"empty integer":           {0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x01},
		"one integer":             {0x30, 0x03, 0x02, 0x01, 0x01},
		"three integers":          {0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		"long form for short len": {0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		"two-byte long form":      {0x30, 0x82, 0x00, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},
		"r too large":             append([]byte{0x30, 0x26, 0x02, 0x21, 0x01}, append(make([]byte, 32), 0x02, 0x01, 0x01)...),
		"integer length overrun":  {0x30, 0x06, 0x02, 0x05, 0x01, 0x02, 0x01, 0x01},
	}
	for name, der := range bad {
		if out, err := DERToRawECDSA(der, 32); err == nil || out != nil {
			t.Errorf("%s: accepted as %x", name, out)
		}
		if out, err := appendRawECDSA([]byte("ab"), der, 32); err == nil || string(out) != "ab" {
			t.Errorf("%s: append changed dst to %x", name, out)
		}
	}
}

// FuzzDERToRawECDSA checks DERToRawECDSA against encoding/asn1: whatever
// it accepts, the standard decoder reads as the same two integers.
func FuzzDERToRawECDSA(f *testing.F) {
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, uint8(32))
	f.Add([]byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x81, 0x02, 0x01, 0x01}, uint8(32))
	f.Add([]byte{0x30, 0x81, 0x88, 0x02, 0x42}, uint8(66))
	f.Fuzz(func(t *testing.T, der []byte, size uint8) {
		if size == 0 || size > 66 || len(der) > 300 {
			return
		}
		got, err := DERToRawECDSA(der, int(size))
		if err != nil {
			if got != nil {
				t.Fatal("output with error")
			}
			return
		}
		want, ok := asn1Sig(der, int(size))
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("%x: got %x, encoding/asn1 says %x (%v)", der, got, want, ok)
		}
	})
}
