package replaycache_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/internal/benchratio"

	"github.com/senderbound/senderbound/replaycache"
)

var (
	rawVerifyOnce sync.Once
	rawVerifyNs   float64
)

// rawVerifyNsPerOp measures, once per run, one ES256 signature verification
// (crypto/ecdsa P-256 over a SHA-256 digest): the cost every DPoP proof pays
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

// reportRatio reports the measured ns/op as a multiple of a raw signature
// verification. Call it after the timed loop.
func reportRatio(b *testing.B) {
	b.Helper()
	b.StopTimer()
	if b.N == 0 {
		return
	}
	perOp := benchratio.NsPerOp(b)
	b.ReportMetric(perOp/rawVerifyNsPerOp(b), "x-raw")
}

// benchKey returns a distinct digest-like key for each (hi < 2^24, lo < 2^40)
// without SHA-256, so the benchmark measures the cache and not the hash. Like
// a real digest, every 8-byte word differs between keys, the first one too
// (an LRU keeps only the first 8 bytes): each word is a bijective mix of
// hi<<40|lo.
func benchKey(hi, lo uint64) [32]byte {
	x := hi<<40 | lo
	var k [32]byte
	for i := 0; i < 32; i += 8 {
		binary.LittleEndian.PutUint64(k[i:], mix64(x+uint64(i)))
	}
	return k
}

// mix64 is the SplitMix64 finalizer, a bijection on uint64.
func mix64(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// BenchmarkLRUClaimParallel measures fresh claims from all cores. Entries
// live 1 ms (Grace), so the cache runs in a steady state where every claim
// also reclaims expired entries, as under a flood of unique jti values.
func BenchmarkLRUClaimParallel(b *testing.B) {
	for _, bc := range []struct {
		name   string
		shards int
	}{
		{name: "shards=default"},
		{name: "shards=1", shards: 1},
		{name: "shards=4", shards: 4},
		{name: "shards=16", shards: 16},
		{name: "shards=64", shards: 64},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rawVerifyNsPerOp(b)
			c, err := replaycache.NewLRU(replaycache.Config{Capacity: 1 << 20, Shards: bc.shards, Grace: time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			var ids atomic.Uint64
			var failed atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := ids.Add(1)
				ctx := context.Background()
				exp := time.Now()
				for i := uint64(0); pb.Next(); i++ {
					fresh, err := c.CheckAndStore(ctx, benchKey(id, i), exp)
					if err != nil || !fresh {
						failed.Add(1)
					}
				}
			})
			reportRatio(b)
			if n := failed.Load(); n != 0 {
				b.Fatalf("%d claims of distinct keys were refused", n)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
		})
	}
}

// BenchmarkLRUReplay measures the replay path: the key is already held.
func BenchmarkLRUReplay(b *testing.B) {
	rawVerifyNsPerOp(b)
	c, err := replaycache.NewLRU(replaycache.Config{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	k := benchKey(1, 1)
	if fresh, err := c.CheckAndStore(ctx, k, exp); err != nil || !fresh {
		b.Fatal("first claim failed")
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if fresh, err := c.CheckAndStore(ctx, k, exp); err != nil || fresh {
				b.Error("replay not detected")
				return
			}
		}
	})
	reportRatio(b)
}

// BenchmarkLRUMemory fills an LRU with 1,000,000 live entries and reports the
// heap growth per entry ("B/entry"), measured with runtime.MemStats after a
// GC before and after. Run it with -benchtime=1x.
func BenchmarkLRUMemory(b *testing.B) {
	const entries = 1_000_000
	rawVerifyNsPerOp(b)
	b.ReportAllocs()
	var perEntry float64
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		// Headroom: keys spread unevenly over shards, so a shard fills
		// before the whole cache does (see Config.Shards).
		c, err := replaycache.NewLRU(replaycache.Config{Capacity: entries + entries/8})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		exp := time.Now().Add(time.Hour)
		for j := uint64(0); j < entries; j++ {
			if fresh, err := c.CheckAndStore(ctx, benchKey(uint64(i), j), exp); err != nil || !fresh {
				b.Fatalf("claim %d refused: %v", j, err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perEntry = float64(after.HeapAlloc-before.HeapAlloc) / entries
		runtime.KeepAlive(c)
	}
	b.StopTimer()
	b.ReportMetric(perEntry, "B/entry")
	b.ReportMetric(benchratio.NsPerOp(b)/entries/rawVerifyNsPerOp(b), "x-raw")
}

// BenchmarkLRUClaim measures fresh claims from one goroutine in the same
// steady state as BenchmarkLRUClaimParallel.
func BenchmarkLRUClaim(b *testing.B) {
	rawVerifyNsPerOp(b)
	c, err := replaycache.NewLRU(replaycache.Config{Capacity: 1 << 20, Grace: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	exp := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if fresh, err := c.CheckAndStore(ctx, benchKey(0, uint64(i)), exp); err != nil || !fresh {
			b.Fatalf("claim %d refused: %v", i, err)
		}
	}
	reportRatio(b)
}
