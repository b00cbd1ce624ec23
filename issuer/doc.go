// Package issuer is the authorization-server side of senderbound: it mints
// RFC 9068 JWT access tokens bound to a DPoP key (RFC 9449, "cnf.jkt") or to
// an mTLS client certificate (RFC 8705, "cnf.x5t#S256"), and serves the
// token endpoint, JWKS, RFC 8414 metadata, RFC 7662 introspection and the
// RFC 9126 pushed authorization request endpoint.
//
// # Minting
//
// [Issuer] is the embeddable core. A server with its own grant logic
// (authorization code, device flow, token exchange) mints a bound token for
// a binding it has verified, without any of this package's HTTP handlers:
//
//	ks, _ := issuer.NewKeySet(issuer.SigningKey{Signer: key}) // ES256 for a P-256 key
//	is, _ := issuer.New(issuer.Config{
//		Issuer:   "https://as.example.com",
//		Keys:     ks,
//		Audience: []string{"https://api.example.com"},
//	})
//	tok, _ := is.Mint(ctx, issuer.MintRequest{
//		Subject: "alice", ClientID: "app", Scope: "read",
//		Binding: issuer.Binding{JKT: proof.JKT},
//	})
//	// tok.Raw is the JWT, tok.Type is "DPoP".
//
// # Keys and rotation
//
// Signing keys are crypto.Signer values, so KMS and HSM keys work. A
// [KeySet] holds a next key (published, not signing), the active key and
// retired keys, which stay in the JWKS until the last token they signed has
// expired. The "kid" defaults to the RFC 7638 thumbprint.
//
// # HTTP endpoints
//
// [Server] mounts the token endpoint (client_credentials and refresh_token
// built in, other grants through [GrantHandler]), the JWKS, the metadata
// document at /.well-known/oauth-authorization-server and introspection on
// one http.Handler; each endpoint is also available alone. Token endpoint
// errors use the RFC 6749 §5.2 JSON shape, every response carries
// "Cache-Control: no-store", and no error echoes request input.
//
//	replay, _ := issuer.NewMemoryReplayStore(is, 0) // one instance; share a redisstore.Store between several
//	srv, _ := issuer.NewServer(issuer.ServerConfig{Issuer: is, Clients: registry, ReplayStore: replay})
//	mux.Handle("/", srv.Handler()) // or mount srv.TokenHandler() etc. one by one
//
// Clients authenticate with exactly the method they are registered for:
// client_secret_basic, client_secret_post (secrets stored as SHA-256
// hashes, compared in constant time), private_key_jwt (RFC 7523,
// single-use jti; client keys as [Client.JWKS] describes, inline or from
// a jwks_uri; no two names of
// the assertion's header or claims equal under case folding),
// tls_client_auth and self_signed_tls_client_auth (RFC 8705, through
// [CertificateAuthenticator], e.g. mtlsbound.PKIAuth), or none for public
// clients. [ClientRegistry] is the seam for a client database.
//
// # Client keys from a jwks_uri
//
// A private_key_jwt or self_signed_tls_client_auth client may register a
// [Client.JWKSURI] instead of its keys or certificates (RFC 7591 §2,
// RFC 8705 §2.2): it then rotates keys and certificates by publishing
// them there, with no change at the issuer (MTLS-CA-11). The server
// fetches the set on first use and caches it for the response's
// Cache-Control max-age (bounded; a default without one). When the
// lifetime ends the cached set stays in use while one background fetch
// revalidates it, so a removed key is refused once that fetch completes.
// An assertion or certificate that matches no cached key makes the server
// refetch at once, at most once per [ClientJWKSConfig] MinRefreshInterval
// per client, so a published key is accepted on its first use and a flood
// of made-up keys costs the client's host one request per interval. When
// fetches fail the last good set is used for at most MaxStale past its
// lifetime; after that the client is refused (reason
// client_keys_unavailable) until a fetch succeeds.
//
// The document must be a strict public JWK Set: one JSON object without
// duplicate or case-folded member names, at most 64 keys, every key of a
// known type, public, meeting the key rules of [Client.JWKS], its x5c (for
// self_signed_tls_client_auth, the first certificate of each key is
// registered) matching its key; anything else refuses the whole set.
//
// The fetch is a request the issuer makes to a URL a client chose, so it
// is confined: https only, no redirects, no proxy, a size cap and its own
// timeouts, and connections only to public unicast addresses, checked on
// the address actually dialed after name resolution (a name that resolves
// to a loopback, private, link-local or other special-purpose address is
// refused, whenever it is resolved). [ClientJWKSConfig]
// InsecureAllowPrivateAddresses lifts the address rule for tests and
// closed networks.
//
//	reg, _ := issuer.NewMemoryRegistry(issuer.Client{ID: "svc", AuthMethod: issuer.AuthPrivateKeyJWT,
//		JWKSURI: "https://svc.example.com/jwks.json"})
//	srv, _ := issuer.NewServer(issuer.ServerConfig{Issuer: is, Clients: reg, ReplayStore: replay,
//		ClientJWKS: issuer.ClientJWKSConfig{MinRefreshInterval: 30 * time.Second}})
//
// # Introspection
//
// Only clients registered with Introspect may call the introspection
// endpoint, and each sees only the tokens issued to it and the access
// tokens meant for one of its registered Audiences; every other token is
// answered {"active":false}, exactly like an unknown one. A resource server
// that must check access tokens of every audience is registered with
// IntrospectAll.
//
// # Opaque access tokens
//
// With Config.AccessTokenFormat set to [FormatOpaque], Mint hands out a
// random 256-bit handle (43 base64url characters, never a dot, so it is
// never taken for a JWT) and keeps the claims a JWT would carry (sub,
// client_id, aud, scope, cnf, iat, exp, jti and the extra claims) in
// Config.AccessTokens under the SHA-256 of the handle until exp; the
// handle itself is never stored. The store is a [RefreshStore]:
// [NewMemoryRefreshStore] for one instance, issuer/redisrefresh (with a
// Prefix of its own, never the refresh tokens' one) for several, and
// issuer/refreshtest checks either. Resource servers validate such tokens
// at the introspection endpoint, which answers them exactly as it answers
// JWTs: the same members, cnf and token_type, the same visibility rules
// and the same {"active":false} for anything else. A record with a jti is
// never taken for a refresh token, and one without is never taken for an
// access token. When the store fails, the token request and the
// introspection of an opaque token are refused with 503 (reason
// access_token_store_unavailable), never answered inactive. JWTs minted
// before a switch to opaque tokens stay valid until they expire.
//
// # Replay store
//
// DPoP proof and private_key_jwt assertion jti values are single use,
// through ServerConfig.ReplayStore, which is required: [NewMemoryReplayStore]
// for an issuer served by one instance, a shared store such as
// replaycache/redisstore for several. A DPoP proof is checked
// early but claimed only after client authentication, the grant and the
// binding passed, just before the token is minted: refused requests occupy
// no entry, and since the claim is one atomic check-and-insert, among
// concurrent requests carrying the same proof exactly one gets a token.
// ServerConfig.ReplayQuota bounds the entries one proof key, and one
// confidential client, can create per window (public clients share a
// client_id, so only their keys are bounded); the excess is refused with
// invalid_dpop_proof (invalid_client for an assertion). With a shared store
// that detects a loss of its data (replaycache/redisstore), proofs and
// assertions issued before the loss are refused: use_dpop_nonce when
// nonces are required, else invalid_dpop_proof; invalid_client for an
// assertion.
//
// # Fallback certificate authority
//
// With ServerConfig.Fallback (a [fallback.CA]) the issuer also certifies
// clients' keys, so that they can keep calling resource servers that opt
// in while the issuer is down: [Server.CertificateHandler] (POST
// CertificatePath) authenticates the client exactly as the token endpoint
// does (public clients are refused), takes the base64url DER of a PKCS#10
// CSR in csr and an optional scope subset, and answers the chain as
// application/pem-certificate-chain; [Server.CRLHandler] (GET CRLPath)
// serves the CA's signed, cacheable CRL. The metadata lists both as
// fallback_certificate_endpoint and fallback_crl_uri. Scopes in a
// certificate hold until it expires: removing a scope from a client means
// revoking its certificate ([fallback.CA.Revoke]) and issuing a new one.
//
// # Authorization codes and pushed authorization requests
//
// The package has no authorization endpoint of its own: a server with
// users and consent embeds [Server] and adds one, with its
// authorization_code grant registered in ServerConfig.Grants. What RFC 9449
// §10 and RFC 9126 require there comes as pieces:
//
//   - [AuthorizationDPoPJKT] validates the dpop_jkt parameter of an
//     authorization request (one 43-character base64url SHA-256
//     thumbprint; else invalid_request, reason dpop_jkt_malformed), and
//     [Server.AuthorizationRequest] resolves a whole request, plain or by
//     request_uri. The embedder stores [AuthorizationRequest].DPoPJKT with
//     the code it issues and returns it as [Grant.DPoPJKT] from its
//     authorization_code [GrantHandler]; the token endpoint then issues a
//     token only for a DPoP proof by that key and answers any other key,
//     or none, with invalid_grant.
//   - With ServerConfig.PAR, [Server.PARHandler] serves PARPath (also on
//     the mTLS alias; pushed_authorization_request_endpoint in the
//     metadata). It authenticates the client exactly as the token
//     endpoint does, refuses a request_uri parameter, and verifies a DPoP
//     header per RFC 9449 §4.3 with htu the PAR URL (nonces and the
//     replay store as at the token endpoint). The proof key's thumbprint
//     is the request's dpop_jkt; a dpop_jkt parameter naming another key
//     is refused with invalid_dpop_proof (reason dpop_jkt_mismatch; RFC
//     9449 §10.1 names no code). The pushed parameters wait in a
//     [PushedRequestStore] (in memory and bounded by default; shared by
//     the instances of one issuer) for PARConfig.Lifetime, and
//     [Server.TakePushedRequest] redeems a request_uri once, for the
//     client that pushed it only. PARConfig.Check lets the embedder
//     validate the pushed parameters (redirect_uri, PKCE, scope) at push
//     time, as RFC 9126 §2.1 asks. PARConfig.Quota bounds the requests
//     one client may push per window (by default [DefaultPARQuotaLimit]
//     per Lifetime), so that one client cannot fill the store for all:
//     a push beyond it is 429 Too Many Requests (RFC 9126 §2.3) with
//     Retry-After, error temporarily_unavailable and reason
//     pushed_request_quota_exceeded.
//
// examples/authcode-server is a complete authorization-code server built
// this way, with PKCE.
//
// # Binding rules
//
// A token request with a valid DPoP proof (htu = the token endpoint URL that
// was called, including the mTLS alias) yields a "cnf.jkt" token with
// token_type DPoP, also when the client authenticated with mTLS. Otherwise
// a client certificate proven on the connection (or forwarded by a trusted
// proxy through mtlsbound.Source) yields "cnf.x5t#S256" with token_type
// Bearer; otherwise the token is unbound. A client registered with
// DPoPBoundAccessTokens or TLSClientCertificateBoundAccessTokens never gets
// a token without that binding. Refresh tokens are opaque, stored hashed,
// and for public clients bound to the DPoP key or certificate they were
// issued with. Each is single use: a refresh redeems it (RefreshStore.Take,
// atomic, so of concurrent redemptions at any instance sharing the store
// only one succeeds) and the response carries its successor for the same
// grant, with the same scope, binding and expiry, so rotation never extends
// a grant (RFC 9700 §4.14.2). The tokens rotated from one original grant
// form a family (RefreshRecord.Family). Presenting a redeemed member again
// is reuse (RFC 9700 §4.14.2, RFC 6749 §10.4: a thief's replay, or the
// legitimate client's after a thief rotated the token): invalid_grant with
// reason refresh_token_reused, one Warn record to ServerConfig.Logger with
// the family's client_id and a short hash of the family id (never a
// token), and the whole family is revoked (RefreshStore.Revoke), so its
// live token is refused too; other families are unaffected. There is no
// grace period: a client that sends one refresh token twice, even
// concurrently, loses the family when its second request reads the token
// after the first redeemed it (a request that read it before loses the
// atomic Take and is refused as invalid, without revoking). Used members
// are remembered until the family expires (see [RefreshStore] for the
// cost). A refused refresh (another key, another client, a widened scope) does not
// consume the token. A refresh never yields more than the client is registered
// for at the time of the refresh: the grant's scopes and audiences are
// narrowed to the client's current Scopes and Audiences (the issuer's
// default audience when it has none), a requested scope outside what
// remains is invalid_scope (RFC 6749 §6), and a refresh token of which
// nothing remains is invalid_grant.
//
// # Error codes
//
// Where RFC 9449 leaves the code open, the token endpoint answers:
// invalid_dpop_proof for a dpop_bound_access_tokens client without a
// proof; invalid_grant for a refresh with another (or no) DPoP key or
// certificate and for a proof key that differs from the authorization
// request's dpop_jkt; invalid_request for a client registered for
// certificate-bound tokens that presented no certificate; invalid_client
// (401 with a Basic challenge when Basic was attempted, else 400) for every
// client authentication failure, including a method other than the
// registered one. ServerConfig.Logger receives each refusal's endpoint,
// code, status, stable reason, fixed description and, where a lower layer
// refused, its error (the cause), never request data.
//
// # Errors
//
// Every refusal is an [*Error] with the RFC code (an oautherr constant),
// the status, a fixed description, the stable oautherr.Reason of the check
// that failed and the class sentinel. A client sees the code and the
// description only, and every client-authentication failure looks the
// same to it; the log tells them apart (client_unknown,
// client_secret_mismatch, client_assertion_invalid, client_auth_method,
// certificate_untrusted, certificate_subject_mismatch, certificate_revoked,
// revocation_unavailable, ...), with mtlsbound's error as the cause. A
// refused DPoP proof carries the dpop package's reason (proof_htu_mismatch,
// proof_replayed, nonce_stale, ...). The rule is the module's one:
// errors.Is(err, S) holds for the class sentinel S and for everything the
// cause wraps, so a replayed proof matches [ErrInvalidDPoPProof] and
// dpop.ErrReplay and errors.As finds the *dpop.Error. [ErrInvalidDPoPProof]
// and [ErrUseDPoPNonce] are the dpop package's sentinels, not copies.
//
// # Metrics
//
// The package takes no metrics dependency. Set ServerConfig.Metrics to a
// [Metrics] implementation to count issued tokens by grant type and
// binding, refusals by endpoint and error code (use_dpop_nonce being a
// nonce challenge), and to time each replay-store call ([OpReplayStore]).
// A nil Metrics costs nothing.
//
// See RFC 9068 (https://www.rfc-editor.org/rfc/rfc9068), RFC 9449 §5–§10,
// RFC 8705 §2–§5, RFC 8414, RFC 7662 and RFC 9126.
package issuer
