package oautherr

// Error codes of RFC 6750 §3.1 (resource servers).
const (
	// InvalidRequest: the request is malformed (RFC 6750 §3.1, RFC 6749 §5.2).
	InvalidRequest = "invalid_request"
	// InvalidToken: the access token is not acceptable, or the request does
	// not satisfy its binding (RFC 6750 §3.1, RFC 9449 §7.1, RFC 8705 §3).
	InvalidToken = "invalid_token"
	// InsufficientScope: the token lacks a scope the resource requires
	// (RFC 6750 §3.1).
	InsufficientScope = "insufficient_scope"
)

// Error codes of RFC 9449 (DPoP).
const (
	// InvalidDPoPProof: the DPoP proof fails a check (RFC 9449 §5, §7.1).
	InvalidDPoPProof = "invalid_dpop_proof"
	// UseDPoPNonce: the proof must carry the server nonce sent in the
	// DPoP-Nonce response header (RFC 9449 §8, §9).
	UseDPoPNonce = "use_dpop_nonce"
)

// Error codes of RFC 6749 §5.2 (token endpoint) and RFC 8707.
const (
	// InvalidClient: client authentication failed (RFC 6749 §5.2).
	InvalidClient = "invalid_client"
	// InvalidGrant: the grant or refresh token is invalid, expired, revoked
	// or bound to another key (RFC 6749 §5.2).
	InvalidGrant = "invalid_grant"
	// UnauthorizedClient: the client may not use this grant type
	// (RFC 6749 §5.2).
	UnauthorizedClient = "unauthorized_client"
	// UnsupportedGrantType: the grant type is unknown (RFC 6749 §5.2).
	UnsupportedGrantType = "unsupported_grant_type"
	// InvalidScope: the requested scope is not allowed (RFC 6749 §5.2).
	InvalidScope = "invalid_scope"
	// InvalidTarget: the resource indicator is not allowed (RFC 8707 §2).
	InvalidTarget = "invalid_target"
)

// Codes for failures of the server itself (RFC 6749 §4.1.2.1).
const (
	// ServerError: an unexpected failure of the server.
	ServerError = "server_error"
	// TemporarilyUnavailable: a dependency of the server (replay store,
	// key set, client registry) is unavailable; the request is refused.
	TemporarilyUnavailable = "temporarily_unavailable"
)
