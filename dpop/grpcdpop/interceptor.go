package grpcdpop

import (
	"context"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/oautherr"
)

// Metadata keys of a resource server's answer.
const (
	keyNonce     = "dpop-nonce"
	keyChallenge = "www-authenticate"
)

// UnaryClientInterceptor returns a unary client interceptor that keeps the
// DPoP-Nonce a server sends (in header or trailer metadata) for the
// authority, so the following calls' proofs carry it, and retries a call
// exactly once when the server refuses it with codes.Unauthenticated and a
// DPoP challenge with error="use_dpop_nonce" (RFC 9449 §9) and sent a new
// nonce. Install it together with c as the per-RPC credentials, for
// example:
//
//	grpc.NewClient(target,
//		grpc.WithTransportCredentials(tlsCreds),
//		grpc.WithPerRPCCredentials(c),
//		grpc.WithUnaryInterceptor(c.UnaryClientInterceptor()))
func (c *Credentials) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		st := &call{}
		err := c.invoke(ctx, st, method, req, reply, cc, invoker, opts)
		if err == nil {
			return nil
		}
		st.mu.Lock()
		retry := st.sent && st.retryNonce != ""
		fresh := st.retryNonce
		st.mu.Unlock()
		if !retry {
			return err
		}
		return c.invoke(ctx, &call{force: fresh}, method, req, reply, cc, invoker, opts)
	}
}

// invoke runs one attempt and learns the nonce of its answer. When the
// answer asks for a nonce and carries one other than the proof's, it is
// stored in st.retryNonce.
func (c *Credentials) invoke(ctx context.Context, st *call, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts []grpc.CallOption) error {
	var hdr, trl metadata.MD
	o := make([]grpc.CallOption, 0, len(opts)+2)
	o = append(append(o, opts...), grpc.Header(&hdr), grpc.Trailer(&trl))
	err := invoker(context.WithValue(ctx, callKey{}, st), method, req, reply, cc, o...)
	c.learn(st, err, hdr, trl)
	return err
}

// learn keeps the nonce of an answer and, for a use_dpop_nonce refusal
// that carries a nonce the proof did not use, records it as st.retryNonce.
func (c *Credentials) learn(st *call, err error, mds ...metadata.MD) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, md := range mds {
		n, ok := c.remember(st.authority, md.Get(keyNonce))
		if !ok {
			continue
		}
		if err != nil && n != st.nonce && useNonce(err, mds...) {
			st.retryNonce = n
		}
		return
	}
}

// useNonce reports whether err and the answer's metadata are a
// use_dpop_nonce refusal.
func useNonce(err error, mds ...metadata.MD) bool {
	if status.Code(err) != codes.Unauthenticated {
		return false
	}
	for _, md := range mds {
		for _, v := range md.Get(keyChallenge) {
			cs, perr := dpop.ParseChallenges(v)
			if perr != nil {
				continue
			}
			for _, ch := range cs {
				if strings.EqualFold(ch.Scheme, "DPoP") && ch.Error == oautherr.UseDPoPNonce {
					return true
				}
			}
		}
	}
	return false
}

// StreamClientInterceptor returns a stream client interceptor that keeps
// the DPoP-Nonce a server sends on a stream (in header or trailer
// metadata), so the following calls' proofs carry it. It does not retry:
// the refusal of a stream reaches the client after it may have sent
// messages, which cannot be sent again. A stream refused with
// use_dpop_nonce therefore fails, and the next call carries the new nonce;
// a client that must not see that failure makes a unary call to the server
// first, or retries the stream itself when
// status.Code(err) == codes.Unauthenticated.
func (c *Credentials) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		st := &call{}
		cs, err := streamer(context.WithValue(ctx, callKey{}, st), desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return &learningStream{ClientStream: cs, c: c, st: st}, nil
	}
}

// learningStream learns the nonce from the stream's header when the first
// message arrives and from header and trailer when the stream ends.
type learningStream struct {
	grpc.ClientStream
	c     *Credentials
	st    *call
	hdr   sync.Once
	trail sync.Once
}

// RecvMsg receives a message and learns the nonce of the answer.
func (s *learningStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil {
		s.hdr.Do(func() {
			if h, herr := s.ClientStream.Header(); herr == nil {
				s.c.learn(s.st, nil, h)
			}
		})
		return nil
	}
	s.trail.Do(func() {
		h, _ := s.ClientStream.Header()
		s.c.learn(s.st, nil, h, s.ClientStream.Trailer())
	})
	return err
}
