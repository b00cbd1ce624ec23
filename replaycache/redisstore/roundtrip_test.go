package redisstore_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/replaycache/redisstore"
)

// The Store is what the dpop verifier consumes.
var _ dpop.ReplayStore = (*redisstore.Store)(nil)

// countingHook records every command and pipeline the client sends.
type countingHook struct {
	mu        sync.Mutex
	cmds      [][]any
	pipelines int
}

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		h.cmds = append(h.cmds, cmd.Args())
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.mu.Lock()
		h.pipelines++
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (h *countingHook) take() ([][]any, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cmds, p := h.cmds, h.pipelines
	h.cmds, h.pipelines = nil, 0
	return cmds, p
}

// setCalls returns the number of SET commands the server has executed.
func setCalls(tb testing.TB, rdb *redis.Client) int {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatalf("INFO commandstats: %v", err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		rest, ok := strings.CutPrefix(line, "cmdstat_set:calls=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		if err != nil {
			tb.Fatalf("commandstats line %q: %v", line, err)
		}
		return n
	}
	return 0
}

// TestOneRoundTrip checks that every claim, fresh or replayed, is exactly
// one command, SET <prefix><key> 1 NX PX <ttl>, executed once by the
// server: no pipeline, no read before the write, no second command.
func TestOneRoundTrip(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	stats := srv.Client() // a separate client, so INFO is not counted by the hook
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	hook := &countingHook{}
	rdb.AddHook(hook)
	const prefix = "rt:"
	s := newStore(t, rdb, redisstore.Config{Prefix: prefix, Grace: time.Second})
	now := time.Now()
	tests := []struct {
		name      string
		key       [32]byte
		exp       time.Time
		wantFresh bool
		minTTL    int64 // milliseconds
		maxTTL    int64
	}{
		{name: "fresh claim", key: key("rt", 1), exp: now.Add(time.Minute), wantFresh: true, minTTL: 59_000, maxTTL: 61_000},
		{name: "DPOP-RS-15/replay", key: key("rt", 1), exp: now.Add(time.Minute), minTTL: 59_000, maxTTL: 61_000},
		{name: "expiry already past", key: key("rt", 2), exp: now.Add(-time.Hour), wantFresh: true, minTTL: 1_000, maxTTL: 1_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := setCalls(t, stats)
			hook.take()
			fresh, err := s.CheckAndStore(context.Background(), tc.key, tc.exp)
			if err != nil || fresh != tc.wantFresh {
				t.Fatalf("CheckAndStore = %v, %v; want %v, nil", fresh, err, tc.wantFresh)
			}
			cmds, pipelines := hook.take()
			if len(cmds) != 1 || pipelines != 0 {
				t.Fatalf("claim sent %d commands and %d pipelines, want 1 and 0: %v", len(cmds), pipelines, cmds)
			}
			args := cmds[0]
			wantKey := prefix + base64.RawURLEncoding.EncodeToString(tc.key[:])
			if len(args) != 6 || fmt.Sprint(args[:5]) != fmt.Sprint([]any{"set", wantKey, "1", "nx", "px"}) {
				t.Fatalf("command %v, want [set %s 1 nx px <ttl>]", args, wantKey)
			}
			ttl, ok := args[5].(int64)
			if !ok || ttl < tc.minTTL || ttl > tc.maxTTL {
				t.Fatalf("PX %v, want %d..%d ms", args[5], tc.minTTL, tc.maxTTL)
			}
			if got := setCalls(t, stats) - before; got != 1 {
				t.Fatalf("server executed %d SET commands, want 1", got)
			}
		})
	}
}
