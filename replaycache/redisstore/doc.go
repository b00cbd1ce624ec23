// Package redisstore is a [replaycache.Store] backed by Redis, for replay
// protection shared by several resource-server instances (RFC 9449 §11.1,
// https://www.rfc-editor.org/rfc/rfc9449#section-11.1).
//
// With one in-memory cache per instance, a DPoP proof accepted by one
// instance can be replayed at another. A [Store] keeps each claimed key in
// Redis with one atomic SET NX PX, so a key claimed through any instance is a
// replay at every instance that shares the Redis and the key prefix.
//
// The Store fails closed: when Redis is unreachable, slow beyond the deadline,
// full, or answers unexpectedly, CheckAndStore returns an error wrapping
// [ErrUnavailable], and callers refuse the request.
//
// After a Redis restart without persistence (or a flush), the Store
// detects the loss in the same round trip as the next claim and refuses
// proofs issued before it (replaycache.ErrStateLost); see "Loss detection"
// and "Persistence" in the Store documentation for the Redis settings to
// use (appendonly yes, appendfsync always).
//
// Users of the in-memory [replaycache.LRU] only never import this package, so
// they do not depend on go-redis.
//
// # Example
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis.internal:6379"})
//	store, err := redisstore.New(rdb, redisstore.Config{
//		Prefix:  "api.example.com:jti:",
//		Timeout: 200 * time.Millisecond,
//	})
//	if err != nil {
//		return err
//	}
//	fresh, err := store.CheckAndStore(ctx, key, exp)
//	if err != nil || !fresh {
//		return errReplayOrUnknown // fail closed
//	}
package redisstore
