// Package certs creates X.509 certificate authorities, server and client
// certificates, self-signed client certificates and CRLs, and reads and
// writes them as PEM files. It exists for tests, demos and the command's
// "ca create" / "cert issue" commands; production deployments normally get
// certificates from their own PKI.
//
// Keys are ECDSA P-256 by default (RSA on request) and are held as
// [crypto.Signer]. Certificates are short-lived by default ([DefaultTTL]),
// which RFC 8705 deployments should prefer over relying on revocation.
//
// # Example
//
//	ca, _ := certs.NewCA(certs.Options{CommonName: "Example CA"})
//	srv, _ := ca.Issue(certs.Options{DNSNames: []string{"localhost"}, Server: true})
//	cli, _ := ca.Issue(certs.Options{CommonName: "client1", Client: true})
//	_ = cli.TLSCertificate() // present with tls.Config.Certificates
//	_ = ca.Pool()            // trust with tls.Config.RootCAs / ClientCAs
//	_ = srv
package certs
