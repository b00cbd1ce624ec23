package pubkey

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"math/big"
	"testing"
)

// Reference Edwards arithmetic over math/big, independent of the list
// under test.

type point struct{ x, y *big.Int }

func mod(v *big.Int) *big.Int { return v.Mod(v, fieldP) }

func inv(v *big.Int) *big.Int { return new(big.Int).ModInverse(v, fieldP) }

// add is the complete twisted Edwards addition law for a = −1.
func add(p, q point) point {
	x1y2 := new(big.Int).Mul(p.x, q.y)
	y1x2 := new(big.Int).Mul(p.y, q.x)
	y1y2 := new(big.Int).Mul(p.y, q.y)
	x1x2 := new(big.Int).Mul(p.x, q.x)
	t := mod(new(big.Int).Mul(curveD, new(big.Int).Mul(x1x2, y1y2)))
	x := new(big.Int).Mul(new(big.Int).Add(x1y2, y1x2), inv(mod(new(big.Int).Add(big.NewInt(1), t))))
	y := new(big.Int).Mul(new(big.Int).Add(y1y2, x1x2), inv(mod(new(big.Int).Sub(big.NewInt(1), t))))
	return point{mod(x), mod(y)}
}

func isIdentity(p point) bool { return p.x.Sign() == 0 && p.y.Cmp(big.NewInt(1)) == 0 }

// decodeX returns the x with x² = (y²−1)/(d·y²+1), or nil.
func decodeX(y *big.Int) *big.Int {
	y2 := mod(new(big.Int).Mul(y, y))
	u := mod(new(big.Int).Sub(y2, big.NewInt(1)))
	v := mod(new(big.Int).Add(new(big.Int).Mul(curveD, y2), big.NewInt(1)))
	a := mod(new(big.Int).Mul(u, inv(v)))
	e := new(big.Int).Add(fieldP, big.NewInt(3))
	e.Rsh(e, 3)
	x := new(big.Int).Exp(a, e, fieldP)
	if mod(new(big.Int).Mul(x, x)).Cmp(a) != 0 {
		// multiply by sqrt(−1) = 2^((p−1)/4)
		i := new(big.Int).Exp(big.NewInt(2), new(big.Int).Rsh(new(big.Int).Sub(fieldP, big.NewInt(1)), 2), fieldP)
		x = mod(x.Mul(x, i))
		if mod(new(big.Int).Mul(x, x)).Cmp(a) != 0 {
			return nil
		}
	}
	return x
}

func leToInt(b [32]byte) *big.Int {
	var be [32]byte
	for i := range be {
		be[i] = b[31-i]
	}
	return new(big.Int).SetBytes(be[:])
}

func intToLE(v *big.Int) [32]byte {
	var be, le [32]byte
	v.FillBytes(be[:])
	for i := range le {
		le[i] = be[31-i]
	}
	return le
}

// TestSmallOrderListIsTheTorsionSubgroup derives the list from first
// principles: every listed y gives points P with [8]P = identity, and the
// listed y values give eight distinct points, which is all of them (the
// curve group is cyclic of order 8·ℓ).
func TestSmallOrderListIsTheTorsionSubgroup(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, enc := range smallOrderY {
		y := leToInt(enc)
		if y.Cmp(fieldP) >= 0 {
			t.Fatalf("listed y %x is not canonical", enc)
		}
		x := decodeX(y)
		if x == nil {
			t.Fatalf("listed y %x is not on the curve", enc)
		}
		for _, xs := range []*big.Int{x, mod(new(big.Int).Neg(x))} {
			p := point{xs, y}
			q := p
			for range 3 {
				q = add(q, q)
			}
			if !isIdentity(q) {
				t.Errorf("[8]P is not the identity for y %x", enc)
			}
			seen[p.x.String()+","+p.y.String()] = true
		}
	}
	if len(seen) != 8 {
		t.Fatalf("the list gives %d distinct points, want 8", len(seen))
	}
}

// TestSmallOrderForgery shows why the rule exists: for the identity as a
// public key, R = identity and S = 0 verify for every message.
func TestSmallOrderForgery(t *testing.T) {
	t.Parallel()
	pub := make([]byte, 32)
	pub[0] = 1
	sig := make([]byte, 64)
	sig[0] = 1
	for _, msg := range []string{"a", "any message at all", ""} {
		if !ed25519.Verify(pub, []byte(msg), sig) {
			t.Fatalf("crypto/ed25519 no longer accepts the identity forgery; the rule stays, the test needs another witness")
		}
	}
	if err := Ed25519(pub); !errors.Is(err, ErrEd25519SmallOrder) {
		t.Fatalf("Ed25519(identity) = %v, want ErrEd25519SmallOrder", err)
	}
}

func TestEd25519(t *testing.T) {
	t.Parallel()
	type tc struct {
		name string
		key  []byte
		want error
	}
	var tests []tc
	for i, enc := range smallOrderY {
		for _, sign := range []byte{0, 0x80} {
			k := enc
			k[31] |= sign
			tests = append(tests, tc{name: "small order " + string(rune('0'+i)) + " sign " + string(rune('0'+sign>>7)), key: k[:], want: ErrEd25519SmallOrder})
		}
	}
	// Every non-canonical encoding y + p (y = 0..18), both signs: the
	// small-order ones (y = 0, 1) included.
	for y := int64(0); y < 19; y++ {
		for _, sign := range []byte{0, 0x80} {
			k := intToLE(new(big.Int).Add(fieldP, big.NewInt(y)))
			k[31] |= sign
			tests = append(tests, tc{name: "non-canonical", key: k[:], want: ErrEd25519NonCanonical})
		}
	}
	// p − 1 is canonical (and small order); p − 2 is canonical: refused
	// or accepted on its own merits, never as non-canonical.
	pm1 := intToLE(new(big.Int).Sub(fieldP, big.NewInt(1)))
	tests = append(tests, tc{name: "p-1", key: pm1[:], want: ErrEd25519SmallOrder})
	// A y with no curve point.
	for y := int64(2); ; y++ {
		if decodeX(big.NewInt(y)) == nil {
			k := intToLE(big.NewInt(y))
			tests = append(tests, tc{name: "not on curve", key: k[:], want: ErrEd25519NotOnCurve})
			break
		}
	}
	rfc8037, _ := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	tests = append(tests,
		tc{name: "RFC 8037 A.2", key: rfc8037},
		tc{name: "short", key: make([]byte, 31), want: ErrEd25519Size},
		tc{name: "long", key: make([]byte, 33), want: ErrEd25519Size},
	)
	for range 8 {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tests = append(tests, tc{name: "generated", key: pub})
	}
	for _, tc := range tests {
		if err := Ed25519(tc.key); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: Ed25519(%x) = %v, want %v", tc.name, tc.key, err, tc.want)
		}
		want := tc.want
		if want == ErrEd25519NotOnCurve {
			want = nil // left to the signature check
		}
		if err := Ed25519Encoding(tc.key); !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("%s: Ed25519Encoding(%x) = %v, want %v", tc.name, tc.key, err, want)
		}
	}
}

func TestRSA(t *testing.T) {
	t.Parallel()
	bits := func(n int) *big.Int { // an odd modulus of exactly n bits
		v := new(big.Int).Lsh(big.NewInt(1), uint(n-1))
		return v.SetBit(v, 0, 1)
	}
	tests := []struct {
		name string
		n    *big.Int
		e    int
		want error
	}{
		{"2048, 65537", bits(2048), 65537, nil},
		{"4096, 65537", bits(4096), 65537, nil},
		{"3072, 3", bits(3072), 3, nil},
		{"1024", bits(1024), 65537, ErrRSASize},
		{"2047", bits(2047), 65537, ErrRSASize},
		{"4097", bits(4097), 65537, ErrRSASize},
		{"8192", bits(8192), 65537, ErrRSASize},
		{"nil modulus", nil, 65537, ErrRSASize},
		{"even modulus", new(big.Int).Lsh(big.NewInt(1), 2047), 65537, ErrRSAModulus},
		{"e 65539", bits(2048), 65539, ErrRSAExponent},
		{"e 2^31-1", bits(2048), 1<<31 - 1, ErrRSAExponent},
		{"e even", bits(2048), 65536, ErrRSAExponent},
		{"e 1", bits(2048), 1, ErrRSAExponent},
		{"e 0", bits(2048), 0, ErrRSAExponent},
		{"e negative", bits(2048), -65537, ErrRSAExponent},
	}
	for _, tc := range tests {
		if err := RSA(tc.n, tc.e); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: RSA = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	offCurve := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).Add(ec.X, big.NewInt(1)), Y: ec.Y}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	identity := make(ed25519.PublicKey, 32)
	identity[0] = 1
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pub  any
		want error
	}{
		{"P-256", &ec.PublicKey, nil},
		{"P-224", &ec224.PublicKey, ErrECDSA},
		{"off curve", offCurve, ErrECDSA},
		{"nil ecdsa", (*ecdsa.PublicKey)(nil), ErrKeyType},
		{"Ed25519", edPub, nil},
		{"Ed25519 identity", identity, ErrEd25519SmallOrder},
		{"RSA 2048", &rsaKey.PublicKey, nil},
		{"RSA e 2^31-1", &rsa.PublicKey{N: rsaKey.N, E: 1<<31 - 1}, ErrRSAExponent},
		{"nil rsa", (*rsa.PublicKey)(nil), ErrKeyType},
		{"ed25519 private", edPriv, ErrKeyType},
		{"rsa private", rsaKey, ErrKeyType},
		{"x25519", x.PublicKey(), ErrKeyType},
		{"nil", nil, ErrKeyType},
	}
	for _, tc := range tests {
		if err := Check(tc.pub); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: Check = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func BenchmarkEd25519(b *testing.B) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	b.Run("Encoding", func(b *testing.B) {
		for b.Loop() {
			if Ed25519Encoding(pub) != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("Full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if Ed25519(pub) != nil {
				b.Fatal("refused")
			}
		}
	})
}
