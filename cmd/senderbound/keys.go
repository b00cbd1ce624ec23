package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/internal/keyfile"
)

func runKeygen(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "keygen", "keygen [--alg ES256|ES384|ES512|EdDSA|PS256|RS256] [--out FILE]")
	alg := fs.String("alg", "ES256", "JWS algorithm the key is for: "+strings.Join(keyfile.Algorithms, ", "))
	out := fs.String("out", "", "write the private JWK to this file (mode 0600) instead of standard output")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
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
	if err := os.WriteFile(*out, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote %s private key to %s\n", *alg, *out)
	return nil
}

func runThumbprint(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "thumbprint", "thumbprint [FILE|-]\n\nPrints the RFC 7638 SHA-256 thumbprint (jkt) of a JWK, or the RFC 8705 x5t#S256 of a PEM certificate.")
	if err := parseFlags(fs, args, 1); err != nil {
		return err
	}
	var (
		data []byte
		err  error
	)
	switch name := fs.Arg(0); name {
	case "", "-":
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

// thumbprintOf returns the jkt of a JWK (public or private) or the
// x5t#S256 of the first certificate in PEM data.
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
	if block == nil || block.Type != "CERTIFICATE" {
		return "", errors.New("input is neither a JWK nor a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", err
	}
	return certThumbprint(cert), nil
}
