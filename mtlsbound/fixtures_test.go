package mtlsbound

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"net"
	"sync"
	"testing"

	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// fixture holds certificates shared by the tests: CA1 (trusted) with client
// certificates C1 and C2 and a server certificate, CA2 (another CA), and
// self-signed S1 and S2.
type fixture struct {
	ca1, ca2  *certs.CA
	server    *certs.Leaf
	c1, c2    *certs.Leaf
	s1, s2    *certs.Leaf
	c1FromCA2 *certs.Leaf // same DN as C1, issued by CA2 (ADV-91)
	big       *certs.Leaf // about 6 KiB of DER (CCERT-13)
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

func fixtures(t testing.TB) *fixture {
	t.Helper()
	fixOnce.Do(func() { fix, fixErr = buildFixtures() })
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func buildFixtures() (*fixture, error) {
	var f fixture
	var err error
	must := func(l *certs.Leaf, e error) *certs.Leaf {
		if e != nil && err == nil {
			err = e
		}
		return l
	}
	if f.ca1, err = certs.NewCA(certs.Options{CommonName: "CA1"}); err != nil {
		return nil, err
	}
	if f.ca2, err = certs.NewCA(certs.Options{CommonName: "CA2"}); err != nil {
		return nil, err
	}
	c1Subject := pkix.Name{CommonName: "client1", Organization: []string{"Example Corp"}}
	f.server = must(f.ca1.Issue(certs.Options{CommonName: "server", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}, Server: true}))
	f.c1 = must(f.ca1.Issue(certs.Options{Subject: c1Subject, Client: true, EmailAddresses: []string{"c1@example.test"}}))
	f.c2 = must(f.ca1.Issue(certs.Options{CommonName: "client2", Subject: pkix.Name{Organization: []string{"Example Corp"}}, Client: true}))
	f.c1FromCA2 = must(f.ca2.Issue(certs.Options{Subject: c1Subject, Client: true}))
	f.s1 = must(certs.SelfSigned(certs.Options{CommonName: "s1", Client: true}))
	f.s2 = must(certs.SelfSigned(certs.Options{CommonName: "s2", Client: true}))
	pad := make([]byte, 5600)
	for i := range pad {
		pad[i] = byte(i)
	}
	val, _ := asn1.Marshal(pad)
	f.big = must(f.ca1.Issue(certs.Options{CommonName: "big", Client: true, ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 2}, Value: val}}}))
	if err != nil {
		return nil, err
	}
	return &f, nil
}
