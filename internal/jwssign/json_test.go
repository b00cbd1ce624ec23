package jwssign

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x7f", "\"\x7f\""},
		{"</script>&", `"</script>&"`},
		{"é日本🙂", `"é日本🙂"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"\ufffd", "\"\ufffd\""},
		{"a\xffb", `"a\ufffdb"`},
		{"\xe6\x97", `"\ufffd\ufffd"`},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`}, // an encoded surrogate is invalid UTF-8
		{`\u0022`, `"\\u0022"`},
	}
	for _, tc := range tests {
		if got := string(AppendString(nil, tc.in)); got != tc.want {
			t.Errorf("AppendString(%q) = %s, want %s", tc.in, got, tc.want)
		}
		if got := string(AppendString([]byte("x"), tc.in)); got != "x"+tc.want {
			t.Errorf("prefix lost: %s", got)
		}
	}
}

func TestAppendMembers(t *testing.T) {
	t.Parallel()
	b := []byte{'{'}
	b = AppendStringMember(b, "a", `"`)
	b = AppendIntMember(b, "n", -42)
	b = AppendStringMember(b, `k"`, "v")
	b = append(b, '}')
	if string(b) != `{"a":"\"","n":-42,"k\"":"v"}` {
		t.Fatalf("%s", b)
	}
}

// FuzzAppendString checks AppendString against encoding/json: the output is
// valid JSON and decodes to what encoding/json's own encoding decodes to,
// which is s itself whenever s is valid UTF-8.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", `"\`, "\x00\x1f\x7f", "\u2028é", "a\xffb", "\xed\xa0\x80", strings.Repeat("\\\"", 8)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString(nil, s)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q", out)
		}
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		std, _ := json.Marshal(s)
		var want string
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%q decodes to %q, encoding/json gives %q", s, got, want)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("%q decodes to %q", s, got)
		}
	})
}
