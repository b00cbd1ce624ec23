package conformance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ClientKeyHostConfig configures a [ClientKeyHost].
type ClientKeyHostConfig struct {
	// Addr is the listen address, a loopback IP address (never the name
	// localhost, which a resolver may map elsewhere) and a port. Default
	// "127.0.0.1:0" (a
	// free port; read the URL from [ClientKeyHost.URL]).
	Addr string
	// Certificate is the host's TLS server certificate, for its address.
	// The target must trust it when it fetches a client's jwks_uri.
	// Required.
	Certificate tls.Certificate
	// CacheControl is sent with every key set. Default "max-age=1", so a
	// target that honours Cache-Control refreshes a changed set within a
	// second plus its own minimum interval between fetches.
	CacheControl string
}

// ClientKeyHost serves the JWK Sets of clients registered with a jwks_uri,
// so that the suite controls what a client publishes there (MTLS-CA-11:
// a certificate published, then one removed). Start it before the target,
// register [ClientKeyHost.URL] of the client as that client's jwks_uri,
// let the target trust the host's certificate and fetch from its loopback
// address, and set it as [Target.ClientKeys]. Until a case publishes a set
// for a client, its URL answers 404. A ClientKeyHost is safe for
// concurrent use; Close stops it.
type ClientKeyHost struct {
	srv  *http.Server
	base string
	cc   string

	mu   sync.Mutex
	docs map[string][]byte
}

// NewClientKeyHost starts a key host on a loopback address.
func NewClientKeyHost(cfg ClientKeyHostConfig) (*ClientKeyHost, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.CacheControl == "" {
		cfg.CacheControl = "max-age=1"
	}
	if len(cfg.Certificate.Certificate) == 0 {
		return nil, errors.New("conformance: client key host needs a TLS certificate")
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, errors.New("conformance: client key host address must be a loopback IP address")
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("conformance: client key host: %w", err)
	}
	h := &ClientKeyHost{base: "https://" + ln.Addr().String(), cc: cfg.CacheControl, docs: map[string][]byte{}}
	h.srv = &http.Server{
		Handler:           http.HandlerFunc(h.serve),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cfg.Certificate}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = h.srv.ServeTLS(ln, "", "") }()
	return h, nil
}

// URL returns the jwks_uri to register for clientID.
func (h *ClientKeyHost) URL(clientID string) string {
	return h.base + "/clients/" + url.PathEscape(clientID) + "/jwks.json"
}

// Close stops the host.
func (h *ClientKeyHost) Close() error { return h.srv.Close() }

// serve answers GET /clients/{id}/jwks.json with the set published for id.
func (h *ClientKeyHost) serve(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.EscapedPath(), "/clients/")
	id, ok2 := strings.CutSuffix(id, "/jwks.json")
	if !ok || !ok2 || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	id, err := url.PathUnescape(id)
	h.mu.Lock()
	doc, found := h.docs[id]
	h.mu.Unlock()
	if err != nil || !found {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", h.cc)
	_, _ = w.Write(doc)
}

// publish makes the host serve the key set of certificates for clientID:
// one JWK per certificate, with the certificate as its x5c.
func (h *ClientKeyHost) publish(clientID string, certs ...*tls.Certificate) error {
	set := jose.JSONWebKeySet{}
	for i, c := range certs {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return err
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: leaf.PublicKey, KeyID: fmt.Sprintf("s%d", i+1), Use: "sig", Certificates: []*x509.Certificate{leaf}})
	}
	doc, err := json.Marshal(set)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.docs[clientID] = doc
	h.mu.Unlock()
	return nil
}

// defaultKeyRefreshWait is Target.KeyRefreshWait's default.
const defaultKeyRefreshWait = 30 * time.Second

// keyPollInterval is the pause between two token requests of a wait.
const keyPollInterval = 250 * time.Millisecond

func (t *Target) keyRefreshWait() time.Duration {
	if t.KeyRefreshWait <= 0 {
		return defaultKeyRefreshWait
	}
	return t.KeyRefreshWait
}

// pollCert requests a token for clientID with cert until the answer is an
// acceptance (accept) or an invalid_client refusal (!accept), or until
// wait ends. It reports whether the awaited answer came.
func (r *run) pollCert(clientID string, cert *tls.Certificate, accept bool, wait time.Duration) (bool, *verdict) {
	c := r.s.clientWith(cert)
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(wait)
	for {
		x, v := r.tok(tokReq{clientID: clientID, client: c})
		if v != nil {
			return false, v
		}
		tok, _ := x.json["access_token"].(string)
		accepted := x.err == nil && x.status == http.StatusOK && tok != ""
		refused := x.err != nil || gradeRefusal(x, []want{{400, "json", []string{"invalid_client"}}, {401, "json", []string{"invalid_client"}}}).tier == TierPass
		if accept && accepted || !accept && refused {
			return true, nil
		}
		if !time.Now().Before(deadline) {
			r.fail = x
			return false, nil
		}
		select {
		case <-r.ctx.Done():
			v := suitef("%s", r.ctx.Err())
			return false, &v
		case <-time.After(keyPollInterval):
		}
	}
}

// casesJWKSURI are the cases of client keys published at a jwks_uri.
var casesJWKSURI = []Case{
	{ID: "MTLS-CA-11", Title: "with jwks_uri, a self-signed client rotates its certificate without a change at the AS", Section: "RFC 8705 §2.2", Level: LevelMust, Role: RoleTokenEndpoint, Group: GroupD,
		Expect: "S1 published at jwks_uri → token; S3 published beside it → token after the refetch; S1 removed → invalid_client after the refresh (each within KeyRefreshWait)",
		run: func(ctx context.Context, r *run) verdict {
			t := r.s.t
			switch {
			case t.Profile == ProfileDPoP:
				return skipf("outside the profile dpop: the target claims DPoP-bound tokens only")
			case t.ClientKeys == nil || t.JWKSURIClientID == "":
				return skipf("not applicable: needs a self_signed_tls_client_auth client registered with a jwks_uri on the suite's key host (Target.ClientKeys, Target.JWKSURIClientID)")
			}
			id, wait := t.JWKSURIClientID, t.keyRefreshWait()
			var s [3]*tls.Certificate
			for i := range s {
				c, err := selfSigned(&x509.Certificate{Subject: pkix.Name{CommonName: fmt.Sprintf("jwks-uri-s%d", i+1)}}, nil)
				if err != nil {
					return suitef("%s", sanitizeErr(err))
				}
				s[i] = c
			}
			s1, s3 := s[0], s[2]
			steps := []struct {
				publish []*tls.Certificate
				cert    *tls.Certificate
				accept  bool
				fail    string
			}{
				{[]*tls.Certificate{s1}, s1, true, "S1, published at the client's jwks_uri, was not accepted within %s"},
				{[]*tls.Certificate{s1, s3}, s3, true, "S3, published beside S1, was not accepted within %s: the target does not refetch the client's jwks_uri when an unknown certificate is presented"},
				{[]*tls.Certificate{s3}, s1, false, "S1, removed from the client's jwks_uri, was still accepted after %s: the target does not refresh the key set"},
				{[]*tls.Certificate{s3}, s3, true, "S3 was refused after S1's removal (within %s)"},
			}
			for _, st := range steps {
				if err := t.ClientKeys.publish(id, st.publish...); err != nil {
					return suitef("%s", sanitizeErr(err))
				}
				ok, v := r.pollCert(id, st.cert, st.accept, wait)
				if v != nil {
					return *v
				}
				if !ok {
					return failf(st.fail, wait)
				}
			}
			return passf("a certificate published at jwks_uri was accepted and a removed one refused, with no change at the AS")
		}},
}
