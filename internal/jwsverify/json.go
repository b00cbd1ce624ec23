package jwsverify

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// linearMembers is how many member names of one object are checked for
// duplicates by linear search; larger objects switch to a map, so a
// crafted object with thousands of members costs linear time.
const linearMembers = 64

// Scanner is a strict JSON scanner over B, positioned at I. It does not
// build values: callers walk objects with [Scanner.Object] or
// [Scanner.Top], read the members they know with [Scanner.Str] or
// [Scanner.Number], and pass over the rest with [Scanner.Skip], which
// still checks them in full.
//
// Every object is checked for duplicate member names, compared after
// unescaping: byte-equal names set Dup, names equal under Unicode simple
// case folding (bytes.EqualFold, the rule by which encoding/json matches
// a member to a struct field) set FoldDup. Either ends the scan, except
// inside nested objects when DeferNestedDup is set: then NestedDup is set
// and scanning goes on, for callers that must finish other checks before
// refusing. Names of lower-case ASCII letters, digits and punctuation fold
// to themselves, so an object of such names costs one pass over each name
// for the folding rule and nothing more.
//
// A Scanner is a small value used by one goroutine; the zero value (with
// B set) has no depth bound, which callers must not rely on for attacker
// input: set MaxDepth.
type Scanner struct {
	B []byte
	I int

	// MaxDepth bounds the nesting depth of values passed to Skip; a value
	// nested deeper fails. Zero means no bound.
	MaxDepth int
	// MaxMembers bounds the number of members of one object; one more
	// fails. Zero means no bound.
	MaxMembers int
	// DeferNestedDup makes a duplicate name inside a nested object (depth
	// above zero) set NestedDup instead of failing.
	DeferNestedDup bool
	// NoDupCheck turns duplicate detection off, for a value that a later
	// pass parses again strictly.
	NoDupCheck bool
	// CheckFloat makes a number outside the float64 range set BadFloat
	// (scanning goes on).
	CheckFloat bool

	// Dup is set when a duplicate member name ended the scan.
	Dup bool
	// FoldDup is set when two member names that differ but are equal under
	// case folding ended the scan.
	FoldDup bool
	// NestedDup is set when DeferNestedDup let a duplicate (byte-equal or
	// case-folded) pass.
	NestedDup bool
	// BadFloat is set when CheckFloat found a number beyond float64.
	BadFloat bool
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// WS skips JSON whitespace.
func (s *Scanner) WS() {
	for s.I < len(s.B) && isWS(s.B[s.I]) {
		s.I++
	}
}

// Peek returns the byte at I, or 0 at the end of the input.
func (s *Scanner) Peek() byte {
	if s.I >= len(s.B) {
		return 0
	}
	return s.B[s.I]
}

// Str scans a JSON string at I and returns its decoded content. Without
// escapes it is a sub-slice of B; with escapes it is a new slice. It
// rejects control characters, invalid UTF-8 and unpaired surrogate
// escapes.
func (s *Scanner) Str() ([]byte, bool) {
	if s.I >= len(s.B) || s.B[s.I] != '"' {
		return nil, false
	}
	s.I++
	start := s.I
	// Long plain runs (base64 values) go eight bytes at a time; the word
	// holding the closing quote, and anything else, one byte at a time.
	for s.I+8 <= len(s.B) && plain8(binary.LittleEndian.Uint64(s.B[s.I:])) {
		s.I += 8
	}
	for s.I < len(s.B) {
		c := s.B[s.I]
		switch {
		case c == '"':
			v := s.B[start:s.I]
			s.I++
			return v, true
		case c == '\\':
			return s.strSlow(start)
		case c < 0x20:
			return nil, false
		case c < 0x80:
			s.I++
		default:
			r, n := utf8.DecodeRune(s.B[s.I:])
			if r == utf8.RuneError && n <= 1 {
				return nil, false
			}
			s.I += n
		}
	}
	return nil, false
}

// Word-at-a-time tests over eight bytes (bit-twiddling "has a byte less
// than n" and "has a zero byte"): each reports exactly whether some byte
// of the word qualifies.
const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

// plain8 reports whether none of the eight bytes of w (in any order) ends
// or escapes a JSON string or needs the slow path: none is '"', '\\', a
// control character below 0x20 or a byte of 0x80 or more. The bytes it
// passes are exactly the ones Str steps over one at a time.
func plain8(w uint64) bool {
	q := w ^ (lowBits * '"')
	b := w ^ (lowBits * '\\')
	special := w | // a byte ≥ 0x80
		(w-lowBits*0x20)&^w | // a byte < 0x20
		(q-lowBits)&^q | // a '"'
		(b-lowBits)&^b // a '\\'
	return special&highBits == 0
}

// HexVal returns the value of the hexadecimal digit c, or -1.
func HexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func (s *Scanner) hex4() (rune, bool) {
	if s.I+4 > len(s.B) {
		return 0, false
	}
	var r rune
	for k := 0; k < 4; k++ {
		v := HexVal(s.B[s.I+k])
		if v < 0 {
			return 0, false
		}
		r = r<<4 | v
	}
	s.I += 4
	return r, true
}

func (s *Scanner) strSlow(start int) ([]byte, bool) {
	out := append([]byte(nil), s.B[start:s.I]...)
	for s.I < len(s.B) {
		c := s.B[s.I]
		switch {
		case c == '"':
			s.I++
			return out, true
		case c == '\\':
			s.I++
			if s.I >= len(s.B) {
				return nil, false
			}
			e := s.B[s.I]
			s.I++
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := s.hex4()
				if !ok {
					return nil, false
				}
				if r >= 0xD800 && r < 0xDC00 {
					if s.I+2 > len(s.B) || s.B[s.I] != '\\' || s.B[s.I+1] != 'u' {
						return nil, false
					}
					s.I += 2
					r2, ok := s.hex4()
					if !ok || r2 < 0xDC00 || r2 >= 0xE000 {
						return nil, false
					}
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
				} else if r >= 0xDC00 && r < 0xE000 {
					return nil, false
				}
				out = utf8.AppendRune(out, r)
			default:
				return nil, false
			}
		case c < 0x20:
			return nil, false
		case c < 0x80:
			out = append(out, c)
			s.I++
		default:
			r, n := utf8.DecodeRune(s.B[s.I:])
			if r == utf8.RuneError && n <= 1 {
				return nil, false
			}
			out = append(out, s.B[s.I:s.I+n]...)
			s.I += n
		}
	}
	return nil, false
}

// Number scans a JSON number (RFC 8259 §6 grammar) and returns its text.
func (s *Scanner) Number() ([]byte, bool) {
	start := s.I
	b := s.B
	if s.I < len(b) && b[s.I] == '-' {
		s.I++
	}
	if s.I >= len(b) {
		return nil, false
	}
	simple := true // an integer short enough to be exact in a float64
	if b[s.I] == '0' {
		s.I++
	} else if b[s.I] >= '1' && b[s.I] <= '9' {
		for s.I < len(b) && b[s.I] >= '0' && b[s.I] <= '9' {
			s.I++
		}
	} else {
		return nil, false
	}
	if s.I < len(b) && b[s.I] == '.' {
		simple = false
		s.I++
		d := s.I
		for s.I < len(b) && b[s.I] >= '0' && b[s.I] <= '9' {
			s.I++
		}
		if s.I == d {
			return nil, false
		}
	}
	if s.I < len(b) && (b[s.I] == 'e' || b[s.I] == 'E') {
		simple = false
		s.I++
		if s.I < len(b) && (b[s.I] == '+' || b[s.I] == '-') {
			s.I++
		}
		d := s.I
		for s.I < len(b) && b[s.I] >= '0' && b[s.I] <= '9' {
			s.I++
		}
		if s.I == d {
			return nil, false
		}
	}
	v := b[start:s.I]
	if s.CheckFloat && (!simple || len(v) > 16) {
		if _, err := strconv.ParseFloat(string(v), 64); err != nil {
			s.BadFloat = true
		}
	}
	return v, true
}

// Lit consumes the literal w (true, false or null) if it is next.
func (s *Scanner) Lit(w string) bool {
	if len(s.B)-s.I < len(w) || string(s.B[s.I:s.I+len(w)]) != w {
		return false
	}
	s.I += len(w)
	return true
}

// Skip scans any JSON value at nesting depth depth, bounded by MaxDepth.
// Objects inside are checked for duplicate names like any other.
func (s *Scanner) Skip(depth int) bool {
	if s.MaxDepth > 0 && depth > s.MaxDepth || s.I >= len(s.B) {
		return false
	}
	switch c := s.B[s.I]; {
	case c == '"':
		_, ok := s.Str()
		return ok
	case c == '{':
		return s.Object(depth, func(_ []byte) bool { return s.Skip(depth + 1) })
	case c == '[':
		return s.Array(func() bool { return s.Skip(depth + 1) })
	case c == 't':
		return s.Lit("true")
	case c == 'f':
		return s.Lit("false")
	case c == 'n':
		return s.Lit("null")
	default:
		_, ok := s.Number()
		return ok
	}
}

// Array scans an array at I, calling elem with I at the start of each
// element; elem must consume it.
func (s *Scanner) Array(elem func() bool) bool {
	if s.I >= len(s.B) || s.B[s.I] != '[' {
		return false
	}
	s.I++
	s.WS()
	if s.I < len(s.B) && s.B[s.I] == ']' {
		s.I++
		return true
	}
	for {
		s.WS()
		if !elem() {
			return false
		}
		s.WS()
		if s.I >= len(s.B) {
			return false
		}
		if s.B[s.I] == ']' {
			s.I++
			return true
		}
		if s.B[s.I] != ',' {
			return false
		}
		s.I++
	}
}

// Object scans an object at I, calling member for each name with I at
// the start of the value; member must consume the value. depth is the
// object's own nesting depth (0 for a document's top-level object); it
// decides whether DeferNestedDup applies. Duplicate names and more than
// MaxMembers members are refused.
func (s *Scanner) Object(depth int, member func(name []byte) bool) bool {
	if s.I >= len(s.B) || s.B[s.I] != '{' {
		return false
	}
	s.I++
	var seenArr [16][]byte
	seen := seenArr[:0]
	var seenMap map[string][]byte // FoldKey → name
	folding := false              // a name so far does not fold to itself
	n := 0
	s.WS()
	if s.I < len(s.B) && s.B[s.I] == '}' {
		s.I++
		return true
	}
	for {
		s.WS()
		name, ok := s.Str()
		if !ok {
			return false
		}
		if !s.NoDupCheck {
			dup, fold := false, false
			plain := foldsToItself(name)
			if seenMap != nil {
				var prev []byte
				if plain {
					prev, fold = seenMap[string(name)]
				} else {
					prev, fold = seenMap[FoldKey(name)]
				}
				dup = fold && string(prev) == string(name)
			} else {
				folding = folding || !plain
				for _, x := range seen {
					if string(x) == string(name) {
						dup = true
						break
					}
					if folding && !fold {
						fold = bytes.EqualFold(x, name)
					}
				}
			}
			if dup || fold {
				if depth == 0 || !s.DeferNestedDup {
					s.Dup, s.FoldDup = dup, !dup
					return false
				}
				s.NestedDup = true
			}
		}
		if s.MaxMembers > 0 && n >= s.MaxMembers {
			return false
		}
		n++
		if !s.NoDupCheck {
			switch {
			case seenMap != nil:
				seenMap[FoldKey(name)] = name
			case len(seen) < linearMembers:
				seen = append(seen, name)
			default:
				seenMap = make(map[string][]byte, 2*linearMembers)
				for _, x := range seen {
					seenMap[FoldKey(x)] = x
				}
				seenMap[FoldKey(name)] = name
			}
		}
		s.WS()
		if s.I >= len(s.B) || s.B[s.I] != ':' {
			return false
		}
		s.I++
		s.WS()
		if !member(name) {
			return false
		}
		s.WS()
		if s.I >= len(s.B) {
			return false
		}
		if s.B[s.I] == '}' {
			s.I++
			return true
		}
		if s.B[s.I] != ',' {
			return false
		}
		s.I++
	}
}

// Top scans a whole document that must be exactly one object, with
// optional whitespace around it.
func (s *Scanner) Top(member func(name []byte) bool) bool {
	s.WS()
	if !s.Object(0, member) {
		return false
	}
	s.WS()
	return s.I == len(s.B)
}

// foldsToItselfTable marks ASCII bytes other than the upper-case letters.
var foldsToItselfTable = func() (t [256]bool) {
	for c := 0; c < 0x80; c++ {
		t[c] = !(c >= 'A' && c <= 'Z')
	}
	return t
}()

// foldsToItself reports whether name is ASCII without upper-case letters.
// Two such names are equal under case folding only when they are equal
// byte for byte (the Kelvin sign and the long s, which fold to k and s,
// are not ASCII), and such a name is its own FoldKey.
func foldsToItself(name []byte) bool {
	for _, c := range name {
		if !foldsToItselfTable[c] {
			return false
		}
	}
	return true
}

// FoldKey returns a key such that FoldKey(a) == FoldKey(b) exactly when
// bytes.EqualFold(a, b), for valid UTF-8 a and b: each rune becomes the
// smallest rune of its simple case-folding orbit, lower-cased when that is
// an ASCII letter. Names that fold only to themselves are their own key.
func FoldKey(name []byte) string {
	out := make([]byte, 0, len(name))
	for i := 0; i < len(name); {
		if c := name[i]; c < utf8.RuneSelf {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(name[i:])
		f := r
		for {
			g := unicode.SimpleFold(f)
			if g <= f {
				f = g
				break
			}
			f = g
		}
		if f >= 'A' && f <= 'Z' {
			f += 'a' - 'A'
		}
		out = utf8.AppendRune(out, f)
		i += n
	}
	return string(out)
}
