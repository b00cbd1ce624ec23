package conformance_test

import (
	"net/url"
	"testing"

	"github.com/senderbound/senderbound/conformance"
)

// TestRefreshGrantValidate checks Target.Validate on a RefreshGrant set
// directly.
func TestRefreshGrantValidate(t *testing.T) {
	t.Parallel()
	base := conformance.Target{TokenEndpoint: "https://as.example.test/token", ClientID: "app", Resource: "https://rs.example.test/resource"}
	tests := []struct {
		name  string
		grant *conformance.RefreshGrant
		ok    bool
	}{
		{"nil", nil, true},
		{"minimal", &conformance.RefreshGrant{ClientID: "p", GrantType: "urn:example:g"}, true},
		{"with params", &conformance.RefreshGrant{ClientID: "p", GrantType: "urn:example:g", Params: url.Values{"subject": {"alice"}}}, true},
		{"empty", &conformance.RefreshGrant{}, false},
		{"empty param name", &conformance.RefreshGrant{ClientID: "p", GrantType: "g", Params: url.Values{"": {"x"}}}, false},
		{"client_secret param", &conformance.RefreshGrant{ClientID: "p", GrantType: "g", Params: url.Values{"client_secret": {"x"}}}, false},
		{"client_assertion param", &conformance.RefreshGrant{ClientID: "p", GrantType: "g", Params: url.Values{"client_assertion": {"x"}}}, false},
	}
	for _, tt := range tests {
		target := base
		target.RefreshGrant = tt.grant
		if err := target.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestAuthorizationFlowValidate checks Target.Validate on an
// AuthorizationFlow set directly.
func TestAuthorizationFlowValidate(t *testing.T) {
	t.Parallel()
	base := conformance.Target{TokenEndpoint: "https://as.example.test/token", ClientID: "app", Resource: "https://rs.example.test/resource"}
	tests := []struct {
		name string
		flow *conformance.AuthorizationFlow
		ok   bool
	}{
		{"nil", nil, true},
		{"minimal", &conformance.AuthorizationFlow{Endpoint: "https://as.example.test/authorize", RedirectURI: "https://app.example.test/cb"}, true},
		{"custom-scheme redirect", &conformance.AuthorizationFlow{Endpoint: "https://as.example.test/authorize", RedirectURI: "com.example.app:/cb"}, true},
		{"with params", &conformance.AuthorizationFlow{Endpoint: "https://as.example.test/authorize", RedirectURI: "https://app.example.test/cb", Params: url.Values{"login_hint": {"alice"}}}, true},
		{"empty", &conformance.AuthorizationFlow{}, false},
		{"relative endpoint", &conformance.AuthorizationFlow{Endpoint: "/authorize", RedirectURI: "https://app.example.test/cb"}, false},
		{"redirect without host", &conformance.AuthorizationFlow{Endpoint: "https://as.example.test/authorize", RedirectURI: "https:///cb"}, false},
		{"redirect with fragment", &conformance.AuthorizationFlow{Endpoint: "https://as.example.test/authorize", RedirectURI: "https://app.example.test/cb#f"}, false},
		{"reserved state", &conformance.AuthorizationFlow{Endpoint: "https://as.example.test/authorize", RedirectURI: "https://app.example.test/cb", Params: url.Values{"state": {"x"}}}, false},
		{"reserved code_challenge_method", &conformance.AuthorizationFlow{Endpoint: "https://as.example.test/authorize", RedirectURI: "https://app.example.test/cb", Params: url.Values{"code_challenge_method": {"plain"}}}, false},
		{"empty param name", &conformance.AuthorizationFlow{Endpoint: "https://as.example.test/authorize", RedirectURI: "https://app.example.test/cb", Params: url.Values{"": {"x"}}}, false},
	}
	for _, tt := range tests {
		target := base
		target.Authorization = tt.flow
		err := target.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if got := target.Capabilities()&conformance.CapAuthorization != 0; got != (tt.flow != nil) {
			t.Errorf("%s: CapAuthorization = %v", tt.name, got)
		}
	}
}
