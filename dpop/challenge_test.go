package dpop

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/senderbound/senderbound/oautherr"
)

func TestChallengeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    Challenge
		want string
	}{
		{"KAT-10/algs only", Challenge{Scheme: "DPoP", Algs: []string{"ES256", "PS256"}}, `DPoP algs="ES256 PS256"`},
		{"KAT-10/invalid_token", Challenge{Scheme: "DPoP", Error: "invalid_token", ErrorDescription: "Invalid DPoP key binding", Algs: []string{"ES256"}}, `DPoP error="invalid_token", error_description="Invalid DPoP key binding", algs="ES256"`},
		{"KAT-10/use_dpop_nonce", Challenge{Error: "use_dpop_nonce", ErrorDescription: "Resource server requires nonce in DPoP proof"}, `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`},
		{"ERR-02/bare scheme", Challenge{}, `DPoP`},
		{"ERR-07/scope", Challenge{Scheme: "Bearer", Realm: "rs", Error: "insufficient_scope", Scope: "read  write"}, `Bearer realm="rs", error="insufficient_scope", scope="read write"`},
		{"ERR-09/quotes backslash CRLF non-ASCII dropped", Challenge{Error: "invalid_dpop_proof", ErrorDescription: "a\"b\\c\r\nd\u00e9e"}, `DPoP error="invalid_dpop_proof", error_description="abcde"`},
		{"ERR-09/scope quote dropped", Challenge{Scheme: "Bearer", Scope: `a"b c\d`}, `Bearer scope="ab cd"`},
		{"scheme sanitized", Challenge{Scheme: "DP oP\r\n"}, `DPoP`},
		{"alg with space dropped", Challenge{Algs: []string{"ES256", "bad alg\"", ""}}, `DPoP algs="ES256 badalg"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.c.String()
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			// Round trip through the parser.
			cs, err := ParseChallenges(got)
			if err != nil || len(cs) != 1 {
				t.Fatalf("ParseChallenges(%q) = %v, %v", got, cs, err)
			}
		})
	}
}

func TestParseChallenges(t *testing.T) {
	t.Parallel()
	algs := []string{"ES256", "PS256"}
	desc := "Multiple methods used to include access token"
	tests := []struct {
		name   string
		header string
		want   []Challenge
		err    bool
	}{
		{"KAT-10/Figure 15", `DPoP algs="ES256 PS256"`, []Challenge{{Scheme: "DPoP", Algs: algs}}, false},
		{"KAT-10/Figure 16", `DPoP error="invalid_token", error_description="Invalid DPoP key binding", algs="ES256"`,
			[]Challenge{{Scheme: "DPoP", Error: "invalid_token", ErrorDescription: "Invalid DPoP key binding", Algs: []string{"ES256"}}}, false},
		{"KAT-10/Figure 17 bare Bearer", `Bearer, DPoP algs="ES256 PS256"`, []Challenge{{Scheme: "Bearer"}, {Scheme: "DPoP", Algs: algs}}, false},
		{"KAT-10/Figure 18", `Bearer error="invalid_token", error_description="Invalid token", DPoP algs="ES256 PS256"`,
			[]Challenge{{Scheme: "Bearer", Error: "invalid_token", ErrorDescription: "Invalid token"}, {Scheme: "DPoP", Algs: algs}}, false},
		{"KAT-10/Figure 19 repeated names across schemes", `Bearer error="invalid_request", error_description="` + desc + `", DPoP algs="ES256 PS256", error="invalid_request", error_description="` + desc + `"`,
			[]Challenge{{Scheme: "Bearer", Error: "invalid_request", ErrorDescription: desc}, {Scheme: "DPoP", Error: "invalid_request", ErrorDescription: desc, Algs: algs}}, false},
		{"KAT-10/Figure 20", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`,
			[]Challenge{{Scheme: "DPoP", Error: "use_dpop_nonce", ErrorDescription: "Resource server requires nonce in DPoP proof"}}, false},
		{"token values and case-insensitive names", `dpop ERROR=use_dpop_nonce, Realm=x`, []Challenge{{Scheme: "dpop", Error: "use_dpop_nonce", Realm: "x"}}, false},
		{"quoted-pair", `Bearer realm="a\"b"`, []Challenge{{Scheme: "Bearer", Realm: `a"b`}}, false},
		{"token68", `Basic dXNlcjpwYXNz==, DPoP algs="ES256"`, []Challenge{{Scheme: "Basic"}, {Scheme: "DPoP", Algs: []string{"ES256"}}}, false},
		{"unknown parameter ignored", `DPoP foo="bar", algs="ES256"`, []Challenge{{Scheme: "DPoP", Algs: []string{"ES256"}}}, false},
		{"ERR-08/error twice in one challenge", `DPoP error="a", error="b"`, nil, true},
		{"ERR-08/realm twice", `Bearer realm="a", realm="b"`, nil, true},
		{"ERR-08/error_uri twice", `Bearer error_uri="a", error_uri="b"`, nil, true},
		{"empty", ``, nil, true},
		{"only commas", ` , ,`, nil, true},
		{"unterminated quote", `DPoP error="abc`, nil, true},
		{"missing value", `DPoP realm="a", error=`, nil, true},
		{"token68 look-alike", `DPoP error=`, []Challenge{{Scheme: "DPoP"}}, false},
		{"CR in quoted", "DPoP error=\"a\rb\"", nil, true},
		{"garbage after param", `DPoP error="a" b`, nil, true},
		{"bad scheme", `"DPoP"`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseChallenges(tc.header)
			if tc.err {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				if got != nil {
					t.Fatal("non-nil result on error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if _, err := ParseChallenges(string(make([]byte, maxChallengeHeader+1))); err == nil {
		t.Fatal("oversized header accepted")
	}
}

func TestErrorType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		code string
	}{
		{ErrInvalidProof, oautherr.InvalidDPoPProof},
		{ErrReplay, oautherr.InvalidDPoPProof},
		{ErrUseNonce, oautherr.UseDPoPNonce},
		{ErrKeyMismatch, oautherr.InvalidToken},
		{ErrMissingProof, oautherr.InvalidRequest},
		{ErrStoreUnavailable, oautherr.ServerError},
		{fmt.Errorf("wrapped: %w", ErrUseNonce), oautherr.UseDPoPNonce},
		{errors.New("unknown"), oautherr.InvalidDPoPProof},
		{&Error{Code: "custom", Err: ErrInvalidProof}, "custom"},
	}
	for _, tc := range tests {
		if got := Code(tc.err); got != tc.code {
			t.Errorf("Code(%v) = %s, want %s", tc.err, got, tc.code)
		}
	}
	e := newError(ErrReplay, oautherr.ReasonProofReplayed, "proof replayed")
	if !errors.Is(e, ErrReplay) || !errors.Is(e, ErrInvalidProof) || errors.Is(e, ErrUseNonce) {
		t.Fatal("sentinel matching through *Error is wrong")
	}
	if errors.Is(ErrInvalidProof, ErrReplay) {
		t.Fatal("class relation must not be symmetric")
	}
	var target *Error
	if !errors.As(error(e), &target) || target.Code != oautherr.InvalidDPoPProof {
		t.Fatal("errors.As")
	}
	if e.Error() != "dpop: invalid_dpop_proof: proof replayed" || (&Error{Code: "x"}).Error() != "dpop: x" {
		t.Fatalf("Error() = %q", e.Error())
	}
}
