// Package grpcresource protects gRPC services with the same
// [resource.Verifier] that protects HTTP resources: unary and stream
// server interceptors that accept DPoP-bound tokens (RFC 9449),
// certificate-bound tokens (RFC 8705) and, where a method's policy allows
// it, bearer tokens (RFC 6750). It is the only server-side package that
// imports google.golang.org/grpc, so plain net/http users never pull it in.
//
//	v, _ := resource.New(cfg) // cfg.PublicURL = "https://orders.internal:8443"
//	in, err := grpcresource.New(grpcresource.Config{
//		Verifier: v,
//		Default:  resource.Policy{Scopes: []string{"orders:read"}},
//		Methods: map[string]resource.Policy{
//			"/orders.v1.Orders/Cancel": {Scopes: []string{"orders:write"}},
//		},
//	})
//	if err != nil { ... }
//	srv := grpc.NewServer(
//		grpc.Creds(credentials.NewTLS(mtlsbound.ServerTLSConfig(cert))),
//		grpc.UnaryInterceptor(in.Unary()),
//		grpc.StreamInterceptor(in.Stream()))
//
// Handlers read the caller with [resource.PrincipalFromContext], as net/http
// handlers do.
//
// # The mapping
//
// A gRPC call is an HTTP/2 POST request to /<package.Service>/<Method>, so
// RFC 9449 and RFC 8705 apply unchanged, and the interceptors check each
// call as that request ([Request] builds it):
//
//   - htm is POST and htu is https://<:authority>/<package.Service>/<Method>
//     (the full method name); with [resource.Config.PublicURL] set, htu is
//     PublicURL followed by the full method name and :authority is not
//     used. (Without PublicURL, the verifier's InsecureHostHeader option
//     takes htu from :authority, which the client chooses.)
//   - the access token is the authorization metadata, "DPoP <token>" or
//     "Bearer <token>"; the proof is the dpop metadata. Every value is
//     passed on, so two authorization or two dpop values are refused as two
//     header fields are over HTTP.
//   - the client certificate of a certificate-bound token is the peer
//     certificate of the gRPC TLS credentials (credentials.TLSInfo); a
//     call without TLS has none, and a DPoP call without TLS is refused
//     (RFC 9449 §2) unless the verifier allows DPoP over HTTP.
//   - no other metadata is read: forwarded headers (Forwarded,
//     X-Forwarded-*, Client-Cert) are never taken from gRPC metadata.
//
// Each method has its [resource.Policy]: [Config.Methods] maps full method
// names to policies, and every other method gets [Config.Default]. There
// is no way to leave a method unprotected on an intercepted server; serve
// public methods (such as health checks) from another server.
//
// # Answers
//
// A refused call never reaches the handler. Its status code follows the
// HTTP status of the [resource.Error] ([Code]):
//
//	400 invalid_request     codes.InvalidArgument
//	401 (any error or none) codes.Unauthenticated
//	403 insufficient_scope  codes.PermissionDenied
//	503                     codes.Unavailable (replay store or keys down)
//
// The status message is the error code and a fixed description, for
// example "invalid_token: access token expired" ([Status]); it never
// contains request data. The WWW-Authenticate challenges are sent as
// www-authenticate response header metadata, one value per challenge,
// exactly as over HTTP (none for Unavailable). A nonce is sent as
// dpop-nonce header metadata: with the use_dpop_nonce refusal
// (codes.Unauthenticated), and with an admitted call when the client's
// nonce is due for renewal (RFC 9449 §9). The client side, in
// dpop/grpcdpop, learns it and retries once.
package grpcresource
