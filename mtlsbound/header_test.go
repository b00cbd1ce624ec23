package mtlsbound

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestParseClientCertHeader(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	inner := kat12Header[1 : len(kat12Header)-1]
	caHeader := FormatClientCertHeader(f.ca1.Cert)
	pemArmour := string(pem.EncodeToMemory(&pemBlock{Type: "CERTIFICATE", Bytes: f.c1.Cert.Raw}))
	bigHeader := FormatClientCertHeader(f.big.Cert)
	if len(f.big.Cert.Raw) < 6<<10-512 {
		t.Fatalf("big fixture only %d bytes", len(f.big.Cert.Raw))
	}
	tests := []struct {
		name    string
		value   string
		wantX5t string
		wantErr error
	}{
		{"CCERT-03/KAT-12", kat12Header, kat12X5t, nil},
		{"CCERT-04/unpadded accepted", ":" + strings.TrimRight(inner, "=") + ":", kat12X5t, nil},
		{"surrounding whitespace", " \t" + kat12Header + " ", kat12X5t, nil},
		{"CCERT-13/6 KiB certificate fits", bigHeader, Thumbprint(f.big.Cert), nil},
		{"round trip", FormatClientCertHeader(f.c1.Cert), Thumbprint(f.c1.Cert), nil},
		{"CCERT-04/base64url alphabet", ":" + strings.NewReplacer("+", "-", "/", "_").Replace(inner) + ":", "", ErrInvalidHeader},
		{"CCERT-04/embedded LF", ":" + inner[:64] + "\n" + inner[64:] + ":", "", ErrInvalidHeader},
		{"CCERT-04/embedded CR LF", ":" + inner[:64] + "\r\n" + inner[64:] + ":", "", ErrInvalidHeader},
		{"CCERT-04/embedded space", ":" + inner[:64] + " " + inner[64:] + ":", "", ErrInvalidHeader},
		{"CCERT-04/PEM armour", pemArmour, "", ErrInvalidHeader},
		{"CCERT-04/PEM inside colons", ":" + pemArmour + ":", "", ErrInvalidHeader},
		{"CCERT-04/bare base64", inner, "", ErrInvalidHeader},
		{"CCERT-05/list", kat12Header + ", " + kat12Header, "", ErrInvalidHeader},
		{"CCERT-05/list no space", kat12Header + "," + kat12Header, "", ErrInvalidHeader},
		{"parameters", kat12Header + ";a=1", "", ErrInvalidHeader},
		{"missing closing colon", kat12Header[:len(kat12Header)-1], "", ErrInvalidHeader},
		{"missing opening colon", kat12Header[1:], "", ErrInvalidHeader},
		{"one colon", ":", "", ErrInvalidHeader},
		{"empty byte sequence", "::", "", ErrInvalidHeader},
		{"empty value", "", "", ErrInvalidHeader},
		{"padding in the middle", ":" + inner[:8] + "=" + inner[8:] + ":", "", ErrInvalidHeader},
		{"too much padding", ":" + inner + "==:", "", ErrInvalidHeader},
		{"padding with bad length", ":" + inner[:len(inner)-3] + "=:", "", ErrInvalidHeader},
		{"ADV-89/not DER", ":" + base64.StdEncoding.EncodeToString([]byte("not a certificate")) + ":", "", ErrInvalidHeader},
		{"ADV-89/DER with trailing bytes", ":" + base64.StdEncoding.EncodeToString(append(append([]byte{}, f.c1.Cert.Raw...), 0)) + ":", "", ErrInvalidHeader},
		{"ADV-89/CA certificate", caHeader, "", ErrInvalidHeader},
		{"CCERT-13/128 KiB", ":" + strings.Repeat("A", 128<<10) + ":", "", ErrHeaderTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseClientCertHeader(tt.value)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrInvalidHeader) || c != nil {
					t.Fatalf("got cert=%v err=%v, want %v", c != nil, err, tt.wantErr)
				}
				if len(tt.value) > 8 && strings.Contains(err.Error(), tt.value[1:9]) {
					t.Fatal("error echoes the header value")
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if got := Thumbprint(c); got != tt.wantX5t {
				t.Fatalf("thumbprint %s, want %s", got, tt.wantX5t)
			}
		})
	}
}

func TestFormatClientCertHeader(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	if FormatClientCertHeader(nil) != "" {
		t.Fatal("nil certificate must format as empty")
	}
	c := kat12Cert(t)
	if got := FormatClientCertHeader(c); got != kat12Header {
		t.Fatalf("KAT-12 format = %s", got)
	}
	chain := FormatClientCertChainHeader(f.c1.Chain)
	if chain != FormatClientCertHeader(f.ca1.Cert) {
		t.Fatalf("chain header = %q", chain)
	}
}

func escapedPEM(der []byte) string {
	return url.PathEscape(string(pem.EncodeToMemory(&pemBlock{Type: "CERTIFICATE", Bytes: der})))
}

func TestParseEscapedPEM(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	good := escapedPEM(f.c1.Cert.Raw)
	two := url.PathEscape(string(pem.EncodeToMemory(&pemBlock{Type: "CERTIFICATE", Bytes: f.c1.Cert.Raw})) + string(pem.EncodeToMemory(&pemBlock{Type: "CERTIFICATE", Bytes: f.c2.Cert.Raw})))
	tests := []struct {
		name    string
		value   string
		wantErr bool
	}{
		{"good", good, false},
		{"bad escape", good + "%zz", true},
		{"two certificates", two, true},
		{"leading junk", url.PathEscape("junk\n") + good, true},
		{"trailing junk", good + url.PathEscape("junk"), true},
		{"key block", url.PathEscape(string(pem.EncodeToMemory(&pemBlock{Type: "PRIVATE KEY", Bytes: []byte{1}}))), true},
		{"CA certificate", escapedPEM(f.ca1.Cert.Raw), true},
		{"garbage DER", escapedPEM([]byte("nope")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parsePEMCert(tt.value)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidHeader) || c != nil {
					t.Fatalf("accepted: %v", err)
				}
				return
			}
			if err != nil || !c.Equal(f.c1.Cert) {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

func TestParseXFCC(t *testing.T) {
	t.Parallel()
	f := fixtures(t)
	sum := sha256.Sum256(f.c1.Cert.Raw)
	h := hex.EncodeToString(sum[:])
	other := sha256.Sum256(f.c2.Cert.Raw)
	cert := escapedPEM(f.c1.Cert.Raw)
	tests := []struct {
		name    string
		value   string
		wantErr bool
	}{
		{"cert and hash", `By=spiffe://proxy;Hash=` + h + `;Cert="` + cert + `";Subject="CN=client1,O=Example Corp";URI=`, false},
		{"cert only, unquoted", `Cert=` + cert, false},
		{"keys case-insensitive", `hash=` + h + `;CERT="` + cert + `"`, false},
		{"quoted subject with escapes and separators", `Subject="CN=a\"b,;c";Cert="` + cert + `"`, false},
		{"hash only", `Hash=` + h, true},
		{"hash mismatch", `Hash=` + hex.EncodeToString(other[:]) + `;Cert="` + cert + `"`, true},
		{"bad hash", `Hash=zz;Cert="` + cert + `"`, true},
		{"two elements (appended by client)", `Cert="` + escapedPEM(f.c2.Cert.Raw) + `",Cert="` + cert + `"`, true},
		{"repeated key", `Cert="` + cert + `";Cert="` + cert + `"`, true},
		{"unterminated quote", `Cert="` + cert, true},
		{"stray quote", `Cert=a"b`, true},
		{"pair without =", `Cert`, true},
		{"junk after quoted value", `Cert="` + cert + `"x`, true},
		{"empty", ``, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseXFCC(tt.value)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidHeader) || c != nil {
					t.Fatalf("accepted: %v", err)
				}
				return
			}
			if err != nil || !c.Equal(f.c1.Cert) {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}
