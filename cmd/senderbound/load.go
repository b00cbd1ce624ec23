package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/loadgen"
	"github.com/senderbound/senderbound/mtlsbound"
)

// loadDefaultDuration bounds a run given neither --duration nor -n.
const loadDefaultDuration = 10 * time.Second

const loadSynopsis = `load --url URL [--mode dpop|mtls|bearer|none] [-c N] [--rate R] [--duration D] [-n N]
       [--method M] [--keepalive=false] [--timeout D]
       [--token T|- | --token-endpoint URL --client-id ID [--client-secret S|-] [--scope S]]
       [--dpop-key FILE] [--cert FILE --key FILE] [--ca-file FILE]
       [--signers N] [--server-pid PID] [--json] [--quiet]

Sends load to one protected resource and reports requests/s, latency
percentiles (p50, p90, p99, max), outcomes by status and WWW-Authenticate
error code, the generator's own CPU use and, with --server-pid, the server's
CPU time per request beside a raw ECDSA P-256 verification timed in this
process. A progress line goes to standard error once per second.

Modes:
  dpop    Authorization: DPoP with a fresh proof per request (ath included),
          signed ahead of need by --signers goroutines; DPoP-Nonce values are
          followed and a use_dpop_nonce challenge is retried once, as a client
          does. The token comes from --token-endpoint (client_credentials with
          a DPoP proof by --dpop-key, or by a fresh P-256 key), or is given with
          --token and --dpop-key, the key it is bound to.
  mtls    Authorization: Bearer with a certificate-bound token, over TLS with
          the client certificate --cert/--key; the token comes from
          --token-endpoint (requested over the same certificate) or --token.
  bearer  Authorization: Bearer with a token from --token-endpoint or --token.
  none    no credentials: the baseline of an unprotected handler.

Workers (-c) run a closed loop, each sending its next request when the last
is answered; with --rate, requests start at that many per second (latency
counts from the scheduled start) and -c bounds those in flight. The run stops
after --duration or -n requests, whichever comes first (10s when neither is
given). One warm-up request, not counted, comes first. A token from
--token-endpoint is requested again at three quarters of its expires_in
(and 1.5s before its end at the latest). A run whose first 20
requests all fail, or which meets 50 transport failures in a row, stops with
a one-line cause and exit status 1. Credentials are sent over plain http only
to a loopback address.`

// runLoad implements "load".
func runLoad(ctx context.Context, e *env, args []string) error {
	const cmd = "load"
	fs := newFlags(e, cmd, loadSynopsis)
	target := fs.String("url", "", "URL of the protected resource (required)")
	mode := fs.String("mode", "dpop", "dpop, mtls, bearer or none")
	workers := fs.Int("c", 10, "concurrent workers (with --rate: the most requests in flight)")
	rate := fs.Float64("rate", 0, "requests per second (0: closed loop, as fast as the workers go)")
	duration := fs.Duration("duration", 0, "how long to send (default 10s unless -n is given)")
	count := fs.Int64("n", 0, "number of requests to send (0: no count, --duration bounds the run)")
	method := fs.String("method", http.MethodGet, "request method (requests have no body)")
	keepAlive := fs.Bool("keepalive", true, "reuse connections; false opens a new connection (and TLS handshake) per request")
	timeout := fs.Duration("timeout", 10*time.Second, "time limit of one exchange")
	token := fs.String("token", "", "access token to send; - reads it from standard input")
	endpoint := fs.String("token-endpoint", "", "get the token from this token endpoint (client_credentials) instead of --token")
	clientID := fs.String("client-id", "", "client_id at --token-endpoint")
	secret := fs.String("client-secret", "", "client secret for client_secret_basic at --token-endpoint; - reads it from standard input")
	scope := fs.String("scope", "", "space-separated scope to request at --token-endpoint")
	dpopKey := fs.String("dpop-key", "", "DPoP proof key, a private JWK or PEM file (dpop mode; with --token it is required)")
	certPath := fs.String("cert", "", "client certificate PEM (leaf first, then intermediates) for TLS; required in mtls mode")
	keyPath := fs.String("key", "", "private key PEM or JWK of --cert")
	caFile := fs.String("ca-file", "", "PEM bundle of CA certificates to trust for HTTPS instead of the system roots")
	signers := fs.Int("signers", 0, "goroutines signing DPoP proofs ahead of need (0: one per core)")
	serverPID := fs.Int("server-pid", 0, "process id of the server on this machine: report its CPU time per request (Linux /proc)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("quiet", false, "no progress line")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}

	// Flag syntax and combinations, before anything is read or sent.
	usage := func(format string, a ...any) error { return serveUsagef(e, cmd, format, a...) }
	var empty string
	fs.Visit(func(f *flag.Flag) {
		if empty == "" && f.Value.String() == "" {
			empty = f.Name
		}
	})
	if empty != "" {
		return usage("--%s needs a non-empty value", empty)
	}
	if *target == "" {
		return usage("--url is required")
	}
	u, err := url.Parse(*target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return usage("--url must be an absolute http or https URL without userinfo")
	}
	switch {
	case *workers < 1 || *workers > 100_000:
		return usage("-c must be between 1 and 100000")
	case !(*rate >= 0 && *rate <= 1e7) || (*rate > 0 && *rate < 0.01): // NaN too
		return usage("--rate must be 0 (closed loop) or between 0.01 and 10000000")
	case *duration < 0:
		return usage("--duration must not be negative")
	case *count < 0:
		return usage("-n must not be negative")
	case *timeout <= 0:
		return usage("--timeout must be positive")
	case *signers < 0 || *signers > 64:
		return usage("--signers must be between 0 and 64")
	case *serverPID < 0:
		return usage("--server-pid must be a process id")
	case (*certPath == "") != (*keyPath == ""):
		return usage("--cert and --key go together")
	case *token != "" && *endpoint != "":
		return usage("give --token or --token-endpoint, not both")
	case *endpoint == "" && (*clientID != "" || *secret != "" || *scope != ""):
		return usage("--client-id, --client-secret and --scope go with --token-endpoint")
	case *endpoint != "" && *clientID == "":
		return usage("--token-endpoint needs --client-id")
	}
	if _, err := http.NewRequest(*method, *target, nil); err != nil {
		return usage("--method %q is not an HTTP method", printable(*method, 20))
	}
	if *duration == 0 && *count == 0 {
		*duration = loadDefaultDuration
	}
	withToken := *token != "" || *endpoint != ""
	switch *mode {
	case "none":
		if withToken || *dpopKey != "" {
			return usage("mode none sends no credentials: drop --token, --token-endpoint and --dpop-key")
		}
	case "dpop":
		if !withToken {
			return usage("mode dpop needs --token-endpoint or --token")
		}
		if *token != "" && *dpopKey == "" {
			return usage("--token in mode dpop needs --dpop-key, the key the token is bound to")
		}
	case "mtls":
		if !withToken || *certPath == "" {
			return usage("mode mtls needs --cert, --key and --token-endpoint or --token")
		}
	case "bearer":
		if !withToken {
			return usage("mode bearer needs --token-endpoint or --token")
		}
	default:
		return usage("--mode must be dpop, mtls, bearer or none")
	}
	if *dpopKey != "" && *mode != "dpop" {
		return usage("--dpop-key goes with mode dpop")
	}
	if *mode != "none" {
		if err := checkCredentialURL(u); err != nil {
			return usage("%v", err)
		}
	}
	if *endpoint != "" {
		if err := checkTokenEndpoint(*endpoint); err != nil {
			return usage("%v", err)
		}
	}

	// Files and standard input.
	var roots *x509.CertPool
	if *caFile != "" {
		if roots, err = serveLoadPool("--ca-file", *caFile); err != nil {
			return err
		}
	}
	var clientCert *tls.Certificate
	if *certPath != "" {
		if clientCert, err = loadClientCertificate(*certPath, *keyPath); err != nil {
			return err
		}
	}
	var prover *dpop.Prover
	if *mode == "dpop" {
		if *dpopKey != "" {
			prover, err = loadProver(*dpopKey)
		} else {
			prover, err = loadFreshProver()
		}
		if err != nil {
			return err
		}
	}
	tok, sec := *token, *secret
	if tok == "-" {
		if tok, err = readLine(e.stdin, "the access token"); err != nil {
			return err
		}
	}
	if sec == "-" {
		if sec, err = readLine(e.stdin, "the client secret"); err != nil {
			return err
		}
	}

	// The token, from the token endpoint when asked, and again before it
	// expires.
	var refresh loadgen.TokenSource
	var lifetime time.Duration
	if *endpoint != "" {
		hc := mtlsbound.NewClient(clientCert, roots)
		hc.Timeout = *timeout
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		if prover != nil {
			hc.Transport = &dpop.Transport{Base: hc.Transport, Prover: prover}
		}
		refresh = func(ctx context.Context) (string, time.Duration, error) {
			_, tr, err := fetchToken(ctx, hc, *endpoint, *clientID, sec, *scope)
			var ue *url.Error
			if errors.As(err, &ue) {
				if cause, hint, ok := transportDiagnosis(err); ok {
					err = fmt.Errorf("token endpoint: %s at %s (%s)", cause, *endpoint, hint)
				} else {
					err = fmt.Errorf("token endpoint: %s at %s", loadgen.TransportCause(err), *endpoint)
				}
			}
			if err != nil {
				return "", 0, err
			}
			if prover != nil && !strings.EqualFold(tr.TokenType, "DPoP") {
				return "", 0, fmt.Errorf("the token endpoint answered token_type %q, not a DPoP-bound token", printable(tr.TokenType, 40))
			}
			return tr.AccessToken, loadTokenLifetime(tr.ExpiresIn), nil
		}
		if tok, lifetime, err = refresh(ctx); err != nil {
			return err
		}
	}

	var auth loadgen.Authorizer
	switch *mode {
	case "none":
		auth = loadgen.NoAuth{}
	case "mtls", "bearer":
		auth = &loadgen.Bearer{Name: *mode, Token: tok, Lifetime: lifetime, Refresh: refresh}
	case "dpop":
		d, err := loadgen.NewDPoP(loadgen.DPoPConfig{Prover: prover, Token: tok, Method: *method, URL: *target, Signers: *signers,
			Lifetime: lifetime, Refresh: refresh})
		if err != nil {
			return err
		}
		auth = d
	}

	cfg := loadgen.Config{
		URL: *target, Method: *method, Client: loadClient(clientCert, roots, *workers, *keepAlive, *timeout),
		Auth: auth, Workers: *workers, Rate: *rate, Duration: *duration, Requests: *count, ServerPID: *serverPID,
	}
	if !*quiet {
		cfg.Progress = func(p loadgen.Progress) {
			fmt.Fprintf(e.stderr, "%5.0fs %9d requests %9.1f/s  2xx %d  refused %d  failed %d\n",
				p.Elapsed.Seconds(), p.Requests, p.PerSecond, p.Succeeded, p.Refused, p.Failed)
		}
	}
	res, runErr := loadgen.Run(ctx, cfg)
	if runErr != nil && (strings.Contains(runErr.Error(), "TLS") || strings.Contains(runErr.Error(), "plain HTTP") || strings.Contains(runErr.Error(), "answered 400")) {
		// The run's outcome names a TLS failure (or a bare 400, which
		// plain HTTP to a TLS port gets) in a few words; one request
		// without credentials tells which, for the hint.
		runErr = loadTLSHint(ctx, cfg.Client, *target, runErr)
	}
	if res == nil {
		return runErr
	}
	res.KeepAlive = *keepAlive
	if *asJSON {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(e.stdout, "%s\n", data); err != nil {
			return err
		}
	} else if err := res.WriteText(e.stdout); err != nil {
		return err
	}
	return runErr
}

// loadMaxLifetime bounds the expires_in taken from a token response.
const loadMaxLifetime = 366 * 24 * time.Hour

// loadTokenLifetime turns expires_in (seconds) into a duration; 0 (no
// refresh) when absent, not positive or beyond a year.
func loadTokenLifetime(expiresIn int64) time.Duration {
	if expiresIn <= 0 || expiresIn > int64(loadMaxLifetime/time.Second) {
		return 0
	}
	return time.Duration(expiresIn) * time.Second
}

// checkCredentialURL refuses a plain http target outside loopback: a
// token must not cross a network in clear.
func checkCredentialURL(u *url.URL) error {
	if u.Scheme == "http" && !isLoopbackAddr(u.Hostname()) {
		return errors.New("--url must be https to send credentials (plain http only to a loopback address)")
	}
	return nil
}

// loadFreshProver returns a prover with a new P-256 key, for a DPoP token
// requested at the start of the run.
func loadFreshProver() (*dpop.Prover, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return dpop.NewProver(k, nil)
}

// loadClient returns the HTTP/1.1 client of the load: one idle connection
// per worker, or none without keep-alive; no proxy from the environment, so
// that the numbers are those of the target.
func loadClient(cert *tls.Certificate, roots *x509.CertPool, workers int, keepAlive bool, timeout time.Duration) *http.Client {
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = tc
	tr.ForceAttemptHTTP2 = false
	tr.DisableKeepAlives = !keepAlive
	tr.MaxIdleConns = workers
	tr.MaxIdleConnsPerHost = workers
	return &http.Client{Transport: tr, Timeout: timeout}
}

// loadTLSHint sends one GET without credentials to target through hc and,
// when it fails with a TLS problem transportDiagnosis recognises, returns
// runErr's message with that cause and hint; else runErr.
func loadTLSHint(ctx context.Context, hc *http.Client, target string, runErr error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return runErr
	}
	resp, err := hc.Do(req)
	if err == nil {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		if plainHTTPToTLS(resp, body) {
			return &hintedError{msg: fmt.Sprintf("%s (%s)", runErr.Error(), hintHTTPS), err: runErr}
		}
		return runErr
	}
	cause, hint, ok := transportDiagnosis(err)
	if !ok {
		return runErr
	}
	return &hintedError{msg: fmt.Sprintf("%s: %s (%s)", runErr.Error(), cause, hint), err: runErr}
}
