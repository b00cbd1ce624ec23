package issuer

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Metadata is the RFC 8414 authorization server metadata document, with
// the RFC 8705 and RFC 9449 members. Empty members are omitted (RFC 8414
// §3.2).
type Metadata struct {
	Issuer                                string            `json:"issuer"`
	AuthorizationEndpoint                 string            `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                         string            `json:"token_endpoint"`
	JWKSURI                               string            `json:"jwks_uri"`
	IntrospectionEndpoint                 string            `json:"introspection_endpoint,omitempty"`
	ScopesSupported                       []string          `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                []string          `json:"response_types_supported,omitempty"`
	GrantTypesSupported                   []string          `json:"grant_types_supported,omitempty"`
	TokenEndpointAuthMethodsSupported     []string          `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgValues     []string          `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionEndpointAuthMethods      []string          `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	IntrospectionEndpointAuthSigningAlgs  []string          `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
	DPoPSigningAlgValuesSupported         []string          `json:"dpop_signing_alg_values_supported,omitempty"`
	TLSClientCertificateBoundAccessTokens bool              `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	MTLSEndpointAliases                   map[string]string `json:"mtls_endpoint_aliases,omitempty"`
	// PushedAuthorizationRequestEndpoint and
	// RequirePushedAuthorizationRequests are the RFC 9126 §5 members.
	PushedAuthorizationRequestEndpoint string `json:"pushed_authorization_request_endpoint,omitempty"`
	RequirePushedAuthorizationRequests bool   `json:"require_pushed_authorization_requests,omitempty"`
	// FallbackCertificateEndpoint and FallbackCRLURI name the fallback
	// CA's endpoints (this framework's own members, not registered).
	FallbackCertificateEndpoint string `json:"fallback_certificate_endpoint,omitempty"`
	FallbackCRLURI              string `json:"fallback_crl_uri,omitempty"`
}

// Metadata returns the server's metadata document. grant_types_supported
// lists the built-in grants and the registered ones; auth methods are
// ServerConfig.AuthMethods; the mTLS aliases appear when MTLSBaseURL is set;
// the PAR endpoint when ServerConfig.PAR is set; the fallback endpoints
// when ServerConfig.Fallback is set.
func (s *Server) Metadata() Metadata {
	base := strings.TrimSuffix(s.is.ID(), "/")
	m := Metadata{
		Issuer:                                s.is.ID(),
		TokenEndpoint:                         base + TokenPath,
		JWKSURI:                               base + JWKSPath,
		IntrospectionEndpoint:                 base + IntrospectionPath,
		ScopesSupported:                       s.cfg.ScopesSupported,
		AuthorizationEndpoint:                 s.cfg.AuthorizationEndpoint,
		ResponseTypesSupported:                s.cfg.ResponseTypesSupported,
		GrantTypesSupported:                   []string{GrantClientCredentials, GrantRefreshToken},
		DPoPSigningAlgValuesSupported:         s.cfg.DPoPAlgorithms,
		TLSClientCertificateBoundAccessTokens: s.cfg.MTLS,
	}
	for gt := range s.cfg.Grants {
		m.GrantTypesSupported = append(m.GrantTypesSupported, gt)
	}
	slices.Sort(m.GrantTypesSupported[2:])
	for _, a := range s.cfg.AuthMethods {
		m.TokenEndpointAuthMethodsSupported = append(m.TokenEndpointAuthMethodsSupported, string(a))
		if a != AuthNone {
			m.IntrospectionEndpointAuthMethods = append(m.IntrospectionEndpointAuthMethods, string(a))
		}
	}
	if slices.Contains(s.cfg.AuthMethods, AuthPrivateKeyJWT) {
		// Required whenever private_key_jwt is listed (RFC 8414 §2, ATV-37).
		m.TokenEndpointAuthSigningAlgValues = s.cfg.ClientAssertionAlgorithms
		m.IntrospectionEndpointAuthSigningAlgs = s.cfg.ClientAssertionAlgorithms
	}
	if s.cfg.PAR != nil {
		m.PushedAuthorizationRequestEndpoint = base + PARPath
		m.RequirePushedAuthorizationRequests = s.cfg.PAR.Require
	}
	if s.cfg.Fallback != nil {
		m.FallbackCertificateEndpoint = base + CertificatePath
		m.FallbackCRLURI = base + CRLPath
	}
	if s.cfg.MTLSBaseURL != "" {
		ab := strings.TrimSuffix(s.cfg.MTLSBaseURL, "/")
		m.MTLSEndpointAliases = map[string]string{
			"token_endpoint":         ab + TokenPath,
			"introspection_endpoint": ab + IntrospectionPath,
		}
		if s.cfg.Fallback != nil {
			m.MTLSEndpointAliases["fallback_certificate_endpoint"] = ab + CertificatePath
		}
		if s.cfg.PAR != nil {
			m.MTLSEndpointAliases["pushed_authorization_request_endpoint"] = ab + PARPath
		}
	}
	return m
}

// MetadataHandler serves the metadata document as application/json with a
// short public cache lifetime. Only GET and HEAD are allowed.
func (s *Server) MetadataHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Content-Length", strconv.Itoa(len(s.metadata)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(s.metadata)
		}
	})
}
