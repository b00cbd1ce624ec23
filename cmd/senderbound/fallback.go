package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

// fallbackRevocationsFile is the revocation list that "ca revoke" writes
// and "serve-issuer --fallback-ca" publishes, beside the CA's files.
const fallbackRevocationsFile = "revoked.json"

// fallbackRevocations returns the revocation store of the CA in dir.
func fallbackRevocations(dir string) *fallback.FileRevocations {
	return &fallback.FileRevocations{Path: filepath.Join(dir, fallbackRevocationsFile)}
}

// loadFallbackCA builds the fallback CA role from a directory written by
// "ca create", with its shared revocation list.
func loadFallbackCA(dir string, lifetime time.Duration) (*fallback.CA, error) {
	ca, err := certs.LoadCA(dir)
	if err != nil {
		return nil, fmt.Errorf("--fallback-ca: %w", err)
	}
	return fallback.NewCA(fallback.CAConfig{
		Certificate: ca.Cert,
		Signer:      ca.Key,
		Lifetime:    lifetime,
		Revocations: fallbackRevocations(dir),
	})
}

// runCARevoke implements "ca revoke": the serial number of --cert (which
// the CA must have issued) or --serial is added to DIR/revoked.json; a
// running "serve-issuer --fallback-ca DIR" lists it in its next CRL.
func runCARevoke(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "ca revoke", "ca revoke --ca DIR (--cert FILE | --serial HEX)\n\nRevokes a certificate of a CA made by 'ca create' (used as --fallback-ca). Removing a scope from a client = revoke its certificate and issue a new one.")
	caDir := fs.String("ca", "", "directory holding "+certs.CACertFile+" (required)")
	certFile := fs.String("cert", "", "PEM file whose first certificate is revoked")
	serialHex := fs.String("serial", "", "serial number to revoke, hexadecimal")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireValues(fs, "ca", "cert", "serial"); err != nil {
		return err
	}
	if *caDir == "" {
		return usageError(fs, "ca revoke needs --ca")
	}
	if (*certFile == "") == (*serialHex == "") {
		return usageError(fs, "ca revoke needs exactly one of --cert and --serial")
	}
	data, err := os.ReadFile(filepath.Join(*caDir, certs.CACertFile))
	if err != nil {
		return err
	}
	caCerts, err := certs.ParseCertificates(data)
	if err != nil {
		return fmt.Errorf("%s: %w", certs.CACertFile, err)
	}
	var serial *big.Int
	if *certFile != "" {
		data, err := os.ReadFile(*certFile)
		if err != nil {
			return err
		}
		cs, err := certs.ParseCertificates(data)
		if err != nil {
			return fmt.Errorf("--cert: %w", err)
		}
		if cs[0].CheckSignatureFrom(caCerts[0]) != nil {
			return errors.New("--cert was not issued by this CA")
		}
		serial = cs[0].SerialNumber
	} else {
		s := strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(*serialHex), "0x"), ":", "")
		n, ok := new(big.Int).SetString(s, 16)
		if !ok || n.Sign() <= 0 {
			return usageError(fs, "--serial must be a positive hexadecimal number")
		}
		serial = n
	}
	if err := fallbackRevocations(*caDir).Revoke(ctx, serial, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "revoked serial %s (listed in %s)\n", serial.Text(16), filepath.Join(*caDir, fallbackRevocationsFile))
	return nil
}

// serveFallbackParams is what serveFallbackVerifier needs from the
// serve-resource flags.
type serveFallbackParams struct {
	caFile, crlURL string
	refresh, grace time.Duration
	client         *http.Client         // for the CRL; nil means defaults
	dpop           *resource.DPoPConfig // the DPoP settings, or nil
}

// serveFallbackVerifier loads the fallback CA, starts the background CRL
// fetcher (its failures are logged) and builds the verifier of fallback
// certificates and signed requests; signed requests share the DPoP replay
// store and nonces. The returned function stops the fetcher.
func serveFallbackVerifier(ctx context.Context, e *env, p serveFallbackParams) (*fallback.Verifier, func(), error) {
	data, err := os.ReadFile(p.caFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--fallback-ca: %w", err)
	}
	cas, err := certs.ParseCertificates(data)
	if err != nil {
		return nil, nil, fmt.Errorf("--fallback-ca: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	fetcher, err := fallback.NewCRLFetcher(fallback.CRLFetcherConfig{
		URL: p.crlURL, CA: cas[0], HTTPClient: p.client, Refresh: p.refresh,
		OnFetch: func(err error) {
			if err != nil {
				logger.Warn("fallback CRL fetch failed; the last good CRL stays in use", slog.String("reason", fallback.ReasonOf(err)))
			}
		},
	})
	if err != nil {
		return nil, nil, err
	}
	dc := dpop.Config{Algorithms: slices.Clone(serveAlgorithms), MaxProofBytes: 16 << 10}
	if p.dpop != nil {
		dc.ReplayStore, dc.Nonces = p.dpop.ReplayStore, p.dpop.Nonces
	} else {
		lru, err := replaycache.NewLRU(replaycache.Config{})
		if err != nil {
			return nil, nil, err
		}
		dc.ReplayStore = lru
	}
	proofs, err := dpop.NewVerifier(dc)
	if err != nil {
		return nil, nil, err
	}
	v, err := fallback.NewVerifier(fallback.Config{CAs: cas, CRL: fetcher, CRLGrace: p.grace, Proofs: proofs})
	if err != nil {
		return nil, nil, err
	}
	fetcher.Start(ctx)
	return v, func() { fetcher.Close() }, nil
}
