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

// callCount returns the number of times the server has executed cmd
// (counting calls made from scripts).
func callCount(tb testing.TB, rdb *redis.Client, cmd string) int {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatalf("INFO commandstats: %v", err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls=")
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
// one command, EVALSHA of the claim script with the claim key and the epoch
// key, which the server runs once: one GET of the epoch key and one
// SET <prefix><key> 1 NX PX <ttl>; no pipeline, no second command.
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
	// The first claim creates the epoch key and loads the script.
	if !claim(t, s, key("rt", 0), now.Add(time.Minute)) {
		t.Fatal("warm-up claim not fresh")
	}
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
			sets, gets := callCount(t, stats, "set"), callCount(t, stats, "get")
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
			if len(args) != 8 || fmt.Sprint(args[0], args[2:5]) != fmt.Sprint("evalsha", []any{int64(2), wantKey, prefix + "epoch"}) {
				t.Fatalf("command %v, want [evalsha <sha> 2 %s %sepoch <ttl> <epoch> <new epoch>]", args, wantKey, prefix)
			}
			ttl, ok := args[5].(int64)
			if !ok || ttl < tc.minTTL || ttl > tc.maxTTL {
				t.Fatalf("PX %v, want %d..%d ms", args[5], tc.minTTL, tc.maxTTL)
			}
			if got := callCount(t, stats, "set") - sets; got != 1 {
				t.Fatalf("server executed %d SET commands, want 1", got)
			}
			if got := callCount(t, stats, "get") - gets; got != 1 {
				t.Fatalf("server executed %d GET commands, want 1", got)
			}
		})
	}
}
