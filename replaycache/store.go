package replaycache

import (
	"context"
	"time"
)

// Store is a single-use register for replay keys: the first claim of a key
// wins, every later claim of the same key before it expires loses.
//
// CheckAndStore atomically checks whether key was already claimed and, if
// not, records it until at least exp. Its results mean:
//
//   - fresh == true, err == nil: first claim; the caller may accept the
//     request.
//   - fresh == false, err == nil: the key was already claimed and has not
//     expired: a replay, the caller MUST reject the request. A store that
//     keeps only part of each key (the LRU keeps 64 bits) also answers so,
//     with negligible probability, for a fresh key that agrees with a live
//     one on the kept bits: a false rejection, never a false acceptance.
//   - err != nil: the outcome is unknown (store full, unreachable, timed out,
//     context canceled). The caller MUST treat this as a rejection (fail
//     closed) and never accept the request unchecked. fresh is false.
//
// key is a fixed-size digest computed by the caller, for DPoP a SHA-256 over
// the proof key's RFC 7638 thumbprint and the proof's jti. It MUST NOT be
// derived from the proof bytes: ECDSA signatures are malleable, so an
// attacker can make a second valid proof with different bytes. Keying on the
// thumbprint too means one client cannot burn another client's jti values.
//
// exp is the time after which the request that carried key would be refused
// anyway (for DPoP, the end of the proof's acceptance window). Stores keep a
// key at least until exp, plus a store-specific grace margin.
//
// Implementations must be safe for concurrent use by multiple goroutines,
// and among any number of concurrent claims of one key exactly one may report
// fresh == true.
type Store interface {
	CheckAndStore(ctx context.Context, key [32]byte, exp time.Time) (fresh bool, err error)
}

// SinceStore is a [Store] that may lose the keys it recorded (a shared
// store whose server restarts empty) and that detects such a loss. Callers
// that know when the request carrying a key was created pass it as since;
// callers find the capability by type assertion.
//
// CheckAndStoreSince is CheckAndStore for a key that cannot have been
// claimed before since (for DPoP, the proof's iat). When the store has
// detected, at time D, that keys recorded before D are lost, it refuses
// claims with since before D with an error wrapping [ErrStateLost]: their
// key may have been claimed before the loss, and the store can no longer
// tell. Claims with since at or after D are answered as by CheckAndStore.
// A store that never detected a loss behaves exactly like CheckAndStore.
type SinceStore interface {
	Store
	CheckAndStoreSince(ctx context.Context, key [32]byte, since, exp time.Time) (fresh bool, err error)
}

var _ Store = (*LRU)(nil)
