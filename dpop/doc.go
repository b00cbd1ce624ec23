// Package dpop creates and verifies DPoP proofs (RFC 9449): the signed JWT
// that a client sends in the DPoP header of every request to show that it
// holds the private key an access token is bound to (cnf.jkt).
//
// # Client side
//
// A [Prover] signs proofs with any crypto.Signer. [Transport] is an
// http.RoundTripper that attaches a fresh proof to every request, adds ath
// when the request carries "Authorization: DPoP <token>", and handles
// server nonces (RFC 9449 §8, §9). It composes with golang.org/x/oauth2:
//
//	prover, _ := dpop.NewProver(key, nil)
//	client := &http.Client{Transport: &dpop.Transport{Prover: prover}}
//	ctx := context.WithValue(ctx, oauth2.HTTPClient, client)
//	httpClient := clientcredentialsConfig.Client(ctx)
//
// x/oauth2 uses the token_type of the token response as the Authorization
// scheme. A server that ignores the proof answers token_type Bearer, and the
// token is then an ordinary bearer token: check that Token.Type() is "DPoP"
// (examples/oauth2-client wraps the TokenSource to refuse anything else).
//
// # Server side
//
// A [Verifier] checks a proof against the request (RFC 9449 §4.3) and
// claims its (jkt, jti) pair in a [ReplayStore]:
//
//	v, err := dpop.NewVerifier(dpop.Config{
//		Algorithms:  []string{"ES256", "EdDSA", "PS256"},
//		ReplayStore: store,
//	})
//	proof, err := dpop.ProofFromHeader(r.Header)
//	p, err := v.Verify(ctx, proof, dpop.Expect{
//		Method: r.Method, URL: targetURL, AccessToken: token, JKT: cnfJKT,
//	})
//
// Errors are [*Error] values carrying the RFC error code; [Challenge]
// renders and [ParseChallenges] parses WWW-Authenticate fields. [Nonces] is
// a stateless HMAC nonce source.
//
// # Errors
//
// Every refusal is an [*Error] with the RFC error code (Code, one of the
// oautherr constants), a fixed Description safe to send, the stable
// oautherr.Reason of the check that failed (for example
// oautherr.ReasonProofHTUMismatch or oautherr.ReasonProofReplayed; log it,
// never send it) and the class sentinel in Err. The rule is the one every
// package of this module follows: errors.Is(err, S) holds for the class
// sentinel S and for everything it wraps. The classes are [ErrInvalidProof]
// (with its members [ErrReplay] and [ErrKeyQuota]), [ErrUseNonce],
// [ErrKeyMismatch], [ErrMissingProof], [ErrReplayStateLost] (wrapped with
// ErrUseNonce or ErrInvalidProof) and [ErrStoreUnavailable]. A resource
// server or token endpoint that refuses a request for a proof wraps this
// error, so errors.Is(err, dpop.ErrReplay) and errors.As(err, &dpopErr)
// still hold on its own error.
//
// # Replay store
//
// Verify is [Verifier.Check] (every check, nothing recorded) followed by
// [Verifier.Claim] (the atomic single-use claim). A server that must do
// other work before it accepts a request, such as a token endpoint that
// authenticates the client and checks the grant, calls Check first and
// Claim last, so that refused requests occupy no replay entry, and accepts
// the request only once Claim returned nil. [Config.KeyLimiter] (for
// example a replaycache.Quota) bounds the entries one proof key can create,
// refusing the excess with [ErrKeyQuota], so one client cannot fill the
// store and lock every other client out. A store that detects the loss of
// its entries ([SinceReplayStore], such as replaycache/redisstore after a
// Redis restart without persistence) refuses proofs issued before the loss
// with [ErrReplayStateLost]: use_dpop_nonce when nonces are required, so
// the client retries at once with a new proof, else invalid_dpop_proof.
//
// # Target URI
//
// The htu claim is compared with the URL the client used. Behind a
// TLS-terminating proxy the server sees another scheme and host, so
// [TargetURI] derives the expected URL from an explicitly configured
// public base URL ([TargetURIConfig.PublicURL], the recommended setting:
// no header is then read) or, only when the immediate peer is one of
// [TargetURIConfig.TrustedProxies], from the one header family those
// proxies set: X-Forwarded-Proto/X-Forwarded-Host (the default) or
// RFC 7239 Forwarded (see package trustedproxy). It never falls back from
// one family to the other, and a request from a trusted proxy that carries
// the other family's fields has no target URI: common proxies set one
// family and pass a client's fields of the other through untouched, which
// would let the client choose the host its proof is checked against.
// Forwarded headers from any other peer are ignored, never used silently,
// and so is the Host header, which the client chooses: without a public
// URL, a request from any other peer has no target URI unless
// [TargetURIConfig.InsecureHostHeader] is set.
//
// # Strict parsing
//
// Proofs are parsed by a purpose-built parser that is stricter than a
// general JOSE library (differentially fuzzed against go-jose):
//
//   - compact serialization only: exactly three non-empty base64url segments,
//     strict alphabet, no padding, no whitespace, canonical trailing bits;
//   - header and claims are one UTF-8 JSON object each, no BOM, no trailing
//     bytes, no duplicate member names at any level, nesting at most 16 deep;
//   - no two member names of one object equal under case folding ("alg"
//     and "ALG", "kid" and "\u212Aid" with the Kelvin sign), at any level:
//     encoding/json matches struct fields that way, so a program that
//     decodes the same JSON into a struct could read the other member;
//   - typ exactly "dpop+jwt"; alg in the configured allow-list and matching
//     the key (ES256 only with P-256, ES384 with P-384, ES512 with P-521,
//     EdDSA with Ed25519, PS*/RS* with RSA of 2048 to 4096 bits and a
//     public exponent of at most 65537, so that no proof costs much more
//     to verify than a common one);
//   - Ed25519 keys canonically encoded and not of small order: such a key
//     accepts one fixed signature for many or all messages, so a token
//     bound to it would be usable by anyone;
//   - jwk public only (d, p, q, dp, dq, qi, oth, k and kty oct refused), with
//     minimal encodings (no leading zero in n, minimal e, full-length EC
//     coordinates); jwk members alg, use and key_ops, when present, must
//     allow this use; x5c, x5u, x5t, jku, crit, and kid without jwk refused,
//     except x5c when the caller asks for it with [Expect.X5C]: then it is
//     required, 1 to [MaxX5C] strings of padded standard base64 (not
//     base64url, no whitespace, canonical trailing bits), each at most
//     [MaxX5CCertBytes] decoded, returned in [Proof.X5C] (with
//     [Expect.X5CEncoded] the strings as sent are returned instead, in
//     [Proof.X5CEncoded], and [DecodeX5C] applies these rules; such a
//     header, once it passed, is remembered by its exact bytes and not
//     parsed again);
//   - PS* signatures must use a salt as long as the hash (RFC 7518 §3.5);
//   - jti a string of 1 to 256 bytes without control characters, not blank;
//     iat a JSON number, integral or fractional (RFC 7519 NumericDate;
//     fractions are accepted and kept to the nanosecond);
//   - htu an absolute http(s) URL without userinfo, query or fragment; both
//     htu and the expected URL are normalized (scheme and host lower-case,
//     default port removed, empty path "/", unreserved percent-encodings
//     decoded, dot segments removed; paths stay case-sensitive).
//
// Replay keys are SHA-256 over (jkt, jti), never over proof bytes, so a
// malleated ECDSA signature (s → n−s) of an accepted proof is a replay.
package dpop
