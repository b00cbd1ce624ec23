package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/keyfile"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
)

// maxTokenResponseBytes caps the token endpoint response the command reads.
const maxTokenResponseBytes = 1 << 20

// runProof implements "proof": it prints one DPoP proof (RFC 9449 §4.2) for
// a request, signed with a key from a private JWK or PEM file, with ath when
// an access token is given.
func runProof(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "proof", "proof --key FILE --method M --url U [--token T|-] [--nonce N] [--alg ALG]\n\nPrints one DPoP proof, e.g. curl -H \"DPoP: $(senderbound proof ...)\".")
	keyPath := fs.String("key", "", "private key: a JWK (as made by keygen) or PKCS#8 / SEC 1 / PKCS#1 PEM (required)")
	alg := fs.String("alg", "", "JWS algorithm of the proof, in any case: "+strings.Join(keyfile.Algorithms, ", ")+" (default: the JWK's alg, else the key type's usual one)")
	method := fs.String("method", "", "HTTP method of the request, e.g. GET (htm; required)")
	target := fs.String("url", "", "URL of the request (htu; query and fragment are dropped; required)")
	token := fs.String("token", "", "access token the request carries, adding ath; - reads it from standard input")
	nonce := fs.String("nonce", "", "server nonce from a DPoP-Nonce response header")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireValues(fs, "key", "method", "url", "token", "nonce", "alg"); err != nil {
		return err
	}
	if *keyPath == "" || *method == "" || *target == "" {
		return usageError(fs, "proof needs --key, --method and --url")
	}
	if *alg != "" {
		name, ok := cliAlgorithm(*alg, keyfile.Algorithms)
		if !ok {
			return usageError(fs, fmt.Sprintf("--alg %q is not one of %s", printable(*alg, 40), strings.Join(keyfile.Algorithms, ", ")))
		}
		*alg = name
	}
	tok := *token
	if tok == "-" {
		var err error
		if tok, err = readLine(e.stdin, "the access token"); err != nil {
			return err
		}
	}
	prover, err := loadProverAlg(*keyPath, *alg)
	if err != nil {
		return err
	}
	proof, err := prover.Proof(*method, *target, dpop.ProofOptions{AccessToken: tok, Nonce: *nonce})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, proof)
	return err
}

// runToken implements "token": one client_credentials token request, with
// client_secret_basic when a secret is given, a client certificate (mTLS,
// RFC 8705) with --cert/--key, and DPoP proofs (RFC 9449) with --dpop-key.
// It prints the JSON response; an OAuth error response is a failure whose
// one-line message carries the error code.
func runToken(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "token", "token --token-endpoint URL --client-id ID [--client-secret S|-] [--dpop-key FILE] [--cert FILE --key FILE] [--scope S] [--ca-file FILE] [--access-token]\n\n"+
		"Requests an access token with the client_credentials grant and prints the JSON response\n"+
		"(with --access-token, only the access token, e.g. TOKEN=$(senderbound token ... --access-token)).\n"+
		"A secret authenticates with client_secret_basic; otherwise client_id is sent in the form (for\n"+
		"tls_client_auth, self_signed_tls_client_auth or a public client). --cert/--key present a client\n"+
		"certificate (certificate-bound token); --dpop-key attaches DPoP proofs (DPoP-bound token) and\n"+
		"answers one use_dpop_nonce challenge. Both may be combined (DPoP over mTLS).")
	endpoint := fs.String("token-endpoint", "", "token endpoint URL: https, or http on a loopback address (required)")
	clientID := fs.String("client-id", "", "client_id (required)")
	secret := fs.String("client-secret", "", "client secret for client_secret_basic; - reads it from standard input")
	dpopKey := fs.String("dpop-key", "", "DPoP proof key: a private JWK or PEM file")
	certPath := fs.String("cert", "", "client certificate PEM (leaf first, then any intermediates) for mTLS")
	keyPath := fs.String("key", "", "private key PEM or JWK of --cert")
	scope := fs.String("scope", "", "space-separated scope to request")
	caFile := fs.String("ca-file", "", "PEM bundle of CA certificates to trust for HTTPS instead of the system roots")
	onlyToken := fs.Bool("access-token", false, "print only the access_token value instead of the JSON response")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if err := requireValues(fs, "token-endpoint", "client-id", "client-secret", "dpop-key", "cert", "key", "scope", "ca-file"); err != nil {
		return err
	}
	if *endpoint == "" || *clientID == "" {
		return usageError(fs, "token needs --token-endpoint and --client-id")
	}
	if (*certPath == "") != (*keyPath == "") {
		return usageError(fs, "--cert and --key go together")
	}
	if err := checkTokenEndpoint(*endpoint); err != nil {
		return usageError(fs, err.Error())
	}
	sec := *secret
	if sec == "-" {
		var err error
		if sec, err = readLine(e.stdin, "the client secret"); err != nil {
			return err
		}
	}

	var roots *x509.CertPool
	if *caFile != "" {
		pemData, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pemData) {
			return fmt.Errorf("--ca-file %s holds no PEM certificate", *caFile)
		}
	}
	var clientCert *tls.Certificate
	if *certPath != "" {
		c, err := loadClientCertificate(*certPath, *keyPath)
		if err != nil {
			return err
		}
		clientCert = c
	}
	hc := mtlsbound.NewClient(clientCert, roots)
	// Never follow a redirect with client credentials: a 3xx is an error.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if *dpopKey != "" {
		prover, err := loadProver(*dpopKey)
		if err != nil {
			return err
		}
		hc.Transport = &dpop.Transport{Base: hc.Transport, Prover: prover}
	}

	body, tr, err := fetchToken(ctx, hc, *endpoint, *clientID, sec, *scope)
	if err != nil {
		return err
	}
	if *onlyToken {
		if _, err := fmt.Fprintln(e.stdout, tr.AccessToken); err != nil {
			return err
		}
	} else {
		if _, err := e.stdout.Write(body); err != nil {
			return err
		}
		if len(body) > 0 && body[len(body)-1] != '\n' {
			fmt.Fprintln(e.stdout)
		}
	}
	if *dpopKey != "" && !strings.EqualFold(tr.TokenType, "DPoP") {
		// RFC 9449 §5: the server ignored the proof; the token is not DPoP-bound.
		fmt.Fprintf(e.stderr, "senderbound token: warning: a DPoP proof was sent but token_type is %q, so the token is not bound to the DPoP key\n", printable(tr.TokenType, 40))
	}
	return nil
}

// tokenFields holds the fields of a token endpoint's answer that the token
// and load commands use.
type tokenFields struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// fetchToken makes one client_credentials request through hc, with
// client_secret_basic when secret is non-empty (else client_id in the
// form), and returns the raw JSON response and its fields. A non-200
// answer, or one without an access_token, is a one-line error.
func fetchToken(ctx context.Context, hc *http.Client, endpoint, clientID, secret, scope string) ([]byte, tokenFields, error) {
	var tr tokenFields
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	if secret == "" {
		form.Set("client_id", clientID)
	}
	// strings.Reader sets GetBody, so dpop.Transport can resend the body
	// after a use_dpop_nonce challenge.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, tr, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if secret != "" {
		// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic.
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, tr, withTransportHint(err, "token endpoint "+printable(endpoint, 200))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponseBytes+1))
	if err != nil {
		return nil, tr, fmt.Errorf("reading the token response: %w", err)
	}
	if len(body) > maxTokenResponseBytes {
		return nil, tr, fmt.Errorf("token response larger than %d bytes", maxTokenResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, tr, tokenErrorResponse(resp, body)
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return nil, tr, fmt.Errorf("token endpoint answered %d without a JSON access_token", resp.StatusCode)
	}
	return body, tr, nil
}

// checkTokenEndpoint accepts an absolute https URL, or an http URL whose host
// is a loopback address, without userinfo or fragment: credentials are
// never sent in clear over a network.
func checkTokenEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--token-endpoint %q is not an absolute URL", raw)
	}
	if u.User != nil || u.Fragment != "" {
		return errors.New("--token-endpoint must not carry userinfo or a fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackAddr(u.Hostname()) {
			return nil
		}
		return errors.New("--token-endpoint must be https (plain http only to a loopback address)")
	}
	return fmt.Errorf("--token-endpoint scheme %q is not https", u.Scheme)
}

// tokenErrorResponse turns a non-200 token endpoint response into a one-line
// error carrying the status and, when the body is an RFC 6749 §5.2 error
// object, its error code and description.
func tokenErrorResponse(resp *http.Response, body []byte) error {
	var oe struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &oe) != nil || oe.Error == "" {
		if plainHTTPToTLS(resp, body) {
			return fmt.Errorf("token endpoint answered %s to plain HTTP (%s)", resp.Status, hintHTTPS)
		}
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
			return fmt.Errorf("token endpoint answered %s, a redirect (not followed)", resp.Status)
		}
		return fmt.Errorf("token endpoint answered %s without an OAuth error", resp.Status)
	}
	msg := fmt.Sprintf("token endpoint answered %d: %s", resp.StatusCode, printable(oe.Error, 64))
	if oe.Description != "" {
		msg += ": " + printable(oe.Description, 200)
	}
	return errors.New(msg)
}

// printable returns s with every byte outside printable ASCII dropped, cut
// to at most n bytes, so that server-supplied text cannot forge terminal
// output or log lines.
func printable(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < n; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// loadProver reads a private key file (JWK or PEM) and returns a Prover
// for it, using the JWK's "alg" when it names one.
func loadProver(path string) (*dpop.Prover, error) {
	return loadProverAlg(path, "")
}

// loadProverAlg is loadProver signing with alg, when non-empty, instead of
// the JWK's "alg".
func loadProverAlg(path, alg string) (*dpop.Prover, error) {
	k, err := keyfile.Load(path)
	if err != nil {
		return nil, err
	}
	if alg == "" {
		alg = k.Algorithm
	}
	p, err := dpop.NewProver(k.Signer, &dpop.ProverOptions{Algorithm: alg})
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return p, nil
}

// loadClientCertificate reads a PEM certificate chain and its private key
// (PEM or JWK) and checks that they match.
func loadClientCertificate(certPath, keyPath string) (*tls.Certificate, error) {
	data, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	chain, err := certs.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("--cert %s: %w", certPath, err)
	}
	k, err := keyfile.Load(keyPath)
	if err != nil {
		return nil, err
	}
	pub, ok := chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(k.Signer.Public()) {
		return nil, fmt.Errorf("--key %s does not match the certificate in %s", keyPath, certPath)
	}
	tc := &tls.Certificate{PrivateKey: k.Signer, Leaf: chain[0]}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc, nil
}

// readLine reads one line (what) from r, without its line ending.
func readLine(r io.Reader, what string) (string, error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxTokenResponseBytes))
	sc.Buffer(make([]byte, 0, 4096), maxTokenResponseBytes)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return "", fmt.Errorf("reading %s from standard input: %w", what, err)
		}
		return "", fmt.Errorf("standard input holds no %s", strings.TrimPrefix(what, "the "))
	}
	line := strings.TrimSpace(sc.Text())
	if line == "" {
		return "", fmt.Errorf("standard input holds no %s", strings.TrimPrefix(what, "the "))
	}
	return line, nil
}
