// Package replaycache records single-use keys, such as the jti of a DPoP
// proof, so that a replayed request can be refused (RFC 9449 §11.1,
// https://www.rfc-editor.org/rfc/rfc9449#section-11.1).
//
// A [Store] has one method, CheckAndStore, an atomic check-and-insert: the
// first claim of a key is fresh, every later claim before the key expires is
// a replay, and any error means the outcome is unknown and the request must
// be refused (fail closed).
//
// [LRU] is the in-memory Store for a single server instance. Several
// instances behind a load balancer must share one store, or a proof accepted
// by one instance can be replayed at another; package
// github.com/senderbound/senderbound/replaycache/redisstore provides a Store
// backed by Redis for that case. This package imports only the standard
// library and github.com/hashicorp/golang-lru/v2.
//
// # Keys
//
// Keys are fixed-size digests computed by the caller, for DPoP a SHA-256 over
// the proof key's thumbprint and the jti. A tracker that keeps only a digest
// uses bounded memory per entry however long the attacker's jti is
// (RFC 9449 §11.1). Never derive a key from the proof's bytes: ECDSA
// signatures are malleable, so the same proof can be re-encoded with
// different bytes.
//
// [LRU] keeps only the first 64 bits of each digest. Two keys that agree on
// those bits count as one, so a fresh claim is refused as a replay with
// probability at most n/2^64 when n entries are live (5.7e-14 at 2^20
// entries); a collision never makes a replay fresh, and an attacker who
// chooses their own jti and key gains nothing over honest load against a
// victim's unseen random jti. The LRU documentation ("Internal key") gives
// the full reasoning.
//
// # Bounded memory
//
// An [LRU] holds at most Config.Capacity entries. It never evicts a live entry
// to make room (that would let the evicted key be replayed); when full of live
// entries it refuses new claims with [ErrFull]. Expired entries are reclaimed
// by later claims, so memory follows the number of keys claimed within one
// acceptance window, at about 100 to 120 bytes per entry on 64-bit
// platforms (118 at 1,000,000 entries; see Config.Capacity).
//
// # Quotas
//
// A store bounded by capacity can be filled by one client. [Quota] counts
// the claims of each owner (a proof key's thumbprint, a client) over a
// fixed window in bounded memory; callers ask [Quota.Allow] before a claim
// and refuse the request when it reports false. The dpop Verifier takes a
// Quota as its KeyLimiter; the issuer and the resource server configure
// one by default.
//
// # Lost state
//
// A shared store can lose what it recorded (a Redis restart without
// persistence), which would let proofs accepted before the loss be
// accepted again. A [SinceStore] takes, with each claim, the earliest time
// its key can have been claimed (a proof's iat) and, after detecting a
// loss, refuses claims from before it with [ErrStateLost].
//
// # Testing a store
//
// Package github.com/senderbound/senderbound/replaycache/storetest checks
// any Store against this contract (single use, expiry, atomicity under
// concurrency, fail-closed errors); the LRU and the Redis store run it.
//
// # Example
//
//	cache, err := replaycache.NewLRU(replaycache.Config{Capacity: 1 << 20})
//	if err != nil {
//		return err
//	}
//	key := sha256.Sum256(append([]byte(thumbprint+"\x00"), jti...))
//	fresh, err := cache.CheckAndStore(ctx, key, iat.Add(window))
//	if err != nil || !fresh {
//		return errReplayOrUnknown // fail closed
//	}
package replaycache
