package trustedproxy

import "errors"

// Sentinel errors. Every error this package returns wraps exactly one of
// these; test with errors.Is. Messages never contain header values.
var (
	// ErrInvalidConfig means [New] or [ParseHeaders] refused a
	// configuration.
	ErrInvalidConfig = errors.New("trustedproxy: invalid configuration")

	// ErrUntrustedPeer means the request's immediate peer is not a trusted
	// proxy, so none of its forwarded headers may be read.
	ErrUntrustedPeer = errors.New("trustedproxy: peer is not a trusted proxy")

	// ErrUnexpectedHeaders means a request from a trusted proxy carries
	// forwarded scheme or host fields of a family the proxies do not set:
	// a client's fields passed through. Servers refuse such a request
	// (400 invalid_request) rather than guess which family to believe.
	ErrUnexpectedHeaders = errors.New("trustedproxy: forwarded headers of a family the proxies do not set")

	// ErrMalformedHeader means a trusted proxy's Forwarded field is not
	// valid RFC 7239 syntax (answer 400 invalid_request).
	ErrMalformedHeader = errors.New("trustedproxy: malformed Forwarded field")
)
