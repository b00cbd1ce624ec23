package mtlsbound

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
)

// DefaultMaxHeaderBytes is the default cap on a forwarded client certificate
// header value: 16 KiB, enough for a 6 KiB certificate in base64 or
// URL-encoded PEM with room to spare (RFC 9440 §3.2).
const DefaultMaxHeaderBytes = 16 << 10

// ParseClientCertHeader parses an RFC 9440 Client-Cert field value: an
// RFC 8941 Byte Sequence (":" standard base64 of the DER ":"). Parsing is
// strict: only the standard base64 alphabet between the colons (no "-" or
// "_", no whitespace or line breaks, no PEM armour), no list members and no
// parameters; missing "=" padding is tolerated (RFC 8941 §4.2.7). Leading and
// trailing spaces and tabs (HTTP field whitespace) are ignored. The DER must
// be exactly one certificate, and it must be an end-entity certificate, not
// a CA. Values longer than DefaultMaxHeaderBytes are refused.
//
// On failure the certificate is nil and the error wraps ErrInvalidHeader; it
// never contains the input.
func ParseClientCertHeader(value string) (*x509.Certificate, error) {
	return parseClientCert(value, DefaultMaxHeaderBytes)
}

func parseClientCert(value string, max int) (*x509.Certificate, error) {
	if len(value) > max {
		return nil, fmtTooLarge()
	}
	der, err := decodeByteSequence(trimOWS(value))
	if err != nil {
		return nil, err
	}
	return parseEndEntity(der)
}

func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}

func decodeByteSequence(v string) ([]byte, error) {
	if len(v) < 2 || v[0] != ':' || v[len(v)-1] != ':' {
		return nil, fmt.Errorf("%w: not an RFC 8941 byte sequence", ErrInvalidHeader)
	}
	b64 := v[1 : len(v)-1]
	pad := 0
	for i := 0; i < len(b64); i++ {
		c := b64[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			if pad > 0 {
				return nil, fmt.Errorf("%w: data after base64 padding", ErrInvalidHeader)
			}
		case c == '=':
			pad++
		default:
			return nil, fmt.Errorf("%w: character outside the base64 alphabet", ErrInvalidHeader)
		}
	}
	if len(b64) == 0 {
		return nil, fmt.Errorf("%w: empty byte sequence", ErrInvalidHeader)
	}
	enc := base64.RawStdEncoding
	if pad > 0 {
		if pad > 2 || len(b64)%4 != 0 {
			return nil, fmt.Errorf("%w: bad base64 padding", ErrInvalidHeader)
		}
		enc = base64.StdEncoding
	}
	// The alphabet was checked above, so the decoder's tolerance of CR and
	// LF is never reached; non-zero pad bits are tolerated per RFC 8941.
	der, err := enc.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: bad base64", ErrInvalidHeader)
	}
	return der, nil
}

func parseEndEntity(der []byte) (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: not a DER certificate", ErrInvalidHeader)
	}
	if isCA(cert) {
		return nil, fmt.Errorf("%w: CA certificate is not a client certificate", ErrInvalidHeader)
	}
	return cert, nil
}

func isCA(c *x509.Certificate) bool {
	return (c.BasicConstraintsValid && c.IsCA) || c.KeyUsage&x509.KeyUsageCertSign != 0
}

// FormatClientCertHeader returns the RFC 9440 Client-Cert field value for
// cert: ":" standard base64 (padded) of cert.Raw ":". It is meant for
// TLS-terminating proxies and tests; clients never send this header
// (CCERT-12). It returns "" for a nil certificate.
func FormatClientCertHeader(cert *x509.Certificate) string {
	if cert == nil || len(cert.Raw) == 0 {
		return ""
	}
	return ":" + base64.StdEncoding.EncodeToString(cert.Raw) + ":"
}

// FormatClientCertChainHeader returns the RFC 9440 Client-Cert-Chain field
// value for the given CA certificates (an RFC 8941 List of Byte Sequences).
// The end-entity certificate must not be included.
func FormatClientCertChainHeader(chain []*x509.Certificate) string {
	parts := make([]string, 0, len(chain))
	for _, c := range chain {
		parts = append(parts, FormatClientCertHeader(c))
	}
	return strings.Join(parts, ", ")
}

// parsePEMCert decodes a URL-encoded PEM certificate, as sent by nginx's
// $ssl_client_escaped_cert and Envoy's XFCC Cert field: exactly one
// CERTIFICATE block and nothing but whitespace around it.
func parsePEMCert(escaped string) (*x509.Certificate, error) {
	raw, err := url.PathUnescape(escaped)
	if err != nil {
		return nil, fmt.Errorf("%w: bad URL escaping", ErrInvalidHeader)
	}
	trimmed := strings.TrimSpace(raw)
	if strings.Count(trimmed, "-----BEGIN") != 1 || !strings.HasPrefix(trimmed, "-----BEGIN CERTIFICATE-----") {
		return nil, fmt.Errorf("%w: not exactly one PEM certificate", ErrInvalidHeader)
	}
	block, rest := pem.Decode([]byte(trimmed))
	if block == nil || block.Type != "CERTIFICATE" || len(block.Headers) != 0 {
		return nil, fmt.Errorf("%w: no PEM certificate", ErrInvalidHeader)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("%w: data after the PEM certificate", ErrInvalidHeader)
	}
	return parseEndEntity(block.Bytes)
}

// parseXFCC extracts the client certificate from an Envoy
// X-Forwarded-Client-Cert value. Exactly one element is accepted (the proxy
// must be configured to sanitize and set the header, not to append to a
// client-supplied one); it must carry Cert, and Hash, when present, must be
// the hex SHA-256 of that certificate's DER. Keys are case-insensitive and
// may not repeat.
func parseXFCC(v string) (*x509.Certificate, error) {
	elems, err := splitXFCC(v)
	if err != nil {
		return nil, err
	}
	if len(elems) != 1 {
		return nil, fmt.Errorf("%w: X-Forwarded-Client-Cert must hold exactly one element", ErrInvalidHeader)
	}
	fields := elems[0]
	certVal, ok := fields["cert"]
	if !ok {
		return nil, fmt.Errorf("%w: X-Forwarded-Client-Cert without Cert", ErrInvalidHeader)
	}
	cert, err := parsePEMCert(certVal)
	if err != nil {
		return nil, err
	}
	if h, ok := fields["hash"]; ok {
		want, err := hex.DecodeString(h)
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("%w: bad Hash in X-Forwarded-Client-Cert", ErrInvalidHeader)
		}
		got := sha256.Sum256(cert.Raw)
		if subtle.ConstantTimeCompare(got[:], want) != 1 {
			return nil, fmt.Errorf("%w: Hash does not match Cert in X-Forwarded-Client-Cert", ErrInvalidHeader)
		}
	}
	return cert, nil
}

// splitXFCC splits an XFCC value into elements (separated by ",") of
// key=value pairs (separated by ";"); values may be double-quoted with
// backslash escapes. Keys are lower-cased.
func splitXFCC(v string) ([]map[string]string, error) {
	var (
		out  []map[string]string
		cur  = map[string]string{}
		i    = 0
		bad  = func(why string) error { return fmt.Errorf("%w: X-Forwarded-Client-Cert %s", ErrInvalidHeader, why) }
		skip = func() {
			for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
				i++
			}
		}
	)
	for {
		skip()
		start := i
		for i < len(v) && v[i] != '=' && v[i] != ';' && v[i] != ',' {
			i++
		}
		if i >= len(v) || v[i] != '=' {
			return nil, bad("pair without '='")
		}
		key := strings.ToLower(strings.TrimSpace(v[start:i]))
		if key == "" || strings.ContainsAny(key, " \t\"") {
			return nil, bad("has a bad key")
		}
		i++ // '='
		var val strings.Builder
		if i < len(v) && v[i] == '"' {
			i++
			closed := false
			for i < len(v) {
				c := v[i]
				if c == '\\' && i+1 < len(v) {
					val.WriteByte(v[i+1])
					i += 2
					continue
				}
				if c == '"' {
					closed = true
					i++
					break
				}
				val.WriteByte(c)
				i++
			}
			if !closed {
				return nil, bad("has an unterminated quote")
			}
			skip()
		} else {
			start := i
			for i < len(v) && v[i] != ';' && v[i] != ',' {
				if v[i] == '"' {
					return nil, bad("has a stray quote")
				}
				i++
			}
			val.WriteString(strings.TrimRight(v[start:i], " \t"))
		}
		if _, dup := cur[key]; dup {
			return nil, bad("repeats a key")
		}
		cur[key] = val.String()
		if i >= len(v) {
			out = append(out, cur)
			return out, nil
		}
		switch v[i] {
		case ';':
			i++
		case ',':
			out = append(out, cur)
			cur = map[string]string{}
			i++
		default:
			return nil, bad("has junk after a value")
		}
	}
}
