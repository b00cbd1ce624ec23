// Package mtlsbound implements the certificate side of OAuth 2.0 mutual-TLS
// (RFC 8705): certificate thumbprints for certificate-bound access tokens
// (cnf.x5t#S256), client authentication with tls_client_auth and
// self_signed_tls_client_auth, finding the client certificate of a request
// (from the TLS connection, or from an RFC 9440 Client-Cert header set by a
// trusted TLS-terminating proxy), CRL revocation checking, and the TLS
// configuration that ties them together.
//
// It imports only the standard library and go-jose; the subpackage
// [github.com/senderbound/senderbound/mtlsbound/certs] makes test CAs and
// certificates.
//
// # Thumbprints and binding (RFC 8705 §3)
//
// [Thumbprint] is base64url(SHA-256(DER)) without padding. A resource server
// checks a token's binding with [CheckBinding], which compares in constant
// time and never validates the certificate chain (RFC 8705 §6.2):
//
//	src, _ := mtlsbound.NewSource(mtlsbound.SourceConfig{})
//	cert, err := src.ClientCertificate(r)          // TLS layer only by default
//	if err != nil { /* 400: malformed forwarded header */ }
//	if err := mtlsbound.CheckBinding(cert, claims.Cnf.X5tS256); err != nil {
//		// 401 Bearer error="invalid_token"
//	}
//
// # Where the certificate comes from
//
// A [Source] finds the client certificate by the immediate peer
// (r.RemoteAddr). From a peer that is not one of
// [SourceConfig.TrustedProxies], it is the TLS-layer certificate, which is
// authoritative: no header overrides it, and headers from such a peer are
// never read (CCERT-16). From a trusted proxy, it is the certificate the
// proxy forwarded in the header: RFC 9440 Client-Cert by default, or opt-in
// Envoy X-Forwarded-Client-Cert and nginx $ssl_client_escaped_cert formats.
// A certificate on the proxy's own connection (upstream mTLS, a
// service-mesh sidecar) is the proxy's, never the client's, and a trusted
// proxy that forwards none means there is no client certificate. The
// trusted set must therefore contain only proxies. With no trusted proxies
// (the default) headers are never read. The proxies are one
// trustedproxy.Set, shared with the rest of the server's configuration.
// The proxy must strip client-supplied copies of the header before it sets
// its own (RFC 9440 §2.4), and remove the header from the backend's
// responses; [FormatClientCertHeader] and [FormatClientCertChainHeader]
// produce the values for a proxy written in Go.
// Responses chosen with a forwarded certificate must be marked
// Cache-Control: no-store or Vary on the header ([Source.Forwarded]).
// Forwarded-header settings without trusted proxies are refused by
// [NewSource]; trustedproxy.New refuses ranges that trust every peer.
//
// # Client authentication (RFC 8705 §2)
//
// [PKIAuth] implements tls_client_auth: the certificate must chain to a small
// set of configured roots with the clientAuth extended key usage and match
// exactly one registered selector (subject DN, or a SAN of one type:
// tls_client_auth_san_dns, _uri, _ip or _email of RFC 8705 §2.1.2). A SAN
// selector matches only SANs of its type: a DNS name case-insensitively in
// ASCII, a URI such as a service mesh's SPIFFE ID exactly (the scheme
// excepted, with no normalization), an IP address in binary form (an
// IPv4-mapped IPv6 address is not the IPv4 address), an e-mail address
// with its local part exactly and its domain case-insensitively in ASCII.
// [SelfSignedAuth] implements self_signed_tls_client_auth: the certificate
// must be byte-for-byte one of the registered ones. Both refuse a
// certificate whose key a TLS handshake does not tie to its holder or that
// costs too much to use: an Ed25519 key of small order or non-canonical
// encoding (such a key accepts one fixed signature for every message), an
// RSA key outside 2048..4096 bits or with an exponent above 65537, an ECDSA
// key off P-256, P-384 and P-521. Both return errors
// wrapping the sentinels in errors.go; a token endpoint maps all of them to
// invalid_client.
//
// A registered subject DN ([ParseDistinguishedName]) matches a certificate
// subject with the same RDNs in the same order. String values are compared
// after RFC 4518 preparation restricted so that look-alikes never pass: ASCII
// letters match without regard to case and ASCII spaces at the ends or in
// runs do not count, but a character outside ASCII never matches an ASCII
// one (U+017F "ſ" is not "s", U+212A KELVIN SIGN is not "k", fullwidth
// letters are not ASCII letters), other Unicode spaces such as U+00A0 are
// never trimmed, no Unicode normalization is applied, and a value holding an
// invisible or prohibited character (U+200B ZERO WIDTH SPACE, U+00AD SOFT
// HYPHEN, controls, private-use or unassigned code points) is refused at
// registration and matches nothing in a certificate.
//
// # Revocation
//
// [CRLChecker] fetches, verifies and caches CRLs. Prefer short-lived client
// certificates (hours to days) to revocation: a CRL is only as fresh as its
// NextUpdate, and a checker that cannot reach the CRL distribution point
// must fail closed. A dead distribution point does not stall the server:
// concurrent checks share one fetch bounded by [CRLChecker.FetchTimeout],
// each check stops waiting when its own context ends, and a failure is
// remembered for [CRLChecker.RetryInterval] (30 seconds by default), during
// which checks fail at once without a new fetch.
//
// # TLS
//
// [ServerTLSConfig] requests a client certificate without requiring or
// verifying it at the handshake (the handshake still proves key possession),
// so each client's policy is applied afterwards. [NewClient] returns an HTTP
// client that presents a certificate.
//
// # Errors
//
// Errors wrap exactly one of the sentinels in errors.go (test with
// errors.Is) and never contain header values, certificates or tokens.
// [Reason] maps them to the stable oautherr reasons that resource servers
// and token endpoints log (certificate_missing, certificate_mismatch,
// certificate_subject_mismatch, certificate_untrusted, certificate_revoked,
// revocation_unavailable, client_cert_header_invalid); the servers keep the
// error as the cause of their own typed error, so errors.Is and errors.As
// see it through them, and clients only ever get the RFC error code.
package mtlsbound
