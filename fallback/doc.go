// Package fallback lets clients keep calling resource servers while the
// authorization server is down. Besides short-lived access tokens, the
// issuer acts as a certificate authority and gives each registered client
// a long-lived X.509 client certificate for the client's own key, carrying
// its client_id and its granted scopes. A resource server that opts in
// per route accepts, from a request without an access token, a
// certificate of that CA alone, checked against the CA's current CRL.
// Tokens stay the normal path; the certificate is the fallback.
//
// The package is the framework-neutral core: the CA role ([CA]), the
// verifier role ([Verifier], [CRLFetcher]) and the client side: signed
// requests ([NewProver]), the certificate's renewal ([CertificateSource])
// and the switch between tokens and certificate ([Transport]). Besides the
// standard library and this module's dpop and mtlsbound packages it
// imports golang.org/x/oauth2 (to recognise its token errors),
// github.com/sony/gobreaker/v2 (the circuit breaker) and
// github.com/hashicorp/golang-lru/v2 (the verified-chain cache). Signed requests are
// single-use through the dpop verifier's replay store (a replaycache
// store, for example). The issuer and resource packages build their
// endpoints and policies on it.
//
// # Certificates
//
// [CA.Issue] takes a PKCS#10 CSR (its signature is checked: proof of
// possession), accepts ECDSA P-256/P-384/P-521, Ed25519 (not a
// small-order or non-canonical point) and RSA of 2048 to 4096 bits with
// exponent 65537, and issues a leaf that is not a CA, with key usage
// digitalSignature, extended key usage clientAuth only, a random 128-bit
// serial number, the CA's authority key identifier, and:
//
//   - the client_id as its only URI SAN, by default
//     urn:senderbound:client:<client_id> with every byte outside RFC 3986
//     unreserved percent-encoded in upper-case hex ([ClientURI]), so that
//     each client_id has exactly one URI;
//   - the scopes extension: OID [DefaultScopesOID] (replace it with one
//     under your own enterprise number), non-critical, value the DER
//     SEQUENCE OF UTF8String of the scopes, each an RFC 6749 §3.3
//     scope-token, at most [MaxScopes], no duplicates ([MarshalScopes],
//     [ParseScopes]). The scopes are the client's registered scopes, or a
//     requested subset, never more.
//
// The CA key is any crypto.Signer (in memory, HSM, KMS, Vault): no code
// path needs its private bytes.
//
// # Revocation
//
// [CA.Revoke] records a serial in a [RevocationStore] ([MemoryRevocations]
// for one process, [FileRevocations] for a file shared by the command
// line and a running issuer); [CA.CRL] signs an RFC 5280 CRL with a
// nextUpdate and an increasing CRL number, and [CA.CRLHandler] serves it
// with ETag, Last-Modified and a Cache-Control max-age that never reaches
// past nextUpdate, so that a CDN may cache it.
//
// Scopes in a certificate cannot shrink before it expires: removing a
// scope from a client means revoking its certificate and issuing a new
// one. Prefer lifetimes of months over years.
//
// # Verification
//
// [Verifier.VerifyChain] accepts a chain whose leaf is issued directly by
// one of the configured CAs (never system roots), at most
// Config.MaxChainLength certificates long, with the clientAuth extended
// key usage, within its validity, not revoked, with no critical extension
// that is not handled, with a well-formed scopes extension and client_id
// URI SAN, and returns an [Identity]. Revocation fails closed: a
// [CRLFetcher] refreshes the CRL in the background (conditional requests,
// size cap, signature and issuer checked, CRL number never going back,
// last good CRL kept on failure), requests never wait for it, and once the
// CRL is past its nextUpdate plus Config.CRLGrace every fallback request
// fails with [ErrCRLUnavailable] (503), while requests with access tokens
// are unaffected.
//
// A verified chain is remembered in a bounded cache
// (Config.ChainCacheSize) under the SHA-256 of its certificates' DER (in
// a signed request: of its x5c strings as sent, so that a chain presented
// again is not even decoded), until the certificate or its CA expires or
// a new CRL is installed; presented again, the chain costs a hash and the
// revocation lookup of its serial in the current CRL, which every request
// repeats, and in a signed request the comparison of the proof's jwk with
// the cached leaf key. A chain whose
// leaf is issued directly by a configured CA is checked with
// CheckSignatureFrom and the rules x509.Verify applies to such a chain
// (validity of leaf and CA, the CA's basic constraints and key usage,
// extended key usage of both); leaves with name constraints or
// certificate policies, and CAs with name constraints, go through
// x509.Verify itself.
//
// # Signed requests
//
// Where TLS ends at a proxy, a client signs each request instead: a DPoP
// proof (RFC 9449 §4.2: htm, htu, iat, jti, optional nonce; typ dpop+jwt)
// whose protected header carries the chain in x5c (RFC 7515 §4.1.6,
// standard base64) and whose jwk is the leaf certificate's key
// ([NewProver]), sent in the DPoP header field without an Authorization
// header. [Verifier.VerifyRequest] verifies the proof with the dpop
// package's verifier, so replay, htm, htu, the iat window and nonces are
// enforced exactly as for DPoP, then requires the leaf key to equal the
// jwk and verifies the chain.
//
// # Client
//
// [Transport] is an http.RoundTripper with two paths: the token path (an
// oauth2.Transport over a dpop.Transport, or over a transport presenting
// the certificate its tokens are bound to) and the fallback path (the
// certificate of a [CertificateSource], over mTLS with
// [CertificateSource.GetClientCertificate] or in signed requests with
// [CertificateSource.SignedTransport]). A gobreaker circuit counts the
// failures of the token endpoint, told from everything else by
// [IsTokenEndpointFailure]: the token source's error surfaces from the
// token path's RoundTrip as an *oauth2.RetrieveError (counted when 5xx,
// never when 4xx) or as the *url.Error of its http.Client (connection
// errors, timeouts: counted), while the resource's transport never
// returns a *url.Error and the resource's answers are not errors at all,
// so neither counts. A request whose token request failed is sent again
// through the fallback path when its body can be sent again (GetBody).
// After FailureThreshold consecutive failures the circuit opens and every
// request takes the fallback path; in the background the issuer is probed
// every OpenTimeout (half-open) and the first answer closes the circuit.
// State changes go to slog and to OnStateChange.
//
// [CertificateSource.Start] renews the certificate RenewBefore before it
// expires (a third of its lifetime by default) by POSTing a CSR for the
// same key to the issuer's certificate endpoint with the client's
// authentication; the current chain stays in use until a new one for the
// same key and CA arrives, so renewal failing while the issuer is down
// costs nothing.
//
// # Errors
//
// Refusals are [*Error] values: a class (ErrUntrustedChain, ErrExpired,
// ErrNotClientAuth, ErrRevoked, ErrScopesMalformed, ErrKeyMismatch,
// ErrCRLUnavailable, ErrInvalidCRL, ErrInvalidCSR, ErrKeyNotAccepted,
// ErrScopeNotGranted; test with errors.Is), the RFC error code a server
// answers with, and a stable reason from the project's one error model
// (an oautherr.ReasonFallback… constant, safe to log; [ReasonOf] finds
// it). The crypto/x509 error behind a refused chain, CRL or CSR is kept
// as the cause, for errors.Is and errors.As, as in the dpop, resource and
// issuer packages. No error text contains a certificate, CSR, proof or
// any other part of the request.
package fallback
