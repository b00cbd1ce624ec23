// Package grpcdpop is the client side of DPoP (RFC 9449) for gRPC: a
// credentials.PerRPCCredentials, [Credentials], that sends
// "authorization: DPoP <token>" and a fresh proof with every call, and
// interceptors that keep the server's DPoP-Nonce and answer its
// use_dpop_nonce challenge. It keeps package dpop free of gRPC.
//
//	prover, _ := dpop.NewProver(key, nil)
//	c := &grpcdpop.Credentials{
//		Prover: prover,
//		Source: oauth2.ReuseTokenSource(nil, tokens), // tokens of type DPoP
//	}
//	cc, err := grpc.NewClient("orders.internal:8443",
//		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})),
//		grpc.WithPerRPCCredentials(c),
//		grpc.WithUnaryInterceptor(c.UnaryClientInterceptor()),
//		grpc.WithStreamInterceptor(c.StreamClientInterceptor()))
//
// # The proof of a call
//
// A gRPC call is an HTTP/2 POST request to /<package.Service>/<Method>, so
// each proof is made for htm POST and htu https://<authority>/<package.Service>/<Method>,
// where authority is the one the connection sends as :authority (gRPC
// drops a :443 port, which RFC 9449 §4.3 normalization drops too), with
// ath, the hash of the access token (RFC 9449 §4.2). The resource server
// (resource/grpcresource) checks exactly that.
//
// # Transport security
//
// [Credentials.RequireTransportSecurity] is true, so gRPC refuses a
// connection without transport security that carries the credentials, and
// [Credentials.GetRequestMetadata] checks each call's security level
// again: tokens and proofs are never sent in the clear. Tokens whose type
// is not DPoP are refused, so a bearer token is never sent as if bound.
//
// # Nonces
//
// A resource server that requires nonces (RFC 9449 §9) refuses a call
// with codes.Unauthenticated, a www-authenticate challenge with
// error="use_dpop_nonce" and a dpop-nonce metadata value. The unary
// interceptor keeps that nonce for the authority and retries the call
// exactly once with a new proof; it also keeps the fresh nonce an admitted
// call may carry. Streams are not retried, because the refusal may arrive
// after messages were sent: the stream interceptor only keeps the nonce,
// so the next call carries it. For certificate-bound tokens use
// mtlsbound/grpcmtls instead.
package grpcdpop
