package redisstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/senderbound/senderbound/replaycache/redisstore"
)

// This example needs a Redis server, so it is compiled but not run.
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	store, err := redisstore.New(rdb, redisstore.Config{
		Prefix:  "api.example.com:jti:", // the same on every instance of this API
		Timeout: 200 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}
	// The key is a digest of the proof key's thumbprint and the jti.
	key := sha256.Sum256([]byte("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs\x00e1j3V_bKic8-LAEB"))
	fresh, err := store.CheckAndStore(context.Background(), key, time.Now().Add(5*time.Minute))
	switch {
	case err != nil:
		fmt.Println("replay store unavailable: reject") // fail closed
	case !fresh:
		fmt.Println("replay: reject")
	default:
		fmt.Println("fresh: accept")
	}
}

// A Sentinel-managed primary works the same way: every claim is a single-key
// command sent to the primary.
func ExampleNew_sentinel() {
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    "replay",
		SentinelAddrs: []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"},
	})
	defer rdb.Close()
	if _, err := redisstore.New(rdb, redisstore.Config{}); err != nil {
		panic(err)
	}
}
