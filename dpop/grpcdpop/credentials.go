package grpcdpop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"google.golang.org/grpc/credentials"

	"github.com/senderbound/senderbound/dpop"
)

// maxNonce bounds the length of a nonce kept from a response.
const maxNonce = 4096

// Credentials is a credentials.PerRPCCredentials that sends a DPoP-bound
// access token and a fresh DPoP proof with every call (RFC 9449 §7.1):
// "authorization: DPoP <token>" and "dpop: <proof>", the proof made for
// htm POST, htu https://<authority><full method>, and ath of the token.
// That is exactly the HTTP/2 request gRPC makes, so a resource server
// checks it as any DPoP request.
//
// It refuses to send anything on a connection without privacy and
// integrity protection (RequireTransportSecurity is true, and each call's
// security level is checked), and refuses a token whose type is not DPoP
// (set oauth2.Token.TokenType to "DPoP", as a token endpoint issuing
// DPoP-bound tokens does), so a bearer token is never sent as if it were
// bound.
//
// It keeps the latest DPoP-Nonce per authority, learned by
// [Credentials.UnaryClientInterceptor] and
// [Credentials.StreamClientInterceptor]; without them it sends proofs
// without a nonce. The zero value is not usable: Prover and Source are
// required. A Credentials is safe for concurrent use; do not copy it after
// first use.
type Credentials struct {
	// Prover signs the proofs. Required.
	Prover *dpop.Prover
	// Source supplies the access token for each call, for example an
	// oauth2.ReuseTokenSource over a client credentials config whose HTTP
	// client uses dpop.Transport. Required. It must be safe for concurrent
	// use.
	Source oauth2.TokenSource

	mu     sync.Mutex
	nonces map[string]string
}

var _ credentials.PerRPCCredentials = (*Credentials)(nil)

// callKey is the context key of the per-call state the interceptors share
// with GetRequestMetadata.
type callKey struct{}

// call records what GetRequestMetadata sent for one attempt, and the nonce
// a retry must use.
type call struct {
	mu        sync.Mutex
	sent      bool
	authority string
	nonce     string // the nonce the proof carried
	force     string // when set, the nonce to use (a retry)
	// retryNonce is set when the answer was use_dpop_nonce with a new
	// nonce.
	retryNonce string
}

// RequireTransportSecurity reports true: tokens and proofs are sent only
// over connections with privacy and integrity protection.
func (c *Credentials) RequireTransportSecurity() bool { return true }

// GetRequestMetadata returns the authorization and dpop metadata for one
// call. uri is the audience gRPC passes, https://<authority>/<service>;
// the full method comes from the call's credentials.RequestInfo. It fails
// on a connection without privacy and integrity protection, when the
// token source fails or returns an invalid token or one of another type
// than DPoP, and when the proof cannot be signed.
func (c *Credentials) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	if c.Prover == nil || c.Source == nil {
		return nil, errors.New("grpcdpop: Credentials needs a Prover and a Source")
	}
	ri, ok := credentials.RequestInfoFromContext(ctx)
	if !ok || !strings.HasPrefix(ri.Method, "/") {
		return nil, errors.New("grpcdpop: no gRPC method for the call")
	}
	if err := credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity); err != nil {
		return nil, errors.New("grpcdpop: refusing to send a token on a connection without transport security")
	}
	authority, err := authorityOf(uri)
	if err != nil {
		return nil, err
	}
	tok, err := c.Source.Token()
	if err != nil {
		return nil, fmt.Errorf("grpcdpop: cannot get an access token: %w", err)
	}
	if !tok.Valid() {
		return nil, errors.New("grpcdpop: the token source returned an invalid token")
	}
	if !strings.EqualFold(tok.Type(), "DPoP") {
		return nil, errors.New("grpcdpop: the access token is not of type DPoP")
	}
	st, _ := ctx.Value(callKey{}).(*call)
	nonce := ""
	if st != nil {
		st.mu.Lock()
		nonce = st.force
		st.mu.Unlock()
	}
	if nonce == "" {
		nonce = c.nonce(authority)
	}
	proof, err := c.Prover.Proof("POST", "https://"+authority+ri.Method, dpop.ProofOptions{AccessToken: tok.AccessToken, Nonce: nonce})
	if err != nil {
		return nil, fmt.Errorf("grpcdpop: cannot make the DPoP proof: %w", err)
	}
	if st != nil {
		st.mu.Lock()
		st.sent, st.authority, st.nonce = true, authority, nonce
		st.mu.Unlock()
	}
	return map[string]string{
		"authorization": "DPoP " + tok.AccessToken,
		"dpop":          proof,
	}, nil
}

// authorityOf returns the authority of gRPC's audience URI
// https://<authority>/<service>.
func authorityOf(uri []string) (string, error) {
	if len(uri) == 0 {
		return "", errors.New("grpcdpop: no request URI for the call")
	}
	rest, ok := strings.CutPrefix(uri[0], "https://")
	if !ok {
		return "", errors.New("grpcdpop: the request URI is not https")
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	if rest == "" {
		return "", errors.New("grpcdpop: the request URI has no authority")
	}
	return rest, nil
}

func (c *Credentials) nonce(authority string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nonces[authority]
}

// remember keeps n as the nonce of authority when it is one syntactically
// valid value.
func (c *Credentials) remember(authority string, vs []string) (string, bool) {
	if authority == "" || len(vs) != 1 || !validNonce(vs[0]) {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nonces == nil {
		c.nonces = make(map[string]string)
	}
	c.nonces[authority] = vs[0]
	return vs[0], true
}

// validNonce reports whether s is 1*NQCHAR (RFC 9449 §8.1):
// %x21 / %x23-5B / %x5D-7E, and not longer than maxNonce.
func validNonce(s string) bool {
	if s == "" || len(s) > maxNonce {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}
