package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"
	"golang.org/x/net/netutil"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/internal/keyfile"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/replaycache/redisstore"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/trustedproxy"
)

// serveDefaultAudience is the audience serve-issuer puts in its tokens and
// serve-resource expects when --audience is not given, so that the two
// commands work together without configuration.
const serveDefaultAudience = "https://resource.senderbound.test"

// serveDefaultScopes are the scopes serve-issuer lets every client request
// when no --scope is given.
var serveDefaultScopes = []string{"read", "write"}

// serveAlgorithms are the JWS algorithms accepted for DPoP proofs and, at the
// resource server, for access tokens: every algorithm keygen can make a key for.
var serveAlgorithms = keyfile.Algorithms

// serveMinSecretLen is the shortest client secret serve-issuer accepts: the
// issuer stores a single SHA-256 of each secret, which is only safe for
// high-entropy generated secrets.
const serveMinSecretLen = 16

// serveListener serves h on ln (TLS when tlsConfig is non-nil), prints one
// line "listening on <URL>" once ready, and shuts down gracefully when ctx
// ends (SIGINT/SIGTERM in main). Servers open ln themselves because they
// must know their port before they can build their handler. It takes
// ownership of ln and closes it in every case.
//
// At most cf.maxConns connections are open at once (TLS handshakes
// included): a client beyond the limit waits in the listen queue until one
// closes. cf's timeouts bound how long a connection may hold its slot while
// sending its request headers or idling between requests.
func serveListener(ctx context.Context, e *env, ln net.Listener, tlsConfig *tls.Config, h http.Handler, cf serveConnFlags) error {
	ln = netutil.LimitListener(ln, cf.maxConns)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tlsConfig)
	}
	srv := newHTTPServer(h)
	srv.TLSConfig = tlsConfig
	srv.ReadHeaderTimeout = cf.readHeaderTimeout
	srv.IdleTimeout = cf.idleTimeout
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(e.stdout, "listening on %s://%s\n", scheme, ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Fprintln(e.stderr, "shut down")
	return nil
}

// newHTTPServer returns an http.Server with conservative limits: header
// size, read and idle timeouts.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// serveUsagef reports an invalid flag value or combination on one line and
// returns errUsage (exit status 2).
func serveUsagef(e *env, cmd, format string, args ...any) error {
	fmt.Fprintf(e.stderr, "senderbound %s: %s (run 'senderbound %s -h')\n", cmd, fmt.Sprintf(format, args...), cmd)
	return errUsage
}

// serveSplitPair splits "A:B" at the first colon; both parts must be
// non-empty.
func serveSplitPair(v string) (a, b string, ok bool) {
	a, b, ok = strings.Cut(v, ":")
	return a, b, ok && a != "" && b != ""
}

// serveIsLoopbackHost reports whether host (a name or an IP address, without
// port or brackets) is "localhost" or a loopback address.
func serveIsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// serveAddrHost returns the host part of a listen address, or an error for
// an address that is not HOST:PORT.
func serveAddrHost(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	return host, err
}

// serveLoadTLS loads the server certificate and key given by --tls-cert and
// --tls-key.
func serveLoadTLS(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// serveLoadPool reads the PEM certificates of file into a new pool.
func serveLoadPool(flagName, file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	list, err := certs.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flagName, file, err)
	}
	pool := x509.NewCertPool()
	for _, c := range list {
		pool.AddCert(c)
	}
	return pool, nil
}

// serveTLSFlags are the --tls-cert, --tls-key and --client-ca flags shared by
// both servers.
type serveTLSFlags struct {
	cert, key, clientCA string
}

// register defines the flags on fs; clientCAUsage says what --client-ca
// means for this server.
func (f *serveTLSFlags) register(fs *flag.FlagSet, clientCAUsage string) {
	fs.StringVar(&f.cert, "tls-cert", "", "serve HTTPS with this certificate (PEM, leaf first); needs --tls-key")
	fs.StringVar(&f.key, "tls-key", "", "private key (PEM) of --tls-cert")
	fs.StringVar(&f.clientCA, "client-ca", "", clientCAUsage)
}

// check rejects --tls-key without --tls-cert and the like.
func (f *serveTLSFlags) check(e *env, cmd string) error {
	switch {
	case f.cert != "" && f.key == "":
		return serveUsagef(e, cmd, "--tls-cert requires --tls-key")
	case f.key != "" && f.cert == "":
		return serveUsagef(e, cmd, "--tls-key requires --tls-cert")
	case f.clientCA != "" && f.cert == "":
		return serveUsagef(e, cmd, "--client-ca requires --tls-cert and --tls-key")
	}
	return nil
}

// enabled reports whether the server listens with TLS.
func (f *serveTLSFlags) enabled() bool { return f.cert != "" }

// Connection limits of both servers.
const (
	serveDefaultMaxConns          = 1024
	serveDefaultIdleTimeout       = 60 * time.Second
	serveDefaultReadHeaderTimeout = 10 * time.Second
)

// serveConnFlags are the --max-connections, --idle-timeout and
// --read-header-timeout flags shared by both servers.
type serveConnFlags struct {
	maxConns                       int
	idleTimeout, readHeaderTimeout time.Duration
}

// register defines the flags on fs.
func (f *serveConnFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.maxConns, "max-connections", serveDefaultMaxConns, "most connections open at once, idle keep-alive ones included; more wait to be accepted")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", serveDefaultIdleTimeout, "close a keep-alive connection idle this long, 1s to 1h")
	fs.DurationVar(&f.readHeaderTimeout, "read-header-timeout", serveDefaultReadHeaderTimeout, "close a connection whose TLS handshake and request headers take longer, 1s to 5m")
}

// check rejects values outside the documented ranges.
func (f *serveConnFlags) check(e *env, cmd string) error {
	switch {
	case f.maxConns < 1:
		return serveUsagef(e, cmd, "--max-connections must be at least 1")
	case f.idleTimeout < time.Second || f.idleTimeout > time.Hour:
		return serveUsagef(e, cmd, "--idle-timeout must be between 1s and 1h")
	case f.readHeaderTimeout < time.Second || f.readHeaderTimeout > 5*time.Minute:
		return serveUsagef(e, cmd, "--read-header-timeout must be between 1s and 5m")
	}
	return nil
}

// serveLogFlags are the --log-level and --log-format flags shared by both
// servers.
type serveLogFlags struct {
	level  string
	format string
}

// register defines the flags on fs.
func (f *serveLogFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.level, "log-level", "info", "least level logged: debug (adds every refused request with its stable reason), info, warn or error")
	fs.StringVar(&f.format, "log-format", "text", "log record format on stderr: text or json")
}

// logger returns the structured logger the flags describe, writing to w,
// or a usage error for a value outside the documented sets.
func (f *serveLogFlags) logger(e *env, cmd string, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(f.level) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, serveUsagef(e, cmd, "--log-level must be debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(f.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, serveUsagef(e, cmd, "--log-format must be text or json")
}

const serveIssuerSynopsis = `serve-issuer --addr HOST:PORT [--issuer URL] [--audience AUD]... [--scope S]...
       [--signing-key FILE | --state-dir DIR | --ephemeral-key] [--token-ttl DUR] [--require-nonce]
       [--replay-capacity N] [--replay-quota N] [--redis URL [--redis-password-file FILE]]
       [--nonce-secret-file FILE]
       [--client ID[:SECRET|:@FILE]]... [--public-client ID]...
       [--mtls-client ID:SUBJECT_DN|ID:san-dns=NAME|ID:san-uri=URI|ID:san-ip=IP|ID:san-email=ADDR]...
       [--self-signed-client ID:CERT_PEM]...
       [--dpop-bound ID]... [--introspect-all ID]...
       [--tls-cert FILE --tls-key FILE [--client-ca FILE]]
       [--max-connections N] [--idle-timeout DUR] [--read-header-timeout DUR]
       [--log-level debug|info|warn|error] [--log-format text|json] [--ops-addr HOST:PORT]
       [--fallback-ca DIR [--fallback-cert-ttl DUR]]

Serves an OAuth authorization server issuing sender-constrained access tokens
(client_credentials and refresh_token grants) at
  /token, /jwks, /introspect and /.well-known/oauth-authorization-server
below the issuer identifier. A token request with a valid DPoP proof gets a
DPoP-bound token (cnf.jkt, token_type DPoP); otherwise a client certificate
proven in the TLS handshake binds it (cnf.x5t#S256, token_type Bearer). A
--dpop-bound client (RFC 9449 dpop_bound_access_tokens) must send a DPoP proof
with every token request; without one it gets 400 invalid_dpop_proof.

Every client may request the --scope values; a request without scope gets all
of them. Tokens carry every --audience in aud. Confidential (--client) clients
authenticate with client_secret_basic and may call /introspect, which shows
them only the tokens issued to them; --introspect-all lets one (a resource
server) introspect every access token.

A --mtls-client certificate must chain to --client-ca, list the clientAuth
extended key usage and match its one registered selector: the subject DN
(RFC 4514; values compared without regard to ASCII case and outer spaces),
or a SAN of the one type named: san-dns a dNSName case-insensitively in ASCII
(no wildcards), san-uri a URI SAN exactly (the scheme excepted), e.g. a
service mesh's SPIFFE ID spiffe://example.org/ns/a/sa/b, san-ip an iPAddress
in binary form (an IPv4-mapped IPv6 address is not the IPv4 address),
san-email an rfc822Name with the local part exactly and the domain
case-insensitively in ASCII. A value that starts with none of san-dns=,
san-uri=, san-ip=, san-email= is a subject DN.

Client secrets: --client ID:SECRET puts the secret on the command line, where
other local users can read it in the process table; prefer --client ID:@FILE
(the secret is the file's content without its trailing newline; the file must
be readable by its owner only) or --client ID with the secret in the
environment variable SENDERBOUND_CLIENT_SECRET_<ID> (ID in upper case, every
character other than A-Z and 0-9 replaced by "_"). Secrets have at least 16
characters.

Signing key: tokens stay verifiable across restarts only if the key does.
Without --signing-key the key is DIR/signing-key.jwk, where DIR is --state-dir
(default: senderbound in the user's configuration directory, e.g.
~/.config/senderbound); it is created with a fresh ES256 key on the first start
(mode 0600) and reused afterwards. Key files readable or writable by group or
others are refused. --ephemeral-key signs with a key kept in memory only, so
every token dies when the process exits (tests only). Standard output carries
only the listening line. Plain HTTP is allowed only on loopback (for local
tests).

With --fallback-ca DIR (a CA made by 'ca create') the issuer is also the
fallback certificate authority: clients POST a CSR to /certificate and get a
client certificate carrying their client_id and scopes; /crl serves the CRL of
the certificates revoked with 'ca revoke --ca DIR', re-read on every request.

Several instances behind one load balancer: give every instance the same
--issuer, --signing-key and clients. --redis shares the replay store and the
refresh tokens (single use: a refresh token redeemed at one instance is
refused at every other); the Redis password comes from --redis-password-file
or SENDERBOUND_REDIS_PASSWORD rather than the URL, which other local users can
read in the process table. With --require-nonce, --nonce-secret-file (or
SENDERBOUND_NONCE_SECRET) shares the nonce secret, so that a nonce from one
instance is accepted at the others; it needs --issuer. Secret files must be
readable by their owner only; a trailing newline is ignored.` + serveNonceSecretHelp

// serveStateKeyFile is the default signing key's name in --state-dir.
const serveStateKeyFile = "signing-key.jwk"

// serveSecretEnvPrefix begins the environment variable that holds a
// client's secret when --client names no secret.
const serveSecretEnvPrefix = "SENDERBOUND_CLIENT_SECRET_"

// serveSecretEnv returns the environment variable for client id's secret:
// serveSecretEnvPrefix, then id in upper case with every character other
// than A-Z and 0-9 replaced by "_".
func serveSecretEnv(id string) string {
	b := []byte(strings.ToUpper(id))
	for i, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	return serveSecretEnvPrefix + string(b)
}

// serveSecretSource says where a --client secret came from.
type serveSecretSource int

const (
	secretFromArgs serveSecretSource = iota
	secretFromFile
	secretFromEnv
)

// serveClientSecret reads the client ID and secret of one --client value:
// ID:SECRET, ID:@FILE or ID (secret in serveSecretEnv(ID)). A usage
// problem returns errUsage after a one-line message; a file that cannot be
// read returns its error. No message includes a secret.
func serveClientSecret(e *env, cmd, v string) (id, secret string, src serveSecretSource, err error) {
	id, rest, hasColon := strings.Cut(v, ":")
	if id == "" {
		return "", "", 0, serveUsagef(e, cmd, "--client needs ID:SECRET, ID:@FILE or ID with the secret in %sID", serveSecretEnvPrefix)
	}
	switch {
	case !hasColon:
		name := serveSecretEnv(id)
		val, ok := e.getenv(name)
		if !ok || val == "" {
			return "", "", 0, serveUsagef(e, cmd, "--client %q names no secret and %s is not set (--client needs ID:SECRET, ID:@FILE or ID with the secret in %s)", id, name, name)
		}
		secret, src = val, secretFromEnv
	case strings.HasPrefix(rest, "@") && len(rest) > 1:
		if secret, err = serveReadSecretFile(rest[1:]); err != nil {
			return "", "", 0, fmt.Errorf("--client %s: secret file: %w", id, err)
		}
		src = secretFromFile
	case rest == "" || rest == "@":
		return "", "", 0, serveUsagef(e, cmd, "--client needs ID:SECRET, ID:@FILE or ID with the secret in %sID", serveSecretEnvPrefix)
	default:
		secret, src = rest, secretFromArgs
	}
	if p := serveSecretProblem(secret, serveMinSecretLen); p != "" {
		return "", "", 0, serveUsagef(e, cmd, "--client %q: the secret %s", id, p)
	}
	return id, secret, src, nil
}

// runServeIssuer implements "serve-issuer".
func runServeIssuer(ctx context.Context, e *env, args []string) error {
	const cmd = "serve-issuer"
	fs := newFlags(e, cmd, serveIssuerSynopsis)
	addr := fs.String("addr", "", "listen address HOST:PORT (required; port 0 picks a free port)")
	issuerURL := fs.String("issuer", "", "issuer identifier (iss); default http://ADDR, or https://ADDR with --tls-cert, with the port actually bound")
	var audiences, scopes, secretClients, publicClients, mtlsClients, selfSignedClients listFlag
	fs.Var(&audiences, "audience", "audience (aud) of every token, repeatable (default "+serveDefaultAudience+")")
	fs.Var(&scopes, "scope", "scope every client may request, repeatable; a request without scope gets all (default "+strings.Join(serveDefaultScopes, ", ")+")")
	signingKey := fs.String("signing-key", "", "private signing key file, readable by its owner only: a private JWK (as written by keygen) or a PKCS#8/SEC 1/PKCS#1 PEM file (default: DIR/"+serveStateKeyFile+" of --state-dir, created on the first start)")
	stateDir := fs.String("state-dir", "", "directory holding the default signing key "+serveStateKeyFile+", created with mode 0700 if needed (default: senderbound in the user's configuration directory)")
	ephemeral := fs.Bool("ephemeral-key", false, "sign with a fresh ES256 key kept in memory only: every token dies when the process exits (tests only)")
	ttl := fs.Duration("token-ttl", 5*time.Minute, "access-token lifetime, 1s to 24h")
	fs.Var(&secretClients, "client", "register a confidential client (client_secret_basic, may introspect its own tokens) as ID:@FILE (secret in FILE), ID (secret in $"+serveSecretEnvPrefix+"<ID>) or ID:SECRET (visible in the process table); secret at least 16 characters; repeatable")
	fs.Var(&publicClients, "public-client", "register a public client ID (token_endpoint_auth_method none; refresh_token only, client_credentials is for confidential clients), repeatable")
	fs.Var(&mtlsClients, "mtls-client", "register a tls_client_auth client by subject DN, ID:SUBJECT_DN (RFC 4514, e.g. CN=app,O=Example), or by SAN (RFC 8705 §2.1.2), ID:san-dns=NAME, ID:san-uri=URI (e.g. a SPIFFE ID), ID:san-ip=ADDRESS or ID:san-email=ADDRESS; the certificate must chain to --client-ca; repeatable")
	fs.Var(&selfSignedClients, "self-signed-client", "register a self_signed_tls_client_auth client ID:CERT_PEM whose certificate is the one in the PEM file; repeatable")
	var dpopBound, introspectAll listFlag
	fs.Var(&dpopBound, "dpop-bound", "client ID must send a DPoP proof with every token request and gets only DPoP-bound tokens (dpop_bound_access_tokens), repeatable")
	fs.Var(&introspectAll, "introspect-all", "--client ID may introspect every access token, not only its own (for a resource server), repeatable")
	var tf serveTLSFlags
	tf.register(fs, "trust anchors (PEM) that --mtls-client certificates must chain to; client certificates are requested, not required, at the handshake")
	requireNonce := fs.Bool("require-nonce", false, "require a server nonce in every DPoP proof (RFC 9449 §8)")
	var cf serveConnFlags
	cf.register(fs)
	var lf serveLogFlags
	lf.register(fs)
	var of serveOpsFlags
	of.register(fs)
	replayCapacity := fs.Int("replay-capacity", replaycache.DefaultCapacity, "entries of the in-memory replay store of DPoP proof and client assertion jti values (without --redis); when full of live entries, DPoP token requests are refused with 503")
	replayQuota := fs.Int("replay-quota", replaycache.DefaultQuotaLimit, "replay-store entries one DPoP key, or one confidential client, may create per 105 s")
	redisURL := fs.String("redis", "", "share the replay store and the refresh tokens with the other instances of this issuer through Redis, e.g. redis://host:6379/0 (default: in memory, one instance)")
	var sf serveSharedFlags
	sf.register(fs)
	fallbackCA := fs.String("fallback-ca", "", "directory written by 'ca create': issue fallback client certificates at /certificate and publish the CRL of DIR/"+fallbackRevocationsFile+" at /crl")
	fallbackTTL := fs.Duration("fallback-cert-ttl", fallback.DefaultLifetime, "lifetime of fallback client certificates (with --fallback-ca)")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}

	// Flag syntax and combinations, before anything is read or opened.
	if *addr == "" {
		return serveUsagef(e, cmd, "--addr is required")
	}
	if *replayCapacity < 1 || *replayQuota < 1 {
		return serveUsagef(e, cmd, "--replay-capacity and --replay-quota must be at least 1")
	}
	if *fallbackTTL <= 0 {
		return serveUsagef(e, cmd, "--fallback-cert-ttl must be positive")
	}
	listenHost, err := serveAddrHost(*addr)
	if err != nil {
		return serveUsagef(e, cmd, "--addr must be HOST:PORT")
	}
	if err := tf.check(e, cmd); err != nil {
		return err
	}
	if err := cf.check(e, cmd); err != nil {
		return err
	}
	if err := of.check(e, cmd); err != nil {
		return err
	}
	logger, err := lf.logger(e, cmd, e.stderr)
	if err != nil {
		return err
	}
	ops := newServeOps(logger)
	if *ttl < time.Second || *ttl > 24*time.Hour {
		return serveUsagef(e, cmd, "--token-ttl must be between 1s and 24h")
	}
	switch {
	case *ephemeral && (*signingKey != "" || *stateDir != ""):
		return serveUsagef(e, cmd, "--ephemeral-key excludes --signing-key and --state-dir")
	case *signingKey != "" && *stateDir != "":
		return serveUsagef(e, cmd, "--state-dir only locates the default signing key; it excludes --signing-key")
	}
	if len(mtlsClients) > 0 && tf.clientCA == "" {
		return serveUsagef(e, cmd, "--mtls-client requires --client-ca (and --tls-cert, --tls-key)")
	}
	if len(selfSignedClients) > 0 && !tf.enabled() {
		return serveUsagef(e, cmd, "--self-signed-client requires --tls-cert and --tls-key")
	}
	if *issuerURL == "" {
		if ip, err := netip.ParseAddr(listenHost); listenHost == "" || (err == nil && ip.IsUnspecified()) {
			return serveUsagef(e, cmd, "--issuer is required when --addr names no host")
		}
	} else if err := serveCheckIssuerURL(*issuerURL, listenHost, tf.enabled()); err != nil {
		return serveUsagef(e, cmd, "%v", err)
	}
	// The nonce label is the issuer identifier, derived from the port
	// actually bound unless --issuer names it.
	nonceSecrets, err := sf.nonceSecrets(e, cmd, *requireNonce, *issuerURL != "", "--issuer, the identifier every instance shares")
	if err != nil {
		return err
	}
	redisPassword, redisPasswordInURL, err := sf.redisPassword(e, cmd, *redisURL)
	if err != nil {
		return err
	}
	if len(audiences) == 0 {
		audiences = listFlag{serveDefaultAudience}
	}
	if len(scopes) == 0 {
		scopes = serveDefaultScopes
	}
	for _, s := range scopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") {
			return serveUsagef(e, cmd, "--scope %q is not a scope token", s)
		}
	}
	seen := map[string]bool{}
	register := func(id string) error {
		if seen[id] {
			return serveUsagef(e, cmd, "client %q is registered twice", id)
		}
		seen[id] = true
		return nil
	}
	var clients []issuer.Client
	var onCommandLine []string // clients whose secret is in the process table
	secretEnvs := map[string]string{}
	for _, v := range secretClients {
		id, secret, src, err := serveClientSecret(e, cmd, v)
		if err != nil {
			return err
		}
		if err := register(id); err != nil {
			return err
		}
		switch src {
		case secretFromArgs:
			onCommandLine = append(onCommandLine, id)
		case secretFromEnv:
			if other, ok := secretEnvs[serveSecretEnv(id)]; ok {
				return serveUsagef(e, cmd, "clients %q and %q would both read their secret from %s", other, id, serveSecretEnv(id))
			}
			secretEnvs[serveSecretEnv(id)] = id
		}
		clients = append(clients, issuer.Client{ID: id, AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(secret), Scopes: scopes, Introspect: true})
	}
	for _, id := range publicClients {
		if id == "" || strings.Contains(id, ":") {
			return serveUsagef(e, cmd, "--public-client needs a client ID without ':'")
		}
		if err := register(id); err != nil {
			return err
		}
		clients = append(clients, issuer.Client{ID: id, AuthMethod: issuer.AuthNone, Scopes: scopes})
	}
	type pair struct{ id, value string }
	type mtlsClient struct {
		id   string
		auth mtlsbound.PKIAuth
	}
	var selfSignedPairs []pair
	var mtlsRegs []mtlsClient
	for _, v := range mtlsClients {
		id, auth, err := serveMTLSClient(e, cmd, v)
		if err != nil {
			return err
		}
		if err := register(id); err != nil {
			return err
		}
		mtlsRegs = append(mtlsRegs, mtlsClient{id, auth})
	}
	for _, v := range selfSignedClients {
		id, file, ok := serveSplitPair(v)
		if !ok {
			return serveUsagef(e, cmd, "--self-signed-client needs ID:CERT_PEM")
		}
		if err := register(id); err != nil {
			return err
		}
		selfSignedPairs = append(selfSignedPairs, pair{id, file})
	}
	for _, id := range dpopBound {
		if !seen[id] {
			return serveUsagef(e, cmd, "--dpop-bound %q names no registered client", id)
		}
	}
	for _, id := range introspectAll {
		if !slices.ContainsFunc(clients, func(c issuer.Client) bool { return c.ID == id && c.Introspect }) {
			return serveUsagef(e, cmd, "--introspect-all %q names no --client", id)
		}
	}

	// Files.
	var tlsConfig *tls.Config
	if tf.enabled() {
		cert, err := serveLoadTLS(tf.cert, tf.key)
		if err != nil {
			return err
		}
		tlsConfig = mtlsbound.ServerTLSConfig(cert)
	}
	if len(mtlsRegs) > 0 {
		roots, err := serveLoadPool("--client-ca", tf.clientCA)
		if err != nil {
			return err
		}
		for _, m := range mtlsRegs {
			m.auth.Roots = roots
			clients = append(clients, issuer.Client{ID: m.id, AuthMethod: issuer.AuthTLSClient, Scopes: scopes, Certificate: m.auth})
		}
	}
	for _, p := range selfSignedPairs {
		data, err := os.ReadFile(p.value)
		if err != nil {
			return fmt.Errorf("--self-signed-client %s: %w", p.id, err)
		}
		auth, err := mtlsbound.SelfSignedFromPEM(data)
		if err != nil {
			return fmt.Errorf("--self-signed-client %s: %w", p.id, err)
		}
		clients = append(clients, issuer.Client{ID: p.id, AuthMethod: issuer.AuthSelfSignedTLSClient, Scopes: scopes,
			Certificate: issuer.SelfSigned(auth.Authenticate)})
	}
	for i := range clients {
		c := &clients[i]
		if slices.Contains(dpopBound, c.ID) {
			c.DPoPBoundAccessTokens = true
		}
		if slices.Contains(introspectAll, c.ID) {
			c.IntrospectAll = true
		}
	}
	registry, err := issuer.NewMemoryRegistry(clients...)
	if err != nil {
		return err
	}
	sk, keyNote, err := serveSigningKey(e, *signingKey, *stateDir, *ephemeral)
	if err != nil {
		return err
	}
	keys, err := issuer.NewKeySet(sk)
	if err != nil {
		return err
	}
	var fca *fallback.CA
	if *fallbackCA != "" {
		if fca, err = loadFallbackCA(*fallbackCA, *fallbackTTL); err != nil {
			return err
		}
	}

	// The default issuer identifier names the port actually bound.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	id := *issuerURL
	if id == "" {
		scheme := "http"
		if tf.enabled() {
			scheme = "https"
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		id = scheme + "://" + net.JoinHostPort(listenHost, port)
	}
	params := serveIssuerParams{
		id: id, keys: keys, audiences: audiences, scopes: scopes, ttl: *ttl, registry: registry,
		tls: tf.enabled(), public: len(publicClients) > 0, requireNonce: *requireNonce, fallback: fca,
		logger:         logger,
		replayCapacity: *replayCapacity, replayQuota: *replayQuota,
		nonceSecrets: nonceSecrets,
		metrics:      newOpsIssuerMetrics(ops),
	}
	if *redisURL != "" {
		defer opsQuietRedis(logger)()
		rdb, err := serveRedisClient(ctx, *redisURL, nil, redisPassword)
		if err != nil {
			ln.Close()
			return err
		}
		if redisPasswordInURL {
			serveRedisPasswordNote(e)
		}
		defer rdb.Close()
		if params.replayStore, params.refreshStore, err = serveIssuerRedis(rdb, id); err != nil {
			ln.Close()
			return err
		}
		ops.addCheck("replay_store", opsRedisCheck(rdb))
	}
	h, err := serveIssuerHandler(params)
	if err != nil {
		ln.Close()
		return err
	}
	if keyNote == "" {
		pub := jose.JSONWebKey{Key: sk.Signer.Public(), KeyID: keys.ActiveKeyID(), Algorithm: sk.Algorithm, Use: "sig"}
		data, err := json.Marshal(pub)
		if err != nil {
			ln.Close()
			return err
		}
		fmt.Fprintf(e.stderr, "WARNING (--ephemeral-key) this run signs with a key that is not saved, so every token it issues stops verifying when the process exits; public key: %s\n", data)
	} else {
		fmt.Fprintf(e.stderr, "%s (kid %s)\n", keyNote, keys.ActiveKeyID())
	}
	for _, cid := range onCommandLine {
		fmt.Fprintf(e.stderr, "note: the secret of client %q is on the command line, where other local users can read it; use --client %s:@FILE or %s\n", cid, cid, serveSecretEnv(cid))
	}
	fmt.Fprintf(e.stderr, "issuer %s, %d client(s) registered\n", id, len(clients))
	ops.addCheck("keys", opsIssuerKeysCheck(keys))
	h, stopOps, err := ops.start(ctx, e, of, listenHost, h)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopOps()
	return serveListener(ctx, e, ln, tlsConfig, h, cf)
}

// serveSigningKey returns serve-issuer's signing key: a fresh in-memory
// key with --ephemeral-key (note ""), the --signing-key file, or the key
// file in the state directory, created on the first start. note says
// which, for the log.
func serveSigningKey(e *env, file, stateDir string, ephemeral bool) (_ issuer.SigningKey, note string, _ error) {
	if ephemeral {
		k, err := keyfile.Generate("ES256", nil)
		if err != nil {
			return issuer.SigningKey{}, "", err
		}
		return issuer.SigningKey{Signer: k, Algorithm: "ES256"}, "", nil
	}
	if file != "" {
		data, err := keyfile.ReadPrivate(file)
		if err != nil {
			return issuer.SigningKey{}, "", fmt.Errorf("--signing-key: %w", err)
		}
		sk, err := issuer.ParseSigningKey(data)
		if err != nil {
			return issuer.SigningKey{}, "", fmt.Errorf("--signing-key %s: %w", file, err)
		}
		return sk, "signing key " + file, nil
	}
	if stateDir == "" {
		dir, err := e.userConfigDir()
		if err != nil {
			return issuer.SigningKey{}, "", fmt.Errorf("no --state-dir and no user configuration directory (%w); give --state-dir or --signing-key", err)
		}
		stateDir = filepath.Join(dir, "senderbound")
	}
	path := filepath.Join(stateDir, serveStateKeyFile)
	k, created, err := keyfile.LoadOrCreate(path, "ES256", nil)
	if err != nil {
		return issuer.SigningKey{}, "", fmt.Errorf("signing key: %w", err)
	}
	alg := k.Algorithm
	if alg == "" {
		if alg, err = keyfile.DefaultAlgorithm(k.Signer.Public()); err != nil {
			return issuer.SigningKey{}, "", fmt.Errorf("signing key %s: %w", path, err)
		}
	}
	note = "signing key " + path
	if created {
		note = "created signing key " + path + "; it is reused at every start"
	}
	return issuer.SigningKey{Signer: k.Signer, Algorithm: alg}, note, nil
}

// serveCheckIssuerURL checks an explicit --issuer: an absolute http(s) URL
// without query, fragment or user info; http only for a loopback issuer
// served on a loopback address without TLS.
func serveCheckIssuerURL(raw, listenHost string, withTLS bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || strings.ContainsAny(raw, "?#") {
		return errors.New("--issuer must be an absolute https URL without query or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if withTLS {
			return errors.New("--issuer must be https when serving TLS")
		}
		if !serveIsLoopbackHost(u.Hostname()) || !serveIsLoopbackHost(listenHost) {
			return errors.New("an http --issuer is allowed only on loopback (serve TLS with --tls-cert and --tls-key, or use https behind a proxy)")
		}
		return nil
	default:
		return errors.New("--issuer must be an https URL")
	}
}

// serveIssuerParams is what serveIssuerHandler needs from the flags.
type serveIssuerParams struct {
	id           string
	keys         *issuer.KeySet
	audiences    []string
	scopes       []string
	ttl          time.Duration
	registry     issuer.ClientRegistry
	tls          bool // mTLS client authentication is possible
	public       bool // public clients are registered
	requireNonce bool
	logger       *slog.Logger // refusals, with their stable reasons
	// replayCapacity and replayQuota size the replay store and the
	// per-owner quota; zero means the library defaults.
	replayCapacity int
	replayQuota    int
	// nonceSecrets are the shared nonce secrets; nil means a random one.
	nonceSecrets [][]byte
	// replayStore and refreshStore, when set, are shared with the other
	// instances (--redis); nil means in memory.
	replayStore  dpop.ReplayStore
	refreshStore issuer.RefreshStore
	metrics      issuer.Metrics // nil: none
	fallback     *fallback.CA   // the fallback CA role, or nil
}

// serveIssuerHandler builds the issuer and its HTTP endpoints.
func serveIssuerHandler(p serveIssuerParams) (http.Handler, error) {
	u, err := url.Parse(p.id)
	if err != nil {
		return nil, err
	}
	is, err := issuer.New(issuer.Config{
		Issuer:            p.id,
		Keys:              p.keys,
		Audience:          p.audiences,
		DefaultTTL:        p.ttl,
		MaxTTL:            max(p.ttl, time.Hour),
		InsecureAllowHTTP: u.Scheme == "http" && serveIsLoopbackHost(u.Hostname()),
	})
	if err != nil {
		return nil, err
	}
	methods := []issuer.AuthMethod{issuer.AuthSecretBasic}
	if p.tls {
		methods = append(methods, issuer.AuthTLSClient, issuer.AuthSelfSignedTLSClient)
	}
	if p.public {
		methods = append(methods, issuer.AuthNone)
	}
	// The shared store with --redis; else one process, an in-memory
	// replay store of --replay-capacity entries.
	replay := p.replayStore
	if replay == nil {
		mem, err := issuer.NewMemoryReplayStore(is, p.replayCapacity)
		if err != nil {
			return nil, err
		}
		replay = mem
	}
	cfg := issuer.ServerConfig{
		Issuer:          is,
		Clients:         p.registry,
		ReplayStore:     replay,
		DPoPAlgorithms:  slices.Clone(serveAlgorithms),
		ScopesSupported: slices.Clone(p.scopes),
		AuthMethods:     methods,
		MTLS:            p.tls,
		Logger:          p.logger,
		ReplayQuota:     replaycache.QuotaConfig{Limit: p.replayQuota},
		Metrics:         p.metrics,
		Fallback:        p.fallback,
	}
	if p.refreshStore != nil {
		cfg.RefreshTokens = p.refreshStore
	}
	if p.requireNonce {
		n, err := serveNonces(p.id, p.nonceSecrets)
		if err != nil {
			return nil, err
		}
		cfg.Nonces = n
	}
	srv, err := issuer.NewServer(cfg)
	if err != nil {
		return nil, err
	}
	return srv.Handler(), nil
}

const serveResourceSynopsis = `serve-resource --addr HOST:PORT --issuer URL [--jwks URL] [--audience AUD]
       [--require dpop|mtls|any] [--allow-bearer] [--scope S]... [--require-nonce]
       [--public-url URL] [--trusted-proxy CIDR]... [--forwarded-headers x-forwarded|forwarded|none]
       [--ca-file FILE] [--redis URL [--redis-password-file FILE]] [--replay-capacity N] [--replay-quota N]
       [--nonce-secret-file FILE]
       [--tls-cert FILE --tls-key FILE [--client-ca FILE]]
       [--max-connections N] [--idle-timeout DUR] [--read-header-timeout DUR]
       [--log-level debug|info|warn|error] [--log-format text|json] [--ops-addr HOST:PORT]
       [--fallback-ca FILE --fallback-crl URL [--crl-refresh DUR] [--crl-grace DUR]]
       [--token-cache N] [--baseline] [--cpu-profile FILE]

Serves GET and POST /resource, protected by sender-constrained access tokens,
and RFC 9728 metadata at /.well-known/oauth-protected-resource. An accepted
request gets 200 JSON with iss, sub, client_id, scope, binding ("dpop", "mtls"
or "bearer") and the matched binding value ("jkt" and/or "x5t#S256").

--issuer is the issuer identifier that every token's iss must equal. Its keys
are discovered from its metadata (RFC 8414, then OpenID discovery), unless
--jwks names the key set URL, which is then fetched directly; --jwks without
--issuer is refused. Plain HTTP is served only on loopback (DPoP over plain HTTP
is then accepted, for local tests) or behind a --trusted-proxy.

Behind a TLS-terminating proxy, set --public-url to the URL clients use: each
DPoP proof is checked against it. Without it, the scheme and host come from the
one header family the proxy sets, named by --forwarded-headers (default
x-forwarded: X-Forwarded-Proto and X-Forwarded-Host; forwarded: RFC 7239
Forwarded; none: the proxy forwards neither, --public-url is then required).
The other family is never read, and a request from the proxy that carries it is
refused with 400: common proxies pass a client's copy of the family they do not
set through untouched. From a trusted proxy the client certificate is the one
forwarded in Client-Cert (a certificate on the proxy's own connection is the
proxy's, not the client's), so list only proxies.

With --fallback-ca (the issuer's fallback CA certificate, PEM) and
--fallback-crl (its CRL URL, fetched every --crl-refresh), a request without
an access token is also accepted with a client certificate of that CA, over
mTLS or as a signed request (a DPoP-format proof carrying the certificate in
x5c); its binding is "fallback_certificate". Once the CRL is older than its
nextUpdate plus --crl-grace, such requests get 503; token requests do not.

For measurements: --token-cache 0 verifies every token's signature on every
request; --baseline also serves GET /baseline, the same kind of answer with no
check at all, to compare a protected request's cost with; --cpu-profile writes
a CPU profile (go tool pprof) of the whole run, until shutdown.

Several instances behind one load balancer: --redis shares the DPoP replay
cache (its password from --redis-password-file or SENDERBOUND_REDIS_PASSWORD
rather than the URL); with --require-nonce, --nonce-secret-file (or
SENDERBOUND_NONCE_SECRET) shares the nonce secret, so that a nonce from one
instance is accepted at the others; it needs --public-url (or a
--trusted-proxy), the same at every instance. Secret files must be readable by
their owner only; a trailing newline is ignored.` + serveNonceSecretHelp

// runServeResource implements "serve-resource".
func runServeResource(ctx context.Context, e *env, args []string) error {
	const cmd = "serve-resource"
	fs := newFlags(e, cmd, serveResourceSynopsis)
	addr := fs.String("addr", "", "listen address HOST:PORT (required; port 0 picks a free port)")
	issuerID := fs.String("issuer", "", "trusted issuer identifier, compared exactly with iss (required); keys are discovered from its metadata unless --jwks is set")
	jwksURL := fs.String("jwks", "", "fetch the issuer's keys from this JWK Set URL instead of discovering it")
	audience := fs.String("audience", serveDefaultAudience, "this resource's identifier; a token's aud must contain it")
	caFile := fs.String("ca-file", "", "trust only the CA certificates in this PEM file (instead of the system roots) when fetching metadata and keys, and for rediss:// URLs")
	require := fs.String("require", "any", "token binding to accept: dpop (DPoP-bound only), mtls (certificate-bound only) or any (either)")
	allowBearer := fs.Bool("allow-bearer", false, "also accept unbound bearer tokens (only with --require any)")
	requireNonce := fs.Bool("require-nonce", false, "require a resource-server nonce in every DPoP proof (RFC 9449 §9)")
	publicURL := fs.String("public-url", "", "externally visible base URL, for the DPoP htu; recommended behind a proxy (default: the listen address as http(s)://HOST:PORT, or with --trusted-proxy the scheme and host the proxy forwards; required when HOST is empty or unspecified)")
	var proxies, scopes listFlag
	fs.Var(&proxies, "trusted-proxy", "CIDR or address of a TLS-terminating proxy whose RFC 9440 Client-Cert and forwarded scheme and host are believed, repeatable")
	forwardedHeaders := fs.String("forwarded-headers", trustedproxy.HeadersXForwarded.String(), "header family the --trusted-proxy sets for the scheme and host: x-forwarded (X-Forwarded-Proto/-Host), forwarded (RFC 7239) or none; requests carrying the other family are refused")
	var tf serveTLSFlags
	tf.register(fs, "verify client certificates against these CAs (PEM) at the handshake when one is sent; default: request without verifying (RFC 8705 §6.2), as self-signed clients need")
	redisURL := fs.String("redis", "", "share the DPoP replay cache through Redis, e.g. redis://host:6379/0 (default: in memory, one instance)")
	replayCapacity := fs.Int("replay-capacity", replaycache.DefaultCapacity, "entries of the in-memory DPoP replay cache (without --redis); when full of live entries, DPoP requests are refused with 503")
	replayQuota := fs.Int("replay-quota", replaycache.DefaultQuotaLimit, "replay-cache entries one DPoP key (one token's cnf.jkt) may create per 105 s; beyond it its proofs are refused")
	fs.Var(&scopes, "scope", "scope every request's token must carry, repeatable")
	fallbackCA := fs.String("fallback-ca", "", "accept requests without a token that present a client certificate of this fallback CA (PEM; the first certificate signs the CRL)")
	fallbackCRL := fs.String("fallback-crl", "", "the fallback CA's CRL URL, e.g. ISSUER/crl (required with --fallback-ca)")
	crlRefresh := fs.Duration("crl-refresh", fallback.DefaultCRLRefresh, "interval between fetches of --fallback-crl")
	crlGrace := fs.Duration("crl-grace", fallback.DefaultCRLGrace, "how long past its nextUpdate the last fetched CRL is still used")
	tokenCache := fs.Int("token-cache", serveDefaultTokenCache, "verified access tokens kept to skip their signature check on reuse; 0 checks every token's signature on every request")
	baseline := fs.Bool("baseline", false, "also serve GET /baseline without any check (an unprotected handler, to measure what protection costs)")
	cpuProfile := fs.String("cpu-profile", "", "write a CPU profile of the run to this file (for go tool pprof), until shutdown")
	var cf serveConnFlags
	cf.register(fs)
	var lf serveLogFlags
	lf.register(fs)
	var of serveOpsFlags
	of.register(fs)
	var sf serveSharedFlags
	sf.register(fs)
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *replayCapacity < 1 || *replayQuota < 1 {
		return serveUsagef(e, cmd, "--replay-capacity and --replay-quota must be at least 1")
	}
	if *tokenCache < 0 {
		return serveUsagef(e, cmd, "--token-cache must not be negative")
	}
	if (*fallbackCA == "") != (*fallbackCRL == "") {
		return serveUsagef(e, cmd, "--fallback-ca and --fallback-crl go together")
	}
	if *crlRefresh <= 0 || *crlGrace <= 0 {
		return serveUsagef(e, cmd, "--crl-refresh and --crl-grace must be positive")
	}
	if *fallbackCRL != "" {
		if u, err := url.Parse(*fallbackCRL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return serveUsagef(e, cmd, "--fallback-crl must be an absolute http(s) URL")
		}
	}

	if *addr == "" {
		return serveUsagef(e, cmd, "--addr is required")
	}
	listenHost, err := serveAddrHost(*addr)
	if err != nil {
		return serveUsagef(e, cmd, "--addr must be HOST:PORT")
	}
	if err := tf.check(e, cmd); err != nil {
		return err
	}
	if err := cf.check(e, cmd); err != nil {
		return err
	}
	if err := of.check(e, cmd); err != nil {
		return err
	}
	logger, err := lf.logger(e, cmd, e.stderr)
	if err != nil {
		return err
	}
	ops := newServeOps(logger)
	switch {
	case *issuerID == "" && *jwksURL != "":
		return serveUsagef(e, cmd, "--jwks needs --issuer, the identifier that tokens' iss must equal")
	case *issuerID == "":
		return serveUsagef(e, cmd, "--issuer is required")
	}
	for _, f := range []struct{ name, value string }{{"--issuer", *issuerID}, {"--jwks", *jwksURL}, {"--public-url", *publicURL}} {
		if f.value == "" {
			continue
		}
		if u, err := url.Parse(f.value); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(f.value, "?#") {
			return serveUsagef(e, cmd, "%s must be an absolute http(s) URL without query or fragment", f.name)
		}
	}
	if *audience == "" {
		return serveUsagef(e, cmd, "--audience must not be empty")
	}
	var policy resource.Policy
	switch *require {
	case "any":
		policy.Accept = resource.AcceptBound
		if *allowBearer {
			policy.Accept = resource.AcceptAny
		}
	case "dpop":
		policy.Accept = resource.AcceptDPoP
	case "mtls":
		policy.Accept = resource.AcceptMTLS
	default:
		return serveUsagef(e, cmd, "--require must be dpop, mtls or any")
	}
	if *allowBearer && *require != "any" {
		return serveUsagef(e, cmd, "--allow-bearer needs --require any")
	}
	if *requireNonce && policy.Accept == resource.AcceptMTLS {
		return serveUsagef(e, cmd, "--require-nonce needs DPoP, which --require mtls turns off")
	}
	for _, s := range scopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") {
			return serveUsagef(e, cmd, "--scope %q is not a scope token", s)
		}
	}
	headers, err := trustedproxy.ParseHeaders(*forwardedHeaders)
	if err != nil {
		return serveUsagef(e, cmd, "--forwarded-headers must be x-forwarded, forwarded or none")
	}
	var trusted *trustedproxy.Set
	if len(proxies) > 0 {
		if trusted, err = trustedproxy.New(trustedproxy.Config{Peers: proxies, Headers: headers}); err != nil {
			return serveUsagef(e, cmd, "--trusted-proxy: %v", err)
		}
	} else if serveFlagSet(fs, "forwarded-headers") {
		return serveUsagef(e, cmd, "--forwarded-headers needs --trusted-proxy")
	}
	if trusted != nil && headers == trustedproxy.HeadersNone && *publicURL == "" && policy.Accept != resource.AcceptMTLS {
		return serveUsagef(e, cmd, "--forwarded-headers none needs --public-url, the URL clients use, checked against each DPoP proof")
	}
	// The nonce label is the public URL, or the audience behind a proxy;
	// only a derived public URL differs between instances.
	nonceSecrets, err := sf.nonceSecrets(e, cmd, *requireNonce, *publicURL != "" || len(proxies) > 0, "--public-url, the URL clients use")
	if err != nil {
		return err
	}
	redisPassword, redisPasswordInURL, err := sf.redisPassword(e, cmd, *redisURL)
	if err != nil {
		return err
	}
	if !tf.enabled() && len(proxies) == 0 {
		if !serveIsLoopbackHost(listenHost) {
			return serveUsagef(e, cmd, "without --tls-cert, serve-resource listens only on loopback, or behind a --trusted-proxy")
		}
		if policy.Accept == resource.AcceptMTLS {
			return serveUsagef(e, cmd, "--require mtls needs --tls-cert or a --trusted-proxy that forwards Client-Cert")
		}
	}

	var tlsConfig *tls.Config
	if tf.enabled() {
		cert, err := serveLoadTLS(tf.cert, tf.key)
		if err != nil {
			return err
		}
		tlsConfig = mtlsbound.ServerTLSConfig(cert)
		if tf.clientCA != "" {
			pool, err := serveLoadPool("--client-ca", tf.clientCA)
			if err != nil {
				return err
			}
			tlsConfig.ClientCAs = pool
			tlsConfig.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	var roots *x509.CertPool
	var httpClient *http.Client
	if *caFile != "" {
		if roots, err = serveLoadPool("--ca-file", *caFile); err != nil {
			return err
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		httpClient = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	rm := newOpsResourceMetrics(ops)
	ksCfg := resource.RemoteKeySetConfig{HTTPClient: httpClient, Metrics: rm}
	if *jwksURL != "" {
		ksCfg.JWKSURL = *jwksURL
	} else {
		ksCfg.Issuer = *issuerID
	}
	keys, err := resource.NewRemoteKeySet(ksCfg)
	if err != nil {
		return err
	}

	// The DPoP htu is checked against the URL clients use: --public-url,
	// else the address actually bound, never the Host header a client sends.
	derivePublic := *publicURL == "" && len(proxies) == 0 && policy.Accept != resource.AcceptMTLS
	if ip := net.ParseIP(listenHost); derivePublic && (listenHost == "" || ip != nil && ip.IsUnspecified()) {
		return serveUsagef(e, cmd, "--public-url is needed when listening on all interfaces: it is the URL clients use, checked against each DPoP proof")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if derivePublic {
		scheme := "http"
		if tf.enabled() {
			scheme = "https"
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		*publicURL = scheme + "://" + net.JoinHostPort(listenHost, port)
	}
	closeLn := true
	defer func() {
		if closeLn {
			ln.Close()
		}
	}()
	cfg := resource.Config{
		Issuers:        []resource.Issuer{{Identifier: *issuerID, Keys: keys}},
		Audience:       *audience,
		Algorithms:     slices.Clone(serveAlgorithms),
		PublicURL:      *publicURL,
		TrustedProxies: trusted,
		// Plain HTTP is served only on loopback (checked above) unless a
		// trusted proxy terminates TLS, whose requests count as TLS anyway.
		InsecureAllowDPoPOverHTTP: !tf.enabled() && serveIsLoopbackHost(listenHost),
		Logger:                    logger,
		TokenCacheSize:            serveTokenCacheSize(*tokenCache),
		Metrics:                   rm,
	}
	var closeStore func()
	if policy.Accept != resource.AcceptMTLS {
		dc := &resource.DPoPConfig{Algorithms: slices.Clone(serveAlgorithms), KeyQuota: replaycache.QuotaConfig{Limit: *replayQuota}}
		if *redisURL != "" {
			defer opsQuietRedis(logger)()
			store, rdb, err := serveRedisStore(ctx, *redisURL, roots, redisPassword)
			if err != nil {
				return err
			}
			if redisPasswordInURL {
				serveRedisPasswordNote(e)
			}
			dc.ReplayStore, closeStore = store, func() { rdb.Close() }
			ops.addCheck("replay_store", opsRedisCheck(rdb))
		} else {
			lru, err := replaycache.NewLRU(replaycache.Config{Capacity: *replayCapacity})
			if err != nil {
				return err
			}
			dc.ReplayStore = lru
		}
		if *requireNonce {
			label := *publicURL
			if label == "" {
				label = *audience
			}
			n, err := serveNonces(label, nonceSecrets)
			if err != nil {
				return err
			}
			dc.Nonces = n
		}
		cfg.DPoP = dc
	} else if *redisURL != "" {
		fmt.Fprintln(e.stderr, "note: --redis is unused with --require mtls (no DPoP proofs to remember)")
	}
	if closeStore != nil {
		defer closeStore()
	}
	if *fallbackCA != "" {
		fv, closeFetcher, err := serveFallbackVerifier(ctx, e, serveFallbackParams{
			caFile: *fallbackCA, crlURL: *fallbackCRL, refresh: *crlRefresh, grace: *crlGrace,
			client: httpClient, dpop: cfg.DPoP, ops: ops,
		})
		if err != nil {
			return err
		}
		defer closeFetcher()
		cfg.Fallback = fv
		policy.Fallback = true
	}
	v, err := resource.New(cfg)
	if err != nil {
		return err
	}
	if err := v.ValidatePolicy(policy); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(resource.MetadataPath, v.MetadataHandler(policy, slices.Clone(scopes)))
	protected := v.Middleware(resource.Policy{Accept: policy.Accept, Scopes: slices.Clone(scopes), Fallback: policy.Fallback})(http.HandlerFunc(serveResourceAnswer))
	mux.Handle("GET /resource", protected)
	mux.Handle("POST /resource", protected)
	if *baseline {
		mux.HandleFunc("GET /baseline", serveBaselineAnswer)
	}
	if *cpuProfile != "" {
		stop, err := serveStartCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	ops.addCheck("keys", opsKeysCheck(keys))
	defer serveStartupKeys(ctx, e, keys, cmp.Or(*jwksURL, "the metadata of "+*issuerID), resource.DefaultMinRefreshInterval)()
	h, stopOps, err := ops.start(ctx, e, of, listenHost, mux)
	if err != nil {
		return err
	}
	defer stopOps()
	closeLn = false // serveListener owns it
	return serveListener(ctx, e, ln, tlsConfig, h, cf)
}

// serveDefaultTokenCache is the default of serve-resource --token-cache,
// resource.Config's default.
const serveDefaultTokenCache = 10_000

// serveTokenCacheSize maps --token-cache to Config.TokenCacheSize, where 0
// means the default and a negative size disables the cache.
func serveTokenCacheSize(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// serveBaselineAnswer answers GET /baseline without any check, through
// the same writer as serveResourceAnswer and with a body of about the same
// size, so that the two differ only by the check.
func serveBaselineAnswer(w http.ResponseWriter, _ *http.Request) {
	serveWriteAnswer(w, &serveAnswer{
		Issuer:   "https://as.baseline.test",
		Subject:  "baseline",
		ClientID: "baseline",
		Binding:  "none",
		X5T:      "0000000000000000000000000000000000000000000",
	})
}

// serveStartCPUProfile starts a CPU profile written to path and returns the
// function that stops it and closes the file.
func serveStartCPUProfile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// serveFlagSet reports whether the flag name was given on the command line.
func serveFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// serveResourceAnswer answers an admitted request with what the token and
// its binding said.
func serveResourceAnswer(w http.ResponseWriter, r *http.Request) {
	p := resource.PrincipalFromContext(r.Context())
	body := serveAnswer{
		Issuer:   p.Issuer,
		Subject:  p.Subject,
		ClientID: p.ClientID,
		Scope:    strings.Join(p.Scopes, " "),
		Binding:  string(p.Binding),
	}
	switch p.Binding {
	case resource.BindingDPoP:
		body.JKT = p.BindingValue
	case resource.BindingMTLS:
		body.X5T = p.BindingValue
	}
	if p.CertThumbprint != "" {
		body.X5T = p.CertThumbprint
	}
	serveWriteAnswer(w, &body)
}

// serveAnswer is the JSON body of an admitted request. A struct, not a
// map: encoding a map sorts its keys through reflection, which cost about
// a tenth of an mTLS-bound request's server CPU.
type serveAnswer struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Binding  string `json:"binding"`
	JKT      string `json:"jkt,omitempty"`
	X5T      string `json:"x5t#S256,omitempty"`
}

// serveWriteAnswer writes body as the JSON answer.
func serveWriteAnswer(w http.ResponseWriter, body *serveAnswer) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// serveRedisStore connects to the Redis at rawURL (checked with PING; with
// password when it is not empty) and returns a shared replay store and its
// client, which the caller closes. roots, when set, are the CAs trusted for
// a rediss:// URL.
func serveRedisStore(ctx context.Context, rawURL string, roots *x509.CertPool, password string) (*redisstore.Store, *redis.Client, error) {
	rdb, err := serveRedisClient(ctx, rawURL, roots, password)
	if err != nil {
		return nil, nil, err
	}
	store, err := redisstore.New(rdb, redisstore.Config{})
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return store, rdb, nil
}
