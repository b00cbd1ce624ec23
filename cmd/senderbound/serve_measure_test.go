package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeResourceMeasurementFlags checks the serve-resource flags used by
// the HTTP benchmark: --baseline serves GET /baseline without credentials
// (and only with the flag), --cpu-profile writes a gzip-compressed pprof
// profile at shutdown, and --token-cache refuses a negative size.
func TestServeResourceMeasurementFlags(t *testing.T) {
	t.Parallel()
	as := serveStart(t, "serve-issuer", "--addr", "127.0.0.1:0", "--ephemeral-key", "--client", "app:"+serveTestSecret)
	profile := filepath.Join(t.TempDir(), "cpu.pprof")
	plain := &http.Client{Timeout: 10 * time.Second}
	get := func(t *testing.T, method, u string) int {
		t.Helper()
		req, err := http.NewRequest(method, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name   string
		flags  []string
		method string
		want   int
	}{
		{name: "baseline served", flags: []string{"--baseline"}, method: http.MethodGet, want: http.StatusOK},
		{name: "baseline GET only", flags: []string{"--baseline"}, method: http.MethodPost, want: http.StatusMethodNotAllowed},
		{name: "no baseline without the flag", method: http.MethodGet, want: http.StatusNotFound},
		{name: "token cache off", flags: []string{"--token-cache", "0", "--baseline"}, method: http.MethodGet, want: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs := serveStart(t, append([]string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL}, tt.flags...)...)
			if got := get(t, tt.method, rs.URL+"/baseline"); got != tt.want {
				t.Fatalf("%s /baseline = %d, want %d", tt.method, got, tt.want)
			}
			if got := get(t, http.MethodGet, rs.URL+"/resource"); got != http.StatusUnauthorized {
				t.Fatalf("GET /resource without a token = %d, want 401", got)
			}
		})
	}
	t.Run("cpu profile", func(t *testing.T) {
		rs := serveStart(t, "serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--cpu-profile", profile)
		get(t, http.MethodGet, rs.URL+"/resource")
		if code := rs.stop(t); code != 0 {
			t.Fatalf("exit %d: %s", code, rs.stderr)
		}
		b, err := os.ReadFile(profile)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			t.Fatalf("--cpu-profile wrote %d bytes, not a gzip-compressed profile", len(b))
		}
	})
	t.Run("negative token cache", func(t *testing.T) {
		e := serveTestEnv(t, nil)
		var stderr bytes.Buffer
		e.stdout, e.stderr = &bytes.Buffer{}, &stderr
		code := run(t.Context(), e, []string{"serve-resource", "--addr", "127.0.0.1:0", "--issuer", as.URL, "--token-cache", "-1"})
		if code != 2 || !strings.Contains(stderr.String(), "--token-cache must not be negative") {
			t.Fatalf("exit %d, stderr %q; want 2 and the cause", code, stderr.String())
		}
	})
}

// TestServeTokenCacheSize checks how --token-cache maps to
// resource.Config.TokenCacheSize: 0 disables the cache (a negative size),
// which the Config's zero value would not.
func TestServeTokenCacheSize(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ flag, want int }{{0, -1}, {1, 1}, {serveDefaultTokenCache, serveDefaultTokenCache}} {
		if got := serveTokenCacheSize(tt.flag); got != tt.want {
			t.Errorf("serveTokenCacheSize(%d) = %d, want %d", tt.flag, got, tt.want)
		}
	}
}
