package jwsverify

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// plainByte is the one-byte rule plain8 applies to eight bytes at once.
func plainByte(c byte) bool { return c != '"' && c != '\\' && c >= 0x20 && c < 0x80 }

// TestPlain8 checks the word-at-a-time test against the one-byte rule for
// every byte value at every position of a word of plain bytes, and for
// words of two chosen bytes at every pair of positions.
func TestPlain8(t *testing.T) {
	t.Parallel()
	for pos := range 8 {
		for c := range 256 {
			w := bytes.Repeat([]byte{'A'}, 8)
			w[pos] = byte(c)
			if got, want := plain8(binary.LittleEndian.Uint64(w)), plainByte(byte(c)); got != want {
				t.Fatalf("byte %#x at %d: plain8 = %v, want %v", c, pos, got, want)
			}
		}
	}
	picks := []byte{0x00, 0x1f, 0x20, '!', '"', '#', '[', '\\', ']', 0x7f, 0x80, 0xc3, 0xff, 'A', '+', '/', '='}
	for i := range 8 {
		for j := range 8 {
			for _, a := range picks {
				for _, b := range picks {
					w := bytes.Repeat([]byte{'z'}, 8)
					w[i], w[j] = a, b
					want := true
					for _, c := range w {
						want = want && plainByte(c)
					}
					if got := plain8(binary.LittleEndian.Uint64(w)); got != want {
						t.Fatalf("word %q: plain8 = %v, want %v", w, got, want)
					}
				}
			}
		}
	}
}

// TestStrLong checks Str on strings longer than a word, with each kind of
// special byte at every position of the first 24 bytes: the value and the
// end position are those of encoding/json's reading, and Str refuses
// what encoding/json refuses and invalid UTF-8.
func TestStrLong(t *testing.T) {
	t.Parallel()
	specials := []string{`"`, `\"`, `\\`, `\/`, `\u00e9`, "\x01", "\x1f", "é", "\xff", "\xc3", `\x`}
	for _, sp := range specials {
		for at := 0; at <= 24; at++ {
			body := string(bytes.Repeat([]byte("QUJD"), 10))
			in := `"` + body[:at] + sp + body[at:] + `"`
			s := Scanner{B: []byte(in + `,1`)}
			got, ok := s.Str()
			var want string
			werr := json.Unmarshal([]byte(in), &want)
			if sp == `"` {
				// The string ends at the inserted quote.
				werr = json.Unmarshal([]byte(`"`+body[:at]+`"`), &want)
				if !ok || string(got) != want || s.I != at+2 {
					t.Fatalf("%q at %d: got %q ok=%v end %d, want %q end %d", sp, at, got, ok, s.I, want, at+2)
				}
				continue
			}
			// encoding/json replaces invalid UTF-8 where Str refuses it.
			if wantOK := werr == nil && utf8.ValidString(in); ok != wantOK {
				t.Fatalf("%q at %d: ok=%v, encoding/json error %v", sp, at, ok, werr)
			}
			if ok && (string(got) != want || s.I != len(in)) {
				t.Fatalf("%q at %d: got %q end %d, want %q end %d", sp, at, got, s.I, want, len(in))
			}
		}
	}
}
