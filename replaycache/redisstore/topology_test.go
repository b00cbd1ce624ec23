package redisstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/replaycache/redisstore"
)

// TestClusterClient runs the store through a redis.ClusterClient against a
// real one-node Redis Cluster that owns all 16384 slots: every claim is a
// single-key command, routed by its key's slot.
func TestClusterClient(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "--cluster-enabled", "yes")
	ctx := context.Background()
	admin := srv.Client()
	if err := admin.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := admin.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready: %q, %v", info, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr}})
	defer cc.Close()
	rs1 := newStore(t, cc, redisstore.Config{})
	rs2 := newStore(t, cc, redisstore.Config{})
	exp := time.Now().Add(time.Minute)
	for i := 0; i < 50; i++ { // keys spread over many slots
		k := key("cluster", i)
		if !claim(t, rs1, k, exp) {
			t.Fatalf("DPOP-RS-15: key %d: first claim not fresh", i)
		}
		if claim(t, rs2, k, exp) {
			t.Fatalf("DPOP-RS-15: key %d: replay at the second instance was fresh", i)
		}
	}
	srv.Stop()
	fresh, err := rs1.CheckAndStore(ctx, key("cluster", 1000), exp)
	wantUnavailable(t, fresh, err)
}

// TestFailoverClient runs the store through a Sentinel-managed primary
// (redis.NewFailoverClient), with a real redis-server in sentinel mode.
func TestFailoverClient(t *testing.T) {
	t.Parallel()
	primary := redistest.Start(t)
	_, port, _ := strings.Cut(primary.Addr, ":")
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("sentinel monitor replay 127.0.0.1 %s 1\n", port)), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinel := redistest.Start(t, conf, "--sentinel")
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "replay", SentinelAddrs: []string{sentinel.Addr}})
	defer fc.Close()
	s := newStore(t, fc, redisstore.Config{})
	direct := newStore(t, primary.Client(), redisstore.Config{})
	exp := time.Now().Add(time.Minute)
	k := key("sentinel", 1)
	if !claim(t, s, k, exp) {
		t.Fatal("first claim through Sentinel not fresh")
	}
	if claim(t, direct, k, exp) {
		t.Fatal("DPOP-RS-15: key claimed through Sentinel is fresh at the primary")
	}
	if claim(t, s, k, exp) {
		t.Fatal("DPOP-RS-15: replay through Sentinel was fresh")
	}
}
