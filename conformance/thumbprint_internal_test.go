package conformance

import (
	"crypto/x509"
	"testing"
)

// TestKAT12 checks the RFC 9440 Client-Cert example against the
// checklist's derived values, including the negatives the suite forges.
func TestKAT12(t *testing.T) {
	t.Parallel()
	der, err := parseClientCertHeader(kat12ClientCert)
	if err != nil {
		t.Fatal(err)
	}
	if len(der) != 428 {
		t.Errorf("DER is %d bytes, want 428", len(der))
	}
	if got := certificateThumbprint(der); got != kat12X5t {
		t.Errorf("x5t#S256 = %s, want %s", got, kat12X5t)
	}
	neg := x5tNegativesOf(der)
	want := map[string]string{
		"SHA-1 x5t":     "ygg_Jp-0_HGSDpQHDqrLcxkp5vk",
		"SPKI hash":     "yTvZJqPkG-BQJ5mvQ1IbLCgU5bxrZXhlGEHQDp3uad4",
		"PEM-text hash": "npVbph__REF-d1oKvsj2oBqFTNs0XClgDR-NWlYfs6o",
	}
	for k, v := range want {
		if neg[k] != v {
			t.Errorf("%s = %s, want %s", k, neg[k], v)
		}
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := newClientKeyFromPublic(c.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if pub != "lFask9px4fGQyM9NxknF_PMaIiyAFE7PlSBWYWYgasc" {
		t.Errorf("jkt of the certificate key = %s (THUMB-14)", pub)
	}
}

func TestRFC7517ECKey(t *testing.T) {
	t.Parallel()
	k, err := rfc7517ECKey()
	if err != nil {
		t.Fatal(err)
	}
	if k.jkt != "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s" {
		t.Errorf("jkt = %s, want KAT-16", k.jkt)
	}
}

func TestDecodeJWTRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "a.b", "a.b.c.d", "!!.e30.x", "e30.!!.x", "W10.e30.x", "e30.W10.x", "bnVsbA.e30.x"} {
		h, c, err := decodeJWT(in)
		if err == nil || h != nil || c != nil {
			t.Errorf("decodeJWT(%q) = %v, %v, %v; want an error and nils", in, h, c, err)
		}
	}
}

func FuzzDecodeJWT(f *testing.F) {
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6IkJlQUxrYiJ9.eyJzdWIiOiJzb21lb25lQGV4YW1wbGUuY29tIn0.sig")
	f.Add(kat14)
	f.Add("e30.e30.")
	f.Fuzz(func(t *testing.T, s string) {
		h, c, err := decodeJWT(s)
		if err != nil && (h != nil || c != nil) {
			t.Fatal("non-nil result with an error")
		}
		if err == nil && (h == nil || c == nil) {
			t.Fatal("nil result without an error")
		}
	})
}
