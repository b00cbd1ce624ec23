package issuer

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/oautherr"
	"github.com/senderbound/senderbound/replaycache"
)

// PARPath is the path of the pushed authorization request endpoint
// (RFC 9126), relative to the issuer identifier (and to MTLSBaseURL for its
// mTLS alias).
const PARPath = "/par"

// RequestURIPrefix starts every request_uri the PAR endpoint issues
// (RFC 9126 §2.2); a random 256-bit value follows, base64url-encoded.
const RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// DefaultPARLifetime is how long a pushed request stays redeemable when
// PARConfig.Lifetime is zero.
const DefaultPARLifetime = 60 * time.Second

// DefaultPARCapacity is the capacity of [NewMemoryPushedRequestStore] when
// it is given 0.
const DefaultPARCapacity = 10000

// DefaultPARQuotaLimit is the number of requests one client may push per
// quota window when PARConfig.Quota.Limit is zero. With the window equal
// to the request lifetime (the default), one client holds at most twice
// this many live requests, a tenth of [DefaultPARCapacity].
const DefaultPARQuotaLimit = 500

// PARConfig enables the pushed authorization request endpoint (RFC 9126)
// of a [Server]. The zero value is usable: an in-memory store of
// [DefaultPARCapacity] requests that live [DefaultPARLifetime].
type PARConfig struct {
	// Store keeps pushed requests until they are redeemed or expire.
	// Default: [NewMemoryPushedRequestStore] with the issuer's clock (one
	// instance only: instances behind one load balancer share a store, or
	// a request pushed to one is unknown at the others).
	Store PushedRequestStore
	// Lifetime is the expires_in of every request_uri. Default
	// [DefaultPARLifetime]; at most 10 minutes.
	Lifetime time.Duration
	// Require makes [Server.AuthorizationRequest] refuse authorization
	// requests without request_uri, and is advertised as
	// require_pushed_authorization_requests (RFC 9126 §5).
	Require bool
	// Check, when set, validates a pushed request as the authorization
	// endpoint would (RFC 9126 §2.1): registered redirect_uri,
	// response_type, PKCE, scope. It sees the authenticated client and
	// the parameters (client_id set, dpop_jkt the effective one) after
	// every other check passed and before the request is stored. To
	// refuse with an RFC 6749 code, return [GrantError] (for example
	// GrantError(ErrInvalidRequest, "redirect_uri is not registered"));
	// any other error is answered server_error without detail. It must be
	// safe for concurrent use. Nil accepts any parameters, and the
	// authorization endpoint checks them when the request_uri is
	// redeemed.
	Check func(ctx context.Context, client *Client, params map[string]string) error
	// Quota bounds the requests one authenticated client may push, so that
	// one client cannot fill Store and have every other client's pushes
	// refused until its requests expire. A push beyond the quota is
	// refused with 429 Too Many Requests (RFC 9126 §2.3), error
	// temporarily_unavailable, reason
	// [oautherr.ReasonPushedRequestQuotaExceeded], and a Retry-After of
	// the window in whole seconds (rounded up), after which the client's
	// count has restarted; it stores nothing and spends no DPoP proof. Only pushes
	// that pass every other check count. Defaults: Limit
	// [DefaultPARQuotaLimit], Window the request Lifetime (so one client
	// holds at most 2×Limit live requests: size Limit to the store's
	// capacity divided by the clients that may push at once), Owners
	// replaycache.DefaultQuotaOwners, Now the issuer's clock. The count is
	// per instance: n instances sharing a store admit n×Limit per window.
	Quota replaycache.QuotaConfig
}

// PushedRequest is an authorization request received at the PAR endpoint.
type PushedRequest struct {
	// ClientID is the client that pushed it, authenticated as at the token
	// endpoint.
	ClientID string
	// Params are the pushed parameters, each present once and none empty;
	// client_secret, client_assertion and client_assertion_type are
	// removed, client_id is the authenticated client and dpop_jkt is
	// DPoPJKT when that is set.
	Params map[string]string
	// DPoPJKT is the thumbprint the authorization code must be bound to:
	// the key of the DPoP proof sent to the PAR endpoint, else the
	// dpop_jkt parameter, else "" (RFC 9449 §10.1).
	DPoPJKT string
	// ExpiresAt is when the request_uri stops being redeemable.
	ExpiresAt time.Time
}

// PushedRequestStore keeps pushed authorization requests by the SHA-256
// hash of their request_uri. Implementations must be safe for concurrent
// use; several instances of one issuer share one store.
type PushedRequestStore interface {
	// Put stores req under id until req.ExpiresAt. An error (such as a
	// store full of live requests) refuses the pushed request with
	// temporarily_unavailable.
	Put(ctx context.Context, id [32]byte, req PushedRequest) error
	// Take removes id and returns its request in one atomic step: of
	// concurrent Takes of one id, at most one gets the request. An
	// unknown, expired or already taken id returns an error wrapping
	// [ErrTokenNotFound]; any other error means the store could not
	// answer.
	Take(ctx context.Context, id [32]byte) (*PushedRequest, error)
}

// MemoryPushedRequestStore is an in-memory [PushedRequestStore] for one
// instance, bounded in size. Requests are kept in the order they were
// pushed; since every request of a [Server] lives equally long, the
// oldest expires first. When the store is full, Put drops the oldest
// request if it has expired and otherwise fails: a flood of pushed
// requests is refused rather than evicting requests users are about to
// redeem. It is safe for concurrent use.
type MemoryPushedRequestStore struct {
	now func() time.Time
	cap int
	mu  sync.Mutex
	lru *simplelru.LRU[[32]byte, PushedRequest]
}

var _ PushedRequestStore = (*MemoryPushedRequestStore)(nil)

// errPushedStoreFull is returned by a full MemoryPushedRequestStore.
var errPushedStoreFull = errors.New("issuer: pushed request store is full")

// NewMemoryPushedRequestStore returns an empty store of capacity requests
// (0 means [DefaultPARCapacity]; negative is an error) that judges expiry
// with now (time.Now if nil).
func NewMemoryPushedRequestStore(capacity int, now func() time.Time) (*MemoryPushedRequestStore, error) {
	if capacity == 0 {
		capacity = DefaultPARCapacity
	}
	if capacity < 0 {
		return nil, fmt.Errorf("%w: pushed request store capacity", ErrInvalidConfig)
	}
	if now == nil {
		now = time.Now
	}
	l, err := simplelru.NewLRU[[32]byte, PushedRequest](capacity, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: pushed request store: %w", ErrInvalidConfig, err)
	}
	return &MemoryPushedRequestStore{now: now, cap: capacity, lru: l}, nil
}

// Put implements [PushedRequestStore].
func (m *MemoryPushedRequestStore) Put(_ context.Context, id [32]byte, req PushedRequest) error {
	req.Params = maps.Clone(req.Params)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lru.Len() >= m.cap {
		k, oldest, ok := m.lru.GetOldest()
		if ok && m.now().Before(oldest.ExpiresAt) {
			return errPushedStoreFull
		}
		m.lru.Remove(k)
	}
	m.lru.Add(id, req)
	return nil
}

// Take implements [PushedRequestStore].
func (m *MemoryPushedRequestStore) Take(_ context.Context, id [32]byte) (*PushedRequest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	req, ok := m.lru.Peek(id)
	if !ok {
		return nil, ErrTokenNotFound
	}
	m.lru.Remove(id)
	if !m.now().Before(req.ExpiresAt) {
		return nil, ErrTokenNotFound
	}
	req.Params = maps.Clone(req.Params)
	return &req, nil
}

// PARURL returns the PAR endpoint URL, or "" when PAR is not enabled.
func (s *Server) PARURL() string {
	if s.cfg.PAR == nil {
		return ""
	}
	return strings.TrimSuffix(s.is.ID(), "/") + PARPath
}

type parResponse struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int64  `json:"expires_in"`
}

// PARHandler returns the pushed authorization request endpoint
// (RFC 9126), or nil when ServerConfig.PAR is not set. It accepts POST
// only, with a form body of at most 64 parameters; authenticates the
// client exactly as the token endpoint does (every method, the PAR URL
// as a private_key_jwt audience); refuses a request_uri parameter
// (RFC 9126 §2.1); validates dpop_jkt ([AuthorizationDPoPJKT]); and
// verifies a DPoP header per RFC 9449 §4.3 with htm POST and htu the PAR
// URL (its mTLS alias when called there), server nonces and the replay
// store as at the token endpoint. The proof's key thumbprint is the
// effective dpop_jkt; a dpop_jkt parameter naming another key is refused
// with invalid_dpop_proof (RFC 9449 §10.1 requires a refusal and names no
// code). PARConfig.Check then validates the parameters. The answer is 201 with request_uri and expires_in; every
// response carries "Cache-Control: no-store", and errors use the RFC 6749
// §5.2 JSON shape without echoing request input.
func (s *Server) PARHandler() http.Handler {
	if s.cfg.PAR == nil {
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		resp, nonce, err := s.pushAuthorizationRequest(r.Context(), w, r)
		if nonce != "" {
			dpop.SetNonce(w.Header(), nonce)
		}
		if err != nil {
			s.writeError(w, "par", err)
			return
		}
		writeJSON(w, http.StatusCreated, resp)
	})
}

// pushAuthorizationRequest runs one PAR request; nonce is a fresh
// DPoP-Nonce to send, if any.
func (s *Server) pushAuthorizationRequest(ctx context.Context, w http.ResponseWriter, r *http.Request) (_ *parResponse, nonce string, _ error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, "", &Error{Code: oautherr.InvalidRequest, Description: "the PAR endpoint accepts POST only", Status: http.StatusMethodNotAllowed, Reason: oautherr.ReasonRequestMalformed, Err: ErrInvalidRequest}
	}
	f, err := readForm(w, r)
	if err != nil {
		return nil, "", err
	}
	if len(f) > maxAuthorizationParams {
		return nil, "", newError(ErrInvalidRequest, "too many parameters")
	}
	client, err := s.authenticate(ctx, r, f, PARPath)
	if err != nil {
		return nil, "", err
	}
	if f.get("request_uri") != "" {
		return nil, "", refuse(ErrInvalidRequest, oautherr.ReasonRequestURINotAllowed, "request_uri is not allowed in a pushed authorization request", nil)
	}
	jkt := f.get(ParamDPoPJKT)
	if jkt != "" && !isSHA256Thumbprint(jkt) {
		return nil, "", refuse(ErrInvalidRequest, oautherr.ReasonDPoPJKTMalformed, "dpop_jkt is not a SHA-256 JWK thumbprint", nil)
	}
	dproof, nonce, err := s.checkProof(r, PARPath)
	if err != nil {
		return nil, "", err
	}
	if dproof != nil {
		if jkt != "" && jkt != dproof.JKT {
			return nil, nonce, refuse(ErrInvalidDPoPProof, oautherr.ReasonDPoPJKTMismatch, "dpop_jkt does not match the DPoP proof key", nil)
		}
		jkt = dproof.JKT
	}
	params := make(map[string]string, len(f))
	for k, v := range f {
		if k != "client_secret" && k != "client_assertion" && k != "client_assertion_type" {
			params[k] = v
		}
	}
	params["client_id"] = client.ID
	if jkt != "" {
		params[ParamDPoPJKT] = jkt
	}
	if check := s.cfg.PAR.Check; check != nil {
		if err := check(ctx, client, maps.Clone(params)); err != nil {
			return nil, nonce, err
		}
	}
	if !s.parQuota.Allow(client.ID) {
		return nil, nonce, &Error{Code: oautherr.TemporarilyUnavailable, Description: "too many pushed authorization requests",
			Status: http.StatusTooManyRequests, Reason: oautherr.ReasonPushedRequestQuotaExceeded, Err: ErrUnavailable,
			retryAfter: s.parRetryAfter}
	}
	if dproof != nil {
		if err := s.claimProof(ctx, client, dproof); err != nil {
			return nil, nonce, err
		}
	}
	uri, id, err := newRequestURI(s.is.rand())
	if err != nil {
		return nil, nonce, err
	}
	lifetime := s.cfg.PAR.Lifetime
	req := PushedRequest{ClientID: client.ID, Params: params, DPoPJKT: jkt, ExpiresAt: s.is.now().Add(lifetime)}
	if err := s.cfg.PAR.Store.Put(ctx, id, req); err != nil {
		return nil, nonce, refuse(ErrUnavailable, oautherr.ReasonPushedRequestStoreUnavailable, "temporarily unavailable", err)
	}
	return &parResponse{RequestURI: uri, ExpiresIn: int64(lifetime / time.Second)}, nonce, nil
}

// newRequestURI returns a fresh request_uri and its store id.
func newRequestURI(rnd io.Reader) (string, [32]byte, error) {
	var b [32]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", [32]byte{}, fmt.Errorf("issuer: request_uri: %w", err)
	}
	uri := RequestURIPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return uri, sha256.Sum256([]byte(uri)), nil
}

// TakePushedRequest redeems a request_uri issued by the PAR endpoint for
// the authorization request of clientID, exactly once: the pushed request
// is removed whatever the outcome, so a request_uri presented by another
// client is spent, not left for a second try. An unknown, expired, used
// or malformed request_uri, or one pushed by another client, is refused
// with an [*Error] of code invalid_request and reason
// [oautherr.ReasonRequestURIInvalid]; a failing store with
// temporarily_unavailable. PAR must be enabled (ServerConfig.PAR).
// [Server.AuthorizationRequest] calls it for a request carrying
// request_uri.
func (s *Server) TakePushedRequest(ctx context.Context, clientID, requestURI string) (*PushedRequest, error) {
	invalid := refuse(ErrInvalidRequest, oautherr.ReasonRequestURIInvalid, "request_uri is invalid or expired", nil)
	if s.cfg.PAR == nil || clientID == "" || len(requestURI) > 256 || !strings.HasPrefix(requestURI, RequestURIPrefix) {
		return nil, invalid
	}
	p, err := s.cfg.PAR.Store.Take(ctx, sha256.Sum256([]byte(requestURI)))
	if errors.Is(err, ErrTokenNotFound) {
		return nil, invalid
	}
	if err != nil {
		return nil, refuse(ErrUnavailable, oautherr.ReasonPushedRequestStoreUnavailable, "temporarily unavailable", err)
	}
	if p.ClientID != clientID || !s.is.now().Before(p.ExpiresAt) {
		return nil, invalid
	}
	return p, nil
}
