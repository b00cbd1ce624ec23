package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// runCA implements "ca": "ca create" and "ca revoke".
func runCA(ctx context.Context, e *env, args []string) error {
	return runSubcommand(ctx, e, "ca", args, map[string]func(context.Context, *env, []string) error{
		"create": runCACreate,
		"revoke": runCARevoke,
	})
}

// runCert implements "cert": "cert issue" and "cert request".
func runCert(ctx context.Context, e *env, args []string) error {
	return runSubcommand(ctx, e, "cert", args, map[string]func(context.Context, *env, []string) error{
		"issue":   runCertIssue,
		"request": runCertRequest,
	})
}

// runSubcommand dispatches args[0] to one of subs. With no argument it prints
// the list and returns errUsage; with -h it prints the list and returns
// flag.ErrHelp.
func runSubcommand(ctx context.Context, e *env, name string, args []string, subs map[string]func(context.Context, *env, []string) error) error {
	list := func(w io.Writer) {
		names := slices.Sorted(maps.Keys(subs))
		fmt.Fprintf(w, "Usage: senderbound %s %s [flags]\n\nRun 'senderbound %s <subcommand> -h' for its flags.\n", name, strings.Join(names, "|"), name)
	}
	if len(args) == 0 {
		list(e.stderr)
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		list(e.stderr)
		return flag.ErrHelp
	}
	sub, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "senderbound %s: unknown subcommand %q (run 'senderbound %s -h')\n", name, printable(args[0], 80), name)
		return errUsage
	}
	return sub(ctx, e, args[1:])
}

// runCACreate implements "ca create": a new self-signed root CA (ECDSA P-256)
// written to DIR/ca.pem and DIR/ca-key.pem (mode 0600). An existing CA in
// DIR is replaced only with --force, since certificates it issued would no
// longer verify.
func runCACreate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "ca create", "ca create --out DIR [--cn NAME] [--ttl DUR] [--force]\n\nCreates a root certificate authority for test and demo PKIs.")
	out := fs.String("out", "", "directory to write "+certs.CACertFile+" and "+certs.CAKeyFile+" to (created if needed; required)")
	cn := fs.String("cn", "senderbound test CA", "subject common name of the CA")
	ttl := fs.Duration("ttl", certs.DefaultCATTL, "validity of the CA certificate")
	force := fs.Bool("force", false, "replace an existing CA in --out")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireValues(fs, "out", "cn"); err != nil {
		return err
	}
	if *out == "" {
		return usageError(fs, "ca create needs --out")
	}
	if *ttl <= 0 {
		return usageError(fs, "--ttl must be positive")
	}
	if err := refuseExisting(*force, filepath.Join(*out, certs.CAKeyFile), filepath.Join(*out, certs.CACertFile)); err != nil {
		return err
	}
	ca, err := certs.NewCA(certs.Options{CommonName: *cn, TTL: *ttl})
	if err != nil {
		return err
	}
	if err := ca.WriteDir(*out); err != nil {
		return err
	}
	printCertReport(e.stdout, [][2]string{
		{"certificate", filepath.Join(*out, certs.CACertFile)},
		{"private key", filepath.Join(*out, certs.CAKeyFile) + " (mode 0600)"},
	}, ca.Cert)
	return nil
}

// runCertIssue implements "cert issue": an end-entity certificate signed by
// a CA made by "ca create", written to DIR/cert.pem (leaf then chain) and
// DIR/key.pem (mode 0600).
func runCertIssue(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "cert issue", "cert issue --ca DIR --cn NAME [--dns N]... [--uri U]... [--ip A]... [--ttl DUR] [--client|--server] --out DIR [--force]\n\nIssues a certificate from a CA made by 'ca create'. With neither --client nor --server it carries both extended key usages.\nUnless --client, a --cn that names a host (localhost, a dotted DNS name or an IP address) is also put in the SANs,\nwhich TLS clients check instead of the common name.")
	caDir := fs.String("ca", "", "directory holding "+certs.CACertFile+" and "+certs.CAKeyFile+" (required)")
	cn := fs.String("cn", "", "subject common name (required)")
	var dnsNames, uris, ips listFlag
	fs.Var(&dnsNames, "dns", "DNS name SAN (repeatable)")
	fs.Var(&uris, "uri", "URI SAN, e.g. spiffe://example.test/app (repeatable)")
	fs.Var(&ips, "ip", "IP address SAN (repeatable)")
	ttl := fs.Duration("ttl", certs.DefaultTTL, "validity of the certificate")
	client := fs.Bool("client", false, "client certificate only (extended key usage clientAuth)")
	server := fs.Bool("server", false, "server certificate only (extended key usage serverAuth)")
	out := fs.String("out", "", "directory to write "+certs.LeafCertFile+" and "+certs.LeafKeyFile+" to (created if needed; required)")
	force := fs.Bool("force", false, "replace an existing certificate and key in --out")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireValues(fs, "ca", "cn", "out"); err != nil {
		return err
	}
	var missing []string
	for _, f := range []struct{ name, val string }{{"--ca", *caDir}, {"--cn", *cn}, {"--out", *out}} {
		if f.val == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return usageError(fs, "cert issue needs "+strings.Join(missing, ", "))
	}
	if *client && *server {
		return usageError(fs, "--client and --server exclude each other; give neither for a certificate with both usages")
	}
	if *ttl <= 0 {
		return usageError(fs, "--ttl must be positive")
	}
	opts := certs.Options{CommonName: *cn, TTL: *ttl, Client: *client, Server: *server}
	for _, d := range dnsNames {
		if d == "" || strings.ContainsAny(d, " \t\r\n,/") {
			return usageError(fs, fmt.Sprintf("--dns %q is not a DNS name", d))
		}
		opts.DNSNames = append(opts.DNSNames, d)
	}
	for _, raw := range uris {
		u, err := url.Parse(raw)
		if err != nil || !u.IsAbs() {
			return usageError(fs, fmt.Sprintf("--uri %q is not an absolute URI", raw))
		}
		opts.URIs = append(opts.URIs, u)
	}
	for _, raw := range ips {
		ip := net.ParseIP(raw)
		if ip == nil {
			return usageError(fs, fmt.Sprintf("--ip %q is not an IP address", raw))
		}
		opts.IPAddresses = append(opts.IPAddresses, ip)
	}
	if !*client {
		// TLS clients match the host against the SANs only, never the
		// common name: a server certificate named like a host carries
		// that name as a SAN too.
		if ip := net.ParseIP(*cn); ip != nil {
			if !slices.ContainsFunc(opts.IPAddresses, ip.Equal) {
				opts.IPAddresses = append(opts.IPAddresses, ip)
			}
		} else if certHostLike(*cn) && !slices.ContainsFunc(opts.DNSNames, func(d string) bool { return strings.EqualFold(d, *cn) }) {
			opts.DNSNames = append(opts.DNSNames, *cn)
		}
	}

	ca, err := certs.LoadCA(*caDir)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, c := range append([]*x509.Certificate{ca.Cert}, ca.Chain...) {
		if !now.Before(c.NotAfter) {
			return fmt.Errorf("the CA certificate %q expired at %s", c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
		}
		if now.Add(*ttl).After(c.NotAfter) {
			return fmt.Errorf("--ttl %s outlives the CA certificate %q, which expires at %s", *ttl, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	if err := refuseExisting(*force, filepath.Join(*out, certs.LeafKeyFile), filepath.Join(*out, certs.LeafCertFile)); err != nil {
		return err
	}
	leaf, err := ca.Issue(opts)
	if err != nil {
		return err
	}
	if err := leaf.WriteDir(*out); err != nil {
		return err
	}
	printCertReport(e.stdout, [][2]string{
		{"certificate", filepath.Join(*out, certs.LeafCertFile)},
		{"private key", filepath.Join(*out, certs.LeafKeyFile) + " (mode 0600)"},
	}, leaf.Cert)
	if *server && len(opts.DNSNames) == 0 && len(opts.IPAddresses) == 0 {
		fmt.Fprintln(e.stderr, "senderbound cert issue: warning: a server certificate without --dns, --ip or a --cn that names a host does not verify in TLS clients, which ignore the common name")
	}
	return nil
}

// certHostLike reports whether cn names a host: "localhost", or a DNS
// name of at least two labels of letters, digits and hyphens (a leading
// "*." label allowed), such as api.example.com. A name like "orders-app"
// is a client's, not a host's.
func certHostLike(cn string) bool {
	if strings.EqualFold(cn, "localhost") {
		return true
	}
	name := strings.TrimPrefix(cn, "*.")
	labels := strings.Split(name, ".")
	if len(labels) < 2 || len(name) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// refuseExisting returns an error naming the first of paths that exists,
// unless force.
func refuseExisting(force bool, paths ...string) error {
	if force {
		return nil
	}
	for _, p := range paths {
		_, err := os.Lstat(p)
		if err == nil {
			return fmt.Errorf("%s already exists; pass --force to replace it", p)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// printCertReport prints the files written and what a user needs next
// about cert: subject and issuer DNs (the form tls_client_auth_subject_dn
// registrations use), SANs, extended key usages, validity and the x5t#S256
// that a bound token's cnf carries.
func printCertReport(w io.Writer, files [][2]string, cert *x509.Certificate) {
	rows := append([][2]string(nil), files...)
	rows = append(rows, [2]string{"subject", cert.Subject.String()})
	if !cert.IsCA || string(cert.RawIssuer) != string(cert.RawSubject) {
		rows = append(rows, [2]string{"issuer", cert.Issuer.String()})
	}
	if sans := certSANs(cert); sans != "" {
		rows = append(rows, [2]string{"SANs", sans})
	}
	if !cert.IsCA {
		rows = append(rows, [2]string{"usage", certEKUs(cert)})
	}
	rows = append(rows,
		[2]string{"not after", cert.NotAfter.UTC().Format(time.RFC3339)},
		[2]string{"x5t#S256", certThumbprint(cert)},
	)
	for _, r := range rows {
		fmt.Fprintf(w, "%-12s %s\n", r[0], r[1])
	}
}

// certSANs lists cert's subject alternative names as "DNS:…, IP:…, URI:…".
func certSANs(cert *x509.Certificate) string {
	var s []string
	for _, d := range cert.DNSNames {
		s = append(s, "DNS:"+d)
	}
	for _, ip := range cert.IPAddresses {
		s = append(s, "IP:"+ip.String())
	}
	for _, u := range cert.URIs {
		s = append(s, "URI:"+u.String())
	}
	for _, m := range cert.EmailAddresses {
		s = append(s, "email:"+m)
	}
	return strings.Join(s, ", ")
}

// certEKUs names cert's client and server extended key usages.
func certEKUs(cert *x509.Certificate) string {
	var s []string
	for _, u := range cert.ExtKeyUsage {
		switch u {
		case x509.ExtKeyUsageClientAuth:
			s = append(s, "clientAuth")
		case x509.ExtKeyUsageServerAuth:
			s = append(s, "serverAuth")
		}
	}
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}
