package resource

import (
	"encoding/json"
	"net/http"
)

// MetadataPath is where RFC 9728 protected resource metadata is served
// (for a resource identifier without a path component).
const MetadataPath = "/.well-known/oauth-protected-resource"

// Metadata is the RFC 9728 protected resource metadata document. It is a
// plain value.
type Metadata struct {
	// Resource is the resource identifier (Config.Audience).
	Resource string `json:"resource"`
	// AuthorizationServers lists the trusted issuer identifiers.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	// BearerMethodsSupported is ["header"]: tokens in query or form are refused.
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	// ScopesSupported lists the scopes the caller passed, if any.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// DPoPSigningAlgValuesSupported lists the accepted proof algorithms.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	// DPoPBoundAccessTokensRequired is true when only DPoP-bound tokens are
	// accepted.
	DPoPBoundAccessTokensRequired bool `json:"dpop_bound_access_tokens_required"`
	// TLSClientCertificateBoundAccessTokens is true when certificate-bound
	// tokens are accepted.
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens"`
}

// Metadata returns the protected resource metadata implied by the
// configuration and the default policy p: resource (the Audience),
// authorization_servers (the issuer identifiers), bearer_methods_supported
// (header only), the DPoP algorithms, whether DPoP-bound tokens are
// required (p accepts only DPoP) and whether certificate-bound tokens are
// supported (p accepts them). scopes lists scopes_supported (may be nil).
func (v *Verifier) Metadata(p Policy, scopes []string) Metadata {
	m := Metadata{
		Resource:                              v.audience,
		BearerMethodsSupported:                []string{"header"},
		ScopesSupported:                       scopes,
		DPoPBoundAccessTokensRequired:         p.Accept == AcceptDPoP,
		TLSClientCertificateBoundAccessTokens: p.Accept != AcceptDPoP,
	}
	for _, is := range v.issuers {
		m.AuthorizationServers = append(m.AuthorizationServers, is.Identifier)
	}
	if p.Accept != AcceptMTLS {
		m.DPoPSigningAlgValuesSupported = v.dpopAlgs
	}
	return m
}

// MetadataHandler serves [Verifier.Metadata] as JSON for GET and HEAD at
// [MetadataPath] (mount it there). Other methods get 405.
func (v *Verifier) MetadataHandler(p Policy, scopes []string) http.Handler {
	body, err := json.Marshal(v.Metadata(p, scopes))
	if err != nil {
		panic(err) // only strings and bools: cannot fail
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write(body)
	})
}
