package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

var (
	testKeysOnce sync.Once
	testKeys     map[string]crypto.Signer
)

// testSigner returns a cached key for alg (RSA generation is slow).
func testSigner(t testing.TB, alg string) crypto.Signer {
	t.Helper()
	testKeysOnce.Do(func() {
		testKeys = map[string]crypto.Signer{}
		for _, a := range []string{"ES256", "ES384", "ES512", "EdDSA", "RS256"} {
			var (
				k   crypto.Signer
				err error
			)
			switch a {
			case "ES256":
				k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			case "ES384":
				k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			case "ES512":
				k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
			case "EdDSA":
				_, k, err = ed25519.GenerateKey(rand.Reader)
			case "RS256":
				k, err = rsa.GenerateKey(rand.Reader, 2048)
			}
			if err != nil {
				panic(err)
			}
			testKeys[a] = k
		}
		testKeys["PS256"] = testKeys["RS256"]
	})
	return testKeys[alg]
}

func newES256(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestIssuer(t testing.TB, sk SigningKey, now func() time.Time) *Issuer {
	t.Helper()
	ks, err := NewKeySet(sk)
	if err != nil {
		t.Fatal(err)
	}
	is, err := New(Config{Issuer: "https://as.example.test", Keys: ks, Audience: []string{"https://rs.example.test/resource"}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// parseVerified verifies raw with go-jose (an implementation independent of
// the issuer's signing path) and returns its header and claims.
func parseVerified(t testing.TB, raw string, alg string, pub crypto.PublicKey) (jose.Header, map[string]any) {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	claims := map[string]any{}
	if err := tok.Claims(pub, &claims); err != nil {
		t.Fatalf("verify: %v", err)
	}
	return tok.Headers[0], claims
}

func TestMintAlgorithms(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256"} {
		t.Run("ATV-01/ATV-02/"+alg, func(t *testing.T) {
			t.Parallel()
			signer := testSigner(t, alg)
			clock := &fixedClock{t: time.Unix(1700000000, 0)}
			is := newTestIssuer(t, SigningKey{Signer: signer, Algorithm: alg}, clock.Now)
			tok, err := is.Mint(context.Background(), MintRequest{Subject: "alice", ClientID: "c1", Scope: "read write"})
			if err != nil {
				t.Fatal(err)
			}
			hdr, claims := parseVerified(t, tok.Raw, alg, signer.Public())
			if hdr.Algorithm != alg || hdr.KeyID != tok.KeyID || hdr.ExtraHeaders["typ"] != "at+jwt" {
				t.Fatalf("ATV-03 header = alg %q kid %q typ %v", hdr.Algorithm, hdr.KeyID, hdr.ExtraHeaders["typ"])
			}
			want := map[string]any{
				"iss": "https://as.example.test", "sub": "alice", "aud": "https://rs.example.test/resource",
				"exp": float64(1700000300), "iat": float64(1700000000), "jti": tok.ID,
				"client_id": "c1", "scope": "read write",
			}
			for k, v := range want {
				if claims[k] != v {
					t.Errorf("ATV-04 claim %s = %v, want %v", k, claims[k], v)
				}
			}
			if _, ok := claims["cnf"]; ok {
				t.Error("unbound token carries cnf")
			}
			if tok.Type != "Bearer" {
				t.Errorf("Type = %q", tok.Type)
			}
		})
	}
	t.Run("ATV-14/alg not accepted by verifier outside its key", func(t *testing.T) {
		t.Parallel()
		is := newTestIssuer(t, SigningKey{Signer: testSigner(t, "PS256"), Algorithm: "PS256"}, nil)
		tok, err := is.Mint(context.Background(), MintRequest{Subject: "s", ClientID: "c"})
		if err != nil {
			t.Fatal(err)
		}
		// A PS256 signature must not verify as RS256.
		parts := strings.Split(tok.Raw, ".")
		h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": tok.KeyID, "typ": "at+jwt"})
		forged := base64.RawURLEncoding.EncodeToString(h) + "." + parts[1] + "." + parts[2]
		ft, err := jwt.ParseSigned(forged, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := ft.Claims(testSigner(t, "PS256").Public(), &c); err == nil {
			t.Fatal("PS256 signature verified as RS256")
		}
	})
}

func TestMintBinding(t *testing.T) {
	t.Parallel()
	signer := newES256(t)
	is := newTestIssuer(t, SigningKey{Signer: signer}, nil)
	jkt := "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	x5t := "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" // KAT-11, compared as a string
	tests := []struct {
		name     string
		binding  Binding
		wantErr  error
		wantCnf  map[string]any
		wantType string
	}{
		{name: "ATV-08/jkt", binding: Binding{JKT: jkt}, wantCnf: map[string]any{"jkt": jkt}, wantType: "DPoP"},
		{name: "MTLS-CB-01/KAT-11 x5t#S256", binding: Binding{X5TS256: x5t}, wantCnf: map[string]any{"x5t#S256": x5t}, wantType: "Bearer"},
		{name: "unbound", wantType: "Bearer"},
		{name: "both", binding: Binding{JKT: jkt, X5TS256: x5t}, wantErr: ErrInvalidBinding},
		{name: "short jkt", binding: Binding{JKT: jkt[:42]}, wantErr: ErrInvalidBinding},
		{name: "padded x5t", binding: Binding{X5TS256: x5t[:42] + "="}, wantErr: ErrInvalidBinding},
		{name: "jkt with quote", binding: Binding{JKT: `0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uigu"4I`}, wantErr: ErrInvalidBinding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := is.Mint(context.Background(), MintRequest{Subject: "s", ClientID: "c", Binding: tt.binding})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			_, claims := parseVerified(t, tok.Raw, "ES256", signer.Public())
			got, _ := claims["cnf"].(map[string]any)
			if len(got) != len(tt.wantCnf) {
				t.Fatalf("cnf = %v, want %v", got, tt.wantCnf)
			}
			for k, v := range tt.wantCnf {
				if got[k] != v {
					t.Fatalf("cnf = %v, want %v", got, tt.wantCnf)
				}
			}
			if tok.Type != tt.wantType {
				t.Fatalf("Type = %q, want %q", tok.Type, tt.wantType)
			}
		})
	}
}

func TestMintClaims(t *testing.T) {
	t.Parallel()
	signer := newES256(t)
	clock := &fixedClock{t: time.Unix(1700000000, 0)}
	is := newTestIssuer(t, SigningKey{Signer: signer}, clock.Now)
	for name := range reservedClaims {
		t.Run("reserved/"+name, func(t *testing.T) {
			t.Parallel()
			_, err := is.Mint(context.Background(), MintRequest{Subject: "s", ClientID: "c", Claims: map[string]any{name: "x"}})
			if !errors.Is(err, ErrReservedClaim) {
				t.Fatalf("err = %v, want ErrReservedClaim", err)
			}
		})
	}
	t.Run("extra claims and audiences", func(t *testing.T) {
		t.Parallel()
		tok, err := is.Mint(context.Background(), MintRequest{
			Subject: "s", ClientID: "c", Audience: []string{"https://a.example", "https://b.example"},
			Claims: map[string]any{"tenant": "t1", "roles": []string{"x"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		_, claims := parseVerified(t, tok.Raw, "ES256", signer.Public())
		if claims["tenant"] != "t1" || claims["iss"] != "https://as.example.test" {
			t.Fatalf("claims = %v", claims)
		}
		aud, _ := claims["aud"].([]any)
		if len(aud) != 2 || aud[0] != "https://a.example" || aud[1] != "https://b.example" {
			t.Fatalf("aud = %v", claims["aud"])
		}
	})
	t.Run("unmarshalable extra claim", func(t *testing.T) {
		t.Parallel()
		_, err := is.Mint(context.Background(), MintRequest{Subject: "s", ClientID: "c", Claims: map[string]any{"f": func() {}}})
		if !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing subject or client", func(t *testing.T) {
		t.Parallel()
		for _, r := range []MintRequest{{ClientID: "c"}, {Subject: "s"}, {Subject: "s", ClientID: "c", Audience: []string{"a", ""}}} {
			if _, err := is.Mint(context.Background(), r); !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("err = %v", err)
			}
		}
	})
	t.Run("TTL default and cap", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			ttl  time.Duration
			want int64
		}{{0, 300}, {90 * time.Second, 90}, {48 * time.Hour, 3600}} {
			tok, err := is.Mint(context.Background(), MintRequest{Subject: "s", ClientID: "c", TTL: c.ttl})
			if err != nil {
				t.Fatal(err)
			}
			if got := tok.ExpiresAt.Unix() - tok.IssuedAt.Unix(); got != c.want {
				t.Fatalf("ttl %v: lifetime %d, want %d", c.ttl, got, c.want)
			}
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := is.Mint(ctx, MintRequest{Subject: "s", ClientID: "c"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("jti from Rand", func(t *testing.T) {
		t.Parallel()
		ks, _ := NewKeySet(SigningKey{Signer: signer})
		fixed, err := New(Config{Issuer: "https://as.example.test", Keys: ks, Audience: []string{"a"}, Rand: zeroReader{}})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := fixed.Mint(context.Background(), MintRequest{Subject: "s", ClientID: "c"})
		if err != nil {
			t.Fatal(err)
		}
		if tok.ID != "00000000-0000-4000-8000-000000000000" {
			t.Fatalf("jti = %s", tok.ID)
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	ks, err := NewKeySet(SigningKey{Signer: newES256(t)})
	if err != nil {
		t.Fatal(err)
	}
	good := Config{Issuer: "https://as.example.test", Keys: ks, Audience: []string{"rs"}}
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"good", func(*Config) {}, true},
		{"issuer with path", func(c *Config) { c.Issuer = "https://as.example.test/tenant1" }, true},
		{"ATV-35/http", func(c *Config) { c.Issuer = "http://as.example.test" }, false},
		{"http allowed for tests", func(c *Config) { c.Issuer = "http://127.0.0.1:1"; c.InsecureAllowHTTP = true }, true},
		{"ATV-35/query", func(c *Config) { c.Issuer = "https://as.example.test?x=1" }, false},
		{"ATV-35/empty query", func(c *Config) { c.Issuer = "https://as.example.test?" }, false},
		{"ATV-35/fragment", func(c *Config) { c.Issuer = "https://as.example.test#f" }, false},
		{"no host", func(c *Config) { c.Issuer = "https:///x" }, false},
		{"userinfo", func(c *Config) { c.Issuer = "https://u:p@as.example.test" }, false},
		{"no keys", func(c *Config) { c.Keys = nil }, false},
		{"no audience", func(c *Config) { c.Audience = nil }, false},
		{"empty audience", func(c *Config) { c.Audience = []string{""} }, false},
		{"default above max", func(c *Config) { c.DefaultTTL = 2 * time.Hour }, false},
		{"negative max", func(c *Config) { c.MaxTTL = -time.Second }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tt.edit(&c)
			_, err := New(c)
			if tt.ok && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestSigningKeyValidation(t *testing.T) {
	t.Parallel()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  SigningKey
	}{
		{"no signer", SigningKey{}},
		{"ES384 with P-256", SigningKey{Signer: testSigner(t, "ES256"), Algorithm: "ES384"}},
		{"ES256 with RSA", SigningKey{Signer: testSigner(t, "RS256"), Algorithm: "ES256"}},
		{"RS256 with EC", SigningKey{Signer: testSigner(t, "ES256"), Algorithm: "RS256"}},
		{"EdDSA with EC", SigningKey{Signer: testSigner(t, "ES256"), Algorithm: "EdDSA"}},
		{"HS256", SigningKey{Signer: testSigner(t, "ES256"), Algorithm: "HS256"}},
		{"none", SigningKey{Signer: testSigner(t, "ES256"), Algorithm: "none"}},
		{"RSA 1024", SigningKey{Signer: small}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewKeySet(tt.key); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
	t.Run("inferred algorithm and RFC 7638 kid", func(t *testing.T) {
		t.Parallel()
		for alg, want := range map[string]string{"ES256": "ES256", "ES384": "ES384", "EdDSA": "EdDSA", "RS256": "RS256"} {
			s := testSigner(t, alg)
			k, err := prepareKey(SigningKey{Signer: s})
			if err != nil {
				t.Fatal(err)
			}
			tp, _ := (&jose.JSONWebKey{Key: s.Public()}).Thumbprint(crypto.SHA256)
			if k.alg != want || k.kid != base64.RawURLEncoding.EncodeToString(tp) {
				t.Fatalf("%s: alg %s kid %s", alg, k.alg, k.kid)
			}
		}
	})
}

// opaqueSigner hides the concrete key type, as a KMS or HSM client would.
type opaqueSigner struct {
	pub  crypto.PublicKey
	sign func(io.Reader, []byte, crypto.SignerOpts) ([]byte, error)
}

func (o opaqueSigner) Public() crypto.PublicKey { return o.pub }
func (o opaqueSigner) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.sign(r, d, opts)
}

func TestOpaqueSigner(t *testing.T) {
	t.Parallel()
	inner := newES256(t)
	t.Run("KMS-style signer", func(t *testing.T) {
		t.Parallel()
		is := newTestIssuer(t, SigningKey{Signer: opaqueSigner{pub: inner.Public(), sign: inner.Sign}, KeyID: "kms-1"}, nil)
		tok, err := is.Mint(context.Background(), MintRequest{Subject: "s", ClientID: "c"})
		if err != nil {
			t.Fatal(err)
		}
		hdr, _ := parseVerified(t, tok.Raw, "ES256", inner.Public())
		if hdr.KeyID != "kms-1" {
			t.Fatalf("kid = %q", hdr.KeyID)
		}
	})
	bad := []struct {
		name string
		sig  []byte
		err  error
	}{
		{"signer error", nil, errors.New("hsm offline")},
		{"not DER", []byte{1, 2, 3}, nil},
		{"trailing bytes", append(mustSig(t, inner), 0), nil},
		{"zero r", []byte{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01}, nil},
		{"oversized r", append([]byte{0x30, 0x26, 0x02, 0x21, 0x01}, append(make([]byte, 32), 0x02, 0x01, 0x01)...), nil},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := opaqueSigner{pub: inner.Public(), sign: func(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return tt.sig, tt.err }}
			is := newTestIssuer(t, SigningKey{Signer: s}, nil)
			if tok, err := is.Mint(context.Background(), MintRequest{Subject: "s", ClientID: "c"}); err == nil {
				t.Fatalf("minted %q from a broken signer", tok.Raw)
			}
		})
	}
}

func mustSig(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	d := sha256.Sum256([]byte("x"))
	s, err := k.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	clock := &fixedClock{t: time.Unix(1700000000, 0)}
	k1, k2, k3 := newES256(t), newES256(t), newES256(t)
	is := newTestIssuer(t, SigningKey{Signer: k1, KeyID: "k1"}, clock.Now)
	ks := is.Keys()
	if err := ks.Rotate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Rotate without next: %v", err)
	}
	if err := ks.AddNext(SigningKey{Signer: k2, KeyID: "k1"}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("duplicate kid: %v", err)
	}
	old, err := is.Mint(context.Background(), MintRequest{Subject: "s", ClientID: "c", TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.AddNext(SigningKey{Signer: k2, KeyID: "k2"}); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(is.JWKSHandler(time.Minute))
	t.Cleanup(srv.Close)
	fetch := func() (jose.JSONWebKeySet, *http.Response) {
		t.Helper()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		return set, resp
	}
	kids := func(set jose.JSONWebKeySet) string {
		var s []string
		for _, k := range set.Keys {
			if !k.IsPublic() {
				t.Fatal("JWKS publishes a private key")
			}
			s = append(s, k.KeyID)
		}
		return strings.Join(s, ",")
	}
	set, resp := fetch()
	if got := kids(set); got != "k2,k1" {
		t.Fatalf("next key not published before it signs: %s", got)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=60" {
		t.Fatalf("Cache-Control = %q", cc)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
		t.Fatalf("Content-Type = %q", ct)
	}

	if err := ks.Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := ks.AddNext(SigningKey{Signer: k3, KeyID: "k1"}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("kid of a retired key reused: %v", err)
	}
	if err := ks.AddNext(SigningKey{Signer: k3, KeyID: "k3"}); err != nil {
		t.Fatal(err)
	}
	nt, err := is.Mint(context.Background(), MintRequest{Subject: "s", ClientID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if nt.KeyID != "k2" || ks.ActiveKeyID() != "k2" {
		t.Fatalf("after rotation signed with %s", nt.KeyID)
	}
	// The old token still verifies through the published JWKS.
	verifyWith := func(set jose.JSONWebKeySet, raw string) error {
		jt, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			return err
		}
		keys := set.Key(jt.Headers[0].KeyID)
		if len(keys) != 1 {
			return errors.New("kid not published")
		}
		var c map[string]any
		return jt.Claims(keys[0].Key, &c)
	}
	set, _ = fetch()
	if got := kids(set); got != "k3,k2,k1" {
		t.Fatalf("after rotation: %s", got)
	}
	if err := verifyWith(set, old.Raw); err != nil {
		t.Fatalf("pre-rotation token: %v", err)
	}
	clock.Advance(10 * time.Minute) // exactly at exp: still published
	set, _ = fetch()
	if err := verifyWith(set, old.Raw); err != nil {
		t.Fatalf("pre-rotation token at exp: %v", err)
	}
	clock.Advance(time.Second)
	set, _ = fetch()
	if got := kids(set); got != "k3,k2" {
		t.Fatalf("retired key still published after its last token expired: %s", got)
	}
	if err := verifyWith(set, old.Raw); err == nil {
		t.Fatal("retired key still verifies")
	}

	t.Run("method not allowed", func(t *testing.T) {
		resp, err := http.Post(srv.URL, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

func TestParseSigningKey(t *testing.T) {
	t.Parallel()
	k := newES256(t)
	jwk, err := json.Marshal(jose.JSONWebKey{Key: k, Algorithm: "ES256", KeyID: "file-key"})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ParseSigningKey(jwk)
	if err != nil {
		t.Fatal(err)
	}
	if sk.KeyID != "file-key" || sk.Algorithm != "ES256" {
		t.Fatalf("got %+v", sk)
	}
	pub, _ := json.Marshal(jose.JSONWebKey{Key: k.Public()})
	if _, err := ParseSigningKey(pub); err == nil {
		t.Fatal("public JWK accepted as signing key")
	}
	if _, err := ParseSigningKey([]byte("garbage")); err == nil {
		t.Fatal("garbage accepted")
	}
}
