package oautherr

// Reason is a stable, machine-readable name for the check that refused a
// request, for logs and metrics. It is never sent to clients and never
// contains request data. The zero value means no reason was recorded.
type Reason string

// String returns the reason as written in logs.
func (r Reason) String() string { return string(r) }

// Reasons for a refused DPoP proof (RFC 9449 §4.3).
const (
	// ReasonProofMissing: the request carried no DPoP proof.
	ReasonProofMissing Reason = "proof_missing"
	// ReasonProofInvalid: the proof was refused for a reason this version
	// does not name more precisely (kept for callers that count it).
	ReasonProofInvalid Reason = "proof_invalid"
	// ReasonProofTooLarge: the proof exceeds the configured size cap.
	ReasonProofTooLarge Reason = "proof_too_large"
	// ReasonProofMalformed: the proof is not a well-formed compact JWS with
	// JSON header and claims (bad base64url, duplicate or case-folded member
	// names, crit, a claim of the wrong type, an empty DPoP field).
	ReasonProofMalformed Reason = "proof_malformed"
	// ReasonProofType: the typ header is not dpop+jwt.
	ReasonProofType Reason = "proof_type"
	// ReasonProofAlgorithm: alg is missing or not in the allow-list.
	ReasonProofAlgorithm Reason = "proof_alg_not_allowed"
	// ReasonProofKey: the jwk header is missing or is not an acceptable
	// public key (private members, key references, a size, curve, point or
	// exponent the key rules refuse, or a key that does not fit alg).
	ReasonProofKey Reason = "proof_key_invalid"
	// ReasonProofX5C: the proof's x5c header member is malformed, too
	// large or not accepted here.
	ReasonProofX5C Reason = "proof_x5c_invalid"
	// ReasonProofX5CMissing: a signed request carries no x5c certificate.
	ReasonProofX5CMissing Reason = "proof_x5c_missing"
	// ReasonProofSignature: the proof's signature does not verify.
	ReasonProofSignature Reason = "proof_signature"
	// ReasonProofClaimMissing: jti, htm, htu or iat is missing.
	ReasonProofClaimMissing Reason = "proof_claim_missing"
	// ReasonProofJTI: jti is empty, too long or has control characters.
	ReasonProofJTI Reason = "proof_jti_invalid"
	// ReasonProofHTMMismatch: htm is not the request method.
	ReasonProofHTMMismatch Reason = "proof_htm_mismatch"
	// ReasonProofHTUMismatch: htu is not the request's target URI.
	ReasonProofHTUMismatch Reason = "proof_htu_mismatch"
	// ReasonProofTooOld: iat lies further in the past than the accepted
	// window.
	ReasonProofTooOld Reason = "proof_iat_too_old"
	// ReasonProofFromFuture: iat lies further in the future than the
	// accepted clock skew.
	ReasonProofFromFuture Reason = "proof_iat_in_future"
	// ReasonProofATHMismatch: ath is missing or not the hash of the access
	// token.
	ReasonProofATHMismatch Reason = "proof_ath_mismatch"
	// ReasonNonceRequired: the proof carries no server nonce where one is
	// required.
	ReasonNonceRequired Reason = "nonce_required"
	// ReasonNonceStale: the proof's nonce is expired, malformed or was
	// issued by another server.
	ReasonNonceStale Reason = "nonce_stale"
	// ReasonProofKeyMismatch: the proof key is not the key the access token
	// (cnf.jkt) or the authorization request (dpop_jkt) is bound to.
	ReasonProofKeyMismatch Reason = "proof_key_mismatch"
	// ReasonProofReplayed: the proof was already used.
	ReasonProofReplayed Reason = "proof_replayed"
	// ReasonProofKeyQuota: the proof key (or client) made more proofs than
	// its replay-store quota allows.
	ReasonProofKeyQuota Reason = "proof_key_quota"
	// ReasonReplayStateLost: the proof was issued before the replay store
	// lost its state and may have been used already.
	ReasonReplayStateLost Reason = "replay_state_lost"
	// ReasonReplayStoreUnavailable: the replay store could not decide.
	ReasonReplayStoreUnavailable Reason = "replay_store_unavailable"
	// ReasonNonceUnavailable: no fresh nonce could be made.
	ReasonNonceUnavailable Reason = "nonce_unavailable"
	// ReasonMultipleDPoPFields: more than one DPoP header field.
	ReasonMultipleDPoPFields Reason = "multiple_dpop_fields"
	// ReasonDPoPOverHTTP: a DPoP request over plain HTTP.
	ReasonDPoPOverHTTP Reason = "dpop_over_http"
)

// Reasons for a refused request (the Authorization field, proxies).
const (
	// ReasonNoCredentials: no access token in an accepted scheme.
	ReasonNoCredentials Reason = "no_credentials"
	// ReasonSchemeNotAccepted: an authentication scheme the server does not
	// support.
	ReasonSchemeNotAccepted Reason = "scheme_not_accepted"
	// ReasonTokenInParameter: the access token was sent in the query or
	// body as well as, or instead of, the Authorization field.
	ReasonTokenInParameter Reason = "token_in_parameter"
	// ReasonMultipleAuthorization: more than one Authorization field.
	ReasonMultipleAuthorization Reason = "multiple_authorization"
	// ReasonAuthorizationTooLarge: the Authorization field exceeds the cap.
	ReasonAuthorizationTooLarge Reason = "authorization_too_large"
	// ReasonAuthorizationMalformed: the Authorization field cannot be parsed.
	ReasonAuthorizationMalformed Reason = "authorization_malformed"
	// ReasonForwardedHeadersUnexpected: forwarded headers of a family the
	// trusted proxy does not set.
	ReasonForwardedHeadersUnexpected Reason = "forwarded_headers_unexpected"
	// ReasonForwardedHeaderMalformed: a malformed Forwarded header.
	ReasonForwardedHeaderMalformed Reason = "forwarded_header_malformed"
	// ReasonTargetURI: the request's target URI cannot be determined.
	ReasonTargetURI Reason = "target_uri"
	// ReasonPolicyInvalid: the route's policy is misconfigured.
	ReasonPolicyInvalid Reason = "policy_invalid"
	// ReasonInternal: an unexpected internal failure.
	ReasonInternal Reason = "internal"
)

// Reasons for a refused access token (RFC 9068, RFC 6750).
const (
	// ReasonTokenTooLarge: the access token exceeds the size cap.
	ReasonTokenTooLarge Reason = "token_too_large"
	// ReasonTokenMalformed: the access token is not a signed compact JWT.
	ReasonTokenMalformed Reason = "token_malformed"
	// ReasonTokenAlgorithm: the token's alg is not in the allow-list.
	ReasonTokenAlgorithm Reason = "token_alg_not_allowed"
	// ReasonTokenCrit: the token uses an unsupported critical header.
	ReasonTokenCrit Reason = "token_crit"
	// ReasonTokenClaimsMalformed: the token's claims cannot be parsed.
	ReasonTokenClaimsMalformed Reason = "token_claims_malformed"
	// ReasonIssuerUntrusted: the token's issuer is not a trusted issuer.
	ReasonIssuerUntrusted Reason = "token_issuer_unknown"
	// ReasonIssuerMetadataMismatch: the issuer's metadata names another
	// issuer (RFC 8414 §3.3).
	ReasonIssuerMetadataMismatch Reason = "issuer_metadata_mismatch"
	// ReasonTokenSignature: the token's signature does not verify with any
	// current key of its issuer.
	ReasonTokenSignature Reason = "token_signature"
	// ReasonTokenAudience: the token's audience does not name this resource.
	ReasonTokenAudience Reason = "token_audience"
	// ReasonTokenNoExpiry: the token has no exp claim.
	ReasonTokenNoExpiry Reason = "token_no_exp"
	// ReasonTokenMissingSub: the token has no sub claim.
	ReasonTokenMissingSub Reason = "token_missing_sub"
	// ReasonTokenMissingClientID: the token has no client_id claim.
	ReasonTokenMissingClientID Reason = "token_missing_client_id"
	// ReasonTokenMissingIAT: the token has no iat claim.
	ReasonTokenMissingIAT Reason = "token_missing_iat"
	// ReasonTokenMissingJTI: the token has no jti claim.
	ReasonTokenMissingJTI Reason = "token_missing_jti"
	// ReasonTokenConfirmationMalformed: the cnf claim is malformed.
	ReasonTokenConfirmationMalformed Reason = "token_cnf_malformed"
	// ReasonTokenConfirmationUnsupported: the cnf claim uses a confirmation
	// method this server does not support.
	ReasonTokenConfirmationUnsupported Reason = "token_cnf_unsupported"
	// ReasonTokenType: the token's typ is not at+jwt.
	ReasonTokenType Reason = "token_type"
	// ReasonTokenExpired: the token has expired.
	ReasonTokenExpired Reason = "token_expired"
	// ReasonTokenNotYetValid: the token's nbf lies in the future.
	ReasonTokenNotYetValid Reason = "token_not_yet_valid"
	// ReasonTokenFromFuture: the token's iat lies in the future.
	ReasonTokenFromFuture Reason = "token_issued_in_future"
	// ReasonInsufficientScope: the token lacks a scope the route requires.
	ReasonInsufficientScope Reason = "insufficient_scope"
	// ReasonKeysUnavailable: the issuer's keys could not be obtained.
	ReasonKeysUnavailable Reason = "keys_unavailable"
	// ReasonIntrospectionUnavailable: the issuer's introspection endpoint
	// could not decide (network error, non-200 answer, malformed or
	// oversized response).
	ReasonIntrospectionUnavailable Reason = "introspection_unavailable"
	// ReasonIntrospectionBusy: the token needed an introspection call
	// while the resource server already had as many calls under way as
	// its limit allows; the request was refused without calling the
	// authorization server.
	ReasonIntrospectionBusy Reason = "introspection_busy"
	// ReasonTokenInactive: the introspection endpoint answered that the
	// token is not active (RFC 7662 §2.2).
	ReasonTokenInactive Reason = "token_inactive"
)

// Reasons for a refused binding (RFC 9449 §7, RFC 8705 §3).
const (
	// ReasonTokenNotDPoPBound: a token without cnf.jkt under the DPoP scheme.
	ReasonTokenNotDPoPBound Reason = "token_not_dpop_bound"
	// ReasonBearerDowngrade: a DPoP-bound token under the Bearer scheme.
	ReasonBearerDowngrade Reason = "bearer_downgrade"
	// ReasonTokenUnbound: an unbound token where a sender-constrained one
	// is required.
	ReasonTokenUnbound Reason = "token_unbound"
	// ReasonBindingNotAccepted: a binding the route does not accept.
	ReasonBindingNotAccepted Reason = "binding_not_accepted"
)

// Reasons for a refused client certificate (RFC 8705 §2, §3).
const (
	// ReasonCertificateMissing: no client certificate where one is needed.
	ReasonCertificateMissing Reason = "certificate_missing"
	// ReasonCertificateMismatch: the certificate is not the one the token
	// (cnf.x5t#S256) or the client's registration names.
	ReasonCertificateMismatch Reason = "certificate_mismatch"
	// ReasonCertificateSubjectMismatch: the certificate does not carry the
	// subject DN or SAN registered for a tls_client_auth client.
	ReasonCertificateSubjectMismatch Reason = "certificate_subject_mismatch"
	// ReasonCertificateUntrusted: the certificate does not chain to a
	// trusted root with the clientAuth usage, or is outside its validity.
	ReasonCertificateUntrusted Reason = "certificate_untrusted"
	// ReasonCertificateRevoked: the certificate or a CA above it is revoked.
	ReasonCertificateRevoked Reason = "certificate_revoked"
	// ReasonRevocationUnavailable: the revocation status is unknown (CRL
	// unreachable, unparsable or stale); the request is refused.
	ReasonRevocationUnavailable Reason = "revocation_unavailable"
	// ReasonClientCertHeaderInvalid: a trusted proxy forwarded a malformed
	// client certificate.
	ReasonClientCertHeaderInvalid Reason = "client_cert_header_invalid"
)

// Reasons for a refused token request (RFC 6749 §5.2).
const (
	// ReasonClientUnknown: no client is registered under the client_id.
	ReasonClientUnknown Reason = "client_unknown"
	// ReasonClientIDMissing: the request names no client.
	ReasonClientIDMissing Reason = "client_id_missing"
	// ReasonClientAuthMethod: the client authenticated with a method other
	// than the one it is registered for, or with more than one.
	ReasonClientAuthMethod Reason = "client_auth_method"
	// ReasonClientAuthFailed: client authentication failed for a reason
	// this version does not name more precisely.
	ReasonClientAuthFailed Reason = "client_auth_failed"
	// ReasonClientSecret: the client secret does not match.
	ReasonClientSecret Reason = "client_secret_mismatch"
	// ReasonClientAssertion: the private_key_jwt assertion is invalid,
	// expired, replayed or signed by an unregistered key.
	ReasonClientAssertion Reason = "client_assertion_invalid"
	// ReasonClientKeysUnavailable: the keys of a client registered with a
	// jwks_uri could not be fetched, or the document there was refused
	// (not https, a non-public address, too large, not a strict public
	// JWK Set), and no earlier set of that client is still usable.
	ReasonClientKeysUnavailable Reason = "client_keys_unavailable"
	// ReasonClientRegistryUnavailable: the client registry failed.
	ReasonClientRegistryUnavailable Reason = "client_registry_unavailable"
	// ReasonRequestMalformed: the token request is malformed (missing or
	// repeated parameters, an unsupported body).
	ReasonRequestMalformed Reason = "request_malformed"
	// ReasonGrantTypeUnsupported: the grant type is unknown.
	ReasonGrantTypeUnsupported Reason = "grant_type_unsupported"
	// ReasonGrantNotAllowed: the client may not use the grant type.
	ReasonGrantNotAllowed Reason = "grant_not_allowed"
	// ReasonGrantInvalid: the grant or refresh token is invalid.
	ReasonGrantInvalid Reason = "grant_invalid"
	// ReasonScopeNotAllowed: the requested scope is not allowed.
	ReasonScopeNotAllowed Reason = "scope_not_allowed"
	// ReasonTargetNotAllowed: the resource indicator is not allowed.
	ReasonTargetNotAllowed Reason = "target_not_allowed"
	// ReasonDependencyUnavailable: a dependency of the server failed.
	ReasonDependencyUnavailable Reason = "dependency_unavailable"
	// ReasonTokenNotVisible: an introspected token belongs to an audience
	// or client the caller may not see; the answer is {"active":false}.
	ReasonTokenNotVisible Reason = "token_not_visible"
	// ReasonRefreshStoreUnavailable: the refresh-token store failed.
	ReasonRefreshStoreUnavailable Reason = "refresh_store_unavailable"
	// ReasonRefreshTokenReused: a refresh token already redeemed was
	// presented again (RFC 9700 §4.14.2); its whole family is revoked.
	ReasonRefreshTokenReused Reason = "refresh_token_reused"
	// ReasonAccessTokenStoreUnavailable: the store of opaque access
	// tokens failed.
	ReasonAccessTokenStoreUnavailable Reason = "access_token_store_unavailable"
)

// Reasons for a refused authorization request or pushed authorization
// request (RFC 9449 §10, RFC 9126).
const (
	// ReasonDPoPJKTMalformed: the dpop_jkt parameter is not one base64url
	// SHA-256 JWK thumbprint (43 characters, no padding).
	ReasonDPoPJKTMalformed Reason = "dpop_jkt_malformed"
	// ReasonDPoPJKTMismatch: a pushed authorization request carries both
	// dpop_jkt and a DPoP proof, and the proof key has another thumbprint.
	ReasonDPoPJKTMismatch Reason = "dpop_jkt_mismatch"
	// ReasonRequestURINotAllowed: a pushed authorization request carries a
	// request_uri parameter (RFC 9126 §2.1).
	ReasonRequestURINotAllowed Reason = "request_uri_not_allowed"
	// ReasonRequestURIInvalid: a request_uri is unknown, expired, already
	// used or pushed by another client.
	ReasonRequestURIInvalid Reason = "request_uri_invalid"
	// ReasonPushedRequestRequired: an authorization request without
	// request_uri where pushed authorization requests are required.
	ReasonPushedRequestRequired Reason = "pushed_request_required"
	// ReasonPushedRequestStoreUnavailable: the pushed-request store failed
	// or is full of live requests.
	ReasonPushedRequestStoreUnavailable Reason = "pushed_request_store_unavailable"
	// ReasonPushedRequestQuotaExceeded: the client pushed more requests
	// in the quota window than it may (429 Too Many Requests).
	ReasonPushedRequestQuotaExceeded Reason = "pushed_request_quota_exceeded"
)

// Reasons for a refused fallback client certificate (a certificate that
// carries the client's authorization when the issuer is unreachable) or
// signed request. The fallback package returns them in its errors; a
// resource server logs them unchanged.
const (
	// ReasonFallbackEmptyChain: no certificate was presented.
	ReasonFallbackEmptyChain Reason = "fallback_empty_chain"
	// ReasonFallbackChainTooLong: more certificates were presented than
	// the verifier accepts.
	ReasonFallbackChainTooLong Reason = "fallback_chain_too_long"
	// ReasonFallbackCertificateMalformed: a presented certificate cannot be
	// parsed.
	ReasonFallbackCertificateMalformed Reason = "fallback_certificate_malformed"
	// ReasonFallbackUntrustedChain: the certificate is not issued by a
	// configured fallback CA (foreign CA, forged signature, a CA outside
	// its validity).
	ReasonFallbackUntrustedChain Reason = "fallback_untrusted_chain"
	// ReasonFallbackCriticalExtension: the certificate has a critical
	// extension that is not handled.
	ReasonFallbackCriticalExtension Reason = "fallback_critical_extension"
	// ReasonFallbackExpired: the fallback certificate has expired.
	ReasonFallbackExpired Reason = "fallback_expired"
	// ReasonFallbackNotYetValid: the fallback certificate's notBefore lies
	// in the future.
	ReasonFallbackNotYetValid Reason = "fallback_not_yet_valid"
	// ReasonFallbackNotClientAuth: the fallback certificate (or its CA)
	// lacks the clientAuth extended key usage.
	ReasonFallbackNotClientAuth Reason = "fallback_not_client_auth"
	// ReasonFallbackLeafIsCA: the presented leaf is a CA certificate.
	ReasonFallbackLeafIsCA Reason = "fallback_leaf_is_ca"
	// ReasonFallbackNoClientID: the certificate carries no client_id URI
	// SAN, or more than one URI SAN.
	ReasonFallbackNoClientID Reason = "fallback_no_client_id"
	// ReasonFallbackRevoked: the fallback certificate is revoked.
	ReasonFallbackRevoked Reason = "fallback_revoked"
	// ReasonFallbackScopesMissing: the certificate has no scopes extension.
	ReasonFallbackScopesMissing Reason = "fallback_scopes_missing"
	// ReasonFallbackScopesDuplicate: the scopes extension is present more
	// than once.
	ReasonFallbackScopesDuplicate Reason = "fallback_scopes_duplicate"
	// ReasonFallbackScopesMalformed: the certificate's scopes extension is
	// not the DER SEQUENCE OF UTF8String scope-tokens.
	ReasonFallbackScopesMalformed Reason = "fallback_scopes_malformed"
	// ReasonFallbackKeyMismatch: a signed request was signed by a key other
	// than the fallback certificate's.
	ReasonFallbackKeyMismatch Reason = "fallback_key_mismatch"
	// ReasonFallbackSignedRequestsOff: a signed request reached a verifier
	// that is not configured for them.
	ReasonFallbackSignedRequestsOff Reason = "fallback_signed_requests_off"
	// ReasonFallbackCRLUnavailable: no revocation list of the fallback CA
	// is at hand yet; the request is refused.
	ReasonFallbackCRLUnavailable Reason = "fallback_crl_unavailable"
	// ReasonFallbackCRLStale: the revocation list is past its nextUpdate
	// and the grace period; the request is refused.
	ReasonFallbackCRLStale Reason = "fallback_crl_stale"
	// ReasonFallbackCRLOtherIssuer: the revocation list is not the one of
	// the certificate's CA.
	ReasonFallbackCRLOtherIssuer Reason = "fallback_crl_other_issuer"
	// ReasonFallbackCRLMalformed: a fetched revocation list is not one DER
	// CRL.
	ReasonFallbackCRLMalformed Reason = "fallback_crl_malformed"
	// ReasonFallbackCRLSignature: a fetched revocation list's signature
	// does not verify under the CA key.
	ReasonFallbackCRLSignature Reason = "fallback_crl_signature"
	// ReasonFallbackCRLCritical: a fetched revocation list (or an entry)
	// has a critical extension that is not handled.
	ReasonFallbackCRLCritical Reason = "fallback_crl_critical_extension"
	// ReasonFallbackCRLNoNextUpdate: a fetched revocation list lacks
	// nextUpdate or a CRL number, or its nextUpdate precedes thisUpdate.
	ReasonFallbackCRLNoNextUpdate Reason = "fallback_crl_no_next_update"
	// ReasonFallbackCRLFuture: a fetched revocation list was issued in the
	// future.
	ReasonFallbackCRLFuture Reason = "fallback_crl_from_future"
	// ReasonFallbackCRLBackwards: a fetched revocation list's number is
	// lower than the current one's.
	ReasonFallbackCRLBackwards Reason = "fallback_crl_number_backwards"
	// ReasonFallbackCRLTooLarge: a fetched revocation list exceeds the
	// size cap.
	ReasonFallbackCRLTooLarge Reason = "fallback_crl_too_large"
	// ReasonFallbackCRLFetch: the revocation list could not be fetched.
	ReasonFallbackCRLFetch Reason = "fallback_crl_fetch_failed"
	// ReasonFallbackCSRTooLarge: a certificate signing request exceeds the
	// size cap.
	ReasonFallbackCSRTooLarge Reason = "fallback_csr_too_large"
	// ReasonFallbackCSRMalformed: a certificate signing request cannot be
	// parsed.
	ReasonFallbackCSRMalformed Reason = "fallback_csr_malformed"
	// ReasonFallbackCSRSignature: a certificate signing request's signature
	// does not verify under its own key (no proof of possession).
	ReasonFallbackCSRSignature Reason = "fallback_csr_signature"
	// ReasonFallbackKeyType: the CSR's key type is not certified.
	ReasonFallbackKeyType Reason = "fallback_key_type"
	// ReasonFallbackKeySize: the CSR's key size or exponent is not
	// certified.
	ReasonFallbackKeySize Reason = "fallback_key_size"
	// ReasonFallbackKeyWeak: the CSR's key is a small-order or
	// non-canonical point.
	ReasonFallbackKeyWeak Reason = "fallback_key_weak"
	// ReasonFallbackScopeNotRegistered: the CSR asks for a scope the client
	// is not registered for.
	ReasonFallbackScopeNotRegistered Reason = "fallback_scope_not_registered"
	// ReasonFallbackScopeSyntax: a scope is not an RFC 6749 §3.3
	// scope-token.
	ReasonFallbackScopeSyntax Reason = "fallback_scope_syntax"
	// ReasonFallbackClientIDInvalid: the client_id cannot be certified
	// (empty, too long or not UTF-8).
	ReasonFallbackClientIDInvalid Reason = "fallback_client_id_invalid"
)
