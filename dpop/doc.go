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
// # Target URI
//
// The htu claim is compared with the URL the client used. Behind a
// TLS-terminating proxy the server sees another scheme and host, so
// [TargetURI] derives the expected URL from an explicitly configured
// public base URL (recommended) or, only when the immediate peer is a
// configured trusted proxy, from X-Forwarded-Proto/X-Forwarded-Host or
// RFC 7239 Forwarded. Forwarded headers from any other peer are ignored,
// never used silently, and so is the Host header, which the client
// chooses: without a public URL, a request from any other peer has no
// target URI unless [TargetURIConfig.InsecureHostHeader] is set.
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
//   - typ exactly "dpop+jwt"; alg in the configured allow-list and matching
//     the key (ES256 only with P-256, ES384 with P-384, ES512 with P-521,
//     EdDSA with Ed25519, PS*/RS* with RSA of 2048 to 8192 bits);
//   - jwk public only (d, p, q, dp, dq, qi, oth, k and kty oct refused), with
//     minimal encodings (no leading zero in n, minimal e, full-length EC
//     coordinates); jwk members alg, use and key_ops, when present, must
//     allow this use; x5c, x5u, x5t, jku, crit, and kid without jwk refused,
//     except x5c when the caller asks for it with [Expect.X5C]: then it is
//     required, 1 to [MaxX5C] strings of padded standard base64 (not
//     base64url, no whitespace, canonical trailing bits), each at most
//     [MaxX5CCertBytes] decoded, returned in [Proof.X5C];
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
