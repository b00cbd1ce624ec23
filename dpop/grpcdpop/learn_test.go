package grpcdpop

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestLearn checks which answers teach a nonce and which ask for a retry.
func TestLearn(t *testing.T) {
	t.Parallel()
	unauth := status.Error(codes.Unauthenticated, "use_dpop_nonce")
	useNonce := `DPoP algs="ES256", error="use_dpop_nonce", error_description="a fresh DPoP nonce is required"`
	tests := []struct {
		name      string
		used      string // nonce the proof carried
		err       error
		md        metadata.MD
		wantNonce string // kept for the authority
		wantRetry string
	}{
		{"nonce on success", "", nil, metadata.Pairs("dpop-nonce", "n1"), "n1", ""},
		{"use_dpop_nonce with a new nonce", "", unauth, metadata.Pairs("dpop-nonce", "n1", "www-authenticate", useNonce), "n1", "n1"},
		{"use_dpop_nonce with the nonce already used", "n1", unauth, metadata.Pairs("dpop-nonce", "n1", "www-authenticate", useNonce), "n1", ""},
		{"use_dpop_nonce without a nonce", "", unauth, metadata.Pairs("www-authenticate", useNonce), "", ""},
		{"other error with a nonce", "", status.Error(codes.Unauthenticated, "x"), metadata.Pairs("dpop-nonce", "n1", "www-authenticate", `DPoP error="invalid_token"`), "n1", ""},
		{"use_dpop_nonce challenge on another code", "", status.Error(codes.PermissionDenied, "x"), metadata.Pairs("dpop-nonce", "n1", "www-authenticate", useNonce), "n1", ""},
		{"use_dpop_nonce under Bearer", "", unauth, metadata.Pairs("dpop-nonce", "n1", "www-authenticate", `Bearer realm="r", error="use_dpop_nonce"`), "n1", ""},
		{"two nonces", "", unauth, metadata.Pairs("dpop-nonce", "n1", "dpop-nonce", "n2", "www-authenticate", useNonce), "", ""},
		{"nonce with a quote", "", unauth, metadata.Pairs("dpop-nonce", `n"1`, "www-authenticate", useNonce), "", ""},
		{"nonce with a space", "", nil, metadata.Pairs("dpop-nonce", "n 1"), "", ""},
		{"empty nonce", "", nil, metadata.MD{"dpop-nonce": {""}}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &Credentials{}
			st := &call{sent: true, authority: "rs.example.test", nonce: tc.used}
			c.learn(st, tc.err, tc.md)
			if got := c.nonce("rs.example.test"); got != tc.wantNonce {
				t.Fatalf("kept nonce %q, want %q", got, tc.wantNonce)
			}
			if st.retryNonce != tc.wantRetry {
				t.Fatalf("retry nonce %q, want %q", st.retryNonce, tc.wantRetry)
			}
		})
	}
}

// FuzzLearn feeds hostile dpop-nonce and www-authenticate values to learn:
// no panic, and a kept nonce is the single value sent and valid NQCHAR
// (so the next proof can carry it).
func FuzzLearn(f *testing.F) {
	f.Add("n1", `DPoP error="use_dpop_nonce"`)
	f.Add(`n"1`, `DPoP algs="ES256", error="use_dpop_nonce"`)
	f.Add("", `Bearer realm="x", DPoP error="use_dpop_nonce", error_description="a"`)
	f.Add("\x00\r\n", `DPoP error=use_dpop_nonce,,`)
	f.Fuzz(func(t *testing.T, nonce, challenge string) {
		c := &Credentials{}
		st := &call{sent: true, authority: "rs.example.test"}
		c.learn(st, status.Error(codes.Unauthenticated, "x"), metadata.MD{"dpop-nonce": {nonce}, "www-authenticate": {challenge}})
		got := c.nonce("rs.example.test")
		if got == "" {
			if st.retryNonce != "" {
				t.Fatal("retry without a kept nonce")
			}
			return
		}
		if got != nonce || !validNonce(got) {
			t.Fatalf("kept %q from %q", got, nonce)
		}
		if st.retryNonce != "" && st.retryNonce != got {
			t.Fatalf("retry nonce %q, kept %q", st.retryNonce, got)
		}
	})
}
