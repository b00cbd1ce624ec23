package jwssign

import "errors"

var errECDSASig = errors.New("jwssign: signer returned a malformed ECDSA signature")

// DERToRawECDSA converts a DER ECDSA-Sig-Value (SEQUENCE of two positive
// INTEGERs, as crypto.Signer returns) to the JOSE form r||s, each
// left-padded to size bytes (RFC 7518 §3.4). It accepts only minimal DER
// and returns nil with an error for anything else.
func DERToRawECDSA(der []byte, size int) ([]byte, error) {
	out, err := appendRawECDSA(make([]byte, 0, 2*size), der, size)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// appendRawECDSA appends the JOSE form of der to dst; on error it returns
// dst unchanged.
func appendRawECDSA(dst, der []byte, size int) ([]byte, error) {
	if size <= 0 || len(der) < 2 || der[0] != 0x30 {
		return dst, errECDSASig
	}
	n, body := int(der[1]), der[2:]
	if der[1] == 0x81 && len(der) > 2 && der[2] >= 0x80 {
		n, body = int(der[2]), der[3:]
	} else if der[1] >= 0x80 {
		return dst, errECDSASig
	}
	if n != len(body) {
		return dst, errECDSASig
	}
	start := len(dst)
	dst = append(dst, make([]byte, 2*size)...) // zeroed, grown in place
	out := dst[start:]
	for i := range 2 {
		if len(body) < 2 || body[0] != 0x02 || body[1] >= 0x80 || int(body[1]) > len(body)-2 || body[1] == 0 {
			return dst[:start], errECDSASig
		}
		v := body[2 : 2+int(body[1])]
		body = body[2+int(body[1]):]
		if v[0]&0x80 != 0 || len(v) > 1 && v[0] == 0 && v[1]&0x80 == 0 {
			return dst[:start], errECDSASig // negative or not minimal
		}
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) == 0 || len(v) > size {
			return dst[:start], errECDSASig // zero or too large
		}
		copy(out[(i+1)*size-len(v):(i+1)*size], v)
	}
	if len(body) != 0 {
		return dst[:start], errECDSASig
	}
	return dst, nil
}
