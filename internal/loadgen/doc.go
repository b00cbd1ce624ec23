// Package loadgen is the engine of the "senderbound load" command: a load
// generator for resources protected by sender-constrained tokens, which
// signs a fresh DPoP proof for every request and answers nonce
// challenges as a real client does.
//
// # Running
//
// [Run] takes a [Config]: the target, an *http.Client (TLS, client
// certificate, keep-alive), an [Authorizer] for the mode ([NoAuth],
// [Bearer], [DPoP]), the number of workers, an optional fixed rate, and a
// duration or request count, so that every run ends by itself. It sends one
// uncounted warm-up request first, then the load, and returns a [Result]:
// requests per second, latency percentiles from a log-linear histogram,
// outcomes by status and WWW-Authenticate error code, and CPU use.
//
// A run stops early, with a one-line error, when no request of the first
// [Config.FailAfter] succeeds, or when [Config.StopAfterErrors] transport
// failures come in a row; an unreachable target fails the warm-up.
//
// # DPoP proofs
//
// [DPoP] keeps a pool of proofs signed ahead of need by background
// goroutines with a dpop.Prover. Each proof carries ath for the token and
// the latest nonce the server sent; proofs older than
// [DPoPConfig.MaxAge] (2 s by default) or signed for an older nonce are
// discarded, never sent. A worker that finds the pool empty signs its
// own proof, and the miss is counted and reported.
//
// # Tokens
//
// [Bearer] and [DPoP] take a token and, optionally, a [TokenSource] and the
// token's lifetime: a new token is then requested at three quarters of the
// lifetime (and 1.5 s before its end at the latest), so that a run may
// outlast its first token. Failed refreshes are reported as a warning.
//
// # CPU
//
// The generator's CPU time comes from getrusage(2); the target server's,
// when its process id is given, from the utime and stime fields of
// /proc/<pid>/stat (Linux). The server's CPU time per exchange is reported
// beside [RawVerifyCost], a raw ECDSA P-256 verification timed in this
// process, the floor of a DPoP request being two such verifications (one
// with the verified-token cache). The result warns when the generator
// used most of its cores, when the proof pool fell behind, when a fixed
// rate was not reached, and when the server's CPU time is too small to
// divide.
//
// # Extending
//
// A new mode is a new [Authorizer]: it gives each worker a [Session] that
// adds credentials to a request and may ask for one retry after a
// response. A mode that needs its own TLS settings sets them in the
// client passed in Config.
package loadgen
