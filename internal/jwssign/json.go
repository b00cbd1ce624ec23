package jwssign

import (
	"strconv"
	"unicode/utf8"
)

// AppendString appends s to dst as a JSON string (RFC 8259 §7): quotation
// mark, reverse solidus and control characters are escaped, and so are
// U+2028 and U+2029 (as encoding/json does, for JavaScript embedders).
// Invalid UTF-8 is replaced by U+FFFD, as encoding/json does, so the
// result always decodes, to s itself whenever s is valid UTF-8. Unlike
// encoding/json's default it does not escape <, > and &, which JSON does
// not require.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if asciiSafe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// asciiSafe marks the ASCII bytes a JSON string holds unescaped.
var asciiSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendMember appends "name": to dst, preceded by a comma unless dst
// ends with '{'. name is written through [AppendString].
func AppendMember(dst []byte, name string) []byte {
	if len(dst) > 0 && dst[len(dst)-1] != '{' {
		dst = append(dst, ',')
	}
	dst = AppendString(dst, name)
	return append(dst, ':')
}

// AppendStringMember appends "name":"value" (see [AppendMember]).
func AppendStringMember(dst []byte, name, value string) []byte {
	return AppendString(AppendMember(dst, name), value)
}

// AppendIntMember appends "name":value (see [AppendMember]).
func AppendIntMember(dst []byte, name string, value int64) []byte {
	return strconv.AppendInt(AppendMember(dst, name), value, 10)
}
