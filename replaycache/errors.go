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

// ErrStateLost reports a claim refused because the store detected that it
// lost the keys it had recorded (for example a Redis server restarted
// without persistence) and the request may have been issued, and its key
// claimed, before the loss. Callers reject the request; the client recovers
// by sending a new request (for DPoP, a new proof), which is issued after
// the loss and claimed normally.
//
// Every error wrapping ErrStateLost also matches, with errors.As, the
// interface
//
//	interface{ ReplayStateLost() bool }
//
// so that packages which do not import replaycache (such as the dpop
// package) can recognise it without a dependency.
var ErrStateLost error = stateLostError{}

type stateLostError struct{}

func (stateLostError) Error() string {
	return "replaycache: recorded keys were lost; a request issued before the loss is refused"
}

// ReplayStateLost reports true; see [ErrStateLost].
func (stateLostError) ReplayStateLost() bool { return true }
