package dpop

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/senderbound/senderbound/oautherr"
)

// maxErrorBody bounds how much of a 400 response Transport reads to look
// for a use_dpop_nonce error.
const maxErrorBody = 64 << 10

// Transport is an http.RoundTripper that adds a fresh DPoP proof to every
// request (RFC 9449 §4, §7.1). It clones each request before changing it.
// When the request carries "Authorization: DPoP <token>" (as set by
// golang.org/x/oauth2 for tokens of type DPoP) the proof includes ath.
// It keeps the latest DPoP-Nonce per origin from any response and, when a
// server answers use_dpop_nonce (400 JSON from a token endpoint, or 401
// with a DPoP challenge), retries exactly once with the new nonce, provided
// the body can be sent again (no body, or GetBody set).
//
// Transport never sets Client-Cert headers. The zero value is not usable:
// Prover is required. Base nil means http.DefaultTransport. A Transport is
// safe for concurrent use; do not copy it after first use.
type Transport struct {
	// Base sends the requests. nil means http.DefaultTransport.
	Base http.RoundTripper
	// Prover signs the proofs. Required.
	Prover *Prover

	mu     sync.Mutex
	nonces map[string]string
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// origin is the RFC 6454 origin of r's URL: scheme and host in lower case,
// the scheme's default port dropped, so that https://h and https://H:443
// share their nonce.
func origin(r *http.Request) string {
	scheme, host := strings.ToLower(r.URL.Scheme), strings.ToLower(r.URL.Host)
	switch {
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	}
	return scheme + "://" + host
}

func (t *Transport) nonce(o string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nonces[o]
}

// remember stores the response's DPoP-Nonce for o when it has exactly one
// syntactically valid value, and reports whether it changed.
func (t *Transport) remember(o string, h http.Header) bool {
	vs := h.Values("DPoP-Nonce")
	if len(vs) != 1 || !validNonceSyntax(vs[0]) {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nonces == nil {
		t.nonces = make(map[string]string)
	}
	changed := t.nonces[o] != vs[0]
	t.nonces[o] = vs[0]
	return changed
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Prover == nil {
		closeBody(req)
		return nil, errors.New("dpop: Transport.Prover is nil")
	}
	o := origin(req)
	used := t.nonce(o)
	r1, err := t.prepare(req, req.Body, used)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.base().RoundTrip(r1)
	if err != nil {
		return nil, err
	}
	t.remember(o, resp.Header)
	if !t.wantsNonce(resp) {
		return resp, nil
	}
	fresh := t.nonce(o)
	if fresh == "" || fresh == used {
		return resp, nil
	}
	var body io.ReadCloser
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return resp, nil
		}
		b, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		body = b
	}
	r2, err := t.prepare(req, body, fresh)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	resp2, err := t.base().RoundTrip(r2)
	if err != nil {
		return nil, err
	}
	t.remember(o, resp2.Header)
	return resp2, nil
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		r.Body.Close()
	}
}

// prepare clones req with body and attaches a proof made with nonce.
func (t *Transport) prepare(req *http.Request, body io.ReadCloser, nonce string) (*http.Request, error) {
	r := req.Clone(req.Context())
	r.Body = body
	if body == nil && req.Body == http.NoBody {
		r.Body = http.NoBody
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	u := *r.URL
	u.RawQuery, u.Fragment, u.RawFragment, u.User = "", "", "", nil
	opts := ProofOptions{Nonce: nonce}
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "DPoP") {
		opts.AccessToken = strings.TrimLeft(tok, " ")
	}
	proof, err := t.Prover.Proof(method, u.String(), opts)
	if err != nil {
		return nil, err
	}
	r.Header.Del("DPoP")
	r.Header.Set("DPoP", proof)
	return r, nil
}

// wantsNonce reports whether resp is a use_dpop_nonce error. For a 400 it
// reads (at most maxErrorBody of) the body and puts it back unchanged.
func (t *Transport) wantsNonce(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		for _, v := range resp.Header.Values("WWW-Authenticate") {
			cs, err := ParseChallenges(v)
			if err != nil {
				continue
			}
			for _, c := range cs {
				if strings.EqualFold(c.Scheme, "DPoP") && c.Error == oautherr.UseDPoPNonce {
					return true
				}
			}
		}
	case http.StatusBadRequest:
		if resp.Body == nil {
			return false
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		rest := resp.Body
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(data), rest), rest}
		if err != nil {
			return false
		}
		var e struct {
			Error string `json:"error"`
		}
		return json.Unmarshal(data, &e) == nil && e.Error == oautherr.UseDPoPNonce
	}
	return false
}
