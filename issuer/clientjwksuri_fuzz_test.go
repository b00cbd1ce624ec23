package issuer

import (
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/internal/pubkey"
)

// FuzzParseClientJWKS: the parser of a client's key set (fetched from a
// URL the client controls) never panics, returns nothing with an error,
// and returns only public keys that meet the internal/pubkey rules, at
// most maxClientJWKSKeys of them, in a set that parses again after
// re-encoding.
func FuzzParseClientJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"k1"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cLA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[],"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","KTY":"EC"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		set, err := parseClientJWKS(body)
		if err != nil {
			if set != nil {
				t.Fatal("a set with an error")
			}
			return
		}
		if len(set.Keys) == 0 || len(set.Keys) > maxClientJWKSKeys {
			t.Fatalf("%d keys", len(set.Keys))
		}
		for _, k := range set.Keys {
			if !k.IsPublic() || pubkey.Check(k.Key) != nil {
				t.Fatalf("key %v accepted", k.Key)
			}
		}
		again, err := json.Marshal(jose.JSONWebKeySet{Keys: set.Keys})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseClientJWKS(again); err != nil {
			t.Fatalf("re-encoded set refused: %v", err)
		}
	})
}
