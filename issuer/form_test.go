package issuer

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func TestParseFormBody(t *testing.T) {
	t.Parallel()
	const ct = "application/x-www-form-urlencoded"
	tests := []struct {
		name    string
		ct      string
		body    string
		want    map[string]string
		wantErr error
	}{
		{name: "ok", ct: ct, body: "grant_type=client_credentials&scope=a+b", want: map[string]string{"grant_type": "client_credentials", "scope": "a b"}},
		{name: "charset utf-8", ct: ct + "; charset=UTF-8", body: "a=1", want: map[string]string{"a": "1"}},
		{name: "empty value is omitted", ct: ct, body: "a=&b=2", want: map[string]string{"b": "2"}},
		{name: "repeated parameter", ct: ct, body: "scope=a&scope=b", wantErr: ErrInvalidRequest},
		{name: "repeated empty parameter", ct: ct, body: "a=&a=", wantErr: ErrInvalidRequest},
		{name: "json body", ct: "application/json", body: `{"a":1}`, wantErr: ErrInvalidRequest},
		{name: "no content type", ct: "", body: "a=1", wantErr: ErrInvalidRequest},
		{name: "latin-1", ct: ct + "; charset=iso-8859-1", body: "a=1", wantErr: ErrInvalidRequest},
		{name: "bad escape", ct: ct, body: "a=%zz", wantErr: ErrInvalidRequest},
		{name: "semicolon", ct: ct, body: "a=1;b=2", wantErr: ErrInvalidRequest},
		{name: "invalid UTF-8", ct: ct, body: "a=%ff", wantErr: ErrInvalidRequest},
		{name: "control character", ct: ct, body: "a=%0d%0a", wantErr: ErrInvalidRequest},
		{name: "NUL in name", ct: ct, body: "a%00=1", wantErr: ErrInvalidRequest},
		{name: "oversized value", ct: ct, body: "a=" + strings.Repeat("x", maxParamBytes+1), wantErr: ErrInvalidRequest},
		{name: "oversized body", ct: ct, body: strings.Repeat("a", maxFormBytes+1), wantErr: ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := parseFormBody(tt.ct, strings.NewReader(tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if f != nil {
					t.Fatal("non-nil form on error")
				}
				if strings.Contains(err.Error(), tt.body) && tt.body != "" {
					t.Fatal("error echoes the body")
				}
				return
			}
			if len(f) != len(tt.want) {
				t.Fatalf("form = %v, want %v", f, tt.want)
			}
			for k, v := range tt.want {
				if f[k] != v {
					t.Fatalf("form = %v, want %v", f, tt.want)
				}
			}
		})
	}
}

func TestParseBasic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		header     string
		id, secret string
		wantErr    error
	}{
		{name: "RFC 6749 example", header: "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW", id: "s6BhdRkqt3", secret: "gX1fBat3bV"},
		{name: "scheme case-insensitive", header: "bAsIc czZCaGRSa3F0MzpnWDFmQmF0M2JW", id: "s6BhdRkqt3", secret: "gX1fBat3bV"},
		{name: "form-encoded colon in id", header: formatBasic("a:b", "s%c"), id: "a:b", secret: "s%c"},
		{name: "colon in secret", header: "Basic " + b64("id:se:cret"), id: "id", secret: "se:cret"},
		{name: "bearer scheme", header: "Bearer abc", wantErr: errNoBasic},
		{name: "no credentials", header: "Basic", wantErr: errNoBasic},
		{name: "not base64", header: "Basic !!!", wantErr: ErrInvalidClient},
		{name: "canonical padded base64", header: "Basic YTpiYw==", id: "a", secret: "bc"},
		{name: "non-canonical padding bits", header: "Basic YTpiYx==", wantErr: ErrInvalidClient},
		{name: "missing padding", header: "Basic YTpiYw", wantErr: ErrInvalidClient},
		{name: "no colon", header: "Basic " + b64("idsecret"), wantErr: ErrInvalidClient},
		{name: "empty id", header: "Basic " + b64(":secret"), wantErr: ErrInvalidClient},
		{name: "empty secret", header: "Basic " + b64("id:"), wantErr: ErrInvalidClient},
		{name: "bad escape", header: "Basic " + b64("id%zz:secret"), wantErr: ErrInvalidClient},
		{name: "control in id", header: "Basic " + b64("i%0Ad:secret"), wantErr: ErrInvalidClient},
		{name: "oversized", header: "Basic " + strings.Repeat("A", 5000), wantErr: ErrInvalidClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, secret, err := parseBasic(tt.header)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if id != tt.id || secret != tt.secret {
				t.Fatalf("got %q %q", id, secret)
			}
		})
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// FuzzBasicAuth checks that parseBasic never panics, returns nothing on
// error, and round-trips what formatBasic produces.
func FuzzBasicAuth(f *testing.F) {
	f.Add("Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW", "s6BhdRkqt3", "gX1fBat3bV")
	f.Add("Basic Og==", "a:b", "c%d")
	f.Add("basic  YTpi", "", "x")
	f.Add("Bearer x", "id", "\x00")
	f.Fuzz(func(t *testing.T, header, id, secret string) {
		// Long inputs add no coverage (the size cap is unit-tested) and make
		// the engine's minimization of interesting inputs crawl.
		if len(header) > 512 || len(id) > 128 || len(secret) > 128 {
			return
		}
		gotID, gotSecret, err := parseBasic(header)
		if err != nil && (gotID != "" || gotSecret != "") {
			t.Fatal("values returned with an error")
		}
		if err == nil && (gotID == "" || gotSecret == "" || !validText(gotID) || !validText(gotSecret)) {
			t.Fatal("accepted empty or invalid credentials")
		}
		if err != nil && !errors.Is(err, errNoBasic) && !errors.Is(err, ErrInvalidClient) {
			t.Fatalf("unexpected error class %v", err)
		}
		gotID, gotSecret, err = parseBasic(formatBasic(id, secret))
		ok := id != "" && secret != "" && validText(id) && validText(secret)
		if ok != (err == nil) {
			t.Fatalf("round trip of %q %q: %v", id, secret, err)
		}
		if ok && (gotID != id || gotSecret != secret) {
			t.Fatalf("round trip changed %q %q into %q %q", id, secret, gotID, gotSecret)
		}
	})
}

// FuzzTokenForm checks that the token request body parser never panics,
// returns no form on error, and never returns an empty or invalid value.
func FuzzTokenForm(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "grant_type=client_credentials&scope=read")
	f.Add("application/x-www-form-urlencoded; charset=utf-8", "grant_type=refresh_token&refresh_token=abc&client_id=c")
	f.Add("application/x-www-form-urlencoded", "a=1&a=2")
	f.Add("application/x-www-form-urlencoded", "a=%ff;b")
	f.Add("multipart/form-data; boundary=x", "--x--")
	f.Fuzz(func(t *testing.T, ct, body string) {
		// The size caps are unit-tested; long inputs only slow minimization.
		if len(ct) > 128 || len(body) > 512 {
			return
		}
		fm, err := parseFormBody(ct, strings.NewReader(body))
		if err != nil {
			if fm != nil {
				t.Fatal("form returned with an error")
			}
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("unexpected error class %v", err)
			}
			return
		}
		for k, v := range fm {
			if v == "" || !validText(k) || !validText(v) || len(v) > maxParamBytes {
				t.Fatalf("invalid parameter accepted: %q=%q", k, v)
			}
		}
	})
}

// FuzzTokenEndpoint drives the whole token endpoint (form, client
// authentication including client assertions, DPoP header handling, grant
// dispatch) with hostile input and checks the response invariants: no
// panic, no 5xx, JSON with no-store, never an echo of the input.
func FuzzTokenEndpoint(f *testing.F) {
	h := fuzzServer(f, nil).TokenHandler()
	f.Add("grant_type=client_credentials&scope=read", formatBasic("conf", "conf-secret-ATTACKER-0123456789"), "")
	f.Add("grant_type=refresh_token&client_id=pub&refresh_token=ATTACKER", "", "ATTACKER.x.y")
	f.Add("grant_type=client_credentials&client_id=jwtc&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=eyJhbGciOiJub25lIn0.eyJzdWIiOiJqd3RjIn0.", "", "")
	f.Add("grant_type=ATTACKER&client_id=pub", "Basic QVRUQUNLRVI6eA==", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.ATTACKER")
	f.Fuzz(func(t *testing.T, body, authz, proof string) {
		if len(body) > 2048 || len(authz) > 512 || len(proof) > 1024 {
			return
		}
		req := httptest.NewRequest(http.MethodPost, "https://as.example.test/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authz != "" {
			req.Header["Authorization"] = []string{authz}
		}
		if proof != "" {
			req.Header["Dpop"] = []string{proof}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for hostile input: %s", rec.Code, rec.Body)
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatal("response without no-store")
		}
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("not JSON: %q", rec.Body)
		}
		if rec.Code != http.StatusOK && strings.Contains(rec.Body.String(), "ATTACKER") {
			t.Fatalf("input echoed: %s", rec.Body)
		}
	})
}

// fuzzServer is the server the endpoint fuzz targets drive: clients
// "conf" (client_secret_basic), "pub" (none) and "jwtc" (private_key_jwt),
// with cfg edited by edit when set.
func fuzzServer(f *testing.F, edit func(*ServerConfig)) *Server {
	f.Helper()
	ks, err := NewKeySet(SigningKey{Signer: newES256(f)})
	if err != nil {
		f.Fatal(err)
	}
	is, err := New(Config{Issuer: "https://as.example.test", Keys: ks, Audience: []string{"https://rs.example.test"}})
	if err != nil {
		f.Fatal(err)
	}
	reg, err := NewMemoryRegistry(
		Client{ID: "conf", AuthMethod: AuthSecretBasic, SecretHash: HashSecret("conf-secret-ATTACKER-0123456789"), Scopes: []string{"read"}},
		Client{ID: "pub", AuthMethod: AuthNone},
		Client{ID: "jwtc", AuthMethod: AuthPrivateKeyJWT, JWKS: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: newES256(f).Public(), KeyID: "k"}}}},
	)
	if err != nil {
		f.Fatal(err)
	}
	cfg := ServerConfig{ReplayStore: testReplay(f, is), Issuer: is, Clients: reg}
	if edit != nil {
		edit(&cfg)
	}
	s, err := NewServer(cfg)
	if err != nil {
		f.Fatal(err)
	}
	return s
}
