package conformance

import (
	"bytes"
	"testing"
)

func TestJWKThumbprintKATs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, jwk, want string
	}{
		{"KAT-1 RSA", `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{"KAT-2 OKP", `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
		{"KAT-3 member order", `{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
		{"KAT-16 private EC", `{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE","use":"enc","kid":"1"}`, "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := jwkThumbprint([]byte(tt.jwk))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestATHKAT4(t *testing.T) {
	t.Parallel()
	if got := tokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"); got != "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo" {
		t.Errorf("ATH = %s", got)
	}
}

func TestParseClientCertHeaderRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", ":", "abc", ":abc", ":a b:", ":YQ=Y:", ":*:"} {
		if der, err := parseClientCertHeader(in); err == nil {
			t.Errorf("parseClientCertHeader(%q) = %x, want an error", in, der)
		}
	}
}

func FuzzParseClientCertHeader(f *testing.F) {
	f.Add(":MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGUx:")
	f.Add(":YWJj:")
	f.Add("::")
	f.Fuzz(func(t *testing.T, s string) {
		der, err := parseClientCertHeader(s)
		if err != nil {
			if der != nil {
				t.Fatal("bytes with an error")
			}
			return
		}
		again, err := parseClientCertHeader(clientCertHeader(der))
		if err != nil || !bytes.Equal(again, der) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

func FuzzJWKThumbprint(f *testing.F) {
	f.Add([]byte(`{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`))
	f.Add([]byte(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`))
	f.Add([]byte(`{"kty":"oct","k":"AAAA"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		jkt, err := jwkThumbprint(b)
		if err != nil {
			if jkt != "" {
				t.Fatal("thumbprint with an error")
			}
			return
		}
		if len(jkt) != 43 {
			t.Fatalf("thumbprint of %d characters", len(jkt))
		}
	})
}

// TestJWKThumbprintRFC7638 is the RFC 7638 §3.1 style check on the key of
// RFC 9449 §4.1's example proof.
func TestJWKThumbprintRFC7638(t *testing.T) {
	t.Parallel()
	jkt, err := jwkThumbprint([]byte(`{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`))
	if err != nil || jkt != "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" {
		t.Fatalf("jwkThumbprint = %q, %v", jkt, err)
	}
}
