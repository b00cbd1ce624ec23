// Package redisrefresh is an [issuer.RefreshStore] backed by Redis, for
// refresh tokens shared by several instances of one issuer: a refresh token
// issued by one instance can be redeemed at any other, and only once, and
// a redeemed token replayed at any instance revokes its family at all of
// them (reuse detection, see [issuer.RefreshStore]).
//
// It follows the conventions of replaycache/redisstore: a [Config] whose
// zero value selects every default, a key prefix, one round trip per
// operation (two for Get and Take of a family member, which also read the
// family's revocation), and fail closed: when Redis is unreachable, slow beyond the
// deadline or answers unexpectedly, every method returns an error wrapping
// [ErrUnavailable] (never issuer.ErrTokenNotFound), and the token endpoint
// answers 503 temporarily_unavailable.
//
// Users of the in-memory issuer.MemoryRefreshStore never import this
// package, so the issuer package does not depend on go-redis.
//
// # Example
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis.internal:6379"})
//	refresh, err := redisrefresh.New(rdb, redisrefresh.Config{Prefix: "as.example.com:refresh:"})
//	if err != nil {
//		return err
//	}
//	srv, err := issuer.NewServer(issuer.ServerConfig{
//		Issuer: is, Clients: registry, RefreshTokens: refresh,
//		ReplayStore: replay, // a replaycache/redisstore.Store on the same Redis
//	})
package redisrefresh
