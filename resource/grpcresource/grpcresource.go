package grpcresource

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/senderbound/senderbound/resource"
)

// Metadata keys read and written by the interceptors (gRPC metadata keys
// are lower case).
const (
	// MetadataAuthorization carries "DPoP <token>" or "Bearer <token>".
	MetadataAuthorization = "authorization"
	// MetadataDPoP carries the DPoP proof.
	MetadataDPoP = "dpop"
	// MetadataDPoPNonce is the response header metadata that carries a
	// fresh resource-server nonce (RFC 9449 §9).
	MetadataDPoPNonce = "dpop-nonce"
	// MetadataWWWAuthenticate is the response header metadata that carries
	// the challenges of a refused call, one value per challenge.
	MetadataWWWAuthenticate = "www-authenticate"
)

// Config configures the interceptors. [New] copies it; later changes to
// the caller's struct (and its map) have no effect.
type Config struct {
	// Verifier checks the calls. Required.
	Verifier *resource.Verifier
	// Default is the policy of every method not listed in Methods. The
	// zero value accepts DPoP- or certificate-bound tokens and requires
	// no scope.
	Default resource.Policy
	// Methods maps full method names ("/package.Service/Method") to their
	// policy, for example to require a scope on the methods that write.
	// Every method is protected: a method not listed gets Default.
	Methods map[string]resource.Policy
}

// Interceptor authenticates gRPC calls with a [resource.Verifier]. Build
// it with [New] and install [Interceptor.Unary] and [Interceptor.Stream]
// on the server; it is safe for concurrent use.
type Interceptor struct {
	v       *resource.Verifier
	def     resource.Policy
	methods map[string]resource.Policy
}

// New validates cfg and returns the interceptor. It fails when Verifier is
// nil or a policy cannot be enforced by Verifier (see
// [resource.Verifier.ValidatePolicy]).
func New(cfg Config) (*Interceptor, error) {
	if cfg.Verifier == nil {
		return nil, errors.New("grpcresource: Config.Verifier is required")
	}
	if err := cfg.Verifier.ValidatePolicy(cfg.Default); err != nil {
		return nil, err
	}
	in := &Interceptor{v: cfg.Verifier, def: clonePolicy(cfg.Default), methods: make(map[string]resource.Policy, len(cfg.Methods))}
	for m, p := range cfg.Methods {
		if !strings.HasPrefix(m, "/") || strings.Count(m, "/") != 2 {
			return nil, errors.New("grpcresource: Config.Methods keys must be full method names such as /package.Service/Method")
		}
		if err := cfg.Verifier.ValidatePolicy(p); err != nil {
			return nil, err
		}
		in.methods[m] = clonePolicy(p)
	}
	return in, nil
}

func clonePolicy(p resource.Policy) resource.Policy {
	p.Scopes = append([]string(nil), p.Scopes...)
	return p
}

// policy returns the policy of fullMethod.
func (in *Interceptor) policy(fullMethod string) resource.Policy {
	if p, ok := in.methods[fullMethod]; ok {
		return p
	}
	return in.def
}

// Unary returns the unary server interceptor: it authenticates the call
// and runs the handler with the principal in its context (read it with
// [resource.PrincipalFromContext]), or refuses the call without running
// the handler.
func (in *Interceptor) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, md, err := in.authenticate(ctx, info.FullMethod)
		if md != nil {
			if herr := grpc.SetHeader(ctx, md); herr != nil && err == nil {
				return nil, status.Error(codes.Internal, "cannot set response metadata")
			}
		}
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream returns the stream server interceptor: it authenticates the call
// before the handler reads or writes any message, and runs the handler on
// a stream whose Context carries the principal, or refuses the call
// without running the handler.
func (in *Interceptor) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, md, err := in.authenticate(ss.Context(), info.FullMethod)
		if md != nil {
			if herr := ss.SetHeader(md); herr != nil && err == nil {
				return status.Error(codes.Internal, "cannot set response metadata")
			}
		}
		if err != nil {
			return err
		}
		return handler(srv, &principalStream{ServerStream: ss, ctx: ctx})
	}
}

// principalStream is a ServerStream whose Context carries the principal.
type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *principalStream) Context() context.Context { return s.ctx }

// authenticate checks the call to fullMethod. It returns the context with
// the principal, the response header metadata to send (a fresh nonce, or
// the challenges of a refusal), and a status error on refusal.
func (in *Interceptor) authenticate(ctx context.Context, fullMethod string) (context.Context, metadata.MD, error) {
	// The request never leaves this function (Check keeps no part of it),
	// so its header, URL and TLS state come from a pool and go back
	// cleared.
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	r := request(ctx, fullMethod, sc)
	p, err := in.v.Check(r, in.policy(fullMethod))
	if err != nil {
		var e *resource.Error
		if !errors.As(err, &e) {
			return ctx, nil, status.Error(codes.Unavailable, "service temporarily unavailable")
		}
		return ctx, Metadata(e), Status(e).Err()
	}
	var md metadata.MD
	if n := p.DPoPNonce(); n != "" {
		md = metadata.Pairs(MetadataDPoPNonce, n)
	}
	return resource.NewContext(ctx, p), md, nil
}

// Request returns the HTTP request that a gRPC call to fullMethod is, as
// far as [resource.Verifier.Check] is concerned: method POST, target
// https://<:authority><fullMethod> (http:// without TLS), the
// authorization and dpop metadata as the Authorization and DPoP fields
// (every value, so duplicates are refused as over HTTP/1.1), the TLS
// connection state of the peer's credentials.TLSInfo as its TLS, the
// peer's address as RemoteAddr, no body, and ctx as its context. No other
// metadata is copied: forwarded headers (Forwarded, X-Forwarded-*,
// Client-Cert) are never read from gRPC metadata.
//
// The interceptors use it; call it to run [resource.Verifier.Check] from
// a custom interceptor.
func Request(ctx context.Context, fullMethod string) *http.Request {
	return request(ctx, fullMethod, &scratch{header: make(http.Header, 2)})
}

// scratch holds the parts of a request that [Request] would allocate on
// every call: the header, the URL and the TLS state.
type scratch struct {
	header http.Header
	url    url.URL
	tls    tls.ConnectionState
}

var scratchPool = sync.Pool{New: func() any { return &scratch{header: make(http.Header, 2)} }}

// release clears sc, so that the pool keeps no token, proof or
// certificate, and returns it to the pool.
func (sc *scratch) release() {
	clear(sc.header)
	sc.url = url.URL{}
	sc.tls = tls.ConnectionState{}
	scratchPool.Put(sc)
}

// request is Request with the header, URL and TLS state of sc, which must
// be empty.
func request(ctx context.Context, fullMethod string, sc *scratch) *http.Request {
	// ValueFromIncomingContext copies only the values asked for, where
	// FromIncomingContext would copy every key.
	h := sc.header
	if vs := metadata.ValueFromIncomingContext(ctx, MetadataAuthorization); len(vs) > 0 {
		h["Authorization"] = vs
	}
	if vs := metadata.ValueFromIncomingContext(ctx, MetadataDPoP); len(vs) > 0 {
		h["Dpop"] = vs
	}
	var authority string
	if vs := metadata.ValueFromIncomingContext(ctx, ":authority"); len(vs) == 1 {
		authority = vs[0]
	}
	sc.url = url.URL{Scheme: "http", Host: authority, Path: fullMethod}
	r := &http.Request{
		Method:     http.MethodPost,
		URL:        &sc.url,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     h,
		Body:       http.NoBody,
		Host:       authority,
		RequestURI: fullMethod,
	}
	if p, ok := peer.FromContext(ctx); ok {
		if p.Addr != nil {
			r.RemoteAddr = p.Addr.String()
		}
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			sc.tls = ti.State
			r.TLS = &sc.tls
			r.URL.Scheme = "https"
		}
	}
	return r.WithContext(ctx)
}

// Code returns the gRPC status code for a refusal of class err:
// Unauthenticated for no or unacceptable credentials (401, including
// use_dpop_nonce), PermissionDenied for insufficient_scope (403),
// InvalidArgument for a malformed request (400), Unavailable when a
// dependency (the replay store, the issuer's keys) is down (503) and for
// any error that is not a [*resource.Error].
func Code(err error) codes.Code {
	var e *resource.Error
	if !errors.As(err, &e) {
		return codes.Unavailable
	}
	switch e.Status {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	default:
		return codes.Unavailable
	}
}

// Status returns the gRPC status for a refusal: the code of [Code] and a
// message made of the wire error code and the fixed description (for
// example "invalid_token: access token expired"). It never contains
// request data.
func Status(e *resource.Error) *status.Status {
	msg := e.Description
	switch {
	case e.Status == http.StatusServiceUnavailable:
		msg = "service temporarily unavailable"
	case e.Code == "":
		msg = "authentication required"
	case msg == "":
		msg = e.Code
	default:
		msg = e.Code + ": " + msg
	}
	return status.New(Code(e), msg)
}

// Metadata returns the response header metadata for a refusal: the
// WWW-Authenticate challenges (none for Unavailable) under
// www-authenticate, and the fresh nonce, when one was minted, under
// dpop-nonce. It returns nil when there is nothing to send.
func Metadata(e *resource.Error) metadata.MD {
	cs := e.Challenges()
	n := e.DPoPNonce()
	if len(cs) == 0 && n == "" {
		return nil
	}
	md := make(metadata.MD, 2)
	if len(cs) > 0 {
		md[MetadataWWWAuthenticate] = cs
	}
	if n != "" {
		md[MetadataDPoPNonce] = []string{n}
	}
	return md
}
