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
