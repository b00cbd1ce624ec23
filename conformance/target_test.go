package conformance_test

import (
	"flag"
	"io"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/conformance"
)

// required are the flags every target description needs.
var required = []string{"--token-endpoint", "https://as.example.test/token", "--client-id", "app", "--resource", "https://rs.example.test/resource"}

// TestRefreshGrantFlags checks that --refresh-client-id, --refresh-grant-type
// and --refresh-param build Target.RefreshGrant and unlock CapRefreshGrant,
// and that incomplete or clashing descriptions are refused.
func TestRefreshGrantFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		want     *conformance.RefreshGrant
		parseErr bool   // fs.Parse fails
		err      string // Target fails with an error containing err
	}{
		{name: "none", args: nil},
		{
			name: "complete",
			args: []string{"--refresh-client-id", "public-app", "--refresh-grant-type", "urn:example:test-grant",
				"--refresh-param", "subject=alice", "--refresh-param", "scope=read write", "--refresh-param", "subject=bob",
				"--refresh-param", "code_verifier=a=b", "--refresh-param", "empty="},
			want: &conformance.RefreshGrant{ClientID: "public-app", GrantType: "urn:example:test-grant", Params: url.Values{
				"subject": {"alice", "bob"}, "scope": {"read write"}, "code_verifier": {"a=b"}, "empty": {""},
			}},
		},
		{
			name: "no params",
			args: []string{"--refresh-client-id", "public-app", "--refresh-grant-type", "authorization_code"},
			want: &conformance.RefreshGrant{ClientID: "public-app", GrantType: "authorization_code", Params: url.Values{}},
		},
		{name: "param without value", args: []string{"--refresh-param", "subject"}, parseErr: true},
		{name: "param without name", args: []string{"--refresh-param", "=alice"}, parseErr: true},
		{name: "no client id", args: []string{"--refresh-grant-type", "urn:example:test-grant"}, err: "refresh grant needs a client id"},
		{name: "no grant type", args: []string{"--refresh-client-id", "public-app"}, err: "refresh grant needs a grant type"},
		{name: "params only", args: []string{"--refresh-param", "subject=alice"}, err: "refresh grant needs a client id"},
		{name: "client_credentials", args: []string{"--refresh-client-id", "p", "--refresh-grant-type", "client_credentials"}, err: "cannot be client_credentials"},
		{name: "refresh_token", args: []string{"--refresh-client-id", "p", "--refresh-grant-type", "refresh_token"}, err: "cannot be refresh_token"},
		{name: "reserved grant_type", args: []string{"--refresh-client-id", "p", "--refresh-grant-type", "g", "--refresh-param", "grant_type=x"}, err: "grant_type is set by the suite"},
		{name: "reserved client_id", args: []string{"--refresh-client-id", "p", "--refresh-grant-type", "g", "--refresh-param", "client_id=x"}, err: "client_id is set by the suite"},
		{name: "reserved refresh_token", args: []string{"--refresh-client-id", "p", "--refresh-grant-type", "g", "--refresh-param", "refresh_token=x"}, err: "refresh_token is set by the suite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("conform", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			tf := conformance.RegisterFlags(fs)
			err := fs.Parse(append(append([]string(nil), required...), tt.args...))
			if tt.parseErr {
				if err == nil {
					t.Fatal("Parse accepted the flags")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			target, err := tf.Target()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Target() error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(target.RefreshGrant, tt.want) {
				t.Errorf("RefreshGrant = %+v, want %+v", target.RefreshGrant, tt.want)
			}
			if got := target.Capabilities()&conformance.CapRefreshGrant != 0; got != (tt.want != nil) {
				t.Errorf("CapRefreshGrant = %v, want %v", got, tt.want != nil)
			}
			if tt.want == nil {
				return
			}
			// Each Target gets its own parameters.
			target.RefreshGrant.Params.Set("subject", "mallory")
			again, err := tf.Target()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again.RefreshGrant, tt.want) {
				t.Errorf("second Target() RefreshGrant = %+v, want %+v", again.RefreshGrant, tt.want)
			}
		})
	}
}

// TestRefreshGrantFlagHelp checks that the refresh flags are registered
// with a usage line each.
func TestRefreshGrantFlagHelp(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("conform", flag.ContinueOnError)
	conformance.RegisterFlags(fs)
	for _, name := range []string{"refresh-client-id", "refresh-grant-type", "refresh-param"} {
		f := fs.Lookup(name)
		if f == nil || f.Usage == "" || f.DefValue != "" {
			t.Errorf("--%s: %+v", name, f)
		}
	}
}

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
