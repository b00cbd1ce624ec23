package redisrefresh_test

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/issuer/redisrefresh"
	"github.com/senderbound/senderbound/replaycache/redisstore"
)

// Every instance of one issuer shares the refresh tokens and the replay
// store through one Redis. This example needs a Redis server and an
// issuer, so it is compiled but not run.
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	refresh, err := redisrefresh.New(rdb, redisrefresh.Config{
		Prefix:  "as.example.com:refresh:", // the same on every instance of this issuer
		Timeout: 200 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}
	replay, err := redisstore.New(rdb, redisstore.Config{Prefix: "as.example.com:jti:"})
	if err != nil {
		panic(err)
	}
	var is *issuer.Issuer             // the issuer, the same identifier and keys everywhere
	var clients issuer.ClientRegistry // the same clients everywhere
	_ = issuer.ServerConfig{Issuer: is, Clients: clients, RefreshTokens: refresh, ReplayStore: replay}
}
