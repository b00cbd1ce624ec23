package resource_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// TestRejectionLogLevel: rejections are logged at Debug, one record each
// with the stable reason, so a flood of refused requests writes nothing to
// a log at Info or above; OnReject still counts every one of them.
func TestRejectionLogLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		level    slog.Level
		wantLogs int
	}{
		{"Info handler: no records", slog.LevelInfo, 0},
		{"Debug handler: one record per rejection", slog.LevelDebug, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			var mu sync.Mutex
			var counted atomic.Int64
			e := restest.NewEnv(t, restest.Options{Mod: func(_ *restest.Env, c *resource.Config) {
				c.Logger = slog.New(slog.NewJSONHandler(&syncWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: tc.level}))
				c.OnReject = func(reason string) {
					if reason == "token_malformed" {
						counted.Add(1)
					}
				}
			}})
			const n = 100
			for i := 0; i < n; i++ {
				r := httptest.NewRequest(http.MethodGet, "https://rs.example.test/any", nil)
				r.Header.Set("Authorization", "Bearer INVALID_TOKEN")
				if _, err := e.Verifier.Check(r, anyPolicy); err == nil {
					t.Fatal("invalid token accepted")
				}
			}
			if got := counted.Load(); got != n {
				t.Fatalf("OnReject counted %d of %d rejections", got, n)
			}
			mu.Lock()
			defer mu.Unlock()
			var records int
			dec := json.NewDecoder(&buf)
			for dec.More() {
				var rec map[string]any
				if err := dec.Decode(&rec); err != nil {
					t.Fatal(err)
				}
				records++
				if rec["level"] != "DEBUG" || rec["reason"] != "token_malformed" || rec["status"] != float64(401) {
					t.Fatalf("record = %v, want a DEBUG record with reason token_malformed and status 401", rec)
				}
			}
			if records != tc.wantLogs {
				t.Fatalf("%d log records for %d rejections, want %d", records, n, tc.wantLogs)
			}
		})
	}
}
