package jwsverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

func TestDecodeB64(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // "" with ok=false means refused
		ok   bool
	}{
		{"YQ", "a", true},
		{"YWI", "ab", true},
		{"YWJj", "abc", true},
		{"YR", "", false},   // non-zero trailing bits
		{"YWJ", "", false},  // non-zero trailing bits
		{"YQ==", "", false}, // padding
		{"Y\nQ", "", false}, // LF, which base64 skips
		{"Y\rQ", "", false}, // CR
		{"Y Q", "", false},
		{"Y+Q", "", false}, // standard alphabet
		{"Y/Q", "", false},
		{"YWJjZ", "", false}, // length 1 mod 4
		{"", "", false},
		{"_-8", "\xff\xef", true},
	}
	for _, tc := range tests {
		dst := make([]byte, base64.RawURLEncoding.DecodedLen(len(tc.in))+1)
		got, ok := DecodeB64(dst, []byte(tc.in))
		if ok != tc.ok || ok && string(got) != tc.want {
			t.Errorf("DecodeB64(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if ok && !IsB64URL([]byte(tc.in)) {
			t.Errorf("IsB64URL(%q) = false for a decodable input", tc.in)
		}
	}
}

// scan runs Top over in and reports the outcome and the flags.
func scan(s Scanner, in string) string {
	s.B = []byte(in)
	ok := s.Top(func([]byte) bool { return s.Skip(1) })
	out := fmt.Sprintf("ok=%v dup=%v nested=%v float=%v", ok, s.Dup, s.NestedDup, s.BadFloat)
	if s.FoldDup {
		out += " fold=true"
	}
	return out
}

func TestScannerModes(t *testing.T) {
	t.Parallel()
	many := func(n int, dupAt int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			name := i
			if i == dupAt {
				name = 0
			}
			fmt.Fprintf(&b, `"m%d":%d`, name, i)
		}
		b.WriteString("}")
		return b.String()
	}
	tests := []struct {
		name string
		s    Scanner
		in   string
		want string
	}{
		{"top duplicate", Scanner{}, `{"a":1,"a":2}`, "ok=false dup=true nested=false float=false"},
		{"escaped duplicate", Scanner{}, `{"a":1,"\u0061":2}`, "ok=false dup=true nested=false float=false"},
		{"case differs", Scanner{}, `{"a":1,"A":2}`, "ok=false dup=false nested=false float=false fold=true"},
		{"nested duplicate", Scanner{}, `{"x":{"a":1,"a":2}}`, "ok=false dup=true nested=false float=false"},
		{"nested duplicate deferred", Scanner{DeferNestedDup: true}, `{"x":[{"a":1,"a":2}]}`, "ok=true dup=false nested=true float=false"},
		{"top duplicate not deferred", Scanner{DeferNestedDup: true}, `{"a":1,"a":2}`, "ok=false dup=true nested=false float=false"},
		{"no duplicate check", Scanner{NoDupCheck: true}, `{"a":1,"a":{"b":1,"b":2}}`, "ok=true dup=false nested=false float=false"},
		{"duplicate after 64 members", Scanner{}, many(200, 150), "ok=false dup=true nested=false float=false"},
		{"200 distinct members", Scanner{}, many(200, -1), "ok=true dup=false nested=false float=false"},
		{"member bound", Scanner{MaxMembers: 64}, many(65, -1), "ok=false dup=false nested=false float=false"},
		{"member bound met", Scanner{MaxMembers: 64}, many(64, -1), "ok=true dup=false nested=false float=false"},
		{"depth bound", Scanner{MaxDepth: 3}, `{"a":[[[1]]]}`, "ok=false dup=false nested=false float=false"},
		{"depth bound met", Scanner{MaxDepth: 3}, `{"a":[[1]]}`, "ok=true dup=false nested=false float=false"},
		{"float range", Scanner{CheckFloat: true}, `{"a":[1e308,-1e400]}`, "ok=true dup=false nested=false float=true"},
		{"long integer in range", Scanner{CheckFloat: true}, `{"a":123456789012345678901234567890}`, "ok=true dup=false nested=false float=false"},
		{"float unchecked", Scanner{}, `{"a":1e400}`, "ok=true dup=false nested=false float=false"},
		{"invalid UTF-8", Scanner{}, "{\"a\":\"\xff\"}", "ok=false dup=false nested=false float=false"},
		{"unpaired surrogate", Scanner{}, `{"a":"\ud800"}`, "ok=false dup=false nested=false float=false"},
		{"surrogate pair", Scanner{}, `{"a":"\ud83d\ude00"}`, "ok=true dup=false nested=false float=false"},
		{"control character", Scanner{}, "{\"a\":\"\x01\"}", "ok=false dup=false nested=false float=false"},
		{"trailing data", Scanner{}, `{} {}`, "ok=false dup=false nested=false float=false"},
		{"leading zero", Scanner{}, `{"a":01}`, "ok=false dup=false nested=false float=false"},
	}
	for _, tc := range tests {
		if got := scan(tc.s, tc.in); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestVerifyPairing(t *testing.T) {
	t.Parallel()
	msg := []byte("header.payload")
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ek, _ := ed25519.GenerateKey(rand.Reader)
	d := sha256.Sum256(msg)
	r, s, _ := ecdsa.Sign(rand.Reader, p256, d[:])
	es := make([]byte, 64)
	r.FillBytes(es[:32])
	s.FillBytes(es[32:])
	rs, _ := rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, d[:])
	psMax, _ := rsa.SignPSS(rand.Reader, rk, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	ps, _ := rsa.SignPSS(rand.Reader, rk, crypto.SHA256, d[:], PSSSaltEqualsHash)
	ed := ed25519.Sign(ek, msg)
	tests := []struct {
		name string
		alg  string
		pub  crypto.PublicKey
		sig  []byte
		pss  *rsa.PSSOptions
		want bool
	}{
		{"ES256", "ES256", &p256.PublicKey, es, nil, true},
		{"ES256 on P-384", "ES256", &p384.PublicKey, es, nil, false},
		{"ES384 on P-256", "ES384", &p256.PublicKey, es, nil, false},
		{"ES256 DER", "ES256", &p256.PublicKey, AppendECDSASig(nil, es[:32], es[32:]), nil, false},
		{"ES256 with RSA key", "ES256", &rk.PublicKey, es, nil, false},
		{"RS256", "RS256", &rk.PublicKey, rs, nil, true},
		{"RS256 as PS256", "PS256", &rk.PublicKey, rs, nil, false},
		{"PS256 hash-length salt", "PS256", &rk.PublicKey, ps, PSSSaltEqualsHash, true},
		{"PS256 max salt, any length", "PS256", &rk.PublicKey, psMax, nil, true},
		{"PS256 max salt, hash length required", "PS256", &rk.PublicKey, psMax, PSSSaltEqualsHash, false},
		{"RS384 over a SHA-256 signature", "RS384", &rk.PublicKey, rs, nil, false},
		{"RS256 short", "RS256", &rk.PublicKey, rs[1:], nil, false},
		{"RS256 with EC key", "RS256", &p256.PublicKey, rs, nil, false},
		{"EdDSA", "EdDSA", ek.Public(), ed, nil, true},
		{"EdDSA short key", "EdDSA", ed25519.PublicKey(ek.Public().(ed25519.PublicKey)[:31]), ed, nil, false},
		{"EdDSA with EC key", "EdDSA", &p256.PublicKey, ed, nil, false},
		{"HS256", "HS256", []byte("k"), ed, nil, false},
		{"none", "none", nil, nil, nil, false},
		{"nil EC key", "ES256", (*ecdsa.PublicKey)(nil), es, nil, false},
		{"nil RSA key", "RS256", (*rsa.PublicKey)(nil), rs, nil, false},
	}
	for _, tc := range tests {
		if got := Verify(tc.alg, tc.pub, msg, tc.sig, tc.pss); got != tc.want {
			t.Errorf("%s: Verify = %v, want %v", tc.name, got, tc.want)
		}
	}
}
