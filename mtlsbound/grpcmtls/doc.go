// Package grpcmtls is the client side of certificate-bound access tokens
// (RFC 8705) for gRPC: [TransportCredentials] present the client
// certificate the tokens are bound to (CA-issued or self-signed), and
// [Credentials] send the token as "authorization: Bearer <token>" with
// every call. It keeps package mtlsbound free of gRPC.
//
//	cc, err := grpc.NewClient("orders.internal:8443",
//		grpc.WithTransportCredentials(grpcmtls.TransportCredentials(cert, roots)),
//		grpc.WithPerRPCCredentials(grpcmtls.Credentials{Source: tokens}))
//
// The resource server (resource/grpcresource) matches the token's
// cnf.x5t#S256 with the certificate of the TLS connection. [Credentials]
// never send a token on a connection without transport security
// (RequireTransportSecurity is true, and each call's security level is
// checked), and refuse tokens whose type is not Bearer. For DPoP-bound
// tokens use dpop/grpcdpop.
package grpcmtls
