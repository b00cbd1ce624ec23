package mtlsbound

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxDNLength caps the length of a distinguished name string accepted by
// ParseDistinguishedName.
const MaxDNLength = 4096

// attributeNames maps the attribute type names accepted in DN strings
// (compared case-insensitively) to their OIDs: those of RFC 4514 §3 plus the
// other X.520 and PKCS #9 names commonly found in certificate subjects.
var attributeNames = map[string]string{
	"cn":                     "2.5.4.3",
	"commonname":             "2.5.4.3",
	"sn":                     "2.5.4.4",
	"surname":                "2.5.4.4",
	"serialnumber":           "2.5.4.5",
	"c":                      "2.5.4.6",
	"countryname":            "2.5.4.6",
	"l":                      "2.5.4.7",
	"localityname":           "2.5.4.7",
	"st":                     "2.5.4.8",
	"s":                      "2.5.4.8",
	"stateorprovincename":    "2.5.4.8",
	"street":                 "2.5.4.9",
	"streetaddress":          "2.5.4.9",
	"o":                      "2.5.4.10",
	"organizationname":       "2.5.4.10",
	"ou":                     "2.5.4.11",
	"organizationalunitname": "2.5.4.11",
	"title":                  "2.5.4.12",
	"postalcode":             "2.5.4.17",
	"gn":                     "2.5.4.42",
	"givenname":              "2.5.4.42",
	"initials":               "2.5.4.43",
	"generationqualifier":    "2.5.4.44",
	"dnqualifier":            "2.5.4.46",
	"pseudonym":              "2.5.4.65",
	"organizationidentifier": "2.5.4.97",
	"dc":                     "0.9.2342.19200300.100.1.25",
	"domaincomponent":        "0.9.2342.19200300.100.1.25",
	"uid":                    "0.9.2342.19200300.100.1.1",
	"userid":                 "0.9.2342.19200300.100.1.1",
	"emailaddress":           "1.2.840.113549.1.9.1",
	"email":                  "1.2.840.113549.1.9.1",
	"e":                      "1.2.840.113549.1.9.1",
}

// shortNames gives the name String uses for an OID.
var shortNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "SERIALNUMBER", "2.5.4.6": "C",
	"2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "STREET", "2.5.4.10": "O",
	"2.5.4.11": "OU", "2.5.4.12": "TITLE", "2.5.4.17": "POSTALCODE", "2.5.4.42": "GN",
	"2.5.4.43": "INITIALS", "2.5.4.44": "GENERATIONQUALIFIER", "2.5.4.46": "DNQUALIFIER",
	"2.5.4.65": "PSEUDONYM", "2.5.4.97": "ORGANIZATIONIDENTIFIER",
	"0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
	"1.2.840.113549.1.9.1": "EMAILADDRESS",
}

// ava is one attribute type and value. A string value holds its prepared
// form (norm); a value given in "#hex" form that is not a string holds its
// DER encoding (der). A certificate's string value that cannot be prepared
// (it holds a prohibited character) is kept as uncomparable and equals
// nothing.
type ava struct {
	oid          string
	norm         string
	der          []byte
	uncomparable bool
}

// DistinguishedName is a parsed RFC 4514 distinguished name, as registered
// in tls_client_auth_subject_dn. Its RDNs are stored in certificate order
// (the reverse of the string order). A DistinguishedName is immutable and
// safe for concurrent use.
type DistinguishedName struct {
	rdns [][]ava
}

// ParseDistinguishedName parses an RFC 4514 string such as
// "CN=client1,O=Example Corp". Attribute types are names (case-insensitive,
// see the list in the package source) or dotted OIDs (optionally prefixed
// "OID."); values may use backslash escapes and "#hex" BER form. For
// predictability with hand-written registrations, unescaped whitespace
// around "=", "," and "+" is ignored. The empty string, unescaped '"', ';',
// '<', '>' and inputs longer than MaxDNLength are refused.
//
// String values, registered and in certificates, are compared after the
// RFC 4518 caseIgnoreMatch preparation, restricted so that a character
// outside ASCII never matches an ASCII one:
//
//   - ASCII letters match without regard to case. ASCII TAB, LF, VT, FF and
//     CR count as SPACE (U+0020); SPACE at either end of a value is ignored
//     and a run of it inside counts as one.
//   - A character outside ASCII folds to its simple lower case only when
//     that is outside ASCII too ("É" matches "é"), so U+017F LATIN SMALL
//     LETTER LONG S, U+212A KELVIN SIGN, U+0130 and U+0131 match only
//     themselves, never "s", "k" or "i".
//   - Other spaces (U+00A0 NO-BREAK SPACE, U+2003 EM SPACE, U+3000, line
//     and paragraph separators) are ordinary characters: never trimmed,
//     collapsed or taken for SPACE.
//   - No Unicode normalization: fullwidth and other compatibility forms,
//     ligatures and precomposed characters differ from their decompositions
//     ("ｓ" is not "s", "é" is not "e" followed by U+0301), and full case
//     folding is not applied ("ß" is not "ss").
//   - A value holding a character that RFC 4518 §2.2 maps to nothing or
//     §2.4 prohibits (a control other than the ASCII spaces above, a format
//     character such as U+200B ZERO WIDTH SPACE, U+00AD SOFT HYPHEN or
//     U+FEFF, U+034F, a variation selector, U+FFFC, U+FFFD, a private-use,
//     noncharacter or unassigned code point) is refused here, and a
//     certificate value holding one matches nothing.
func ParseDistinguishedName(s string) (DistinguishedName, error) {
	if len(s) > MaxDNLength {
		return DistinguishedName{}, errors.New("mtlsbound: distinguished name too long")
	}
	if !utf8.ValidString(s) {
		return DistinguishedName{}, errors.New("mtlsbound: distinguished name is not UTF-8")
	}
	p := dnParser{s: s}
	var rdns [][]ava
	for {
		rdn, err := p.rdn()
		if err != nil {
			return DistinguishedName{}, err
		}
		rdns = append(rdns, rdn)
		if p.i >= len(p.s) {
			break
		}
		p.i++ // ','
	}
	// Reverse: the string lists the most specific RDN first.
	for i, j := 0, len(rdns)-1; i < j; i, j = i+1, j-1 {
		rdns[i], rdns[j] = rdns[j], rdns[i]
	}
	return DistinguishedName{rdns: rdns}, nil
}

type dnParser struct {
	s string
	i int
}

func (p *dnParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *dnParser) rdn() ([]ava, error) {
	var out []ava
	for {
		a, err := p.ava()
		if err != nil {
			return nil, err
		}
		for _, b := range out {
			if b.oid == a.oid && b.norm == a.norm && string(b.der) == string(a.der) {
				return nil, errors.New("mtlsbound: distinguished name repeats a value in one RDN")
			}
		}
		out = append(out, a)
		if p.i < len(p.s) && p.s[p.i] == '+' {
			p.i++
			continue
		}
		return out, nil
	}
}

func (p *dnParser) ava() (ava, error) {
	p.skipSpace()
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != '=' && p.s[p.i] != ',' && p.s[p.i] != '+' {
		p.i++
	}
	if p.i >= len(p.s) || p.s[p.i] != '=' {
		return ava{}, errors.New("mtlsbound: distinguished name attribute without '='")
	}
	oid, err := attributeOID(strings.TrimRight(p.s[start:p.i], " \t"))
	if err != nil {
		return ava{}, err
	}
	p.i++ // '='
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == '#' {
		return p.hexValue(oid)
	}
	var b []byte
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case ',', '+':
			return p.stringValue(oid, b)
		case '\\':
			if p.i+1 >= len(p.s) {
				return ava{}, errors.New("mtlsbound: distinguished name ends in '\\'")
			}
			n := p.s[p.i+1]
			if strings.IndexByte("\"+,;<>\\ #=", n) >= 0 {
				b = append(b, n)
				p.i += 2
				continue
			}
			if p.i+2 < len(p.s) && isHex(n) && isHex(p.s[p.i+2]) {
				v, _ := strconv.ParseUint(p.s[p.i+1:p.i+3], 16, 8)
				b = append(b, byte(v))
				p.i += 3
				continue
			}
			return ava{}, errors.New("mtlsbound: distinguished name has a bad escape")
		case '"', ';', '<', '>', 0:
			return ava{}, errors.New("mtlsbound: distinguished name has an unescaped special character")
		default:
			b = append(b, c)
			p.i++
		}
	}
	return p.stringValue(oid, b)
}

func (p *dnParser) stringValue(oid string, b []byte) (ava, error) {
	if !utf8.Valid(b) {
		return ava{}, errors.New("mtlsbound: distinguished name value is not UTF-8")
	}
	norm, ok := prepareValue(string(b))
	if !ok {
		return ava{}, errUncomparable
	}
	if norm == "" {
		return ava{}, errors.New("mtlsbound: distinguished name has an empty value")
	}
	return ava{oid: oid, norm: norm}, nil
}

var errUncomparable = errors.New("mtlsbound: distinguished name value holds a control, format, private-use or unassigned character")

func (p *dnParser) hexValue(oid string) (ava, error) {
	p.i++ // '#'
	start := p.i
	for p.i < len(p.s) && isHex(p.s[p.i]) {
		p.i++
	}
	h := p.s[start:p.i]
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] != ',' && p.s[p.i] != '+' {
		return ava{}, errors.New("mtlsbound: distinguished name has junk after a hex value")
	}
	der, err := hex.DecodeString(h)
	if err != nil || len(der) == 0 {
		return ava{}, errors.New("mtlsbound: distinguished name has a bad hex value")
	}
	var rv asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &rv); err != nil || len(rest) != 0 {
		return ava{}, errors.New("mtlsbound: distinguished name hex value is not one BER element")
	}
	a := valueAVA(oid, rv)
	if a.uncomparable {
		return ava{}, errUncomparable
	}
	if a.der == nil && a.norm == "" {
		// An empty string is refused however it is written, so that the
		// canonical form ("C=") of what was accepted parses again.
		return ava{}, errors.New("mtlsbound: distinguished name has an empty value")
	}
	return a, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func attributeOID(t string) (string, error) {
	if t == "" {
		return "", errors.New("mtlsbound: distinguished name has an empty attribute type")
	}
	lt := strings.ToLower(t)
	if oid, ok := attributeNames[lt]; ok {
		return oid, nil
	}
	lt = strings.TrimPrefix(lt, "oid.")
	parts := strings.Split(lt, ".")
	if len(parts) < 2 {
		return "", errors.New("mtlsbound: distinguished name has an unknown attribute type")
	}
	for _, part := range parts {
		if part == "" || len(part) > 9 || (len(part) > 1 && part[0] == '0') {
			return "", errors.New("mtlsbound: distinguished name has a bad OID")
		}
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return "", errors.New("mtlsbound: distinguished name has a bad OID")
			}
		}
	}
	return lt, nil
}

// prepareValue prepares a string value for comparison by the rule stated at
// ParseDistinguishedName. ok is false when v holds a prohibited character.
func prepareValue(v string) (norm string, ok bool) {
	var sb strings.Builder
	sb.Grow(len(v))
	space := false // a run of SPACE is pending after a written character
	for _, r := range v {
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r':
			space = sb.Len() > 0
			continue
		case r < utf8.RuneSelf:
			if r < 0x20 || r == 0x7f {
				return "", false
			}
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
		default:
			if !comparableRune(r) {
				return "", false
			}
			// Simple case folding within non-ASCII only: U+017F, U+212A,
			// U+0130 and U+0131 would otherwise fold onto ASCII letters.
			if f := unicode.ToLower(unicode.ToUpper(r)); f >= utf8.RuneSelf {
				r = f
			}
		}
		if space {
			sb.WriteByte(' ')
			space = false
		}
		sb.WriteRune(r)
	}
	return sb.String(), true
}

// comparableRune reports whether r, outside ASCII, may appear in a compared
// value: it is assigned, not a control, format, private-use or surrogate
// code point, and not one that RFC 4518 maps to nothing or prohibits.
func comparableRune(r rune) bool {
	switch {
	case r == 0x034f, // COMBINING GRAPHEME JOINER
		r == 0x1806,                  // U+1806, a Mongolian soft hyphen
		r >= 0x180b && r <= 0x180f,   // Mongolian free variation selectors
		r >= 0xfe00 && r <= 0xfe0f,   // variation selectors
		r >= 0xe0100 && r <= 0xe01ef, // variation selectors supplement
		r == 0xfffc,                  // OBJECT REPLACEMENT CHARACTER
		r == utf8.RuneError,          // REPLACEMENT CHARACTER
		r >= 0xfdd0 && r <= 0xfdef,   // noncharacters
		r&0xfffe == 0xfffe:           // noncharacters at each plane's end
		return false
	}
	// Letters, marks, numbers, punctuation, symbols and separators: every
	// assigned code point except the categories C (Cc, Cf, Co, Cs).
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z)
}

// valueAVA builds an ava from a DER attribute value: string types are
// decoded and prepared (uncomparable when preparation refuses them),
// anything else is kept as DER.
func valueAVA(oid string, rv asn1.RawValue) ava {
	if rv.Class == asn1.ClassUniversal {
		switch rv.Tag {
		case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String,
			asn1.TagT61String, asn1.TagBMPString, asn1.TagNumericString:
			var s string
			if rest, err := asn1.Unmarshal(rv.FullBytes, &s); err == nil && len(rest) == 0 && utf8.ValidString(s) {
				norm, ok := prepareValue(s)
				return ava{oid: oid, norm: norm, uncomparable: !ok}
			}
		}
	}
	return ava{oid: oid, der: append([]byte(nil), rv.FullBytes...)}
}

func (a ava) equal(b ava) bool {
	if a.oid != b.oid || a.uncomparable || b.uncomparable {
		return false
	}
	if a.der != nil || b.der != nil {
		return a.der != nil && b.der != nil && string(a.der) == string(b.der)
	}
	return a.norm == b.norm
}

type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rawRDNSET is decoded as an ASN.1 SET (encoding/asn1 keys on the "SET"
// suffix of the type name).
type rawRDNSET []rawATV

// parseRawName parses a DER Name (RDNSequence).
func parseRawName(der []byte) ([][]ava, error) {
	var seq []rawRDNSET
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil || len(rest) != 0 {
		return nil, errors.New("mtlsbound: bad certificate name")
	}
	out := make([][]ava, 0, len(seq))
	for _, set := range seq {
		if len(set) == 0 {
			return nil, errors.New("mtlsbound: empty RDN in certificate name")
		}
		rdn := make([]ava, 0, len(set))
		for _, atv := range set {
			rdn = append(rdn, valueAVA(atv.Type.String(), atv.Value))
		}
		out = append(out, rdn)
	}
	return out, nil
}

// Match reports whether cert's subject equals d: the same number of RDNs in
// the same order, each RDN holding the same set of attribute types and
// values (string values compared by the rule stated at
// ParseDistinguishedName).
// The zero DistinguishedName matches nothing.
func (d DistinguishedName) Match(cert *x509.Certificate) bool {
	if cert == nil || len(d.rdns) == 0 {
		return false
	}
	return d.matchRaw(cert.RawSubject)
}

// matchRaw is Match for a DER-encoded Name.
func (d DistinguishedName) matchRaw(der []byte) bool {
	if len(d.rdns) == 0 {
		return false
	}
	got, err := parseRawName(der)
	if err != nil || len(got) != len(d.rdns) {
		return false
	}
	for i := range got {
		if !rdnEqual(d.rdns[i], got[i]) {
			return false
		}
	}
	return true
}

func rdnEqual(want, got []ava) bool {
	if len(want) != len(got) {
		return false
	}
	used := make([]bool, len(got))
outer:
	for _, w := range want {
		for j, g := range got {
			if !used[j] && w.equal(g) {
				used[j] = true
				continue outer
			}
		}
		return false
	}
	return true
}

// String returns the canonical form of d: RFC 4514 order, upper-case short
// attribute names (dotted OIDs for others), prepared values (see
// ParseDistinguishedName; ASCII letters in lower case) with special
// characters escaped, non-string values in "#hex" form. It round-trips
// through ParseDistinguishedName.
func (d DistinguishedName) String() string {
	var sb strings.Builder
	for i := len(d.rdns) - 1; i >= 0; i-- {
		if i != len(d.rdns)-1 {
			sb.WriteByte(',')
		}
		for j, a := range d.rdns[i] {
			if j > 0 {
				sb.WriteByte('+')
			}
			if n, ok := shortNames[a.oid]; ok {
				sb.WriteString(n)
			} else {
				sb.WriteString(a.oid)
			}
			sb.WriteByte('=')
			if a.der != nil {
				sb.WriteByte('#')
				sb.WriteString(hex.EncodeToString(a.der))
				continue
			}
			for k := 0; k < len(a.norm); k++ {
				c := a.norm[k]
				switch {
				case strings.IndexByte("\"+,;<>\\=", c) >= 0 || (k == 0 && c == '#'):
					sb.WriteByte('\\')
					sb.WriteByte(c)
				default:
					sb.WriteByte(c)
				}
			}
		}
	}
	return sb.String()
}

// Equal reports whether d and e have the same canonical form.
func (d DistinguishedName) Equal(e DistinguishedName) bool {
	if len(d.rdns) != len(e.rdns) {
		return false
	}
	for i := range d.rdns {
		if !rdnEqual(d.rdns[i], e.rdns[i]) {
			return false
		}
	}
	return true
}
