package dpop

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/oautherr"
)

var nqchar = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)

func secret(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// clock is an adjustable test clock.
type clock struct{ t atomic.Int64 }

func newClock(unix int64) *clock { c := &clock{}; c.t.Store(unix); return c }
func (c *clock) now() time.Time  { return time.Unix(c.t.Load(), 0) }
func (c *clock) add(d time.Duration) {
	c.t.Add(int64(d / time.Second))
}

func mustNonces(t *testing.T, cfg NonceConfig) *Nonces {
	t.Helper()
	n, err := NewNonces(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNonces(t *testing.T) {
	t.Parallel()
	clk := newClock(testNow)
	rs := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(1)}, Label: "https://rs.example.test", Now: clk.now})
	good, err := rs.NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	if !nqchar.MatchString(good) {
		t.Fatalf("DPOP-AS-18: %q is not 1*NQCHAR", good)
	}
	otherLabel := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(1)}, Label: "https://as.example.test", Now: clk.now})
	otherSecret := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(2)}, Label: "https://rs.example.test", Now: clk.now})
	rotated := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(2), secret(1)}, Label: "https://rs.example.test", Now: clk.now})
	fromAS, _ := otherLabel.NewNonce()
	changed := []byte(good)
	changed[20] ^= 0x01
	if changed[20] == '-' || changed[20] == '_' || !isB64URL(changed[20:21]) {
		changed[20] = 'A'
	}
	tests := []struct {
		name  string
		src   *Nonces
		nonce string
		ok    bool
	}{
		{"valid", rs, good, true},
		{"DPOP-AS-21/other label", rs, fromAS, false},
		{"other secret", otherSecret, good, false},
		{"rotation: old secret still verifies", rotated, good, true},
		{"ADV-80/one character changed", rs, string(changed), false},
		{"ADV-80/outside NQCHAR", rs, good[:10] + "\"" + good[11:], false},
		{"ADV-80/empty", rs, "", false},
		{"ADV-80/padded", rs, good + "=", false},
		{"ADV-80/truncated", rs, good[:len(good)-1], false},
		{"ADV-82/client-chosen", rs, "eyJ7S_zG.eyJH0-Z.HX4w-7v", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.src.CheckNonce(tc.nonce)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckNonce = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrUseNonce) {
				t.Fatalf("error %v does not wrap ErrUseNonce", err)
			}
			if err != nil && tc.nonce != "" && strings.Contains(err.Error(), tc.nonce) {
				t.Fatal("error echoes the nonce")
			}
		})
	}
}

func TestNonceExpiryAndDue(t *testing.T) {
	t.Parallel()
	clk := newClock(testNow)
	n := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(3)}, Label: "rs", Lifetime: 90 * time.Second, Now: clk.now})
	v, _ := n.NewNonce()
	if n.Due(v) {
		t.Fatal("fresh nonce is due")
	}
	clk.add(61 * time.Second) // 29 s left < 30 s
	if err := n.CheckNonce(v); err != nil {
		t.Fatalf("nonce expired early: %v", err)
	}
	if !n.Due(v) {
		t.Fatal("nonce with less than a third of its lifetime left is not due")
	}
	clk.add(29 * time.Second)
	if err := n.CheckNonce(v); !errors.Is(err, ErrUseNonce) {
		t.Fatalf("ADV-80/expired nonce: %v", err)
	}
	if !n.Due(v) || !n.Due("garbage") {
		t.Fatal("invalid nonces must be due")
	}
	// A nonce minted by a clock far ahead is refused.
	ahead := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(3)}, Label: "rs", Lifetime: 90 * time.Second, Now: func() time.Time { return clk.now().Add(time.Hour) }})
	fut, _ := ahead.NewNonce()
	if err := n.CheckNonce(fut); !errors.Is(err, ErrUseNonce) {
		t.Fatalf("far-future nonce accepted: %v", err)
	}
}

func TestNoncesUnpredictable(t *testing.T) {
	t.Parallel()
	n := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(4)}, Label: "rs", Now: fixedClock(testNow)})
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		v, err := n.NewNonce()
		if err != nil {
			t.Fatal(err)
		}
		if seen[v] {
			t.Fatal("DPOP-AS-15/ADV-81: repeated nonce under a fixed clock")
		}
		seen[v] = true
	}
	// Same clock and same salt source give the same nonce only when the
	// salt repeats: proves the salt is what varies.
	fixed := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(4)}, Label: "rs", Now: fixedClock(testNow), Rand: bytes.NewReader(make([]byte, 64))})
	a, _ := fixed.NewNonce()
	fixed2 := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(4)}, Label: "rs", Now: fixedClock(testNow), Rand: bytes.NewReader(make([]byte, 64))})
	b, _ := fixed2.NewNonce()
	if a != b {
		t.Fatal("nonce depends on something besides clock, salt, label and secret")
	}
	bad := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(4)}, Label: "rs", Rand: bytes.NewReader(nil)})
	if _, err := bad.NewNonce(); err == nil {
		t.Fatal("salt read failure ignored")
	}
}

func TestNewNoncesConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  NonceConfig
	}{
		{"no secrets", NonceConfig{Label: "rs"}},
		{"short secret", NonceConfig{Secrets: [][]byte{make([]byte, 31)}, Label: "rs"}},
		{"no label", NonceConfig{Secrets: [][]byte{secret(1)}}},
		{"negative lifetime", NonceConfig{Secrets: [][]byte{secret(1)}, Label: "rs", Lifetime: -time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewNonces(tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	// The secret is copied.
	s := secret(9)
	n := mustNonces(t, NonceConfig{Secrets: [][]byte{s}, Label: "rs"})
	v, _ := n.NewNonce()
	rand.Read(s)
	if err := n.CheckNonce(v); err != nil {
		t.Fatal("secret not copied at construction")
	}
}

func TestVerifyWithNonces(t *testing.T) {
	t.Parallel()
	clk := newClock(testNow)
	n := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(5)}, Label: "https://rs.example.test", Now: clk.now})
	other := mustNonces(t, NonceConfig{Secrets: [][]byte{secret(5)}, Label: "https://as.example.test", Now: clk.now})
	good, _ := n.NewNonce()
	foreign, _ := other.NewNonce()
	cfg := func(c *Config) { c.Nonces = n }
	runVerifyCases(t, []verifyCase{
		{name: "ERR-14/no nonce", cfg: cfg, want: ErrUseNonce, why: rNonceMissing},
		{name: "ERR-15/wrong nonce", edit: setCl("nonce", "eyJ7S_zG.eyJH0-Z.HX4w-7v"), cfg: cfg, want: ErrUseNonce, why: rNonceStale},
		{name: "DPOP-AS-21/nonce of another server", edit: setCl("nonce", foreign), cfg: cfg, want: ErrUseNonce, why: rNonceStale},
		{name: "ADV-80/nonce as number", edit: setCl("nonce", 12), cfg: cfg, want: ErrUseNonce, why: rNonceStale},
		{name: "ADV-80/nonce as object", edit: setCl("nonce", map[string]any{"n": good}), cfg: cfg, want: ErrUseNonce, why: rNonceStale},
		{name: "ADV-80/nonce as null", edit: setCl("nonce", nil), cfg: cfg, want: ErrUseNonce, why: rNonceMissing},
		{name: "ADV-80/nonce as number without a nonce source", edit: setCl("nonce", 12), want: ErrInvalidProof, why: rClaimType},
		{name: "ADV-80/nonce outside NQCHAR without a nonce source", edit: setCl("nonce", "a\"b"), want: ErrInvalidProof, why: rClaimType},
		{name: "valid nonce", edit: setCl("nonce", good), cfg: cfg},
	})
	// Signature failures win over nonce failures.
	b := newPB(t)
	b.key = keys(t)["ES256b"]
	_, err := testVerifier(t, cfg).Verify(context.Background(), b.build(t), defaultExpect())
	if !errors.Is(err, ErrInvalidProof) || Code(err) != oautherr.InvalidDPoPProof {
		t.Fatalf("bad signature without nonce: %v", err)
	}
	if Code(errNonceBad) != oautherr.UseDPoPNonce {
		t.Fatal("nonce errors must map to use_dpop_nonce")
	}
}

// TestSetNonce checks the response headers a fresh nonce travels in: one
// DPoP-Nonce field, never cacheable.
func TestSetNonce(t *testing.T) {
	t.Parallel()
	h := http.Header{"Dpop-Nonce": {"old", "older"}, "Cache-Control": {"max-age=60"}}
	SetNonce(h, "eyJ7S_zG.eyJH0-Z.HX4w-7v")
	if v := h.Values("DPoP-Nonce"); len(v) != 1 || v[0] != "eyJ7S_zG.eyJH0-Z.HX4w-7v" {
		t.Errorf("DPoP-Nonce = %q, want the one new nonce", v)
	}
	if v := h.Values("Cache-Control"); len(v) != 1 || v[0] != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", v)
	}
}
