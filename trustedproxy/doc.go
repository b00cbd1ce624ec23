// Package trustedproxy describes the TLS-terminating proxies in front of a
// server: which immediate peers are proxies, and which header family they
// use to forward the scheme and host the client used. Headers that such a
// proxy adds (a forwarded client certificate, the public scheme and host)
// may be believed only from these peers; from anyone else they are
// attacker input.
//
// One [Set], built once by [New], is passed to every package that needs it:
// resource.Config.TrustedProxies, dpop.TargetURIConfig.TrustedProxies and
// mtlsbound.SourceConfig.TrustedProxies. A nil *Set trusts no one.
//
//	proxies, err := trustedproxy.New(trustedproxy.Config{
//		Peers:   []string{"10.0.0.0/24", "fd00:1::7"},
//		Headers: trustedproxy.HeadersXForwarded, // what the proxies set
//	})
//
// # Peers
//
// Each peer is a CIDR in canonical form ("10.0.0.0/8"; "10.0.0.1/8" is
// refused as a likely typo) or a single address ("127.0.0.1", "::1").
// IPv4-mapped IPv6 ranges and addresses are taken as IPv4. The immediate
// peer is r.RemoteAddr, as net/http sets it from the connection; never
// X-Forwarded-For. A set whose ranges together cover every IPv4 or every
// IPv6 address is refused, however it is split: it would let any client
// forge the headers. List only proxies: a client connecting from a trusted
// address is taken for a proxy, its own TLS client certificate for the
// proxy's, and its forwarded headers are believed.
//
// # Forwarded scheme and host
//
// Without a configured public URL, a server derives the URL a client used
// (the DPoP htu, RFC 9449 §4.3) from what its proxy forwards. The
// deployment names the one family its proxies set ([Headers]):
// X-Forwarded-Proto and X-Forwarded-Host (the default), RFC 7239 Forwarded,
// or none. [Set.Origin] reads only that family, never falls back to the
// other, and refuses a request from a trusted peer that carries the other
// family's fields ([ErrUnexpectedHeaders]): common proxies set one family
// and pass the other through from the client untouched, which would let
// the client choose the host its proof is checked against. Within the named
// family, the proxies must overwrite or remove every field a client sent
// (X-Forwarded-Host as well as X-Forwarded-Proto; or append their own
// Forwarded element, of which only the last is read). A configured
// public URL (resource.Config.PublicURL, dpop.TargetURIConfig.PublicURL) is
// the recommended setting: it makes forwarded scheme and host irrelevant.
package trustedproxy
