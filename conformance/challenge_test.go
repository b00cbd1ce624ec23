package conformance_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/senderbound/senderbound/conformance"
)

type P = conformance.Param

func TestParseChallengesKAT10(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		want []conformance.Challenge
	}{
		{"Fig 15 algs", []string{`DPoP algs="ES256 PS256"`},
			[]conformance.Challenge{{Scheme: "DPoP", Params: []P{{"algs", "ES256 PS256"}}}}},
		{"Fig 16 key binding", []string{`DPoP error="invalid_token", error_description="Invalid DPoP key binding", algs="ES256"`},
			[]conformance.Challenge{{Scheme: "DPoP", Params: []P{{"error", "invalid_token"}, {"error_description", "Invalid DPoP key binding"}, {"algs", "ES256"}}}}},
		{"Fig 17 bare Bearer", []string{`Bearer, DPoP algs="ES256 PS256"`},
			[]conformance.Challenge{{Scheme: "Bearer"}, {Scheme: "DPoP", Params: []P{{"algs", "ES256 PS256"}}}}},
		{"Fig 18 two schemes", []string{`Bearer error="invalid_token", error_description="Invalid token", DPoP algs="ES256 PS256"`},
			[]conformance.Challenge{{Scheme: "Bearer", Params: []P{{"error", "invalid_token"}, {"error_description", "Invalid token"}}}, {Scheme: "DPoP", Params: []P{{"algs", "ES256 PS256"}}}}},
		{"Fig 19 repeated names across schemes", []string{`Bearer error="invalid_request", error_description="Multiple methods used to include access token", DPoP algs="ES256 PS256", error="invalid_request", error_description="Multiple methods used to include access token"`},
			[]conformance.Challenge{
				{Scheme: "Bearer", Params: []P{{"error", "invalid_request"}, {"error_description", "Multiple methods used to include access token"}}},
				{Scheme: "DPoP", Params: []P{{"algs", "ES256 PS256"}, {"error", "invalid_request"}, {"error_description", "Multiple methods used to include access token"}}}}},
		{"Fig 20 nonce", []string{`DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`},
			[]conformance.Challenge{{Scheme: "DPoP", Params: []P{{"error", "use_dpop_nonce"}, {"error_description", "Resource server requires nonce in DPoP proof"}}}}},
		{"two fields", []string{`Bearer realm="rs"`, `DPoP algs="ES256"`},
			[]conformance.Challenge{{Scheme: "Bearer", Params: []P{{"realm", "rs"}}}, {Scheme: "DPoP", Params: []P{{"algs", "ES256"}}}}},
		{"token68", []string{`Basic YWxhZGRpbjpvcGVuc2VzYW1l==, Bearer realm=x`},
			[]conformance.Challenge{{Scheme: "Basic", Token68: "YWxhZGRpbjpvcGVuc2VzYW1l=="}, {Scheme: "Bearer", Params: []P{{"realm", "x"}}}}},
		{"escapes and case", []string{`Bearer REALM="a\"b\\c", Error=invalid_token`},
			[]conformance.Challenge{{Scheme: "Bearer", Params: []P{{"realm", `a"b\c`}, {"error", "invalid_token"}}}}},
		{"empty elements", []string{`, ,Bearer realm="x" ,, `},
			[]conformance.Challenge{{Scheme: "Bearer", Params: []P{{"realm", "x"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := conformance.ParseChallenges(tt.in)
			if err != nil {
				t.Fatalf("ParseChallenges: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestParseChallengesRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`=x`,
		`Bearer realm="unterminated`,
		`Bearer a=b c=d`,
		`Bearer realm="x" junk`,
		"Bearer realm=\"a\x01b\"",
		`Bearer realm="x",` + "\x00",
		`Bearer realm = "x" = y`,
		`Bearer	realm="tab before params"`,
	} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			got, err := conformance.ParseChallenges([]string{in})
			if err == nil {
				t.Fatalf("accepted %q as %#v", in, got)
			}
			if !errors.Is(err, conformance.ErrMalformedChallenge) {
				t.Errorf("error %v does not wrap ErrMalformedChallenge", err)
			}
			if got != nil {
				t.Errorf("non-nil result on error")
			}
		})
	}
}

func TestChallengeCount(t *testing.T) {
	t.Parallel()
	cs, err := conformance.ParseChallenges([]string{`DPoP error="a", error="b", algs="ES256"`})
	if err != nil {
		t.Fatal(err)
	}
	if n := cs[0].Count("ERROR"); n != 2 {
		t.Errorf("Count(error) = %d, want 2", n)
	}
	if v, _ := cs[0].Param("Error"); v != "a" {
		t.Errorf("Param(error) = %q, want the first value", v)
	}
}

func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{
		`DPoP algs="ES256 PS256"`,
		`Bearer, DPoP algs="ES256 PS256"`,
		`Bearer error="invalid_request", error_description="Multiple methods used to include access token", DPoP algs="ES256 PS256", error="invalid_request", error_description="Multiple methods used to include access token"`,
		`Basic YWxhZGRpbjpvcGVuc2VzYW1l==`,
		`Bearer realm="a\"b"`,
		`=`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := conformance.ParseChallenges([]string{s})
		if err != nil {
			if cs != nil {
				t.Fatal("non-nil challenges with an error")
			}
			return
		}
		for _, c := range cs {
			if c.Scheme == "" {
				t.Fatal("empty scheme")
			}
			if c.Token68 != "" && len(c.Params) > 0 {
				t.Fatal("token68 and params together")
			}
		}
	})
}
