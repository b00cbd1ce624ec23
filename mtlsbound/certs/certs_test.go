package certs

import (
	"bytes"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func mustCA(t testing.TB, o Options) *CA {
	t.Helper()
	ca, err := NewCA(o)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestIssueVerifies(t *testing.T) {
	t.Parallel()
	root := mustCA(t, Options{CommonName: "root"})
	inter, err := root.NewIntermediate(Options{CommonName: "inter"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("spiffe://example.test/c1")
	tests := []struct {
		name    string
		ca      *CA
		opts    Options
		eku     x509.ExtKeyUsage
		wantErr bool
	}{
		{"client from root", root, Options{CommonName: "c1", Client: true}, x509.ExtKeyUsageClientAuth, false},
		{"server from root", root, Options{DNSNames: []string{"localhost"}, Server: true}, x509.ExtKeyUsageServerAuth, false},
		{"client from intermediate", inter, Options{CommonName: "c2", URIs: []*url.URL{u}, Client: true}, x509.ExtKeyUsageClientAuth, false},
		{"rsa client", root, Options{CommonName: "rsa", KeyType: RSA2048, Client: true}, x509.ExtKeyUsageClientAuth, false},
		{"server-only cert used as client", root, Options{CommonName: "s", Server: true}, x509.ExtKeyUsageClientAuth, true},
		{"client-only cert used as server", root, Options{CommonName: "c", Client: true}, x509.ExtKeyUsageServerAuth, true},
		{"expired", root, Options{CommonName: "old", Client: true, NotBefore: time.Now().Add(-48 * time.Hour), TTL: time.Hour}, x509.ExtKeyUsageClientAuth, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := tt.ca.Issue(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if l.Cert.IsCA {
				t.Fatal("leaf is a CA")
			}
			_, err = l.Cert.Verify(x509.VerifyOptions{Roots: tt.ca.Pool(), Intermediates: l.Intermediates(), KeyUsages: []x509.ExtKeyUsage{tt.eku}})
			if (err != nil) != tt.wantErr {
				t.Fatalf("verify err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestOptionsApplied(t *testing.T) {
	t.Parallel()
	ca := mustCA(t, Options{})
	if ca.Cert.Subject.CommonName == "" || !ca.Cert.IsCA {
		t.Fatalf("CA defaults not applied: %v", ca.Cert.Subject)
	}
	u, _ := url.Parse("https://client.example.test/")
	ext := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}, Value: []byte{5, 0}}
	nb := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	l, err := ca.Issue(Options{
		CommonName:      "client1",
		Subject:         pkix.Name{Organization: []string{"Example Corp"}, OrganizationalUnit: []string{"Eng"}},
		DNSNames:        []string{"client.example.test"},
		URIs:            []*url.URL{u},
		IPAddresses:     []net.IP{net.ParseIP("2001:db8::1")},
		EmailAddresses:  []string{"c1@example.test"},
		NotBefore:       nb,
		TTL:             2 * time.Hour,
		Client:          true,
		ExtraExtensions: []pkix.Extension{ext},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := l.Cert
	if c.Subject.CommonName != "client1" || c.Subject.Organization[0] != "Example Corp" || c.Subject.OrganizationalUnit[0] != "Eng" {
		t.Errorf("subject = %v", c.Subject)
	}
	if c.DNSNames[0] != "client.example.test" || c.URIs[0].String() != u.String() || !c.IPAddresses[0].Equal(net.ParseIP("2001:db8::1")) || c.EmailAddresses[0] != "c1@example.test" {
		t.Errorf("SANs not applied")
	}
	if !c.NotBefore.Equal(nb) || !c.NotAfter.Equal(nb.Add(2*time.Hour)) {
		t.Errorf("validity = %v..%v", c.NotBefore, c.NotAfter)
	}
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("EKU = %v", c.ExtKeyUsage)
	}
	found := false
	for _, e := range c.Extensions {
		if e.Id.Equal(ext.Id) {
			found = bytes.Equal(e.Value, ext.Value)
		}
	}
	if !found {
		t.Error("extra extension missing")
	}
	if _, err := ca.Issue(Options{TTL: -time.Second}); err == nil {
		t.Error("negative TTL accepted")
	}
	if _, err := ca.Issue(Options{KeyType: KeyType(99)}); err == nil {
		t.Error("unknown key type accepted")
	}
	again, err := ca.Issue(Options{CommonName: "client1", Key: l.Key})
	if err != nil {
		t.Fatal(err)
	}
	if !publicKeyEqual(again.Cert.PublicKey, l.Cert.PublicKey) || bytes.Equal(again.Cert.Raw, l.Cert.Raw) {
		t.Error("re-issue over the same key should keep the key and change the certificate")
	}
}

func TestSelfSigned(t *testing.T) {
	t.Parallel()
	l, err := SelfSigned(Options{CommonName: "s1", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Chain) != 0 || l.Cert.IsCA {
		t.Fatal("self-signed leaf has a chain or is a CA")
	}
	if err := l.Cert.CheckSignatureFrom(l.Cert); err == nil {
		// CheckSignatureFrom refuses a non-CA parent; check the signature directly.
		t.Fatal("non-CA self-signed cert accepted as its own CA")
	}
	if err := l.Cert.CheckSignature(l.Cert.SignatureAlgorithm, l.Cert.RawTBSCertificate, l.Cert.Signature); err != nil {
		t.Fatalf("self signature: %v", err)
	}
	other := mustCA(t, Options{})
	if _, err := l.Cert.Verify(x509.VerifyOptions{Roots: other.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Fatal("self-signed cert chained to an unrelated CA")
	}
}

func TestWriteLoadRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root := mustCA(t, Options{CommonName: "root", KeyType: RSA2048})
	inter, err := root.NewIntermediate(Options{CommonName: "inter"})
	if err != nil {
		t.Fatal(err)
	}
	if err := inter.WriteDir(filepath.Join(dir, "ca")); err != nil {
		t.Fatal(err)
	}
	ca2, err := LoadCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	if !ca2.Cert.Equal(inter.Cert) || len(ca2.Chain) != 1 || !ca2.Chain[0].Equal(root.Cert) {
		t.Fatal("CA round trip lost certificates")
	}
	if _, ok := root.Key.(*rsa.PrivateKey); !ok {
		t.Fatal("RSA option ignored")
	}
	st, err := os.Stat(filepath.Join(dir, "ca", CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", st.Mode().Perm())
	}
	leaf, err := ca2.Issue(Options{CommonName: "c1", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.WriteDir(filepath.Join(dir, "leaf")); err != nil {
		t.Fatal(err)
	}
	l2, err := LoadLeaf(filepath.Join(dir, "leaf"))
	if err != nil {
		t.Fatal(err)
	}
	if !l2.Cert.Equal(leaf.Cert) || len(l2.Chain) != 2 {
		t.Fatal("leaf round trip lost certificates")
	}
	if _, err := l2.Cert.Verify(x509.VerifyOptions{Roots: root.Pool(), Intermediates: l2.Intermediates(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}

	// Failure paths.
	if _, err := LoadCA(filepath.Join(dir, "leaf")); err == nil {
		t.Error("LoadCA on a leaf directory succeeded")
	}
	bad := filepath.Join(dir, "bad")
	if err := leaf.WriteDir(bad); err != nil {
		t.Fatal(err)
	}
	other, _ := SelfSigned(Options{})
	kp, _ := EncodeKey(other.Key)
	if err := os.WriteFile(filepath.Join(bad, LeafKeyFile), kp, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadLeaf(bad); err == nil {
		t.Error("mismatched key accepted")
	}
	if err := os.WriteFile(filepath.Join(bad, LeafKeyFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadLeaf(bad); err == nil {
		t.Error("junk key accepted")
	}
	if _, err := LoadLeaf(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing directory accepted")
	}
}

func TestWriteDirNarrowsExistingKeyMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyPath := filepath.Join(dir, CAKeyFile)
	if err := os.WriteFile(keyPath, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyPath, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	ca := mustCA(t, Options{CommonName: "replacement"})
	if err := ca.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("replaced key file mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := LoadCA(dir); err != nil {
		t.Fatalf("replaced CA does not load: %v", err)
	}
}

func TestParseCertificatesRejects(t *testing.T) {
	t.Parallel()
	l, _ := SelfSigned(Options{})
	good := EncodeCertificates(l.Cert)
	kp, _ := EncodeKey(l.Key)
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"key block", kp},
		{"trailing garbage", append(append([]byte{}, good...), "garbage"...)},
		{"bad DER", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if c, err := ParseCertificates(tt.in); err == nil || c != nil {
				t.Fatalf("accepted: %v", err)
			}
		})
	}
	if c, err := ParseCertificates(good); err != nil || len(c) != 1 {
		t.Fatalf("good PEM refused: %v", err)
	}
}

func TestMutualTLSHandshake(t *testing.T) {
	t.Parallel()
	ca := mustCA(t, Options{})
	srvLeaf, err := ca.Issue(Options{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	cliLeaf, err := ca.Issue(Options{CommonName: "client1", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvLeaf.TLSCertificate()}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	cc := cliLeaf.TLSCertificate()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cc}}}}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "client1" {
		t.Fatalf("server saw %q", body)
	}
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	if resp, err := noCert.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Fatal("handshake without client certificate succeeded")
	}
}

func TestRevocationList(t *testing.T) {
	t.Parallel()
	ca := mustCA(t, Options{})
	l, _ := ca.Issue(Options{Client: true})
	now := time.Now().Truncate(time.Second)
	der, err := ca.RevocationList(RevocationListOptions{Revoked: []*x509.Certificate{l.Cert}, ThisUpdate: now, Number: 7})
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(ca.Cert); err != nil {
		t.Fatal(err)
	}
	other := mustCA(t, Options{})
	if err := crl.CheckSignatureFrom(other.Cert); err == nil {
		t.Fatal("CRL verified under another CA")
	}
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(l.Cert.SerialNumber) != 0 {
		t.Fatal("revoked entry missing")
	}
	if !crl.NextUpdate.Equal(now.Add(time.Hour)) || crl.Number.Int64() != 7 {
		t.Fatalf("next=%v number=%v", crl.NextUpdate, crl.Number)
	}
}
