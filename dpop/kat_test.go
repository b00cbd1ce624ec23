package dpop

import (
	"context"
	"crypto"
	"errors"
	jose "github.com/go-jose/go-jose/v4"
	"strings"
	"sync"
	"testing"
	"time"
)

// memStore is a minimal map-based ReplayStore for tests and benchmarks.
type memStore struct {
	mu   sync.Mutex
	m    map[[32]byte]time.Time
	fail error
}

func newMemStore() *memStore { return &memStore{m: make(map[[32]byte]time.Time)} }

func (s *memStore) CheckAndStore(_ context.Context, key [32]byte, exp time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return false, s.fail
	}
	if _, ok := s.m[key]; ok {
		return false, nil
	}
	s.m[key] = exp
	return true, nil
}

const (
	kat5Proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
	kat3JKT   = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
)

func fixedClock(unix int64) func() time.Time {
	return func() time.Time { return time.Unix(unix, 0) }
}

func TestKAT5(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(Config{Algorithms: []string{"ES256"}, ReplayStore: newMemStore(), Now: fixedClock(1562262616)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(context.Background(), kat5Proof, Expect{Method: "POST", URL: "https://server.example.com/token"})
	if err != nil {
		t.Fatalf("KAT-5: %v", err)
	}
	if p.JKT != kat3JKT {
		t.Fatalf("KAT-3 jkt = %s", p.JKT)
	}
	_, err = v.Verify(context.Background(), kat5Proof, Expect{Method: "POST", URL: "https://server.example.com/token"})
	if !errors.Is(err, ErrReplay) || !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("replay: %v", err)
	}
}

const (
	kat6Proof  = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjY1Mjk2fQ.pAqut2IRDm_De6PR93SYmGBPXpwrAk90e8cP2hjiaG5QsGSuKDYW7_X620BxqhvYC8ynrrvZLTk41mSRroapUA"
	kat7Proof  = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
	kat7HighS  = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plel_fuFVO46DNVBNVNqYZjPFpbmdA8d0H3BbGP5h-8jZxQ"
	kat7NonCan = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjB"
	kat7Token  = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
	kat4ATH    = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
	kat5HighS  = "2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwkvfHwR60ki04dxtToLOEyqWQWs5RRbzA0YYkvRts4uIw"
	kat6HighS  = "pAqut2IRDm_De6PR93SYmGBPXpwrAk90e8cP2hjiaG6vT5tQ18npEQoFJL-OVeQnsRpS_us-cUu642YxTdx8AQ"
)

func withSig(proof, sig string) string { return proof[:strings.LastIndexByte(proof, '.')+1] + sig }

func TestKATRFC9449Proofs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kat7Want := Expect{Method: "GET", URL: "https://resource.example.org/protectedresource", AccessToken: kat7Token, JKT: kat3JKT}
	tokenWant := Expect{Method: "POST", URL: "https://server.example.com/token"}
	tests := []struct {
		name   string
		now    int64
		proofs []string // verified in order against one store
		want   Expect
		errs   []error // per proof; nil = accepted
	}{
		{"KAT-5", 1562262616, []string{kat5Proof}, tokenWant, []error{nil}},
		{"KAT-6", 1562265296, []string{kat6Proof}, tokenWant, []error{nil}},
		{"KAT-7/accepted then replay", 1562262618, []string{kat7Proof, kat7Proof}, kat7Want, []error{nil, ErrReplay}},
		{"KAT-7/stale at T+W+60", 1562262618 + 120, []string{kat7Proof}, kat7Want, []error{ErrInvalidProof}},
		{"KAT-15/high-s twin verifies", 1562262618, []string{kat7HighS}, kat7Want, []error{nil}},
		{"KAT-15/high-s after original is a replay", 1562262618, []string{kat7Proof, kat7HighS}, kat7Want, []error{nil, ErrReplay}},
		{"KAT-15/original after high-s is a replay", 1562262618, []string{kat7HighS, kat7Proof}, kat7Want, []error{nil, ErrReplay}},
		{"KAT-15/non-canonical base64 refused", 1562262618, []string{kat7NonCan}, kat7Want, []error{ErrInvalidProof}},
		{"KAT-15/Figure 2 flipped", 1562262616, []string{kat5Proof, withSig(kat5Proof, kat5HighS)}, tokenWant, []error{nil, ErrReplay}},
		{"KAT-15/Figure 7 flipped", 1562265296, []string{kat6Proof, withSig(kat6Proof, kat6HighS)}, tokenWant, []error{nil, ErrReplay}},
		{"KAT-6/same jti as KAT-5 within window is a replay", 1562265296, []string{kat5Proof, kat6Proof}, tokenWant, []error{nil, ErrReplay}},
		{"KAT-7/wrong token", 1562262618, []string{kat7Proof}, Expect{Method: "GET", URL: kat7Want.URL, AccessToken: kat7Token + "x"}, []error{ErrInvalidProof}},
		{"KAT-5/RS htu at token endpoint (ADV-63)", 1562262616, []string{kat5Proof}, Expect{Method: "POST", URL: "https://resource.example.org/token"}, []error{ErrInvalidProof}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(Config{Algorithms: []string{"ES256"}, ReplayStore: newMemStore(), Now: fixedClock(tc.now), MaxAge: 3000 * time.Second})
			if strings.Contains(tc.name, "stale") {
				v, err = NewVerifier(Config{Algorithms: []string{"ES256"}, ReplayStore: newMemStore(), Now: fixedClock(tc.now)})
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, proof := range tc.proofs {
				p, err := v.Verify(ctx, proof, tc.want)
				if tc.errs[i] == nil {
					if err != nil {
						t.Fatalf("proof %d: %v", i, err)
					}
					if p.JKT != kat3JKT {
						t.Fatalf("KAT-3: jkt %s", p.JKT)
					}
					continue
				}
				if !errors.Is(err, tc.errs[i]) {
					t.Fatalf("proof %d: want %v, got %v", i, tc.errs[i], err)
				}
			}
		})
	}
}

func TestKATThumbprints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		jwk  string
		want string
	}{
		{"KAT-1/THUMB-02 RSA", `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{"KAT-2/THUMB-04 OKP", `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
		{"KAT-3/THUMB-07 member order", `{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`, kat3JKT},
		{"KAT-16/THUMB-03 EC", `{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","use":"enc","kid":"1"}`, "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"},
		{"THUMB-08 private JWK", `{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}`, "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var k jose.JSONWebKey
			if err := k.UnmarshalJSON([]byte(tc.jwk)); err != nil {
				t.Fatal(err)
			}
			got, err := Thumbprint(&k)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			if got == "n_P-LqPOv0qzz9DAZza2dAj7gtEE0kaQi0TEAzvQbCI" || len(got) != 43 {
				t.Fatal("THUMB-01: unsorted or wrong-length thumbprint")
			}
		})
	}
	if _, err := Thumbprint(nil); err == nil {
		t.Fatal("nil JWK accepted")
	}
	if _, err := Thumbprint(&jose.JSONWebKey{}); err == nil {
		t.Fatal("empty JWK accepted")
	}
}

// TestKATVerifierThumbprints checks that the verifier's own thumbprint
// (computed from validated members, not by go-jose) matches the RFC values
// for proofs signed with the RFC 7517 Appendix A.2 keys.
func TestKATVerifierThumbprints(t *testing.T) {
	t.Parallel()
	var ec, rsaKey jose.JSONWebKey
	if err := ec.UnmarshalJSON([]byte(`{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}`)); err != nil {
		t.Fatal(err)
	}
	if err := rsaKey.UnmarshalJSON([]byte(kr)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  crypto.Signer
		alg  string
		want string
	}{
		{"KAT-16 ES256", ec.Key.(crypto.Signer), "ES256", "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"},
		{"KAT-1 RS256", rsaKey.Key.(crypto.Signer), "RS256", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := NewProver(tc.key, &ProverOptions{Algorithm: tc.alg, Now: fixedClock(testNow)})
			if err != nil {
				t.Fatal(err)
			}
			if p.Thumbprint() != tc.want {
				t.Fatalf("prover jkt %s", p.Thumbprint())
			}
			proof, err := p.Proof("GET", testURL, ProofOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := testVerifier(t, nil).Verify(context.Background(), proof, Expect{Method: "GET", URL: testURL, JKT: tc.want})
			if err != nil {
				t.Fatal(err)
			}
			if got.JKT != tc.want {
				t.Fatalf("verifier jkt %s", got.JKT)
			}
		})
	}
}

// kr is the RFC 7517 Appendix A.2 RSA private key (KR).
const kr = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","d":"X4cTteJY_gn4FYPsXB8rdXix5vwsg1FLN5E3EaG6RJoVH-HLLKD9M7dx5oo7GURknchnrRweUkC7hT5fJLM0WbFAKNLWY2vv7B6NqXSzUvxT0_YSfqijwp3RTzlBaCxWp4doFk5N2o8Gy_nHNKroADIkJ46pRUohsXywbReAdYaMwFs9tv8d_cPVY3i07a3t8MN6TNwm0dSawm9v47UiCl3Sk5ZiG7xojPLu4sbg1U2jx4IBTNBznbJSzFHK66jT8bgkuqsk0GjskDJk19Z4qwjwbsnn4j2WBii3RL-Us2lGVkY8fkFzme1z0HbIkfz0Y6mqnOYtqc0X4jfcKoAC8Q","p":"83i-7IvMGXoMXCskv73TKr8637FiO7Z27zv8oj6pbWUQyLPQBQxtPVnwD20R-60eTDmD2ujnMt5PoqMrm8RfmNhVWDtjjMmCMjOpSXicFHj7XOuVIYQyqVWlWEh6dN36GVZYk93N8Bc9vY41xy8B9RzzOGVQzXvNEvn7O0nVbfs","q":"3dfOR9cuYq-0S-mkFLzgItgMEfFzB2q3hWehMuG0oCuqnb3vobLyumqjVZQO1dIrdwgTnCdpYzBcOfW5r370AFXjiWft_NGEiovonizhKpo9VVS78TzFgxkIdrecRezsZ-1kYd_s1qDbxtkDEgfAITAG9LUnADun4vIcb6yelxk","dp":"G4sPXkc6Ya9y8oJW9_ILj4xuppu0lzi_H7VTkS8xj5SdX3coE0oimYwxIi2emTAue0UOa5dpgFGyBJ4c8tQ2VF402XRugKDTP8akYhFo5tAA77Qe_NmtuYZc3C3m3I24G2GvR5sSDxUyAN2zq8Lfn9EUms6rY3Ob8YeiKkTiBj0","dq":"s9lAH9fggBsoFR8Oac2R_E2gw282rT2kGOAhvIllETE1efrA6huUUvMfBcMpn8lqeW6vzznYY5SSQF7pMdC_agI3nG8Ibp1BUb0JUiraRNqUfLhcQb_d9GF4Dh7e74WbRsobRonujTYN1xCaP6TO61jvWrX-L18txXw494Q_cgk","qi":"GyM_p6JrXySiz1toFgKbWV-JdI3jQ4ypu9rbMWx3rQJBfmt0FoYzgUIZEVFEcOqwemRN81zoDAaa-Bk0KWNGDjJHZDdDmFhW3AN7lI-puxk_mHZGJ11rxyR8O55XLSe3SPmRfKwZI6yU24ZxvQKFYItdldUKGzO6Ia6zTKhAVRU"}`
