package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/internal/keyfile"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/replaycache"
)

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
