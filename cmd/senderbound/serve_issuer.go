package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
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
       [--client-jwks-uri ID:METHOD=URL]... [--client-jwks-ca FILE]
       [--insecure-client-jwks-private-addresses]
       [--dpop-bound ID]... [--introspect-all ID]...
       [--dpop-bound ID]... [--introspect-all ID]... [--access-token-format jwt|opaque]
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

--access-token-format opaque issues random opaque access tokens instead of
JWTs: their claims (cnf included) stay at the issuer, and resource servers
learn them from /introspect (serve-resource --introspection-endpoint). With
--redis the opaque tokens are kept in Redis, so every instance answers for
them; otherwise in memory, lost on restart.

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

A --client-jwks-uri client publishes its keys at an https URL (its jwks_uri)
and rotates them there without a change at the issuer: METHOD is
private_key_jwt (client assertions signed by a key of the set) or
self_signed_tls_client_auth (the client certificate is the x5c certificate of
a key of the set; needs --tls-cert). The set is fetched on first use, cached
for its Cache-Control max-age (at most 1 h; 5 min without one), refetched when
an unknown key or certificate is presented (at most every 10 s) and refused
unless every key is public and acceptable. --client-jwks-ca replaces the
system roots for those URLs. The issuer connects only to public addresses;
--insecure-client-jwks-private-addresses also allows loopback and private
ones, for tests and closed networks only.

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
refused at every other, and one replayed after its redemption revokes its
whole family at all of them); the Redis password comes from --redis-password-file
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

// serveClientSecret reads the client ID and secret of one value of the
// flag named flagName (--client, --introspection-client): ID:SECRET,
// ID:@FILE or ID (secret in serveSecretEnv(ID)). A usage problem returns
// errUsage after a one-line message; a file that cannot be read returns
// its error. No message includes a secret.
func serveClientSecret(e *env, cmd, flagName, v string) (id, secret string, src serveSecretSource, err error) {
	id, rest, hasColon := strings.Cut(v, ":")
	if id == "" {
		return "", "", 0, serveUsagef(e, cmd, "%s needs ID:SECRET, ID:@FILE or ID with the secret in %sID", flagName, serveSecretEnvPrefix)
	}
	switch {
	case !hasColon:
		name := serveSecretEnv(id)
		val, ok := e.getenv(name)
		if !ok || val == "" {
			return "", "", 0, serveUsagef(e, cmd, "%s %q names no secret and %s is not set (%s needs ID:SECRET, ID:@FILE or ID with the secret in %s)", flagName, id, name, flagName, name)
		}
		secret, src = val, secretFromEnv
	case strings.HasPrefix(rest, "@") && len(rest) > 1:
		if secret, err = serveReadSecretFile(rest[1:]); err != nil {
			return "", "", 0, fmt.Errorf("%s %s: secret file: %w", flagName, id, err)
		}
		src = secretFromFile
	case rest == "" || rest == "@":
		return "", "", 0, serveUsagef(e, cmd, "%s needs ID:SECRET, ID:@FILE or ID with the secret in %sID", flagName, serveSecretEnvPrefix)
	default:
		secret, src = rest, secretFromArgs
	}
	if p := serveSecretProblem(secret, serveMinSecretLen); p != "" {
		return "", "", 0, serveUsagef(e, cmd, "%s %q: the secret %s", flagName, id, p)
	}
	return id, secret, src, nil
}

// serveIssuerFlags are the flags of serve-issuer.
type serveIssuerFlags struct {
	addr, issuerURL      string
	audiences, scopes    listFlag
	signingKey, stateDir string
	ephemeral            bool
	ttl                  time.Duration
	// Client registrations, as given.
	secretClients, publicClients   listFlag
	mtlsClients, selfSignedClients listFlag
	jwksURIClients                 listFlag
	jwksCA                         string
	jwksPrivate                    bool
	dpopBound, introspectAll       listFlag
	requireNonce                   bool
	accessTokenFormat              string
	replayCapacity, replayQuota    int
	redisURL                       string
	fallbackCA                     string
	fallbackTTL                    time.Duration
	tls                            serveTLSFlags
	conn                           serveConnFlags
	log                            serveLogFlags
	ops                            serveOpsFlags
	shared                         serveSharedFlags
}

// register defines the flags on fs.
func (f *serveIssuerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", "", "listen address HOST:PORT (required; port 0 picks a free port)")
	fs.StringVar(&f.issuerURL, "issuer", "", "issuer identifier (iss); default http://ADDR, or https://ADDR with --tls-cert, with the port actually bound")
	fs.Var(&f.audiences, "audience", "audience (aud) of every token, repeatable (default "+serveDefaultAudience+")")
	fs.Var(&f.scopes, "scope", "scope every client may request, repeatable; a request without scope gets all (default "+strings.Join(serveDefaultScopes, ", ")+")")
	fs.StringVar(&f.signingKey, "signing-key", "", "private signing key file, readable by its owner only: a private JWK (as written by keygen) or a PKCS#8/SEC 1/PKCS#1 PEM file (default: DIR/"+serveStateKeyFile+" of --state-dir, created on the first start)")
	fs.StringVar(&f.stateDir, "state-dir", "", "directory holding the default signing key "+serveStateKeyFile+", created with mode 0700 if needed (default: senderbound in the user's configuration directory)")
	fs.BoolVar(&f.ephemeral, "ephemeral-key", false, "sign with a fresh ES256 key kept in memory only: every token dies when the process exits (tests only)")
	fs.DurationVar(&f.ttl, "token-ttl", 5*time.Minute, "access-token lifetime, 1s to 24h")
	fs.Var(&f.secretClients, "client", "register a confidential client (client_secret_basic, may introspect its own tokens) as ID:@FILE (secret in FILE), ID (secret in $"+serveSecretEnvPrefix+"<ID>) or ID:SECRET (visible in the process table); secret at least 16 characters; repeatable")
	fs.Var(&f.publicClients, "public-client", "register a public client ID (token_endpoint_auth_method none; refresh_token only, client_credentials is for confidential clients), repeatable")
	fs.Var(&f.mtlsClients, "mtls-client", "register a tls_client_auth client by subject DN, ID:SUBJECT_DN (RFC 4514, e.g. CN=app,O=Example), or by SAN (RFC 8705 §2.1.2), ID:san-dns=NAME, ID:san-uri=URI (e.g. a SPIFFE ID), ID:san-ip=ADDRESS or ID:san-email=ADDRESS; the certificate must chain to --client-ca; repeatable")
	fs.Var(&f.selfSignedClients, "self-signed-client", "register a self_signed_tls_client_auth client ID:CERT_PEM whose certificate is the one in the PEM file; repeatable")
	fs.Var(&f.jwksURIClients, "client-jwks-uri", "register a client whose keys are published at an https jwks_uri, ID:METHOD=URL with METHOD private_key_jwt or self_signed_tls_client_auth; repeatable")
	fs.StringVar(&f.jwksCA, "client-jwks-ca", "", "trust anchors (PEM) for the TLS certificates of --client-jwks-uri hosts (default: the system roots)")
	fs.BoolVar(&f.jwksPrivate, "insecure-client-jwks-private-addresses", false, "let --client-jwks-uri fetches connect to loopback and private addresses (tests and closed networks only: a client could make the issuer call into its network)")
	fs.Var(&f.dpopBound, "dpop-bound", "client ID must send a DPoP proof with every token request and gets only DPoP-bound tokens (dpop_bound_access_tokens), repeatable")
	fs.Var(&f.introspectAll, "introspect-all", "--client ID may introspect every access token, not only its own (for a resource server), repeatable")
	f.tls.register(fs, "trust anchors (PEM) that --mtls-client certificates must chain to; client certificates are requested, not required, at the handshake")
	fs.BoolVar(&f.requireNonce, "require-nonce", false, "require a server nonce in every DPoP proof (RFC 9449 §8)")
	fs.StringVar(&f.accessTokenFormat, "access-token-format", issuer.FormatJWT.String(), "access tokens to issue: jwt (RFC 9068 JWTs) or opaque (random handles that resource servers introspect; kept in Redis with --redis)")
	f.conn.register(fs)
	f.log.register(fs)
	f.ops.register(fs)
	fs.IntVar(&f.replayCapacity, "replay-capacity", replaycache.DefaultCapacity, "entries of the in-memory replay store of DPoP proof and client assertion jti values (without --redis); when full of live entries, DPoP token requests are refused with 503")
	fs.IntVar(&f.replayQuota, "replay-quota", replaycache.DefaultQuotaLimit, "replay-store entries one DPoP key, or one confidential client, may create per 105 s")
	fs.StringVar(&f.redisURL, "redis", "", "share the replay store and the refresh tokens with the other instances of this issuer through Redis, e.g. redis://host:6379/0 (default: in memory, one instance)")
	f.shared.register(fs)
	fs.StringVar(&f.fallbackCA, "fallback-ca", "", "directory written by 'ca create': issue fallback client certificates at /certificate and publish the CRL of DIR/"+fallbackRevocationsFile+" at /crl")
	fs.DurationVar(&f.fallbackTTL, "fallback-cert-ttl", fallback.DefaultLifetime, "lifetime of fallback client certificates (with --fallback-ca)")
}

// serveIssuerConfig is what serve-issuer's flags resolve to before it
// listens: the server parameters, lacking only the issuer identifier and
// the shared stores, and what the run reports and serves besides.
type serveIssuerConfig struct {
	listenHost string
	logger     *slog.Logger
	ops        *serveOps
	tlsConfig  *tls.Config // nil: plain HTTP
	params     serveIssuerParams
	// redisPassword is the --redis password from its file or the
	// environment; redisPasswordInURL says the URL carries one instead.
	redisPassword      string
	redisPasswordInURL bool
	signingKey         issuer.SigningKey
	keyNote            string   // where the key is from; "" for --ephemeral-key
	clients            int      // registered clients
	onCommandLine      []string // clients whose secret is in the process table
}

// config checks the flags, their combinations and then the files they
// name, in that order, and returns what they describe. Usage problems
// return errUsage after a one-line message.
func (f *serveIssuerFlags) config(e *env, cmd string) (*serveIssuerConfig, error) {
	// Flag syntax and combinations, before anything is read or opened.
	if f.addr == "" {
		return nil, serveUsagef(e, cmd, "--addr is required")
	}
	if f.replayCapacity < 1 || f.replayQuota < 1 {
		return nil, serveUsagef(e, cmd, "--replay-capacity and --replay-quota must be at least 1")
	}
	if f.fallbackTTL <= 0 {
		return nil, serveUsagef(e, cmd, "--fallback-cert-ttl must be positive")
	}
	format, err := issuer.ParseTokenFormat(f.accessTokenFormat)
	if err != nil {
		return nil, serveUsagef(e, cmd, "--access-token-format must be jwt or opaque")
	}
	listenHost, logger, err := serveCheckListener(e, cmd, f.addr, &f.tls, &f.conn, &f.ops, &f.log)
	if err != nil {
		return nil, err
	}
	c := &serveIssuerConfig{listenHost: listenHost, logger: logger, ops: newServeOps(logger)}
	if err := f.checkIssuer(e, cmd, listenHost); err != nil {
		return nil, err
	}
	// The nonce label is the issuer identifier, derived from the port
	// actually bound unless --issuer names it.
	nonceSecrets, err := f.shared.nonceSecrets(e, cmd, f.requireNonce, f.issuerURL != "", "--issuer, the identifier every instance shares")
	if err != nil {
		return nil, err
	}
	if c.redisPassword, c.redisPasswordInURL, err = f.shared.redisPassword(e, cmd, f.redisURL); err != nil {
		return nil, err
	}
	audiences := slices.Clone(f.audiences)
	if len(audiences) == 0 {
		audiences = []string{serveDefaultAudience}
	}
	scopes := slices.Clone(f.scopes)
	if len(scopes) == 0 {
		scopes = serveDefaultScopes
	}
	for _, s := range scopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") {
			return nil, serveUsagef(e, cmd, "--scope %q is not a scope token", s)
		}
	}
	regs, err := f.clientRegistrations(e, cmd)
	if err != nil {
		return nil, err
	}
	c.onCommandLine = regs.onCommandLine

	// Files.
	if f.tls.enabled() {
		cert, err := serveLoadTLS(f.tls.cert, f.tls.key)
		if err != nil {
			return nil, err
		}
		c.tlsConfig = mtlsbound.ServerTLSConfig(cert)
	}
	clients, err := f.loadClients(regs, scopes)
	if err != nil {
		return nil, err
	}
	c.clients = len(clients)
	registry, err := issuer.NewMemoryRegistry(clients...)
	if err != nil {
		return nil, err
	}
	if c.signingKey, c.keyNote, err = serveSigningKey(e, f.signingKey, f.stateDir, f.ephemeral); err != nil {
		return nil, err
	}
	keys, err := issuer.NewKeySet(c.signingKey)
	if err != nil {
		return nil, err
	}
	var fca *fallback.CA
	if f.fallbackCA != "" {
		if fca, err = loadFallbackCA(f.fallbackCA, f.fallbackTTL); err != nil {
			return nil, err
		}
	}
	clientJWKS := issuer.ClientJWKSConfig{InsecureAllowPrivateAddresses: f.jwksPrivate}
	if f.jwksCA != "" {
		if clientJWKS.RootCAs, err = serveLoadPool("--client-jwks-ca", f.jwksCA); err != nil {
			return nil, err
		}
	}
	c.params = serveIssuerParams{
		clientJWKS:    clientJWKS,
		privateKeyJWT: slices.ContainsFunc(regs.jwksURI, func(c issuer.Client) bool { return c.AuthMethod == issuer.AuthPrivateKeyJWT }),
		keys:          keys, audiences: audiences, scopes: scopes, ttl: f.ttl, registry: registry,
		tls: f.tls.enabled(), public: len(f.publicClients) > 0, requireNonce: f.requireNonce, fallback: fca,
		tokenFormat:    format,
		logger:         logger,
		replayCapacity: f.replayCapacity, replayQuota: f.replayQuota,
		nonceSecrets: nonceSecrets,
		metrics:      newOpsIssuerMetrics(c.ops),
	}
	return c, nil
}

// checkIssuer checks the token lifetime, the signing key flags, the
// flags that need TLS and the issuer identifier.
func (f *serveIssuerFlags) checkIssuer(e *env, cmd, listenHost string) error {
	if f.ttl < time.Second || f.ttl > 24*time.Hour {
		return serveUsagef(e, cmd, "--token-ttl must be between 1s and 24h")
	}
	switch {
	case f.ephemeral && (f.signingKey != "" || f.stateDir != ""):
		return serveUsagef(e, cmd, "--ephemeral-key excludes --signing-key and --state-dir")
	case f.signingKey != "" && f.stateDir != "":
		return serveUsagef(e, cmd, "--state-dir only locates the default signing key; it excludes --signing-key")
	}
	if len(f.mtlsClients) > 0 && f.tls.clientCA == "" {
		return serveUsagef(e, cmd, "--mtls-client requires --client-ca (and --tls-cert, --tls-key)")
	}
	if len(f.selfSignedClients) > 0 && !f.tls.enabled() {
		return serveUsagef(e, cmd, "--self-signed-client requires --tls-cert and --tls-key")
	}
	if (f.jwksCA != "" || f.jwksPrivate) && len(f.jwksURIClients) == 0 {
		return serveUsagef(e, cmd, "--client-jwks-ca and --insecure-client-jwks-private-addresses need a --client-jwks-uri client")
	}
	if f.issuerURL == "" {
		if ip, err := netip.ParseAddr(listenHost); listenHost == "" || (err == nil && ip.IsUnspecified()) {
			return serveUsagef(e, cmd, "--issuer is required when --addr names no host")
		}
		// The derived identifier is http://ADDR without TLS, which the
		// issuer allows only on a loopback address.
		if !f.tls.enabled() && !isLoopbackAddr(listenHost) {
			return serveUsagef(e, cmd, "without --tls-cert, the default issuer http://ADDR is allowed only on loopback; give --tls-cert and --tls-key, or an https --issuer%s", serveNameHint(listenHost))
		}
	} else if err := serveCheckIssuerURL(f.issuerURL, listenHost, f.tls.enabled()); err != nil {
		return serveUsagef(e, cmd, "%v", err)
	}
	return nil
}

// serveIssuerRegistrations are the clients the flags register, checked
// but with their certificate files not read yet.
type serveIssuerRegistrations struct {
	secret        []issuer.Client // client_secret_basic
	public        []issuer.Client // none
	mtls          []serveIDValue[mtlsbound.PKIAuth]
	selfSigned    []serveIDValue[string] // the PEM file of each
	jwksURI       []issuer.Client        // keys at a jwks_uri
	onCommandLine []string               // clients whose secret is in the process table
}

// serveIDValue is a client ID with what a flag gave for it.
type serveIDValue[T any] struct {
	id    string
	value T
}

// clientRegistrations checks the client flags: each ID registered once,
// secrets present and long enough, --dpop-bound and --introspect-all
// naming registered clients. Scopes are filled in by loadClients.
func (f *serveIssuerFlags) clientRegistrations(e *env, cmd string) (serveIssuerRegistrations, error) {
	var r serveIssuerRegistrations
	seen := map[string]bool{}
	register := func(id string) error {
		if seen[id] {
			return serveUsagef(e, cmd, "client %q is registered twice", id)
		}
		seen[id] = true
		return nil
	}
	secretEnvs := map[string]string{}
	for _, v := range f.secretClients {
		id, secret, src, err := serveClientSecret(e, cmd, "--client", v)
		if err != nil {
			return r, err
		}
		if err := register(id); err != nil {
			return r, err
		}
		switch src {
		case secretFromArgs:
			r.onCommandLine = append(r.onCommandLine, id)
		case secretFromEnv:
			if other, ok := secretEnvs[serveSecretEnv(id)]; ok {
				return r, serveUsagef(e, cmd, "clients %q and %q would both read their secret from %s", other, id, serveSecretEnv(id))
			}
			secretEnvs[serveSecretEnv(id)] = id
		}
		r.secret = append(r.secret, issuer.Client{ID: id, AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(secret), Introspect: true})
	}
	for _, id := range f.publicClients {
		if id == "" || strings.Contains(id, ":") {
			return r, serveUsagef(e, cmd, "--public-client needs a client ID without ':'")
		}
		if err := register(id); err != nil {
			return r, err
		}
		r.public = append(r.public, issuer.Client{ID: id, AuthMethod: issuer.AuthNone})
	}
	for _, v := range f.mtlsClients {
		id, auth, err := serveMTLSClient(e, cmd, v)
		if err != nil {
			return r, err
		}
		if err := register(id); err != nil {
			return r, err
		}
		r.mtls = append(r.mtls, serveIDValue[mtlsbound.PKIAuth]{id, auth})
	}
	for _, v := range f.selfSignedClients {
		id, file, ok := serveSplitPair(v)
		if !ok {
			return r, serveUsagef(e, cmd, "--self-signed-client needs ID:CERT_PEM")
		}
		if err := register(id); err != nil {
			return r, err
		}
		r.selfSigned = append(r.selfSigned, serveIDValue[string]{id, file})
	}
	for _, v := range f.jwksURIClients {
		c, err := serveJWKSURIClient(e, cmd, v, f.tls.enabled())
		if err != nil {
			return r, err
		}
		if err := register(c.ID); err != nil {
			return r, err
		}
		r.jwksURI = append(r.jwksURI, c)
	}
	for _, id := range f.dpopBound {
		if !seen[id] {
			return r, serveUsagef(e, cmd, "--dpop-bound %q names no registered client", id)
		}
	}
	for _, id := range f.introspectAll {
		if !slices.ContainsFunc(r.secret, func(c issuer.Client) bool { return c.ID == id }) {
			return r, serveUsagef(e, cmd, "--introspect-all %q names no --client", id)
		}
	}
	return r, nil
}

// loadClients reads the files the registrations name (--client-ca, the
// self-signed certificates) and returns every client, each allowed
// scopes.
func (f *serveIssuerFlags) loadClients(r serveIssuerRegistrations, scopes []string) ([]issuer.Client, error) {
	clients := slices.Concat(r.secret, r.public, r.jwksURI)
	if len(r.mtls) > 0 {
		roots, err := serveLoadPool("--client-ca", f.tls.clientCA)
		if err != nil {
			return nil, err
		}
		for _, m := range r.mtls {
			auth := m.value
			auth.Roots = roots
			clients = append(clients, issuer.Client{ID: m.id, AuthMethod: issuer.AuthTLSClient, Certificate: auth})
		}
	}
	for _, p := range r.selfSigned {
		data, err := os.ReadFile(p.value)
		if err != nil {
			return nil, fmt.Errorf("--self-signed-client %s: %w", p.id, err)
		}
		auth, err := mtlsbound.SelfSignedFromPEM(data)
		if err != nil {
			return nil, fmt.Errorf("--self-signed-client %s: %w", p.id, err)
		}
		clients = append(clients, issuer.Client{ID: p.id, AuthMethod: issuer.AuthSelfSignedTLSClient,
			Certificate: issuer.SelfSigned(auth.Authenticate)})
	}
	for i := range clients {
		c := &clients[i]
		c.Scopes = scopes
		c.DPoPBoundAccessTokens = slices.Contains(f.dpopBound, c.ID)
		c.IntrospectAll = slices.Contains(f.introspectAll, c.ID)
	}
	return clients, nil
}

// issuerID returns the issuer identifier: --issuer, or the listen host
// with the port actually bound (addr) under the scheme served.
func (f *serveIssuerFlags) issuerID(listenHost string, addr net.Addr) string {
	if f.issuerURL != "" {
		return f.issuerURL
	}
	scheme := "http"
	if f.tls.enabled() {
		scheme = "https"
	}
	_, port, _ := net.SplitHostPort(addr.String())
	return scheme + "://" + net.JoinHostPort(listenHost, port)
}

// runServeIssuer implements "serve-issuer".
func runServeIssuer(ctx context.Context, e *env, args []string) error {
	const cmd = "serve-issuer"
	var f serveIssuerFlags
	fs := newFlags(e, cmd, serveIssuerSynopsis)
	f.register(fs)
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	c, err := f.config(e, cmd)
	if err != nil {
		return err
	}
	// The default issuer identifier names the port actually bound.
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return err
	}
	closeLn := true
	defer func() {
		if closeLn {
			ln.Close()
		}
	}()
	id := f.issuerID(c.listenHost, ln.Addr())
	c.params.id = id
	if f.redisURL != "" {
		defer opsQuietRedis(c.logger)()
		rdb, err := serveRedisClient(ctx, f.redisURL, nil, c.redisPassword)
		if err != nil {
			return err
		}
		if c.redisPasswordInURL {
			serveRedisPasswordNote(e)
		}
		defer rdb.Close()
		if c.params.replayStore, c.params.refreshStore, err = serveIssuerRedis(rdb, id); err != nil {
			return err
		}
		if c.params.tokenFormat == issuer.FormatOpaque {
			if c.params.accessStore, err = serveIssuerRedisAccessTokens(rdb, id); err != nil {
				return err
			}
		}
		c.ops.addCheck("replay_store", opsRedisCheck(rdb))
	}
	h, err := serveIssuerHandler(c.params)
	if err != nil {
		return err
	}
	if err := c.report(e, id); err != nil {
		return err
	}
	c.ops.addCheck("keys", opsIssuerKeysCheck(c.params.keys))
	h, stopOps, err := c.ops.start(ctx, e, f.ops, c.listenHost, h)
	if err != nil {
		return err
	}
	defer stopOps()
	closeLn = false // serveListener owns it
	return serveListener(ctx, e, ln, c.tlsConfig, h, f.conn)
}

// report writes the start-up lines to stderr: where the signing key is
// from (its public key when it is not saved), which client secrets are in
// the process table, and the issuer identifier.
func (c *serveIssuerConfig) report(e *env, id string) error {
	keys := c.params.keys
	if c.keyNote == "" {
		sk := c.signingKey
		pub := jose.JSONWebKey{Key: sk.Signer.Public(), KeyID: keys.ActiveKeyID(), Algorithm: sk.Algorithm, Use: "sig"}
		data, err := json.Marshal(pub)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "WARNING (--ephemeral-key) this run signs with a key that is not saved, so every token it issues stops verifying when the process exits; public key: %s\n", data)
	} else {
		fmt.Fprintf(e.stderr, "%s (kid %s)\n", c.keyNote, keys.ActiveKeyID())
	}
	for _, cid := range c.onCommandLine {
		fmt.Fprintf(e.stderr, "note: the secret of client %q is on the command line, where other local users can read it; use --client %s:@FILE or %s\n", cid, cid, serveSecretEnv(cid))
	}
	fmt.Fprintf(e.stderr, "issuer %s, %d client(s) registered\n", id, c.clients)
	return nil
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
		if !isLoopbackAddr(u.Hostname()) || !isLoopbackAddr(listenHost) {
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
	// clientJWKS is how keys of --client-jwks-uri clients are fetched;
	// privateKeyJWT says one of them uses private_key_jwt.
	clientJWKS    issuer.ClientJWKSConfig
	privateKeyJWT bool

	// tokenFormat is the access-token format; with FormatOpaque the
	// tokens are kept in accessStore, shared with the other instances
	// (--redis), or in memory when it is nil.
	tokenFormat issuer.TokenFormat
	accessStore issuer.RefreshStore
}

// serveIssuerHandler builds the issuer and its HTTP endpoints.
func serveIssuerHandler(p serveIssuerParams) (http.Handler, error) {
	cfg, err := p.serverConfig()
	if err != nil {
		return nil, err
	}
	srv, err := issuer.NewServer(cfg)
	if err != nil {
		return nil, err
	}
	return srv.Handler(), nil
}

// serverConfig builds the issuer and returns the configuration of its
// server.
func (p serveIssuerParams) serverConfig() (issuer.ServerConfig, error) {
	u, err := url.Parse(p.id)
	if err != nil {
		return issuer.ServerConfig{}, err
	}
	icfg := issuer.Config{
		Issuer:            p.id,
		Keys:              p.keys,
		Audience:          p.audiences,
		DefaultTTL:        p.ttl,
		MaxTTL:            max(p.ttl, time.Hour),
		InsecureAllowHTTP: u.Scheme == "http" && isLoopbackAddr(u.Hostname()),
		AccessTokenFormat: p.tokenFormat,
	}
	if p.tokenFormat == issuer.FormatOpaque {
		icfg.AccessTokens = p.accessStore
		if icfg.AccessTokens == nil {
			icfg.AccessTokens = issuer.NewMemoryRefreshStore(nil)
		}
	}
	is, err := issuer.New(icfg)
	if err != nil {
		return issuer.ServerConfig{}, err
	}
	methods := []issuer.AuthMethod{issuer.AuthSecretBasic}
	if p.tls {
		methods = append(methods, issuer.AuthTLSClient, issuer.AuthSelfSignedTLSClient)
	}
	if p.privateKeyJWT {
		methods = append(methods, issuer.AuthPrivateKeyJWT)
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
			return issuer.ServerConfig{}, err
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
		ClientJWKS:      p.clientJWKS,
	}
	if p.refreshStore != nil {
		cfg.RefreshTokens = p.refreshStore
	}
	if p.requireNonce {
		n, err := serveNonces(p.id, p.nonceSecrets)
		if err != nil {
			return issuer.ServerConfig{}, err
		}
		cfg.Nonces = n
	}
	return cfg, nil
}
