package redistest_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/senderbound/senderbound/internal/redistest"
)

func TestStartStopRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	if !strings.HasPrefix(srv.Addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q, want 127.0.0.1:port", srv.Addr)
	}
	ctx := context.Background()
	rdb := srv.Client()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", srv.URL(), err)
	}
	viaURL := redis.NewClient(opt)
	defer viaURL.Close()
	if got, err := viaURL.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET via URL = %q, %v; want v", got, err)
	}

	srv.Stop()
	srv.Stop() // idempotent
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := rdb.Ping(short).Err(); err == nil {
		t.Fatal("PING succeeded after Stop")
	}

	srv.Restart()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if err := rdb.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("GET after Restart = %v, want redis.Nil (no persistence)", err)
	}
}

func TestServersAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := redistest.Start(t), redistest.Start(t)
	if a.Addr == b.Addr {
		t.Fatalf("two servers share %s", a.Addr)
	}
	ctx := context.Background()
	if err := a.Client().Set(ctx, "only-a", "1", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if err := b.Client().Get(ctx, "only-a").Err(); err != redis.Nil {
		t.Fatalf("GET on other server = %v, want redis.Nil", err)
	}
}

// recorder is a testing.TB that records Skip and Fatal instead of acting on
// the real test, so the missing-binary paths can be checked.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped = true
	r.msg = sprint(args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	runtime.Goexit()
}

func sprint(args ...any) string {
	var b strings.Builder
	for _, a := range args {
		if s, ok := a.(string); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}

// TestMissingBinary cannot run in parallel: it changes PATH.
func TestMissingBinary(t *testing.T) {
	tests := []struct {
		name        string
		require     string
		wantSkipped bool
		wantFailed  bool
	}{
		{name: "skip by default", require: "", wantSkipped: true},
		{name: "skip unless exactly 1", require: "yes", wantSkipped: true},
		{name: "fail when required", require: "1", wantFailed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			t.Setenv(redistest.RequireEnv, tt.require)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				redistest.Start(r)
				t.Error("Start returned without redis-server on PATH")
			}()
			<-done
			if r.skipped != tt.wantSkipped || r.failed != tt.wantFailed {
				t.Fatalf("skipped, failed = %v, %v; want %v, %v", r.skipped, r.failed, tt.wantSkipped, tt.wantFailed)
			}
			if r.skipped && !strings.Contains(r.msg, "apt-get install redis-server") {
				t.Fatalf("skip message %q does not say how to install redis-server", r.msg)
			}
		})
	}
}

func TestRestartRunning(t *testing.T) {
	t.Parallel()
	r := &recorder{TB: t}
	srv := redistest.Start(r)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Restart()
		t.Error("Restart of a running server returned")
	}()
	<-done
	if !r.failed {
		t.Fatal("Restart of a running server did not fail the test")
	}
	// The server that was running is untouched.
	if err := srv.Client().Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
}
