package redisstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/internal/benchratio"

	"github.com/redis/go-redis/v9"
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/replaycache/redisstore"
)

var (
	rawVerifyOnce sync.Once
	rawVerifyNs   float64
)

// rawVerifyNsPerOp measures, once per run, one ES256 signature verification
// (crypto/ecdsa P-256 over a SHA-256 digest), the cost every DPoP proof pays
// anyway, against which the replay check is reported as "x-raw".
func rawVerifyNsPerOp(b *testing.B) float64 {
	b.Helper()
	rawVerifyOnce.Do(func() {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		digest := sha256.Sum256([]byte("header.payload"))
		sig, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
		if err != nil {
			b.Fatal(err)
		}
		// testing.Benchmark cannot run inside a benchmark, so time a
		// fixed span by hand.
		rawVerifyNs = benchratio.BestNs(1, 200*time.Millisecond, func() {
			if !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig) {
				b.Fatal("verify failed")
			}
		})
	})
	return rawVerifyNs
}

// BenchmarkRedisClaimParallel measures fresh claims from many concurrent
// callers sharing one client, against one local redis-server and against a
// local 3-master Redis Cluster (through a ClusterClient).
func BenchmarkRedisClaimParallel(b *testing.B) {
	type topology struct {
		name   string
		client func(b *testing.B) redis.UniversalClient
	}
	topologies := []topology{
		{name: "single", client: func(b *testing.B) redis.UniversalClient {
			srv := redistest.Start(b)
			return redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 64})
		}},
		{name: "cluster3", client: func(b *testing.B) redis.UniversalClient {
			cluster := redistest.StartCluster(b, 3)
			addrs := make([]string, len(cluster.Nodes))
			for i, n := range cluster.Nodes {
				addrs[i] = n.Addr
			}
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: 64})
		}},
	}
	for _, top := range topologies {
		for _, bc := range []struct {
			name        string
			parallelism int
		}{
			{name: "callers=2xGOMAXPROCS", parallelism: 2},
			{name: "callers=16xGOMAXPROCS", parallelism: 16},
		} {
			b.Run(top.name+"/"+bc.name, func(b *testing.B) {
				benchClaims(b, top.client(b), bc.parallelism)
			})
		}
	}
}

// benchClaims runs fresh claims of distinct keys through client from
// parallelism×GOMAXPROCS callers.
func benchClaims(b *testing.B, client redis.UniversalClient, parallelism int) {
	raw := rawVerifyNsPerOp(b)
	defer client.Close()
	s := newStore(b, client, redisstore.Config{Grace: time.Second})
	var ids, failed atomic.Uint64
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := ids.Add(1)
		ctx := context.Background()
		exp := time.Now()
		var k [32]byte
		binary.LittleEndian.PutUint64(k[8:], id)
		for i := uint64(0); pb.Next(); i++ {
			binary.LittleEndian.PutUint64(k[:], i)
			fresh, err := s.CheckAndStore(ctx, k, exp)
			if err != nil || !fresh {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	if n := failed.Load(); n != 0 {
		b.Fatalf("%d claims of distinct keys failed", n)
	}
	perOp := benchratio.NsPerOp(b)
	b.ReportMetric(perOp/raw, "x-raw")
	b.ReportMetric(1e9/perOp, "claims/s")
}
