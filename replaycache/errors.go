package replaycache

import "errors"

// ErrFull reports a claim refused because the shard its key belongs to holds
// only unexpired entries. An [LRU] never forgets a live entry to make room,
// since that would let the forgotten key be replayed; it refuses the new
// claim instead. Callers treat ErrFull like any other [Store] error: reject
// the request (fail closed). A steady stream of ErrFull means Capacity is too
// small for the request rate times the acceptance window, or the server is
// being flooded with unique keys.
var ErrFull = errors.New("replaycache: store full of unexpired entries")
