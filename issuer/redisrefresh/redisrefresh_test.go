package redisrefresh_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/issuer/redisrefresh"
	"github.com/senderbound/senderbound/issuer/refreshtest"
)

func newStore(tb testing.TB, client redis.UniversalClient, cfg redisrefresh.Config) *redisrefresh.Store {
	tb.Helper()
	s, err := redisrefresh.New(client, cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return s
}

// TestContract runs the RefreshStore contract against stores on one real
// redis-server, each under its own prefix; the unavailable store points at
// a server that was stopped.
func TestContract(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	var n atomic.Int64
	refreshtest.Run(t, refreshtest.Config{
		New: func(t *testing.T) issuer.RefreshStore {
			return newStore(t, srv.Client(), redisrefresh.Config{Prefix: "contract" + strconv.FormatInt(n.Add(1), 10) + ":"})
		},
		NewUnavailable: func(t *testing.T) issuer.RefreshStore {
			down := redistest.Start(t)
			s := newStore(t, down.Client(), redisrefresh.Config{Timeout: 200 * time.Millisecond})
			down.Stop()
			return s
		},
	})
}

// TestContractCluster runs the contract against a one-node Redis Cluster
// through a cluster client.
func TestContractCluster(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "--cluster-enabled", "yes")
	ctx := context.Background()
	if err := srv.Client().Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr}})
	t.Cleanup(func() { _ = cc.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for cc.Set(ctx, "probe", "1", time.Second).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("cluster did not become ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var n atomic.Int64
	refreshtest.Run(t, refreshtest.Config{
		New: func(t *testing.T) issuer.RefreshStore {
			return newStore(t, cc, redisrefresh.Config{Prefix: "cluster" + strconv.FormatInt(n.Add(1), 10) + ":"})
		},
	})
}

// TestStoredForm: the token's value never reaches Redis (only its SHA-256
// names the key), the key carries the prefix, and its TTL follows
// ExpiresAt.
func TestStoredForm(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client()
	s := newStore(t, rdb, redisrefresh.Config{Prefix: "form:"})
	ctx := context.Background()
	id := [32]byte{1, 2, 3}
	if err := s.Put(ctx, id, issuer.RefreshRecord{ClientID: "c", Subject: "s", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := "form:AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if len(keys) != 1 || keys[0] != want {
		t.Fatalf("keys %q, want [%q]", keys, want)
	}
	ttl, err := rdb.PTTL(ctx, want).Result()
	if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("PTTL = %v, %v; want about an hour", ttl, err)
	}
}

// TestFamilyStoredForm: a family member's used marker keeps the record's
// TTL (so markers never outlive their family), a revoked family is one key
// with a TTL until the given time, and a record stored before families
// (plain JSON, no family) is taken with GETDEL semantics: gone, not
// marked.
func TestFamilyStoredForm(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client()
	s := newStore(t, rdb, redisrefresh.Config{Prefix: "fam:"})
	ctx := context.Background()
	id := [32]byte{1, 2, 3}
	key := "fam:AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	exp := time.Now().Add(time.Hour)
	if err := s.Put(ctx, id, issuer.RefreshRecord{ClientID: "c", Subject: "s", Family: "ZmFt", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Take(ctx, id); err != nil {
		t.Fatalf("Take: %v", err)
	}
	val, err := rdb.Get(ctx, key).Result()
	if err != nil || !strings.HasPrefix(val, "U{") {
		t.Fatalf("stored marker = %q, %v", val, err)
	}
	if ttl, err := rdb.PTTL(ctx, key).Result(); err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("marker PTTL = %v, %v; want about an hour", ttl, err)
	}
	if err := s.Revoke(ctx, "ZmFt", exp); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if ttl, err := rdb.PTTL(ctx, "fam:family:ZmFt").Result(); err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("revocation PTTL = %v, %v; want about an hour", ttl, err)
	}
	if err := s.Revoke(ctx, strings.Repeat("f", 129), exp); err == nil {
		t.Fatal("Revoke accepted an oversized family id")
	}

	legacy := [32]byte{4, 5, 6}
	legacyKey := "fam:BAUGAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if err := rdb.Set(ctx, legacyKey, `{"client_id":"c","sub":"s","exp_ns":`+strconv.FormatInt(exp.UnixNano(), 10)+`}`, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if rec, err := s.Take(ctx, legacy); err != nil || rec.Family != "" {
		t.Fatalf("Take of a record without a family = %+v, %v", rec, err)
	}
	if n, err := rdb.Exists(ctx, legacyKey).Result(); err != nil || n != 0 {
		t.Fatalf("a record without a family is still stored after Take: %d, %v", n, err)
	}
}

// TestConfig: negative durations and a nil client are refused.
func TestConfig(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	tests := []struct {
		name   string
		client redis.UniversalClient
		cfg    redisrefresh.Config
		ok     bool
	}{
		{"zero", rdb, redisrefresh.Config{}, true},
		{"nil client", nil, redisrefresh.Config{}, false},
		{"negative timeout", rdb, redisrefresh.Config{Timeout: -1}, false},
		{"negative in-flight", rdb, redisrefresh.Config{MaxInFlight: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := redisrefresh.New(tt.client, tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestMalformedRecord: a value that is not a record is refused as
// unavailable, not read as an unknown token.
func TestMalformedRecord(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client()
	s := newStore(t, rdb, redisrefresh.Config{Prefix: "bad:"})
	ctx := context.Background()
	if err := rdb.Set(ctx, "bad:AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "not json", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(ctx, [32]byte{1, 2, 3})
	if !errors.Is(err, redisrefresh.ErrUnavailable) || errors.Is(err, issuer.ErrTokenNotFound) {
		t.Fatalf("Get = %v, want ErrUnavailable", err)
	}
}
