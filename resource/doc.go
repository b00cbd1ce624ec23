// Package resource protects HTTP resources with sender-constrained OAuth
// access tokens: DPoP-bound tokens (RFC 9449, cnf.jkt plus a signed proof
// per request), certificate-bound tokens (RFC 8705, cnf.x5t#S256 plus the
// TLS client certificate) and, where a route allows it, plain bearer
// tokens (RFC 6750).
//
// A [Verifier] is built once from a [Config] with [New] and is safe for
// concurrent use. [Verifier.Check] authenticates one request under a
// per-route [Policy] and returns a [*Principal] or an [*Error];
// [Verifier.Middleware] wraps it for net/http and [WriteError] renders
// rejections (the Echo adapter in resource/echoresource uses the same
// two; the gRPC interceptors in resource/grpcresource check each call as
// the HTTP/2 request it is and send the same challenges as metadata, from
// [Error.Challenges] and [Error.DPoPNonce]). The package does not depend
// on any web framework or on gRPC.
//
//	ks, _ := resource.NewRemoteKeySet(resource.RemoteKeySetConfig{Issuer: "https://as.example.com"})
//	v, err := resource.New(resource.Config{
//		Algorithms: resource.DefaultAlgorithms(),
//		Issuers:    []resource.Issuer{{Identifier: "https://as.example.com", Keys: ks}},
//		Audience:   "https://api.example.com",
//	})
//	if err != nil { ... }
//	mux.Handle("/orders", v.Middleware(resource.Policy{Scopes: []string{"orders"}})(orders))
//
// # Access tokens
//
// Tokens are JWTs per RFC 9068 and RFC 8725: the size is capped before
// parsing; the signature must use an allowed asymmetric algorithm that
// fits the key (a key's published alg is binding); typ must be at+jwt or
// application/at+jwt (case-insensitive); iss must equal a configured
// issuer exactly and only that issuer's keys verify the token; aud must
// contain [Config.Audience]; the token is valid strictly before exp (with
// [Config.Leeway]); sub, client_id, iat and jti are required by default;
// crit is refused; jku, x5u, jwk and x5c header parameters are never used;
// duplicate JSON members are refused, and so are two member names of one
// object that are equal under case folding ("iss" and "ISS", "kid" and
// "\u212Aid" with the Kelvin sign), at every level of the header and the
// claims: encoding/json matches struct fields that way, so an application
// that decodes [Principal.Claims] into a struct, or another service
// reading the same token, could otherwise see the other member; cnf must
// be an object and its unknown members are ignored.
//
// Tokens are read by a strict parser, not a general JOSE library, and the
// signature is checked with crypto/ecdsa, crypto/ed25519 or crypto/rsa
// over the header and payload segments exactly as received, with the
// issuer's public key as parsed once from its JWK Set. The rules:
//
//   - compact serialization only: exactly three segments, each canonical
//     unpadded base64url (no padding, no CR/LF or other bytes a lenient
//     decoder skips, zero trailing bits), so one token has one encoding;
//   - header and claims are RFC 8259 JSON objects in valid UTF-8, with no
//     unpaired surrogate escapes, nested at most 64 deep, and with unique
//     member names at every level, compared after unescaping and
//     case-sensitively (an attacker cannot slip in a second iss or aud,
//     nor an "ISS" that some other reader would take for iss);
//   - alg is a string naming an allowed algorithm (names are
//     case-sensitive) that fits the key: ES256, ES384 and ES512 only on
//     P-256, P-384 and P-521 keys, EdDSA on Ed25519, RS* and PS* on RSA
//     (PSS with any salt length); ECDSA signatures are the 2n-byte r||s
//     with r and s in [1, n-1] (high s is accepted, as in JWS);
//   - kid and nonce, when present, are strings; jwk and x5c, when present,
//     must be a public JWK and parsable certificates (checked, not used);
//     other header members may hold any JSON value within the float64
//     range; members whose value is null count as absent;
//   - iss, sub, client_id, jti and scope are strings, aud a string or an
//     array of strings, exp, nbf and iat numbers below 2^62 in magnitude
//     (fractions truncated); null counts as absent, except for aud; a
//     claims set that is JSON null is empty.
//
// Compared with go-jose, which read tokens before, the strict parser also
// refuses non-canonical base64url, invalid UTF-8 and unpaired surrogates
// (go-jose replaced them with U+FFFD, so distinct subjects could compare
// equal), duplicate member names inside nested claim values, member names
// equal under case folding, and nesting beyond 64 levels. FuzzTokenDifferential holds the two side by side.
//
// Keys come from a [StaticKeySet] or a [RemoteKeySet] (a JWKS URL, or
// discovery through RFC 8414 metadata with an OpenID Connect fallback).
// Remote keys are cached as Cache-Control allows; once expired they are
// still used while one background fetch revalidates them, so a request
// whose token names a known kid never waits for the JWKS server, and the
// last good keys survive a failed refresh. An unknown kid (a rotated key)
// triggers a refresh that the request waits for, at most once per
// [RemoteKeySetConfig.MinRefreshInterval] (default
// [DefaultMinRefreshInterval], 5 s) with concurrent refreshes collapsed,
// so tokens naming made-up kids cost the issuer at most one fetch per
// interval.
//
// Verified tokens are kept in a bounded LRU keyed by SHA-256 of the token
// until their exp, so a reused token costs no signature check; entries are
// dropped when their key leaves the key set. Binding, proof, time and
// scope checks run on every request.
//
// # Opaque tokens and introspection
//
// An issuer that hands out opaque access tokens is configured with
// [Issuer.Introspection]: the token is sent to its RFC 7662 introspection
// endpoint, with the resource server authenticated by client_secret_basic,
// private_key_jwt or tls_client_auth ([ClientAuth]), and the answer is
// held to the rules above: active must be true, iss must equal the
// issuer's Identifier, aud must contain [Config.Audience] (unless
// [Introspection.InsecureAllowMissingAudience]), exp is required, and
// exp, nbf and iat are checked on every request. cnf binds an opaque
// token exactly as it binds a JWT (RFC 9449 §6.2, RFC 8705 §3): a
// cnf.jkt token needs a DPoP proof whose ath hashes the opaque token and
// is refused under Bearer; a cnf.x5t#S256 token needs the certificate. No
// DPoP header or proof is ever sent to the authorization server.
//
// Which check a token gets: a token shaped like a JWS (three
// dot-separated parts) is verified as a JWT when some issuer has Keys
// (and is introspected when the issuer its iss names has only
// Introspection); any other token goes to the one issuer with
// Introspection. At most one issuer may have Introspection, since an
// opaque token does not say where it came from and must not be shown to
// another authorization server.
//
// Answers are cached by the SHA-256 of the token for at most
// [Introspection.CacheTTL] (30 s by default) and never past exp; an
// inactive or refused answer for at most 5 seconds; concurrent requests
// for one token share one call. A revoked token therefore stays usable
// until its cached answer ends. When the endpoint fails (network, timeout,
// a status other than 200, a malformed or oversized body) the request is
// refused with 503 and reason introspection_unavailable, never with
// invalid_token, and the failure is logged at Warn at most once per 10
// seconds; an inactive token is 401 invalid_token (token_inactive).
// [Principal.Claims] then holds the introspection answer.
//
// Each token not in the cache costs a call, so calls under way at once
// are bounded by [Introspection.MaxConcurrent] (64 by default; there is no
// unlimited setting): a token that would need one more is refused at once
// with 503 and reason introspection_busy, and the authorization server is
// not called. A flood of made-up tokens thus reaches the authorization
// server at most that many calls at a time, while cached tokens are still
// served.
//
// # Bindings and downgrades
//
// [Policy.Accept] selects DPoP only, mTLS only, either binding (the
// default), or either binding plus unbound bearer tokens. A cnf.jkt token
// under the Bearer scheme, an unbound token under the DPoP scheme, a
// cnf.x5t#S256 token without the matching certificate, and a token bound
// both ways that satisfies only one are refused with invalid_token.
//
// The error code follows the fault, never the route's policy. A request
// under a scheme this server supports but the route does not offer (Bearer
// on a DPoP-only route, DPoP on an mTLS-only route) is checked in full like
// on any other route, so a malformed token is invalid_token, a bad proof
// invalid_dpop_proof, and a DPoP-bound token under Bearer invalid_token on
// a DPoP-only route too; a bound token that passes every check but is of
// a kind the route does not take is invalid_token (reason
// binding_not_accepted). The error goes on a challenge of the scheme the
// client used, added after the route's own challenges. Only a scheme the
// server does not support at all (DPoP without [Config.DPoP], or an
// unknown scheme) gets the route's challenges without error (RFC 6750
// §3.1).
//
// # DPoP, nonces and proxies
//
// Set [Config.DPoP] to accept the DPoP scheme: proofs are checked by a
// dpop.Verifier (alg allow-list, htm, htu, iat window, ath, single use
// through the replay store, cnf.jkt). The expected htu is
// [Config.PublicURL] plus the request path; that is the recommended
// setting, and no forwarded header is then read for it. Without PublicURL
// it comes from the one header family the trusted proxies set (a
// trustedproxy.Set in [Config.TrustedProxies], built once and shared with
// the certificate source): X-Forwarded-Proto/-Host by default, or RFC 7239
// Forwarded. The other family is never read as a fallback, and a request
// from a trusted proxy that carries it is refused (400 invalid_request,
// reason forwarded_headers_unexpected): proxies commonly set one family and
// pass a client's copy of the other through, which would let the client
// choose the host its proof is checked against. A DPoP request from any
// other peer is refused: the Host header, which the client chooses, is
// used only with [Config.InsecureHostHeader]. DPoP over plain HTTP is
// refused unless the request came from a trusted TLS-terminating proxy or
// [Config.InsecureAllowDPoPOverHTTP] is set. With [DPoPConfig.Nonces]
// every proof must carry a nonce of this server (RFC 9449 §9); a fresh one
// is sent with use_dpop_nonce and ahead of expiry on accepted requests.
// Use replaycache/redisstore as the replay store when several instances
// serve the same resource; a store failure refuses requests with 503.
// [DPoPConfig.KeyQuota] bounds the replay entries one proof key (one
// token's cnf.jkt) can create per window, so a token holder flooding fresh
// proofs is refused (invalid_dpop_proof, reason proof_key_quota) instead of
// filling the store for everyone. After a shared store detected the loss
// of its data (a Redis restart without persistence), proofs issued before
// the loss are refused with reason replay_state_lost: use_dpop_nonce with a
// fresh nonce when nonces are required, so clients recover at once, else
// invalid_dpop_proof.
//
// Certificate-bound tokens are matched against the client certificate
// (mtlsbound.Source): from a trusted proxy, the one it forwarded in the RFC
// 9440 Client-Cert header, or none (a certificate on the proxy's own
// connection, as with upstream mTLS or a service-mesh sidecar, is the
// proxy's, never the client's); from any other peer, the TLS client
// certificate, which no header overrides. List only proxies in
// TrustedProxies. Responses decided by a forwarded certificate carry
// Cache-Control: no-store. The certificate chain is not validated (RFC 8705
// §6.2): the TLS server should request, not require, client certificates
// (mtlsbound.ServerTLSConfig).
//
// [Verifier.MetadataHandler] serves RFC 9728 protected resource metadata
// at [MetadataPath].
//
// # Fallback certificates
//
// A route with [Policy.Fallback] (off by default; it needs
// [Config.Fallback], a fallback.Verifier) also accepts requests without an
// access token that present a client certificate of the issuer's fallback
// CA: on the TLS connection, from a trusted proxy's Client-Cert header, or
// in the x5c of a signed request (a DPoP-format proof in the DPoP header,
// checked for replay, htm, htu, iat and nonces as for DPoP). The chain must
// lead to that CA alone, carry the clientAuth usage, be valid and not
// revoked; the route's scopes are checked against the certificate's. The
// [Principal] then has Binding [BindingFallback], the certificate's
// client_id (also as Subject) and its thumbprint. When the CA's revocation
// list is past its nextUpdate plus the configured grace, fallback requests
// are refused with 503 (reason fallback_crl_stale; fallback_crl_unavailable
// before the first list arrives) while requests with tokens are
// unaffected. The reason of every fallback refusal is the fallback
// package's own (oautherr.ReasonFallback…), and the fallback error stays
// in the chain for errors.Is and errors.As.
//
// # Errors
//
// Every rejection is an [*Error] carrying the RFC error code and status
// (400 invalid_request, 401 invalid_token / invalid_dpop_proof /
// use_dpop_nonce, 403 insufficient_scope, 503 when the replay store or the
// keys are unavailable). [WriteError] renders them in one place: the
// WWW-Authenticate challenges of the schemes in force (only the attempted
// scheme's challenge carries error; none does when no credentials were
// sent), DPoP-Nonce when needed, Cache-Control: no-store and
// Access-Control-Expose-Headers. Nothing from the request is echoed or
// logged. Each rejection has a stable oautherr.Reason (for example
// token_expired, bearer_downgrade, proof_htu_mismatch, proof_replayed,
// nonce_stale), passed to [Config.OnReject] for counting and logged at
// Debug only, so that refused requests sent in a flood do not flood the
// log. A DPoP proof's reason is the one the dpop package gave: the check
// that failed, while the client still sees only invalid_dpop_proof and a
// fixed description. A refusal because the issuer's keys could not be
// fetched (keys_unavailable), or because the introspection endpoint failed
// (introspection_unavailable) or had as many calls under way as allowed
// (introspection_busy), is logged at Warn with the dependency's
// error, which names the URL and the cause; the client gets a bare 503.
//
// The error model is the module's one rule: errors.Is(err, S) holds for
// the class sentinel S of the *Error ([ErrInvalidToken],
// [ErrInvalidProof], ...) and for everything its cause wraps, so the error
// for a replayed proof matches dpop.ErrReplay and errors.As finds the
// *dpop.Error. [ErrInvalidProof] and [ErrUseNonce] are the dpop package's
// own sentinels, not copies.
//
// # Metrics
//
// The package takes no metrics dependency. Set [Config.Metrics] (and
// [RemoteKeySetConfig.Metrics]) to a [Metrics] implementation to receive
// each decided request, accepted with its [Binding] or refused with its
// [*Error] (stable reason, status, and use_dpop_nonce for a nonce
// challenge), and the durations of token verification ([OpToken]), proof
// verification ([OpProof]), replay-store calls ([OpReplayStore], with
// their errors), key-set fetches ([OpKeyFetch], refreshes and
// failures) and introspection calls ([OpIntrospection], with the
// endpoint's failures). The implementation turns them into counters and histograms,
// for example Prometheus collectors. A nil Metrics costs nothing on the
// request path.
//
// # Request bodies
//
// Tokens are accepted in the Authorization header only. Check reads no
// request body before the request is authenticated: a token in the
// access_token query parameter is refused at once, and a form-encoded body
// is inspected for an access_token parameter (400 invalid_request, RFC 6750
// §2) only after token, binding and scope checks passed. A client without
// valid credentials therefore cannot make the server wait for a slow body;
// [WriteRejection], which the middleware and the Echo adapter use, also
// closes an HTTP/1.x connection whose request body was not read instead of
// draining it.
package resource
