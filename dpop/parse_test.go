package dpop

import (
	"strings"
	"testing"
)

func TestParsePayloadJSON(t *testing.T) {
	t.Parallel()
	const tail = `,"htm":"GET","htu":"h","iat":1}`
	tests := []struct {
		name    string
		in      string
		want    reason
		wantJTI string
	}{
		{"plain", `{"jti":"a"` + tail, rOK, "a"},
		{"escaped name", `{"j\u0074i":"a"` + tail, rOK, "a"},
		{"all simple escapes", `{"jti":"\"\\\/\b\f\n\r\t"` + tail, rOK, "\"\\/\b\f\n\r\t"},
		{"unicode escape", `{"jti":"\u00e9\u4e2d"` + tail, rOK, "é中"},
		{"surrogate pair", `{"jti":"\ud83d\ude00"` + tail, rOK, "😀"},
		{"raw UTF-8", `{"jti":"é"` + tail, rOK, "é"},
		{"lone high surrogate", `{"jti":"\ud83d"` + tail, rClaimType, ""},
		{"high surrogate then non-low", `{"jti":"\ud83d\u0041"` + tail, rClaimType, ""},
		{"lone low surrogate", `{"jti":"\ude00"` + tail, rClaimType, ""},
		{"bad escape", `{"jti":"\x"` + tail, rClaimType, ""},
		{"short unicode escape", `{"jti":"\u12"` + tail, rClaimType, ""},
		{"non-hex unicode escape", `{"jti":"\u12g4"` + tail, rClaimType, ""},
		{"raw control char", "{\"jti\":\"a\x01\"" + tail, rClaimType, ""},
		{"control char after escape", "{\"jti\":\"\\n\x01\"" + tail, rClaimType, ""},
		{"invalid UTF-8 after escape", "{\"jti\":\"\\n\xff\"" + tail, rClaimType, ""},
		{"unterminated string", `{"jti":"a`, rClaimType, ""},
		{"unterminated after escape", `{"jti":"\n`, rClaimType, ""},
		{"extension values", `{"jti":"a","x":[true,false,null,-0.5e+3,{"k":[]},[],{}],"y":1E2` + tail, rOK, "a"},
		{"bad literal", `{"jti":"a","x":tru` + tail, rPayloadJSON, ""},
		{"bad number leading zero", `{"jti":"a","x":01` + tail, rPayloadJSON, ""},
		{"bad number dot", `{"jti":"a","x":1.` + tail, rPayloadJSON, ""},
		{"bad number exponent", `{"jti":"a","x":1e` + tail, rPayloadJSON, ""},
		{"bad number minus", `{"jti":"a","x":-` + tail, rPayloadJSON, ""},
		{"iat fraction without digits", `{"jti":"a","htm":"GET","htu":"h","iat":1.}`, rClaimType, ""},
		{"trailing comma", `{"jti":"a",}`, rPayloadJSON, ""},
		{"missing colon", `{"jti" "a"}`, rPayloadJSON, ""},
		{"array missing comma", `{"jti":"a","x":[1 2]` + tail, rPayloadJSON, ""},
		{"unterminated array", `{"jti":"a","x":[1`, rPayloadJSON, ""},
		{"unterminated object", `{"jti":"a"`, rPayloadJSON, ""},
		{"empty object", `{}`, rOK, ""},
		{"empty input", ``, rPayloadJSON, ""},
		{"too many members", "{" + strings.Repeat(`"a":1,`, 0) + manyMembers(70) + "}", rPayloadJSON, ""},
		{"depth 16 ok", `{"x":` + strings.Repeat("[", 15) + strings.Repeat("]", 15) + `}`, rOK, ""},
		{"depth 17 refused", `{"x":` + strings.Repeat("[", 17) + strings.Repeat("]", 17) + `}`, rPayloadJSON, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c claims
			got := parsePayload([]byte(tc.in), &c)
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if got == rOK && string(c.jti) != tc.wantJTI {
				t.Fatalf("jti %q, want %q", c.jti, tc.wantJTI)
			}
		})
	}
}

func manyMembers(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"m`)
		b.WriteString(strings.Repeat("x", i))
		b.WriteString(`":1`)
	}
	return b.String()
}

func TestEncodeECDSASig(t *testing.T) {
	t.Parallel()
	r := make([]byte, 66)
	s := make([]byte, 66)
	r[0], s[0] = 0x01, 0x80 // P-521 sizes, s with the high bit set after trimming
	der := encodeECDSASig(nil, r, s)
	// SEQUENCE long form (0x81), INTEGER r 66 bytes, INTEGER s 66 bytes.
	if der[0] != 0x30 || der[1] != 0x81 || int(der[2]) != len(der)-3 {
		t.Fatalf("bad sequence header % x", der[:3])
	}
	zero := encodeECDSASig(nil, make([]byte, 32), make([]byte, 32))
	if string(zero) != "\x30\x06\x02\x01\x00\x02\x01\x00" {
		t.Fatalf("zero encoding % x", zero)
	}
}
