package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/keyfile"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache"
)

// cliRFC7638Thumbprint is the RFC 7638 §3.1 thumbprint of cliRFC7517RSAKey.
const cliRFC7638Thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

// cliRFC7517RSAKey is the RSA key of RFC 7517 Appendix A.2 (published, so
// its thumbprint is a known answer); cliRFC7638PublicKey is its public part
// exactly as RFC 7638 §3.1 prints it.
const (
	cliRFC7517RSAKey    = `{"kty":"RSA","kid":"2011-04-29","alg":"RS256","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","d":"X4cTteJY_gn4FYPsXB8rdXix5vwsg1FLN5E3EaG6RJoVH-HLLKD9M7dx5oo7GURknchnrRweUkC7hT5fJLM0WbFAKNLWY2vv7B6NqXSzUvxT0_YSfqijwp3RTzlBaCxWp4doFk5N2o8Gy_nHNKroADIkJ46pRUohsXywbReAdYaMwFs9tv8d_cPVY3i07a3t8MN6TNwm0dSawm9v47UiCl3Sk5ZiG7xojPLu4sbg1U2jx4IBTNBznbJSzFHK66jT8bgkuqsk0GjskDJk19Z4qwjwbsnn4j2WBii3RL-Us2lGVkY8fkFzme1z0HbIkfz0Y6mqnOYtqc0X4jfcKoAC8Q","p":"83i-7IvMGXoMXCskv73TKr8637FiO7Z27zv8oj6pbWUQyLPQBQxtPVnwD20R-60eTDmD2ujnMt5PoqMrm8RfmNhVWDtjjMmCMjOpSXicFHj7XOuVIYQyqVWlWEh6dN36GVZYk93N8Bc9vY41xy8B9RzzOGVQzXvNEvn7O0nVbfs","q":"3dfOR9cuYq-0S-mkFLzgItgMEfFzB2q3hWehMuG0oCuqnb3vobLyumqjVZQO1dIrdwgTnCdpYzBcOfW5r370AFXjiWft_NGEiovonizhKpo9VVS78TzFgxkIdrecRezsZ-1kYd_s1qDbxtkDEgfAITAG9LUnADun4vIcb6yelxk"}`
	cliRFC7638PublicKey = `{
     "kty": "RSA",
     "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
     "e": "AQAB",
     "alg": "RS256",
     "kid": "2011-04-29"
    }`
)

// cliRun runs one command line in-process with stdin as standard input and
// returns the exit status and the two output streams.
func cliRun(t testing.TB, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

// cliMustRun runs a command line that must succeed and returns its stdout.
func cliMustRun(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	code, out, errs := cliRun(t, stdin, args...)
	if code != 0 {
		t.Fatalf("senderbound %s: exit %d, stderr %q", strings.Join(args, " "), code, errs)
	}
	return out
}

// cliWriteFile writes data to dir/name and returns the path.
func cliWriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// cliVerifier returns a DPoP verifier accepting algs with a fresh replay
// cache and, when nonces is set, requiring its nonces.
func cliVerifier(t testing.TB, nonces dpop.NonceSource, algs ...string) *dpop.Verifier {
	t.Helper()
	store, err := replaycache.NewLRU(replaycache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := dpop.NewVerifier(dpop.Config{Algorithms: algs, ReplayStore: store, Nonces: nonces})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestKeygenRoundTrip(t *testing.T) {
	t.Parallel()
	for _, alg := range keyfile.Algorithms {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			keyPath := filepath.Join(dir, "key.jwk")
			code, out, errs := cliRun(t, "", "keygen", "--alg", alg, "--out", keyPath)
			if code != 0 || out != "" || !strings.Contains(errs, keyPath) {
				t.Fatalf("keygen: exit %d, stdout %q, stderr %q", code, out, errs)
			}
			st, err := os.Stat(keyPath)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
			}
			data, err := os.ReadFile(keyPath)
			if err != nil {
				t.Fatal(err)
			}
			var jwk jose.JSONWebKey
			if err := json.Unmarshal(data, &jwk); err != nil {
				t.Fatal(err)
			}
			if jwk.IsPublic() || jwk.Algorithm != alg || jwk.Use != "sig" {
				t.Fatalf("JWK: public %v, alg %q, use %q", jwk.IsPublic(), jwk.Algorithm, jwk.Use)
			}
			want, err := dpop.Thumbprint(&jwk)
			if err != nil {
				t.Fatal(err)
			}
			if jwk.KeyID != want {
				t.Errorf("kid %q, want thumbprint %q", jwk.KeyID, want)
			}

			if got := strings.TrimSpace(cliMustRun(t, "", "thumbprint", keyPath)); got != want {
				t.Errorf("thumbprint FILE = %q, want %q", got, want)
			}
			if got := strings.TrimSpace(cliMustRun(t, string(data), "thumbprint", "-")); got != want {
				t.Errorf("thumbprint - = %q, want %q", got, want)
			}

			const target = "https://rs.example.test/orders"
			proof := strings.TrimSpace(cliMustRun(t, "", "proof", "--key", keyPath, "--method", "GET", "--url", target))
			p, err := cliVerifier(t, nil, alg).Verify(context.Background(), proof, dpop.Expect{Method: "GET", URL: target, JKT: want})
			if err != nil {
				t.Fatalf("proof does not verify: %v", err)
			}
			if p.Algorithm != alg {
				t.Errorf("proof alg %q, want %q", p.Algorithm, alg)
			}
		})
	}
}

func TestKeygenStdout(t *testing.T) {
	t.Parallel()
	code, out, errs := cliRun(t, "", "keygen")
	if code != 0 || errs != "" {
		t.Fatalf("keygen: exit %d, stderr %q", code, errs)
	}
	k, err := keyfile.Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if k.Algorithm != "ES256" {
		t.Errorf("default alg %q, want ES256", k.Algorithm)
	}
}

func TestKeygenFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	existing := cliWriteFile(t, dir, "existing.jwk", []byte("keep me"))
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"help", []string{"keygen", "-h"}, 0, "Usage: senderbound keygen"},
		{"unknown alg", []string{"keygen", "--alg", "HS256"}, 2, `--alg "HS256" is not one of ES256, ES384, ES512, EdDSA, PS256, RS256`},
		{"unknown flag", []string{"keygen", "--bits", "2048"}, 2, "flag provided but not defined"},
		{"stray argument", []string{"keygen", "extra"}, 2, `unexpected argument "extra"`},
		{"empty out", []string{"keygen", "--out", ""}, 2, "--out needs a non-empty value"},
		{"force without out", []string{"keygen", "--force"}, 2, "--force needs --out"},
		{"existing file", []string{"keygen", "--out", existing}, 1, "already exists; pass --force"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, errs := cliRun(t, "", tt.args...)
			if code != tt.wantCode || !strings.Contains(errs, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errs, tt.wantCode, tt.wantErr)
			}
		})
	}
	t.Run("existing file untouched", func(t *testing.T) {
		t.Parallel()
		p := cliWriteFile(t, t.TempDir(), "k.jwk", []byte("keep me"))
		if code, _, _ := cliRun(t, "", "keygen", "--out", p); code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		if b, _ := os.ReadFile(p); string(b) != "keep me" {
			t.Fatalf("existing file overwritten: %q", b)
		}
	})
	t.Run("force narrows mode", func(t *testing.T) {
		t.Parallel()
		p := cliWriteFile(t, t.TempDir(), "k.jwk", []byte("old"))
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		cliMustRun(t, "", "keygen", "--out", p, "--force")
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("replaced key mode %v, want 0600", st.Mode().Perm())
		}
		if _, err := keyfile.Load(p); err != nil {
			t.Fatalf("replaced key does not load: %v", err)
		}
	})
}

func TestThumbprintKnownAnswer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		in   string
	}{
		{"RFC 7638 public key on stdin", []string{"thumbprint"}, cliRFC7638PublicKey},
		{"RFC 7638 public key with -", []string{"thumbprint", "-"}, cliRFC7638PublicKey},
		{"RFC 7517 private key file", []string{"thumbprint", cliWriteFile(t, dir, "rsa.jwk", []byte(cliRFC7517RSAKey))}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := strings.TrimSpace(cliMustRun(t, tt.in, tt.args...)); got != cliRFC7638Thumbprint {
				t.Fatalf("thumbprint %q, want %q", got, cliRFC7638Thumbprint)
			}
		})
	}
}

func TestThumbprintCertificateAndPEMKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, err := certs.NewCA(certs.Options{CommonName: "thumbprint test CA"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(certs.Options{CommonName: "client1", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.WriteDir(dir); err != nil { // cert.pem holds the leaf then the CA
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(leaf.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPath := cliWriteFile(t, dir, "pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	jkt, err := dpop.Thumbprint(&jose.JSONWebKey{Key: leaf.Key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want string
	}{
		{"leaf certificate with chain", filepath.Join(dir, certs.LeafCertFile), mtlsbound.Thumbprint(leaf.Cert)},
		{"PKCS#8 private key", filepath.Join(dir, certs.LeafKeyFile), jkt},
		{"PKIX public key", pubPath, jkt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := strings.TrimSpace(cliMustRun(t, "", "thumbprint", tt.path)); got != tt.want {
				t.Fatalf("thumbprint %q, want %q", got, tt.want)
			}
		})
	}
}

func TestThumbprintRejects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		in       string
		wantCode int
		wantErr  string
	}{
		{"empty input", []string{"thumbprint"}, "", 1, "neither a JWK nor PEM"},
		{"garbage", []string{"thumbprint", "-"}, "hello", 1, "neither a JWK nor PEM"},
		{"invalid JSON", []string{"thumbprint"}, "{not json", 1, "invalid JWK"},
		{"symmetric JWK", []string{"thumbprint"}, `{"kty":"oct","k":"c2VjcmV0"}`, 1, "no asymmetric key"},
		{"other PEM block", []string{"thumbprint"}, string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte{1}})), 1, `PEM block "X509 CRL"`},
		{"broken certificate", []string{"thumbprint"}, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}})), 1, "invalid certificate"},
		{"missing file", []string{"thumbprint", filepath.Join(dir, "nope")}, "", 1, "no such file"},
		{"two arguments", []string{"thumbprint", "a", "b"}, "", 2, `unexpected argument "b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errs := cliRun(t, tt.in, tt.args...)
			if code != tt.wantCode || !strings.Contains(errs, tt.wantErr) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errs, tt.wantCode, tt.wantErr)
			}
			if tt.wantCode == 1 && strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Errorf("error is not one line: %q", errs)
			}
		})
	}
}
