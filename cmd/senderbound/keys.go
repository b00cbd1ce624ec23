package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/keyfile"
	"github.com/senderbound/senderbound/mtlsbound"
)

// runKeygen implements "keygen": it generates a signing key for one JWS
// algorithm and prints it (or writes it, mode 0600) as a private JWK whose kid
// is its RFC 7638 thumbprint.
func runKeygen(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "keygen", "keygen [--alg ES256|ES384|ES512|EdDSA|PS256|RS256] [--out FILE [--force]]")
	alg := fs.String("alg", "ES256", "JWS algorithm the key is for, in any case: "+strings.Join(keyfile.Algorithms, ", "))
	out := fs.String("out", "", "write the private JWK to this file (mode 0600) instead of standard output")
	force := fs.Bool("force", false, "with --out, replace an existing file")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireValues(fs, "out"); err != nil {
		return err
	}
	if *force && *out == "" {
		return usageError(fs, "--force needs --out")
	}
	name, ok := cliAlgorithm(*alg, keyfile.Algorithms)
	if !ok {
		return usageError(fs, fmt.Sprintf("--alg %q is not one of %s", printable(*alg, 40), strings.Join(keyfile.Algorithms, ", ")))
	}
	*alg = name
	k, err := keyfile.Generate(*alg, nil)
	if err != nil {
		return err
	}
	data, err := keyfile.MarshalJWK(k, *alg)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = e.stdout.Write(data)
		return err
	}
	if err := writePrivateFile(*out, data, *force); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote %s private key to %s\n", *alg, *out)
	return nil
}

// runThumbprint implements "thumbprint": it prints the jkt of a JWK or PEM
// key, or the x5t#S256 of a PEM certificate, read from a file or stdin.
func runThumbprint(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "thumbprint", "thumbprint [FILE|-]\n\nPrints the RFC 7638 SHA-256 thumbprint (jkt) of a JWK or PEM key, or the RFC 8705 x5t#S256 of a PEM certificate (the first one in the file).\nWithout FILE, or with -, it reads the key or certificate from standard input.")
	if err := parseFlags(fs, args, 1); err != nil {
		return err
	}
	var (
		data []byte
		err  error
	)
	switch name := fs.Arg(0); name {
	case "", "-":
		if e.stdinIsTerminal() {
			fmt.Fprintln(e.stderr, "senderbound thumbprint: reading a JWK, PEM key or PEM certificate from standard input (end with Ctrl-D; or give a FILE)")
		}
		data, err = io.ReadAll(io.LimitReader(e.stdin, 1<<20))
	default:
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return err
	}
	tp, err := thumbprintOf(data)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, tp)
	return nil
}

// thumbprintOf returns the jkt of a JWK (public or private), the x5t#S256
// of the first certificate in PEM data, or the jkt of a PEM public or private
// key.
func thumbprintOf(data []byte) (string, error) {
	s := strings.TrimSpace(string(data))
	if strings.HasPrefix(s, "{") {
		var jwk jose.JSONWebKey
		if err := json.Unmarshal([]byte(s), &jwk); err != nil {
			return "", fmt.Errorf("invalid JWK: %w", err)
		}
		pub := jwk.Public()
		if pub.Key == nil {
			return "", errors.New("the JWK has no asymmetric key")
		}
		return jwkThumbprint(&pub)
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return "", errors.New("input is neither a JWK nor PEM")
	}
	switch block.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", fmt.Errorf("invalid certificate: %w", err)
		}
		return certThumbprint(cert), nil
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return "", fmt.Errorf("invalid public key: %w", err)
		}
		return jwkThumbprint(&jose.JSONWebKey{Key: pub})
	case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
		k, err := keyfile.Parse([]byte(s))
		if err != nil {
			return "", err
		}
		return jwkThumbprint(&jose.JSONWebKey{Key: k.Signer.Public()})
	}
	return "", fmt.Errorf("PEM block %q is neither a certificate nor a key", block.Type)
}

// jwkThumbprint returns the RFC 7638 SHA-256 thumbprint of k's public part,
// base64url without padding: the value of cnf.jkt and dpop_jkt.
func jwkThumbprint(k *jose.JSONWebKey) (string, error) {
	return dpop.Thumbprint(k)
}

// certThumbprint returns the RFC 8705 §3.1 x5t#S256 of c: base64url without
// padding of SHA-256 over its DER encoding.
func certThumbprint(c *x509.Certificate) string {
	return mtlsbound.Thumbprint(c)
}

// writePrivateFile writes secret data (a private key) to path with mode
// 0600. It refuses an existing file unless force; a replaced file has its
// mode narrowed to 0600 before any byte is written.
func writePrivateFile(path string, data []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists; pass --force to replace it", path)
	}
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// requireValues refuses each named flag that was given explicitly with an
// empty value (for example --key ""), which would otherwise silently mean
// "not set".
func requireValues(fs *flag.FlagSet, names ...string) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		for _, n := range names {
			if f.Name == n && f.Value.String() == "" && err == nil {
				err = usageError(fs, "--"+n+" needs a non-empty value")
			}
		}
	})
	return err
}
