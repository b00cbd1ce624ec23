package fallback

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/senderbound/senderbound/dpop"
)

// FuzzParseScopes: no panic, nil scopes on error, and an accepted value
// is the one encoding of its scopes (MarshalScopes gives it back).
func FuzzParseScopes(f *testing.F) {
	for _, s := range [][]string{{}, {"read"}, {"read", "write", "admin:all"}, {"!", "~"}} {
		der, err := MarshalScopes(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x81, 0x06, 0x0c, 0x04, 'r', 'e', 'a', 'd'})
	f.Add([]byte{0x30, 0x80, 0x0c, 0x01, 'a', 0, 0})
	f.Fuzz(func(t *testing.T, der []byte) {
		scopes, err := ParseScopes(der)
		if err != nil {
			if scopes != nil || !errors.Is(err, ErrScopesMalformed) {
				t.Fatalf("error %v with scopes %q", err, scopes)
			}
			return
		}
		again, err := MarshalScopes(scopes)
		if err != nil || !slices.Equal(again, der) {
			t.Fatalf("accepted value does not round-trip: %v", err)
		}
	})
}

// FuzzParseCSR: no panic; a CSR is accepted only with a key the policy
// allows and a valid signature; refusals are ErrInvalidCSR or
// ErrKeyNotAccepted.
func FuzzParseCSR(f *testing.F) {
	k := keys(f)
	for _, name := range []string{"P256", "P384", "Ed25519", "RSA2048", "RSA1024"} {
		der := csrFor(f, k[name])
		f.Add(der)
		f.Add(corrupt(der))
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		csr, err := ParseCSR(der, 0)
		if err != nil {
			if csr != nil || !(errors.Is(err, ErrInvalidCSR) || errors.Is(err, ErrKeyNotAccepted)) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if CheckKey(csr.PublicKey) != nil || csr.CheckSignature() != nil {
			t.Fatal("accepted a CSR with a refused key or a bad signature")
		}
	})
}

// FuzzClientIDFromURI: no panic, and an accepted URI is the one that
// ClientURI writes for its client_id.
func FuzzClientIDFromURI(f *testing.F) {
	for _, s := range []string{"urn:senderbound:client:c1", "urn:senderbound:client:svc%2Fa%20b", "urn:senderbound:client:%61", "urn:senderbound:client:%C3%A9", "urn:senderbound:client:%2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		id, ok := ClientIDFromURI(DefaultClientURIPrefix, uri)
		if !ok {
			return
		}
		if ClientURI(DefaultClientURIPrefix, id) != uri {
			t.Fatalf("%q accepted as %q, which writes another URI", uri, id)
		}
	})
}

// FuzzVerifyChainDER feeds a certificate (as from x5c or a forwarded
// header) to the verifier as the leaf, with the fallback CA after it: no
// panic, an *Error on refusal, and an identity only for a certificate the
// CA signed.
func FuzzVerifyChainDER(f *testing.F) {
	w := newWorld(f, "P256")
	good := w.issue(f, keys(f)["P256b"], "c1")[0]
	f.Add(good.Raw)
	f.Add(w.root.Cert.Raw)
	f.Add(corrupt(good.Raw))
	f.Fuzz(func(t *testing.T, der []byte) {
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		id, err := w.v.VerifyChain(context.Background(), []*x509.Certificate{leaf, w.root.Cert})
		if err != nil {
			var e *Error
			if id != nil || !errors.As(err, &e) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if leaf.CheckSignatureFrom(w.root.Cert) != nil || id.ClientID == "" {
			t.Fatal("identity for a certificate the CA did not sign")
		}
	})
}

// FuzzParseRevocationList: no panic, and a list only for a CRL the CA
// signed.
func FuzzParseRevocationList(f *testing.F) {
	w := newWorld(f, "P256")
	der, err := w.ca.CRL(context.Background(), testNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(der)
	f.Add(der[:len(der)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseRevocationList(b, w.root.Cert)
		if err != nil {
			if l != nil || !errors.Is(err, ErrInvalidCRL) {
				t.Fatalf("error %v", err)
			}
			return
		}
		crl, err := x509.ParseRevocationList(b)
		if err != nil || crl.CheckSignatureFrom(w.root.Cert) != nil {
			t.Fatal("accepted a CRL the CA did not sign")
		}
	})
}

// FuzzParseChainResponse: the certificate endpoint's answer as the client
// reads it. No panic; nil chain with an error; an accepted chain holds 1
// to dpop.MaxX5C certificates whose PEM encoding parses back to the same
// chain; and errorCode returns only a short token of [A-Za-z0-9_].
func FuzzParseChainResponse(f *testing.F) {
	w := newWorld(f, "P256")
	chain := w.issue(f, key(f, "P256b"), "svc")
	var good []byte
	for _, c := range chain {
		good = append(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	f.Add(good)
	f.Add(append([]byte("preamble\n"), good...))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x01}}))
	f.Add(bytes.Repeat(good[:len(good)/2], 3))
	f.Add([]byte(`{"error":"invalid_client","error_description":"client authentication failed"}`))
	f.Add([]byte(`{"error":"<script>"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if code := errorCode(data); len(code) > 64 || strings.Trim(code, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
			t.Fatalf("errorCode returned %q", code)
		}
		got, err := parseChainResponse(data)
		if err != nil {
			if got != nil {
				t.Fatal("chain with an error")
			}
			return
		}
		if len(got) == 0 || len(got) > dpop.MaxX5C {
			t.Fatalf("%d certificates", len(got))
		}
		var again []byte
		for _, c := range got {
			again = append(again, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		back, err := parseChainResponse(again)
		if err != nil || len(back) != len(got) {
			t.Fatalf("re-encoded chain: %d certificates, %v", len(back), err)
		}
		for i := range got {
			if !back[i].Equal(got[i]) {
				t.Fatalf("certificate %d changed", i)
			}
		}
	})
}
