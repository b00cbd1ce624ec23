package fallback

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/oautherr"
)

// clock is a settable clock for tests that move time.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }

func TestCRLHandler(t *testing.T) {
	t.Parallel()
	root, err := certs.NewCA(certs.Options{NotBefore: testNow.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock(testNow)
	ca, err := NewCA(CAConfig{Certificate: root.Cert, Signer: root.Key, Now: clk.now, CRLLifetime: 10 * time.Minute, CRLMaxAge: 8 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ca.CRLHandler())
	defer srv.Close()
	do := func(method string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/crl", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	resp, body := do("GET", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("GET: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	l, err := ParseRevocationList(body, root.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if !l.ThisUpdate().Equal(testNow) || !l.NextUpdate().Equal(testNow.Add(10*time.Minute)) || l.Len() != 0 {
		t.Fatalf("CRL %v to %v with %d entries", l.ThisUpdate(), l.NextUpdate(), l.Len())
	}
	etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lastMod != testNow.Format(http.TimeFormat) {
		t.Fatalf("ETag %q, Last-Modified %q", etag, lastMod)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=480" {
		t.Fatalf("Cache-Control %q", cc)
	}

	tests := []struct {
		name     string
		method   string
		hdr      map[string]string
		want     int
		wantBody bool
	}{
		{name: "If-None-Match", method: "GET", hdr: map[string]string{"If-None-Match": etag}, want: 304},
		{name: "If-None-Match other", method: "GET", hdr: map[string]string{"If-None-Match": `"other"`}, want: 200, wantBody: true},
		{name: "If-Modified-Since", method: "GET", hdr: map[string]string{"If-Modified-Since": lastMod}, want: 304},
		{name: "If-Modified-Since earlier", method: "GET", hdr: map[string]string{"If-Modified-Since": testNow.Add(-time.Hour).Format(http.TimeFormat)}, want: 200, wantBody: true},
		{name: "HEAD", method: "HEAD", want: 200},
		{name: "POST", method: "POST", want: 405},
		{name: "DELETE", method: "DELETE", want: 405},
	}
	for _, tc := range tests {
		resp, b := do(tc.method, tc.hdr)
		if resp.StatusCode != tc.want || (len(b) > 0) != tc.wantBody && tc.want != 405 {
			t.Fatalf("%s: status %d, %d body bytes", tc.name, resp.StatusCode, len(b))
		}
		if tc.want == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
			t.Fatalf("%s: Allow %q", tc.name, resp.Header.Get("Allow"))
		}
		if tc.want == 200 && resp.Header.Get("ETag") != etag {
			t.Fatalf("%s: another CRL while nothing changed", tc.name)
		}
	}

	// A revocation changes the CRL at once, with a higher number.
	leaf, err := root.Issue(certs.Options{Client: true})
	if err != nil {
		t.Fatal(err)
	}
	clk.set(testNow.Add(time.Second))
	if err := ca.RevokeCertificate(context.Background(), leaf.Cert); err != nil {
		t.Fatal(err)
	}
	resp, body = do("GET", map[string]string{"If-None-Match": etag})
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == etag {
		t.Fatalf("after revocation: %d, ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
	l2, err := ParseRevocationList(body, root.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if !l2.Revoked(leaf.Cert.SerialNumber) || l2.Number().Cmp(l.Number()) <= 0 {
		t.Fatalf("revoked %v, number %v after %v", l2.Revoked(leaf.Cert.SerialNumber), l2.Number(), l.Number())
	}

	// Near nextUpdate, max-age never reaches past it; past half of the
	// lifetime the CRL is signed again.
	clk.set(testNow.Add(4*time.Minute + 30*time.Second))
	resp, _ = do("GET", nil)
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=331" {
		t.Fatalf("Cache-Control near nextUpdate %q", cc)
	}
	clk.set(testNow.Add(6 * time.Minute))
	resp, body = do("GET", nil)
	l3, err := ParseRevocationList(body, root.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if !l3.ThisUpdate().Equal(testNow.Add(6*time.Minute)) || !l3.Revoked(leaf.Cert.SerialNumber) || l3.Number().Cmp(l2.Number()) <= 0 {
		t.Fatalf("re-signed CRL: thisUpdate %v, number %v", l3.ThisUpdate(), l3.Number())
	}
	if max, _ := strconv.Atoi(strings.TrimPrefix(resp.Header.Get("Cache-Control"), "public, max-age=")); max != 480 {
		t.Fatalf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
}

// TestRevokeCertificateOtherCA: a certificate of another CA cannot revoke
// the serial it carries.
func TestRevokeCertificateOtherCA(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	other, err := certs.NewCA(certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := other.Issue(certs.Options{Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.ca.RevokeCertificate(context.Background(), leaf.Cert); !errors.Is(err, ErrUntrustedChain) {
		t.Fatalf("got %v", err)
	}
}

func TestCRLNumbersIncrease(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	var last *big.Int
	for range 5 {
		der, err := w.ca.CRL(context.Background(), testNow) // the same instant
		if err != nil {
			t.Fatal(err)
		}
		l, err := ParseRevocationList(der, w.root.Cert)
		if err != nil {
			t.Fatal(err)
		}
		if last != nil && l.Number().Cmp(last) <= 0 {
			t.Fatalf("CRL number %v after %v", l.Number(), last)
		}
		last = l.Number()
	}
}

func TestParseRevocationList(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "P256")
	good, err := w.ca.CRL(context.Background(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.NewCA(certs.Options{CommonName: "other CA"})
	if err != nil {
		t.Fatal(err)
	}
	// Same name as the fallback CA, another key: a forged CRL.
	forger, err := certs.NewCA(certs.Options{Subject: w.root.Cert.Subject})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(issuer *certs.CA, edit func(*x509.RevocationList)) []byte {
		tmpl := &x509.RevocationList{Number: big.NewInt(9), ThisUpdate: testNow, NextUpdate: testNow.Add(time.Hour)}
		if edit != nil {
			edit(tmpl)
		}
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.Cert, issuer.Key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	idp := asn1.ObjectIdentifier{2, 5, 29, 28}
	delta := asn1.ObjectIdentifier{2, 5, 29, 27}
	tests := []struct {
		name   string
		der    []byte
		reason oautherr.Reason
	}{
		{name: "good", der: good},
		{name: "signed by the CA outside this package", der: sign(w.root, nil)},
		{name: "truncated", der: good[:len(good)-10], reason: oautherr.ReasonFallbackCRLMalformed},
		{name: "trailing byte", der: append(append([]byte(nil), good...), 0), reason: oautherr.ReasonFallbackCRLMalformed},
		{name: "garbage", der: []byte("not a CRL"), reason: oautherr.ReasonFallbackCRLMalformed},
		{name: "empty", der: nil, reason: oautherr.ReasonFallbackCRLMalformed},
		{name: "signature flipped", der: flipLast(good), reason: oautherr.ReasonFallbackCRLSignature},
		{name: "another CA", der: sign(other, nil), reason: oautherr.ReasonFallbackCRLOtherIssuer},
		{name: "same name, another key", der: sign(forger, nil), reason: oautherr.ReasonFallbackCRLSignature},
		{name: "critical issuing distribution point", der: sign(w.root, func(l *x509.RevocationList) {
			l.ExtraExtensions = []pkix.Extension{{Id: idp, Critical: true, Value: []byte{0x30, 0}}}
		}), reason: oautherr.ReasonFallbackCRLCritical},
		{name: "delta CRL", der: sign(w.root, func(l *x509.RevocationList) {
			l.ExtraExtensions = []pkix.Extension{{Id: delta, Critical: true, Value: []byte{2, 1, 1}}}
		}), reason: oautherr.ReasonFallbackCRLCritical},
		{name: "critical entry extension", der: sign(w.root, func(l *x509.RevocationList) {
			l.RevokedCertificateEntries = []x509.RevocationListEntry{{SerialNumber: big.NewInt(5), RevocationTime: testNow,
				ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 29}, Critical: true, Value: []byte{0x30, 0}}}}}
		}), reason: oautherr.ReasonFallbackCRLCritical},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, err := ParseRevocationList(tc.der, w.root.Cert)
			if tc.reason == "" {
				if err != nil || l == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidCRL) || ReasonOf(err) != tc.reason || l != nil {
				t.Fatalf("got %v, want %s", err, tc.reason)
			}
		})
	}
}

func flipLast(b []byte) []byte {
	out := append([]byte(nil), b...)
	out[len(out)-1] ^= 1
	return out
}
