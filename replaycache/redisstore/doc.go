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
// # Topologies
//
// Every claim touches the keys of one Redis slot, so each of these works;
// each is tested against real servers. Give the client a pool large enough
// for the requests in flight (PoolSize) and, with Config.Timeout, a
// deadline per claim.
//
//   - One server: redis.NewClient(&redis.Options{Addr: "redis:6379"}).
//     One epoch key detects a loss of the server's data.
//   - Sentinel: redis.NewFailoverClient(&redis.FailoverOptions{MasterName:
//     "replay", SentinelAddrs: []string{...}}), which always talks to the
//     current primary. Do not set ReplicaOnly or RouteRandomly: claims are
//     writes. A failover to a replica that had not received the latest
//     claims loses them, as a restart without persistence does, and since
//     the epoch key survives on the replica that loss is not detected:
//     keep replication lag small (min-replicas-max-lag) and count the
//     lag as a window in which a proof may be accepted twice.
//   - Redis Cluster: redis.NewClusterClient(&redis.ClusterOptions{Addrs:
//     []string{...}}), seeded with several masters. Do not set ReadOnly,
//     RouteByLatency or RouteRandomly. Keys are spread over 64 hash tags,
//     each with its own epoch key, so claims use up to 64 masters and a
//     loss of one master's data is detected on its tags only; the prefix
//     must contain no brace. While a master is down its claims fail with
//     ErrUnavailable (and, once the cluster marks it failed with
//     cluster-require-full-coverage yes, every claim does) until a replica
//     takes over (with the same undetected-loss window as under
//     Sentinel) or the master returns, empty without persistence, which
//     the epoch keys detect. A Store reads every tag's epoch
//     before its first claim, and fails closed until all masters answer.
//
// A Ring (redis.NewRing) is sharded like a Cluster, but it moves keys
// between shards when one is added or removed, which forgets claims
// undetected; prefer a Cluster.
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
