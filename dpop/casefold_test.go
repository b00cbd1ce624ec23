package dpop

import "testing"

// TestVerifyCaseFoldedNames: member names equal under case folding (the
// rule encoding/json applies when it matches struct fields) are refused
// at every level, like exact duplicates.
func TestVerifyCaseFoldedNames(t *testing.T) {
	t.Parallel()
	runVerifyCases(t, []verifyCase{
		{name: "header alg and ALG", edit: raw(`{"typ":"dpop+jwt","alg":"ES256","ALG":"none","jwk":$JWK}`, okPayload), want: ErrInvalidProof, why: rDuplicateFold},
		{name: "header Typ before typ", edit: raw(`{"Typ":"jwt","typ":"dpop+jwt","alg":"ES256","jwk":$JWK}`, okPayload), want: ErrInvalidProof, why: rDuplicateFold},
		{name: "header jwk and JWK", edit: raw(`{"typ":"dpop+jwt","alg":"ES256","jwk":$JWK,"JWK":{}}`, okPayload), want: ErrInvalidProof, why: rDuplicateFold},
		{name: "claims htu and Htu", edit: raw(okHeader, `{"jti":"$JTI","htm":"GET","htu":"https://rs.example.test/resource","Htu":"https://evil.example.test/","iat":1800000000,"ath":"$ATH"}`), want: ErrInvalidProof, why: rDuplicateFold},
		{name: "claims ATH before ath", edit: raw(okHeader, `{"ATH":"x","jti":"$JTI","htm":"GET","htu":"https://rs.example.test/resource","iat":1800000000,"ath":"$ATH"}`), want: ErrInvalidProof, why: rDuplicateFold},
		{name: "claims jti and JTI", edit: raw(okHeader, `{"jti":"$JTI","JTI":"other","htm":"GET","htu":"https://rs.example.test/resource","iat":1800000000,"ath":"$ATH"}`), want: ErrInvalidProof, why: rDuplicateFold},
		{name: "jwk kty and KTY", edit: func(t *testing.T, b *pb) { setJWK("KTY", "RSA")(t, b) }, want: ErrInvalidProof, why: rDuplicateFold},
		{name: "jwk x and X", edit: func(t *testing.T, b *pb) { setJWK("X", "AAAA")(t, b) }, want: ErrInvalidProof, why: rDuplicateFold},
		{name: "Kelvin sign: \u212aty folds to kty", edit: func(t *testing.T, b *pb) { setJWK("\u212aty", "RSA")(t, b) }, want: ErrInvalidProof, why: rDuplicateFold},
		{name: "long s: \u017fcope folds to scope", edit: raw(okHeader, `{"jti":"$JTI","htm":"GET","htu":"https://rs.example.test/resource","iat":1800000000,"ath":"$ATH","\u017fcope":"a","scope":"b"}`), want: ErrInvalidProof, why: rDuplicateFold},
		{name: "escaped upper case", edit: raw(`{"typ":"dpop+jwt","alg":"ES256","\u0041lg":"none","jwk":$JWK}`, okPayload), want: ErrInvalidProof, why: rDuplicateFold},
		{name: "nested extension object", edit: setHdr("ext", map[string]any{"a": 1, "A": 2}), want: ErrInvalidProof, why: rDuplicateFold},
		{name: "exact duplicate stays rDuplicate", edit: raw(`{"typ":"dpop+jwt","alg":"ES256","alg":"ES256","jwk":$JWK}`, okPayload), want: ErrInvalidProof, why: rDuplicate},
		{name: "distinct names accepted", edit: setHdr("ext", map[string]any{"ab": 1, "Ac": 2, "b\u00e9": 3, "B\u00c8": 4})},
	})
}
